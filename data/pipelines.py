"""Training data through mindspore.dataset, deterministic and resumable by construction.

Every sample is a pure function of (seed, global sample index): which file (a per-epoch permutation of each
domain), the flip and the crop offsets come from a counter-based NumPy generator. So a run resumed at
iteration k builds the same pipeline starting at sample k * batch_size and sees exactly the batches an
uninterrupted run would have seen, whatever the number of parallel decoding workers.
Augmentation as published for U-GAT-IT/photo2cartoon and CycleGAN/pix2pix (load 286, crop 256): random
horizontal flip, resize to img_size + 30 (bilinear), random crop img_size, normalise to [-1, 1]. Pairs for
pix2pix get the same flip and crop. Sources can add `n_uniform` U(0, 1) numbers per sample (column "U"), e.g.
the WGAN-GP interpolation weights, so that they too are a function of (seed, index).

Data-parallel training (training/distributed.py) shards every stream the same way: with N workers and a
per-worker batch b, worker r's k-th batch is samples r*b .. r*b+b-1 of the k-th batch of N*b of the stream one
worker would read, so N workers x batch b see exactly the samples of one worker x batch N*b.
"""
import numpy as np
from PIL import Image

from core.runtime import worker

from .celeba import load_face
from .images import read_training_rgb

def epoch_pick(seed, stream, g, n):
    """Sample g of an endless stream over n items: (item index, epoch, position in the epoch). Each epoch visits
    every item once, in a permutation drawn from (seed, stream, epoch); `stream` keeps the streams of one run
    (A and B domains, pairs, attributes, ...) independent."""
    epoch, pos = divmod(g, n)
    return int(np.random.default_rng([seed, stream, epoch]).permutation(n)[pos]), epoch, pos


def _load(path, img_size, flip, cx, cy, train):
    return _load_image(Image.fromarray(read_training_rgb(path)), img_size, flip, cx, cy, train)


def _load_image(im, img_size, flip, cx, cy, train):
    if train:
        if flip:
            im = im.transpose(Image.FLIP_LEFT_RIGHT)
        big = img_size + 30
        im = im.resize((big, big), Image.BILINEAR)
        im = im.crop((cx, cy, cx + img_size, cy + img_size))
    else:
        im = im.resize((img_size, img_size), Image.BILINEAR)
    a = np.asarray(im, dtype=np.float32)
    return np.ascontiguousarray((a / 127.5 - 1.0).transpose(2, 0, 1))


class UnpairedSource:
    """Random-access source for GeneratorDataset: item k is sample `start + k` of the infinite stream."""

    def __init__(self, files_a, files_b, img_size, seed, start, length, train=True, n_uniform=0):
        self.files = (list(files_a), list(files_b))
        self.img_size, self.seed, self.start, self.length, self.train = img_size, seed, start, length, train
        self.n_uniform = n_uniform

    def __len__(self):
        return self.length

    def uniform(self, g):
        return np.random.default_rng([self.seed, 9, g]).random(self.n_uniform).astype(np.float32)

    def _pick(self, domain, g):
        files = self.files[domain]
        i, epoch, pos = epoch_pick(self.seed, domain, g, len(files))
        rng = np.random.default_rng([self.seed, domain, epoch, pos, 7])
        flip = bool(rng.random() < 0.5)
        cx, cy = (int(v) for v in rng.integers(0, 31, size=2))
        return _load(files[i], self.img_size, flip, cx, cy, self.train)

    def __getitem__(self, k):
        g = self.start + int(k)
        out = (self._pick(0, g), self._pick(1, g))
        return out + (self.uniform(g),) if self.n_uniform else out


class AlignedSource(UnpairedSource):
    """pix2pix pairs: `pairs` is a list of (A path, B path) or (AB path, None) for side-by-side images."""

    def __init__(self, pairs, img_size, seed, start, length, train=True, n_uniform=0, swap=False):
        super().__init__((), (), img_size, seed, start, length, train, n_uniform)
        self.pairs, self.swap = list(pairs), swap

    def __getitem__(self, k):
        g = self.start + int(k)
        i, epoch, pos = epoch_pick(self.seed, 3, g, len(self.pairs))
        path_a, path_b = self.pairs[i]
        rng = np.random.default_rng([self.seed, 3, epoch, pos, 7])
        flip = bool(rng.random() < 0.5)
        cx, cy = (int(v) for v in rng.integers(0, 31, size=2))
        a, b = load_pair(path_a, path_b, self.img_size, flip, cx, cy, self.train)
        if self.swap:
            a, b = b, a
        return (a, b, self.uniform(g)) if self.n_uniform else (a, b)


def load_pair(path_a, path_b, img_size, flip, cx, cy, train):
    if path_b is not None:
        return (_load(path_a, img_size, flip, cx, cy, train), _load(path_b, img_size, flip, cx, cy, train))
    im = Image.fromarray(read_training_rgb(path_a))
    w, h = im.size
    halves = (im.crop((0, 0, w // 2, h)), im.crop((w // 2, 0, 2 * (w // 2), h)))
    return tuple(_load_image(x, img_size, flip, cx, cy, train) for x in halves)


class ShardedSource:
    """Worker r's view of a source built for a per-worker batch b: its start is scaled to the global stream
    (N * b samples per batch), and item k = j*b + i (batch j, position i) is global item j*N*b + r*b + i."""

    def __init__(self, src, batch_size, rank, size):
        self.src, self.b, self.rank, self.size = src, int(batch_size), rank, size
        self.length = len(src)
        src.start = src.start * size

    def __len__(self):
        return self.length

    def __getitem__(self, k):
        j, i = divmod(int(k), self.b)
        return self.src[j * self.b * self.size + self.rank * self.b + i]


def _batches(src, columns, batch_size, workers):
    import mindspore.dataset as ds
    rank, size = worker()       # set by training/distributed.py: every pipeline built afterwards is sharded
    if size > 1:
        src = ShardedSource(src, batch_size, rank, size)
    data = ds.GeneratorDataset(src, column_names=columns, shuffle=False,
                               num_parallel_workers=max(1, workers), python_multiprocessing=False)
    data = data.batch(batch_size, drop_remainder=True)
    return data.create_tuple_iterator(output_numpy=True, num_epochs=1)


def unpaired_batches(files_a, files_b, img_size, batch_size, seed, start_iter, n_iters, workers=2, n_uniform=0,
                     per_iter=1):
    """A mindspore.dataset pipeline yielding (A, B[, U]) float32 batches, `per_iter` per iteration, for
    iterations start_iter..n_iters-1."""
    length = max(0, (n_iters - start_iter) * batch_size * per_iter)
    src = UnpairedSource(files_a, files_b, img_size, seed, start_iter * batch_size * per_iter, length,
                         n_uniform=n_uniform)
    return _batches(src, ["A", "B"] + (["U"] if n_uniform else []), batch_size, workers)


def aligned_batches(pairs, img_size, batch_size, seed, start_iter, n_iters, workers=2, n_uniform=0, swap=False):
    """(A, B[, U]) batches of pairs (B, A with swap) for iterations start_iter..n_iters-1."""
    length = max(0, (n_iters - start_iter) * batch_size)
    src = AlignedSource(pairs, img_size, seed, start_iter * batch_size, length, n_uniform=n_uniform, swap=swap)
    return _batches(src, ["A", "B"] + (["U"] if n_uniform else []), batch_size, workers)


def fixed_batch(files, img_size, count):
    """The first `count` files at test-time size (for sample grids): float32 (count, 3, s, s)."""
    return np.stack([_load(f, img_size, False, 0, 0, False) for f in files[:count]])


def fixed_pairs(pairs, img_size, count, swap=False):
    """The first `count` pairs at test-time size: (A batch, B batch), or (B, A) with swap."""
    loaded = [load_pair(a, b, img_size, False, 0, 0, False) for a, b in pairs[:count]]
    a, b = np.stack([x[0] for x in loaded]), np.stack([x[1] for x in loaded])
    return (b, a) if swap else (a, b)


class AttributeSource:
    """Item k: sample `start + k` of the stream: (image, attributes), file from a per-epoch permutation,
    random horizontal flip (attributes are flip-invariant)."""

    def __init__(self, paths, attrs, img_size, seed, start, length, crop="stgan"):
        self.paths, self.attrs, self.img_size = paths, attrs, img_size
        self.seed, self.start, self.length, self.crop = seed, start, length, crop

    def __len__(self):
        return self.length

    def __getitem__(self, k):
        g = self.start + int(k)
        i, epoch, pos = epoch_pick(self.seed, 11, g, len(self.paths))
        flip = bool(np.random.default_rng([self.seed, 11, epoch, pos]).random() < 0.5)
        return load_face(self.paths[i], self.img_size, flip, self.crop), self.attrs[i]


def attribute_batches(paths, attrs, img_size, batch_size, seed, start_batch, n_batches, workers=2, crop="stgan"):
    """(x, a, b, alpha) batches: b = a shuffled within the batch (the target attributes, as the papers build
    them), alpha = the gradient-penalty interpolation weights; all a function of (seed, batch index)."""
    length = max(0, (n_batches - start_batch) * batch_size)
    src = AttributeSource(paths, attrs, img_size, seed, start_batch * batch_size, length, crop)
    it = _batches(src, ["x", "a"], batch_size, workers)
    rank, size = worker()
    for k, (x, a) in enumerate(it):
        # with several workers, each shuffles the targets within its own part of the global batch
        rng = np.random.default_rng([seed, 77, start_batch + k] + ([rank] if size > 1 else []))
        b = a[rng.permutation(len(a))]
        yield x, a, b, rng.random(len(a)).astype(np.float32)


class NoiseImageSource:
    """Item k: sample `start + k` of the stream for a GAN from noise: (image[, one-hot label], z), the image
    from a per-epoch permutation of `images` (a data.mnist.ImageSet), z ~ N(0, 1) of shape `z_shape`."""

    def __init__(self, images, nc, z_shape, n_classes, seed, start, length):
        self.images, self.nc, self.z_shape, self.n_classes = images, nc, tuple(z_shape), n_classes
        self.seed, self.start, self.length = seed, start, length

    def __len__(self):
        return self.length

    def __getitem__(self, k):
        g = self.start + int(k)
        i, _, _ = epoch_pick(self.seed, 21, g, len(self.images))
        z = np.random.default_rng([self.seed, 22, g]).standard_normal(self.z_shape).astype(np.float32)
        x = self.images.load(i, self.nc)
        if not self.n_classes:
            return x, z
        y = np.zeros(self.n_classes, np.float32)
        y[self.images.labels[i]] = 1.0
        return x, y, z


def noise_image_batches(images, nc, z_shape, n_classes, batch_size, seed, start_batch, n_batches, workers=2):
    """(x, z) or (x, y, z) float32 batches number start_batch..n_batches-1, each a function of (seed, index)."""
    length = max(0, (n_batches - start_batch) * batch_size)
    src = NoiseImageSource(images, nc, z_shape, n_classes, seed, start_batch * batch_size, length)
    return _batches(src, ["x", "y", "z"] if n_classes else ["x", "z"], batch_size, workers)
