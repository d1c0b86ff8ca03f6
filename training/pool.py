"""The image pool of Shrivastava et al. / CycleGAN: the discriminator sees a mix of the newest fakes and fakes
from earlier iterations (pool of 50; once full, each new fake is, with probability 1/2, swapped for a random
stored one). Host-side, with every random draw a function of (seed, pool index, iteration), and the pool
contents saved in the checkpoint, so a resumed run continues exactly. Each worker of a data-parallel run keeps
its own pool of its own fakes, with its own draws (worker r > 0 adds r to the generator's key).
"""
import numpy as np


class ImagePool:
    def __init__(self, size, seed, n_pools, rank=None):
        if rank is None:
            from . import distributed
            rank = distributed.rank()
        self.size, self.seed = int(size), int(seed)
        self.key = [int(rank)] if rank else []
        self.pools = [[] for _ in range(n_pools)]

    def __call__(self, iteration, tensors):
        if self.size <= 0:
            return tuple(tensors)
        import mindspore as ms
        out = []
        for k, t in enumerate(tensors):
            rng = np.random.default_rng([self.seed, 5150, k, int(iteration)] + self.key)
            pool, chosen = self.pools[k], []
            for img in t.asnumpy():
                if len(pool) < self.size:
                    pool.append(img.copy())
                    chosen.append(img)
                elif rng.random() > 0.5:
                    j = int(rng.integers(self.size))
                    chosen.append(pool[j])
                    pool[j] = img.copy()
                else:
                    chosen.append(img)
            out.append(ms.Tensor(np.stack(chosen)))
        return tuple(out)

    def state(self):
        return {f"pool_{k}": (np.stack(p) if p else np.zeros((0,), np.float32)) for k, p in enumerate(self.pools)}

    def load_state(self, state):
        for k in range(len(self.pools)):
            arr = state.get(f"pool_{k}")
            self.pools[k] = [] if arr is None or arr.ndim < 2 else [a.copy() for a in arr]
