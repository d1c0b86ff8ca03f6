"""CelebA's attribute data: the list file, the evaluation partition, the aligned crop STGAN and AttGAN train
on, and the attributes' mutual exclusions (used when an edit toggles one)."""
import os

import numpy as np
from PIL import Image

from .folders import DataError
from .images import read_training_rgb

CELEBA_13 = ("Bald", "Bangs", "Black_Hair", "Blond_Hair", "Brown_Hair", "Bushy_Eyebrows", "Eyeglasses", "Male",
             "Mouth_Slightly_Open", "Mustache", "No_Beard", "Pale_Skin", "Young")
HAIR_COLOURS = ("Black_Hair", "Blond_Hair", "Brown_Hair", "Gray_Hair")


def apply_conflicts(attrs, names, changed):
    """CelebA's attribute conflicts after setting `changed` (0/1 float array (n_attrs,), edited in place and
    returned): one hair colour at a time; Bald or Receding_Hairline excludes Bangs and Bangs excludes both;
    Straight_Hair / Wavy_Hair exclusive; Mustache implies not No_Beard, No_Beard excludes Mustache."""
    idx = {n: i for i, n in enumerate(names)}

    def off(*others):
        for o in others:
            if o in idx and o != changed:
                attrs[idx[o]] = 0.0
    if changed not in idx or attrs[idx[changed]] != 1.0:
        return attrs
    if changed in ("Bald", "Receding_Hairline"):
        off("Bangs")
    elif changed == "Bangs":
        off("Bald", "Receding_Hairline")
    elif changed in HAIR_COLOURS:
        off(*HAIR_COLOURS)
    elif changed in ("Straight_Hair", "Wavy_Hair"):
        off("Straight_Hair", "Wavy_Hair")
    elif changed == "Mustache":
        off("No_Beard")
    elif changed == "No_Beard":
        off("Mustache")
    return attrs


CELEBA_SIZE = (178, 218)          # width, height of img_align_celeba images
CELEBA_CROP = (3, 26, 170)        # x offset, y offset, side: the crop STGAN/AttGAN train on
STARGAN_CROP = (0, 20, 178)       # StarGAN's CenterCrop(178)


def read_attribute_list(dataset_dir, selected):
    """CelebA's `list_attr_celeba.txt` (a count line, a names line, then `name.jpg 1 -1 ...`) under
    dataset_dir, images in dataset_dir/img_align_celeba/ (or next to the list). Returns (paths, attrs 0/1
    float32 (N, len(selected)), [(path, "missing")] skipped, split indices {"train": [...], "test": [...]})
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
    paths, attrs, skipped = [], [], []
    for row in lines[2:]:
        if len(row) != len(names) + 1:
            raise DataError(f"{list_path}: line for {row[0]} has {len(row) - 1} values, expected {len(names)}")
        p = os.path.join(img_dir, row[0])
        if not os.path.isfile(p):
            skipped.append((p, "missing"))
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
    return paths, np.asarray(attrs, np.float32), skipped, split


def load_face(path, img_size, flip=False, crop="stgan"):
    """An attribute-training image: for CelebA's 178x218 aligned images the crop the family trains on
    (`crop`: "stgan", the 170 px crop, bicubic resize; "stargan", the centre 178 px, bilinear as
    torchvision's Resize), else (any other size) the centre square; then a square resize."""
    im = Image.fromarray(read_training_rgb(path))
    x, y, side = CELEBA_CROP if crop == "stgan" else STARGAN_CROP
    if im.size != CELEBA_SIZE:
        w, h = im.size
        side = min(w, h)
        x, y = (w - side) // 2, (h - side) // 2
    if crop != "stgan" or im.size == CELEBA_SIZE:
        im = im.crop((x, y, x + side, y + side))
    if flip:
        im = im.transpose(Image.FLIP_LEFT_RIGHT)
    im = im.resize((img_size, img_size), Image.BICUBIC if crop == "stgan" else Image.BILINEAR)
    a = np.asarray(im, dtype=np.float32)
    return np.ascontiguousarray((a / 127.5 - 1.0).transpose(2, 0, 1))
