"""Sampling the noise families' generators (test.py --model dcgan | cgan, or an exported file's through
test.py --onnx): sample grids, interpolations, one row per class. MindSpore is imported only to open a model
dir."""
import numpy as np

from families.base import Option, Runner
from families.common import grid, open_model, to_img

from .cartoon import InferenceError


# test.py --model dcgan | cgan's options (and, but --bn_stats, test.py --onnx's for their exported generators)
SAMPLE_OPTIONS = (
    Option("num", int, "how many samples", default=64),
    Option("seed", int, "random seed of the latent vectors", default=0),
    Option("bn_stats", str, "BatchNorm statistics: batch (training mode, as the original samples) or running "
                            "(eval mode)", ("batch", "running"), default="batch"),
)
DCGAN_OPTIONS = SAMPLE_OPTIONS + (Option("steps", int, "interpolation strip length", default=10),)
CGAN_OPTIONS = SAMPLE_OPTIONS[:2] + (
    Option("label", int, "generate this class only (default: a row per class)"),
    Option("bn_stats", str, "BatchNorm statistics: running (eval mode; default: a batch of one class has "
                            "statistics unlike the mixed batches of training) or batch", ("running", "batch"),
           default="running"))


def noise(seed, count, nz, spatial):
    """`count` latent vectors N(0, 1) from `seed`: (count, nz, 1, 1) for DCGAN, (count, nz) for CGAN."""
    z = np.random.default_rng(seed).standard_normal((count, nz)).astype(np.float32)
    return z.reshape(count, nz, 1, 1) if spatial else z


def square_grid(tiles, cols=None):
    cols = cols or int(np.ceil(np.sqrt(len(tiles))))
    blank = np.zeros_like(tiles[0])
    rows = [tiles[i:i + cols] + [blank] * (cols - len(tiles[i:i + cols])) for i in range(0, len(tiles), cols)]
    return grid(rows)


class _Sampler(Runner):
    """Shared by the noise families' test.py runners: the generator from a model dir, in the BatchNorm mode
    asked for (`batch`: training-mode batch statistics, as the originals sample; `running`: eval())."""
    takes_photos = False
    verb = "generated"

    def __init__(self, checkpoint, args, arch, loaded=None):
        """`loaded`: (meta, run(*inputs) -> images) instead of the model dir (an exported file's: eval mode,
        BatchNorm on running statistics)."""
        if args.num < 1:
            raise InferenceError("--num must be at least 1")
        if loaded is None:
            meta, nets = open_model(checkpoint, arch, arch, "convert_weights.py")
            G = nets["G"]
            G.set_train(args.bn_stats == "batch")

            def run(*inputs):
                import mindspore as ms
                return G(*(ms.Tensor(a) for a in inputs)).asnumpy()
            stats = args.bn_stats
        else:
            (meta, run), stats = loaded, "running"
        self._run = run
        self.cfg = meta["networks"]["G"]["config"]
        self.label = f"{meta.get('label', arch)}; BatchNorm on {stats} statistics"

    def run(self, *inputs):
        return [to_img(a) for a in self._run(*inputs)]


class DCGANSampler(_Sampler):
    """A grid of --num samples from --seed, and an interpolation strip between the latents of --seed and
    --seed + 1 (--steps columns, spherical interpolation)."""
    suffixes = ("samples", "interpolation")

    def __init__(self, checkpoint, args, loaded=None):
        super().__init__(checkpoint, args, "dcgan", loaded)
        self.num, self.seed, self.steps = args.num, args.seed, args.steps

    def generate(self):
        nz = self.cfg["nz"]
        z = noise(self.seed, self.num, nz, True)
        a, b = noise(self.seed, 1, nz, False)[0], noise(self.seed + 1, 1, nz, False)[0]
        t = np.linspace(0.0, 1.0, max(2, self.steps))
        omega = np.arccos(np.clip(np.dot(a / np.linalg.norm(a), b / np.linalg.norm(b)), -1, 1))
        path = np.stack([(np.sin((1 - s) * omega) * a + np.sin(s * omega) * b) / np.sin(omega)
                         if omega > 1e-6 else (1 - s) * a + s * b for s in t]).astype(np.float32)
        return {"samples": square_grid(self.run(z)),
                "interpolation": grid([self.run(path.reshape(len(t), nz, 1, 1))])}


def one_hot(labels, n):
    y = np.zeros((len(labels), n), np.float32)
    y[np.arange(len(labels)), labels] = 1.0
    return y


class CGANSampler(_Sampler):
    """--label K: a grid of --num samples of class K; without it, one row of --num samples per class."""

    def __init__(self, checkpoint, args, loaded=None):
        super().__init__(checkpoint, args, "cgan", loaded)
        self.n_classes = int(self.cfg["n_classes"])
        if args.label is not None and not 0 <= args.label < self.n_classes:
            raise InferenceError(f"--label {args.label}: this model has classes 0 .. {self.n_classes - 1}")
        self.label_k, self.num, self.seed = args.label, args.num, args.seed
        self.suffixes = (f"label{args.label}",) if args.label is not None else ("classes",)

    def generate(self):
        nz = self.cfg["nz"]
        if self.label_k is not None:
            z = noise(self.seed, self.num, nz, False)
            y = one_hot(np.full(self.num, self.label_k), self.n_classes)
            return {self.suffixes[0]: square_grid(self.run(z, y))}
        z = np.tile(noise(self.seed, self.num, nz, False), (self.n_classes, 1))   # the same z in every row
        y = one_hot(np.repeat(np.arange(self.n_classes), self.num), self.n_classes)
        tiles = self.run(z, y)
        return {"classes": grid([tiles[k * self.num:(k + 1) * self.num] for k in range(self.n_classes)])}
