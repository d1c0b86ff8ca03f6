"""Training data through mindspore.dataset, deterministic and resumable by construction.

Every sample is a pure function of (seed, global sample index): which file (a per-epoch permutation of each
domain), the flip and the crop offsets come from a counter-based NumPy generator. So a run resumed at
iteration k builds the same pipeline starting at sample k * batch_size and sees exactly the batches an
uninterrupted run would have seen, whatever the number of parallel decoding workers.
Augmentation as published for U-GAT-IT/photo2cartoon and CycleGAN/pix2pix (load 286, crop 256): random
horizontal flip, resize to img_size + 30 (bilinear), random crop img_size, normalise to [-1, 1]. Pairs for
pix2pix get the same flip and crop. Sources can add `n_uniform` U(0, 1) numbers per sample (column "U"), e.g.
the WGAN-GP interpolation weights, so that they too are a function of (seed, index).
"""
import os

import numpy as np
from PIL import Image

from preprocess.imageio import IMAGE_EXTS


class DataError(Exception):
    """A dataset that cannot be used; one line, reported before any work starts."""


def _is_readable(path):
    try:
        with Image.open(path) as im:
            im.verify()
        return True
    except Exception:
        return False


def scan_folder(folder, what):
    """Readable images in `folder` (recursive, sorted) and the number of unreadable ones skipped."""
    if not os.path.isdir(folder):
        raise DataError(f"{what} folder not found: {folder}")
    files = []
    for d, dirs, names in os.walk(folder):
        dirs[:] = sorted(x for x in dirs if not x.startswith("."))
        files += [os.path.join(d, n) for n in sorted(names)
                  if n.lower().endswith(IMAGE_EXTS) and not n.startswith(".")]
    good = [f for f in files if _is_readable(f)]
    if not good:
        raise DataError(f"{what} folder has no readable images: {folder}"
                        + (f" ({len(files)} unreadable)" if files else ""))
    return good, len(files) - len(good)


def read_list_file(list_path, root, what):
    """PaddleCV-style list file (`trainA.txt`: one path per line, relative to `root`)."""
    with open(list_path, encoding="utf-8") as f:
        rel = [ln.strip().split()[0] for ln in f if ln.strip()]
    paths = [p if os.path.isabs(p) else os.path.join(root, p) for p in rel]
    good = [p for p in paths if os.path.isfile(p) and _is_readable(p)]
    if not good:
        raise DataError(f"{what} list {list_path} names no readable image")
    return good, len(paths) - len(good)


def domain_files(dataset_dir, split):
    """Files of one domain split (e.g. 'trainA'): the folder, or the list file `<split>.txt` if present."""
    folder = os.path.join(dataset_dir, split)
    list_file = os.path.join(dataset_dir, split + ".txt")
    if not os.path.isdir(folder) and os.path.isfile(list_file):
        return read_list_file(list_file, dataset_dir, split)
    return scan_folder(folder, split)


def _load(path, img_size, flip, cx, cy, train):
    with Image.open(path) as im:
        return _load_image(im.convert("RGB"), img_size, flip, cx, cy, train)


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
        n = len(files)
        epoch, pos = divmod(g, n)
        perm = np.random.default_rng([self.seed, domain, epoch]).permutation(n)
        rng = np.random.default_rng([self.seed, domain, epoch, pos, 7])
        flip = bool(rng.random() < 0.5)
        cx, cy = (int(v) for v in rng.integers(0, 31, size=2))
        return _load(files[perm[pos]], self.img_size, flip, cx, cy, self.train)

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
        n = len(self.pairs)
        epoch, pos = divmod(g, n)
        path_a, path_b = self.pairs[np.random.default_rng([self.seed, 3, epoch]).permutation(n)[pos]]
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
    with Image.open(path_a) as im:
        im = im.convert("RGB")
        w, h = im.size
        halves = (im.crop((0, 0, w // 2, h)), im.crop((w // 2, 0, 2 * (w // 2), h)))
    return tuple(_load_image(x, img_size, flip, cx, cy, train) for x in halves)


def _batches(src, columns, batch_size, workers):
    import mindspore.dataset as ds
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


def aligned_pairs(dataset_dir, split):
    """pix2pix data of one split: `<split>/` of side-by-side A|B images, or `<split>.txt` with one
    `A<TAB>B` pair of paths per line (relative to dataset_dir). Returns ([(a, b or None)], n skipped)."""
    folder = os.path.join(dataset_dir, split)
    list_file = os.path.join(dataset_dir, split + ".txt")
    if not os.path.isdir(folder) and os.path.isfile(list_file):
        pairs, bad = [], 0
        with open(list_file, encoding="utf-8") as f:
            for ln in f:
                parts = ln.rstrip("\n").split("\t") if "\t" in ln else ln.split()
                if not parts or not parts[0].strip():
                    continue
                if len(parts) < 2:
                    raise DataError(f"{list_file}: line '{ln.strip()}' is not 'A<TAB>B'")
                a, b = (p.strip() if os.path.isabs(p.strip()) else os.path.join(dataset_dir, p.strip())
                        for p in parts[:2])
                if os.path.isfile(a) and os.path.isfile(b) and _is_readable(a) and _is_readable(b):
                    pairs.append((a, b))
                else:
                    bad += 1
        if not pairs:
            raise DataError(f"{split} list {list_file} names no readable pair")
        return pairs, bad
    files, bad = scan_folder(folder, split)
    return [(f, None) for f in files], bad


def fixed_batch(files, img_size, count):
    """The first `count` files at test-time size (for sample grids): float32 (count, 3, s, s)."""
    return np.stack([_load(f, img_size, False, 0, 0, False) for f in files[:count]])


def fixed_pairs(pairs, img_size, count, swap=False):
    """The first `count` pairs at test-time size: (A batch, B batch), or (B, A) with swap."""
    loaded = [load_pair(a, b, img_size, False, 0, 0, False) for a, b in pairs[:count]]
    a, b = np.stack([x[0] for x in loaded]), np.stack([x[1] for x in loaded])
    return (b, a) if swap else (a, b)


# ----------------------------------------------------------------------------- CelebA-style attributes
CELEBA_SIZE = (178, 218)          # width, height of img_align_celeba images
CELEBA_CROP = (3, 26, 170)        # x offset, y offset, side: the crop STGAN/AttGAN train on


def read_attribute_list(dataset_dir, selected):
    """CelebA's `list_attr_celeba.txt` (a count line, a names line, then `name.jpg 1 -1 ...`) under
    dataset_dir, images in dataset_dir/img_align_celeba/ (or next to the list). Returns (paths, attrs 0/1
    float32 (N, len(selected)), n unreadable/missing skipped, split indices {"train": [...], "test": [...]})
    using list_eval_partition.txt when present (0 train, 2 test), else everything trains."""
    list_path = os.path.join(dataset_dir, "list_attr_celeba.txt")
    if not os.path.isfile(list_path):
        raise DataError(f"{dataset_dir} has no list_attr_celeba.txt (CelebA attribute list)")
    with open(list_path, encoding="utf-8") as f:
        lines = [ln.split() for ln in f if ln.strip()]
    if len(lines) < 3 or not lines[0][0].isdigit():
        raise DataError(f"{list_path}: expected a count line, a names line and one line per image")
    names = lines[1]
    missing = [s for s in selected if s not in names]
    if missing:
        raise DataError(f"{list_path} has no attribute {', '.join(missing)} (it has: {' '.join(names[:8])} ...)")
    cols = [names.index(s) for s in selected]
    img_dir = os.path.join(dataset_dir, "img_align_celeba")
    img_dir = img_dir if os.path.isdir(img_dir) else dataset_dir
    paths, attrs, bad = [], [], 0
    for row in lines[2:]:
        if len(row) != len(names) + 1:
            raise DataError(f"{list_path}: line for {row[0]} has {len(row) - 1} values, expected {len(names)}")
        p = os.path.join(img_dir, row[0])
        if not os.path.isfile(p):
            bad += 1
            continue
        paths.append(p)
        attrs.append([1.0 if row[1 + c] == "1" else 0.0 for c in cols])
    if not paths:
        raise DataError(f"no image of {list_path} was found in {img_dir}")
    split = {"train": list(range(len(paths))), "test": []}
    part = os.path.join(dataset_dir, "list_eval_partition.txt")
    if os.path.isfile(part):
        with open(part, encoding="utf-8") as f:
            which = dict(ln.split()[:2] for ln in f if ln.strip())
        base = [os.path.basename(p) for p in paths]
        split = {"train": [i for i, b in enumerate(base) if which.get(b) == "0"],
                 "test": [i for i, b in enumerate(base) if which.get(b) == "2"]}
    return paths, np.asarray(attrs, np.float32), bad, split


def load_face(path, img_size, flip=False):
    """An attribute-training image: CelebA's crop for 178x218 aligned images, then a square resize."""
    with Image.open(path) as im:
        im = im.convert("RGB")
        if im.size == CELEBA_SIZE:
            x, y, side = CELEBA_CROP
            im = im.crop((x, y, x + side, y + side))
        if flip:
            im = im.transpose(Image.FLIP_LEFT_RIGHT)
        im = im.resize((img_size, img_size), Image.BICUBIC)
        a = np.asarray(im, dtype=np.float32)
    return np.ascontiguousarray((a / 127.5 - 1.0).transpose(2, 0, 1))


class AttributeSource:
    """Item k: sample `start + k` of the stream: (image, attributes), file from a per-epoch permutation,
    random horizontal flip (attributes are flip-invariant)."""

    def __init__(self, paths, attrs, img_size, seed, start, length):
        self.paths, self.attrs, self.img_size = paths, attrs, img_size
        self.seed, self.start, self.length = seed, start, length

    def __len__(self):
        return self.length

    def __getitem__(self, k):
        g = self.start + int(k)
        n = len(self.paths)
        epoch, pos = divmod(g, n)
        i = int(np.random.default_rng([self.seed, 11, epoch]).permutation(n)[pos])
        flip = bool(np.random.default_rng([self.seed, 11, epoch, pos]).random() < 0.5)
        return load_face(self.paths[i], self.img_size, flip), self.attrs[i]


def attribute_batches(paths, attrs, img_size, batch_size, seed, start_batch, n_batches, workers=2):
    """(x, a, b, alpha) batches: b = a shuffled within the batch (the target attributes, as the papers build
    them), alpha = the gradient-penalty interpolation weights; all a function of (seed, batch index)."""
    length = max(0, (n_batches - start_batch) * batch_size)
    src = AttributeSource(paths, attrs, img_size, seed, start_batch * batch_size, length)
    it = _batches(src, ["x", "a"], batch_size, workers)
    for k, (x, a) in enumerate(it):
        rng = np.random.default_rng([seed, 77, start_batch + k])
        b = a[rng.permutation(len(a))]
        yield x, a, b, rng.random(len(a)).astype(np.float32)
