"""Training data through mindspore.dataset, deterministic and resumable by construction.

Every sample is a pure function of (seed, global sample index): which file (a per-epoch permutation of each
domain), the flip and the crop offsets come from a counter-based NumPy generator. So a run resumed at
iteration k builds the same pipeline starting at sample k * batch_size and sees exactly the batches an
uninterrupted run would have seen, whatever the number of parallel decoding workers.
Augmentation as published for U-GAT-IT/photo2cartoon: random horizontal flip, resize to img_size + 30
(bilinear), random crop img_size, normalise to [-1, 1].
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
        im = im.convert("RGB")
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

    def __init__(self, files_a, files_b, img_size, seed, start, length, train=True):
        self.files = (list(files_a), list(files_b))
        self.img_size, self.seed, self.start, self.length, self.train = img_size, seed, start, length, train

    def __len__(self):
        return self.length

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
        return self._pick(0, g), self._pick(1, g)


def unpaired_batches(files_a, files_b, img_size, batch_size, seed, start_iter, n_iters, workers=2):
    """A mindspore.dataset pipeline yielding (A, B) float32 batches for iterations start_iter..n_iters-1."""
    import mindspore.dataset as ds
    length = max(0, (n_iters - start_iter) * batch_size)
    src = UnpairedSource(files_a, files_b, img_size, seed, start_iter * batch_size, length)
    data = ds.GeneratorDataset(src, column_names=["A", "B"], shuffle=False,
                               num_parallel_workers=max(1, workers), python_multiprocessing=False)
    data = data.batch(batch_size, drop_remainder=True)
    return data.create_tuple_iterator(output_numpy=True, num_epochs=1)


def fixed_batch(files, img_size, count):
    """The first `count` files at test-time size (for sample grids): float32 (count, 3, s, s)."""
    return np.stack([_load(f, img_size, False, 0, 0, False) for f in files[:count]])
