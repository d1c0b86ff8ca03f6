"""Image sets for the GANs that generate from noise (DCGAN, CGAN): MNIST's IDX files, an image folder (one
subfolder per class when labels are needed), and scikit-learn's digits as an offline toy.

    images = image_set("data/mnist", img_size=64, labelled=False)    # -> ImageSet
    x = images.load(k)                                               # (nc, s, s) float32 in [-1, 1]

- MNIST: `train-images-idx3-ubyte` and `train-labels-idx1-ubyte` (or `train-images.idx3-ubyte`, each
  optionally gzipped) in the dataset folder; `t10k-*` are not used for training.
- a folder: every image under it (recursively); with labels, its subfolders are the classes (sorted names).
- `digits`: sklearn.datasets.load_digits (1797 8x8 digits, shipped inside scikit-learn), upscaled.
Images are resized to img_size (bilinear on the shorter side, then a centre crop, as pytorch/examples' DCGAN
does) and scaled to [-1, 1]; grey sets have one channel, folders three.
"""
import dataclasses
import gzip
import os
import struct

import numpy as np

from .folders import DataError, check_files, list_image_files

DIGITS = "digits"
_IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path):
    """An IDX file (MNIST's format, optionally .gz) as a numpy array; a malformed file is a DataError."""
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as e:
        raise DataError(f"cannot read {path}: {e}") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_TYPES:
        raise DataError(f"{path} is not an IDX file (MNIST's format)")
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{path}: truncated IDX header")
    shape = struct.unpack(f">{ndim}I", data[4:header])
    dtype = np.dtype(_IDX_TYPES[data[2]])
    need = int(np.prod(shape)) * dtype.itemsize
    if len(data) - header < need:
        raise DataError(f"{path}: truncated ({len(data) - header} of {need} data bytes)")
    return np.frombuffer(data, dtype, count=int(np.prod(shape)), offset=header).reshape(shape)


def _find(folder, stem):
    for name in (stem, stem.replace("-idx", ".idx")):
        for ext in ("", ".gz"):
            p = os.path.join(folder, name + ext)
            if os.path.isfile(p):
                return p
    return None


def digits_toy(size):
    """scikit-learn's 8x8 digits, upscaled to size x size (bicubic), uint8 white on black, and labels."""
    import cv2
    from sklearn.datasets import load_digits
    d = load_digits()
    imgs = [np.clip(cv2.resize((x / 16.0 * 255).astype(np.float32), (size, size), interpolation=cv2.INTER_CUBIC),
                    0, 255).astype(np.uint8) for x in d.images]
    return np.stack(imgs), d.target.astype(np.int64)


def _fit(img, size):
    """Resize the shorter side to `size` (bilinear), centre-crop size x size."""
    import cv2
    h, w = img.shape[:2]
    if (h, w) != (size, size):
        s = size / min(h, w)
        nh, nw = max(size, round(h * s)), max(size, round(w * s))
        img = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_LINEAR)
        y, x = (nh - size) // 2, (nw - size) // 2
        img = img[y:y + size, x:x + size]
    return img


@dataclasses.dataclass
class ImageSet:
    """Training images held as an array (MNIST, digits) or as files (a folder), with optional labels."""
    source: str
    img_size: int
    nc: int
    arrays: object = None          # uint8 (N, H, W) or (N, H, W, 3)
    paths: list = None
    labels: object = None          # int64 (N,) or None
    classes: list = None
    skipped: list = dataclasses.field(default_factory=list)

    def __len__(self):
        return len(self.arrays) if self.arrays is not None else len(self.paths)

    def load(self, k, nc=None):
        """Image k as (nc, s, s) float32 in [-1, 1] (grey repeated to 3 channels or RGB averaged to 1 on
        request)."""
        nc = nc or self.nc
        if self.arrays is not None:
            img = self.arrays[k]
        else:
            from .images import read_training_rgb
            img = read_training_rgb(self.paths[k])
        img = _fit(img, self.img_size)
        if img.ndim == 2:
            img = img[:, :, None]
        if nc == 1 and img.shape[2] == 3:
            img = np.round(img.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32))[:, :, None]
        elif nc == 3 and img.shape[2] == 1:
            img = np.repeat(img, 3, axis=2)
        a = img.astype(np.float32) / 127.5 - 1.0
        return np.ascontiguousarray(a.transpose(2, 0, 1))


def image_set(dataset_dir, img_size, labelled):
    """The training images of `dataset_dir` (MNIST IDX files, a folder, or "digits"); DataError when there
    are none or labels are needed and missing."""
    if dataset_dir == DIGITS:
        imgs, labels = digits_toy(img_size)
        return ImageSet("scikit-learn digits", img_size, 1, arrays=imgs, labels=labels,
                        classes=[str(i) for i in range(10)])
    img_path = _find(dataset_dir, "train-images-idx3-ubyte")
    if img_path:
        imgs = read_idx(img_path)
        if imgs.ndim != 3:
            raise DataError(f"{img_path}: expected N x H x W images, got shape {imgs.shape}")
        labels = None
        lab_path = _find(dataset_dir, "train-labels-idx1-ubyte")
        if lab_path:
            labels = read_idx(lab_path).astype(np.int64)
            if labels.shape != (len(imgs),):
                raise DataError(f"{lab_path}: {labels.shape[0]} labels for {len(imgs)} images")
        elif labelled:
            raise DataError(f"{dataset_dir} has MNIST images but no train-labels-idx1-ubyte")
        n_cls = int(labels.max()) + 1 if labels is not None else 0
        return ImageSet("MNIST", img_size, 1, arrays=imgs, labels=labels,
                        classes=[str(i) for i in range(n_cls)] if labels is not None else None)
    if labelled:
        classes = sorted(d for d in os.listdir(dataset_dir)
                         if os.path.isdir(os.path.join(dataset_dir, d)) and not d.startswith("."))
        paths, labels, skipped = [], [], []
        for c, name in enumerate(classes):
            good, bad = check_files(list_image_files(os.path.join(dataset_dir, name)))
            paths += good
            labels += [c] * len(good)
            skipped += bad
        if len(classes) < 2 or not paths:
            raise DataError(f"{dataset_dir} has neither MNIST files nor class subfolders of images "
                            f"(found {len(classes)} subfolders, {len(paths)} images)")
        present = set(labels)
        empty = [c for k, c in enumerate(classes) if k not in present]
        if empty:
            raise DataError(f"class folder{'s' if len(empty) > 1 else ''} without readable images: "
                            f"{', '.join(os.path.join(dataset_dir, c) for c in empty)}")
        return ImageSet(f"{len(classes)} class folders", img_size, 3, paths=paths,
                        labels=np.asarray(labels, np.int64), classes=classes, skipped=skipped)
    good, bad = check_files(list_image_files(dataset_dir))
    if not good:
        raise DataError(f"{dataset_dir} has neither MNIST files nor readable images"
                        + (f" ({len(bad)} unreadable)" if bad else ""))
    return ImageSet("image folder", img_size, 3, paths=good, skipped=bad)
