"""Semantic image synthesis data (SPADE): label maps, real images, optional instance maps.

Layouts (`find_samples`; `mode` "auto" picks the first that fits):
- list: DIR/train.txt (test.txt for samples), one sample per line: `label<TAB>image[<TAB>instance]`, paths
  relative to DIR (the seed project's format);
- cityscapes: DIR/gtFine/<train|val>/**/*_labelIds.png (+ *_instanceIds.png), DIR/leftImg8bit/<train|val>/**,
  paired by their first three name parts (city_seq_frame);
- ade20k: DIR/** with `_train_` / `_val_` in the path, *.jpg images and *.png labels, paired by name;
- custom: DIR/train_label/, DIR/train_img/ [, DIR/train_inst/] (test_* for samples), sorted and paired in
  order, as the original's --label_dir / --image_dir.
`PRESETS` are the original's dataset options for each (label_nc, don't-care label, instance maps, resize and
crop); a flag given overrides one.

A sample, as NVlabs/SPADE builds it: the label map resized with nearest neighbour, the image with bicubic, both
with the same crop and flip (`preprocess_mode`: resize_and_crop, crop, scale_width_and_crop,
scale_shortside_and_crop or fixed); label 255 becomes label_nc (the don't-care class); the input is the one-hot
map of label_nc (+1 with a don't-care label) classes, plus, with instance maps, the instance edge map (a pixel
whose right, left, lower or upper neighbour has another instance id). (The original's ADE20K loader means to
shift its labels down by one but its postprocess never stores the result; the labels are used as they are
there, and so here.)
"""
import os
import re

import numpy as np
from PIL import Image

from .folders import DataError
from .images import IMAGE_EXTS, probe, read_training_rgb
from .pipelines import epoch_pick

MODES = ("list", "cityscapes", "ade20k", "custom")
PREPROCESS_MODES = ("resize_and_crop", "crop", "scale_width_and_crop", "scale_shortside_and_crop", "fixed")
PRESETS = {
    "cityscapes": dict(preprocess_mode="fixed", load_size=512, crop_size=512, aspect_ratio=2.0, label_nc=35,
                       contain_dontcare_label=False, num_upsampling_layers="more"),
    "ade20k": dict(preprocess_mode="resize_and_crop", load_size=286, crop_size=256, aspect_ratio=1.0, label_nc=150,
                   contain_dontcare_label=True, no_instance=True),
    "custom": dict(preprocess_mode="resize_and_crop", load_size=286, crop_size=256, aspect_ratio=1.0, label_nc=13,
                   contain_dontcare_label=False),
    "list": dict(preprocess_mode="resize_and_crop", load_size=286, crop_size=256, aspect_ratio=1.0,
                 contain_dontcare_label=False),
}


def _natural_key(path):
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", path)]


def _walk(root, exts=IMAGE_EXTS):
    out = []
    for d, dirs, names in os.walk(root):
        dirs[:] = sorted(x for x in dirs if not x.startswith("."))
        out += [os.path.join(d, n) for n in names if n.lower().endswith(exts) and not n.startswith(".")]
    return sorted(out, key=_natural_key)


def detect_mode(dataset_dir):
    if os.path.isfile(os.path.join(dataset_dir, "train.txt")):
        return "list"
    if os.path.isdir(os.path.join(dataset_dir, "gtFine")) and os.path.isdir(os.path.join(dataset_dir, "leftImg8bit")):
        return "cityscapes"
    join = os.path.join
    if os.path.isdir(join(dataset_dir, "train_label")) and os.path.isdir(join(dataset_dir, "train_img")):
        return "custom"
    if any("_train_" in p for p in _walk(dataset_dir, (".png",))[:100000]):
        return "ade20k"
    raise DataError(f"{dataset_dir} is not a SPADE dataset: expected train.txt (label<TAB>image[<TAB>instance]), "
                    f"Cityscapes' gtFine/ + leftImg8bit/, ADE20K's *_train_* files, or train_label/ + train_img/")


def _list_samples(dataset_dir, split):
    path = os.path.join(dataset_dir, f"{split}.txt")
    if not os.path.isfile(path):
        return None
    out = []
    with open(path, encoding="utf-8") as f:
        for n, ln in enumerate(f, 1):
            parts = [p.strip() for p in (ln.rstrip("\n").split("\t") if "\t" in ln else ln.split())]
            parts = [p for p in parts if p]
            if not parts:
                continue
            if len(parts) not in (2, 3):
                raise DataError(f"{path}:{n}: expected label<TAB>image[<TAB>instance], got {len(parts)} fields")
            full = [p if os.path.isabs(p) else os.path.join(dataset_dir, p) for p in parts]
            out.append((full[0], full[1], full[2] if len(full) == 3 else None))
    if not out:
        raise DataError(f"{path} lists no samples")
    if len({s[2] is None for s in out}) > 1:
        raise DataError(f"{path}: some lines have an instance map and some have not")
    return out


def _cityscapes_samples(dataset_dir, split):
    phase = "val" if split == "test" else "train"
    label_dir = os.path.join(dataset_dir, "gtFine", phase)
    image_dir = os.path.join(dataset_dir, "leftImg8bit", phase)
    if not os.path.isdir(label_dir) or not os.path.isdir(image_dir):
        return None
    found = _walk(label_dir, (".png",))
    labels = [p for p in found if p.endswith("_labelIds.png")]
    instances = {_city_key(p): p for p in found if p.endswith("_instanceIds.png")}
    images = {_city_key(p): p for p in _walk(image_dir)}
    out = []
    for lab in labels:
        k = _city_key(lab)
        if k not in images:
            raise DataError(f"{lab} has no image {k}_leftImg8bit.png under {image_dir}")
        out.append((lab, images[k], instances.get(k)))
    return out or None


def _city_key(path):
    return "_".join(os.path.basename(path).split("_")[:3])


def _ade_samples(dataset_dir, split):
    phase = "val" if split == "test" else "train"
    files = [p for p in _walk(dataset_dir, (".jpg", ".png")) if f"_{phase}_" in p]
    images = {os.path.splitext(os.path.basename(p))[0]: p for p in files if p.endswith(".jpg")}
    out = []
    for lab in (p for p in files if p.endswith(".png")):
        k = os.path.splitext(os.path.basename(lab))[0]
        if k not in images:
            raise DataError(f"{lab} has no image {k}.jpg")
        out.append((lab, images[k], None))
    return out or None


def _custom_samples(dataset_dir, split):
    label_dir, image_dir = (os.path.join(dataset_dir, f"{split}_{s}") for s in ("label", "img"))
    inst_dir = os.path.join(dataset_dir, f"{split}_inst")
    if not os.path.isdir(label_dir) or not os.path.isdir(image_dir):
        return None
    labels, images = _walk(label_dir), _walk(image_dir)
    insts = _walk(inst_dir) if os.path.isdir(inst_dir) else None
    if len(labels) != len(images) or (insts is not None and len(insts) != len(labels)):
        raise DataError(f"{dataset_dir}: {len(labels)} label maps, {len(images)} images"
                        + (f", {len(insts)} instance maps" if insts is not None else "") + f" in {split}_*: they pair "
                        f"in sorted order, so the counts must be equal")
    return [(lab, img, insts[k] if insts is not None else None) for k, (lab, img) in enumerate(zip(labels, images))]


FINDERS = {"list": _list_samples, "cityscapes": _cityscapes_samples, "ade20k": _ade_samples,
           "custom": _custom_samples}


def find_samples(dataset_dir, mode, split="train"):
    """([(label, image, instance or None)], skipped [(path, reason)]) of `split` ("train" or "test"); None when
    the layout has no such split."""
    found = FINDERS[mode](dataset_dir, split)
    if found is None:
        if split == "train":
            raise DataError(f"{dataset_dir} has no training samples in the {mode} layout")
        return None, []
    good, skipped = [], []
    for s in found:
        problem = next((p for p in (probe(f, 1) if f else None for f in s) if p), None)
        if problem is None:
            good.append(s)
        else:
            skipped.append(("\t".join(f for f in s if f), problem[0]))
    if not good and split == "train":
        raise DataError(f"{dataset_dir}: no readable training sample ({len(skipped)} unreadable)")
    return good, skipped


def largest_label(samples):
    """The largest class id (255, the don't-care value, aside) in the label maps."""
    top = -1
    for lab, _, _ in samples:
        v = np.unique(read_label(lab))
        v = v[v != 255]
        if len(v):
            top = max(top, int(v.max()))
    return top


def read_label(path):
    im = Image.open(path)
    if im.mode not in ("L", "P", "I", "I;16"):
        raise ValueError(f"{path}: a label map must hold one class id per pixel (a grey or palette PNG), "
                         f"not {im.mode}")
    return np.asarray(im).astype(np.int64)


# ------------------------------------------------------- preprocessing (NVlabs/SPADE's get_params / get_transform)
def resized_size(opts, w, h):
    """The (w, h) an image of (w, h) has after the resize step of preprocess_mode."""
    mode, load = opts["preprocess_mode"], opts["load_size"]
    if "resize" in mode:
        return load, load
    if "scale_width" in mode:
        return load, load * h // w
    if "scale_shortside" in mode:
        ss, ls = min(w, h), max(w, h)
        ls = int(load * ls / ss)
        return (ss, ls) if w == ss else (ls, ss)
    return w, h


def draw_params(opts, size, rng):
    """crop position and flip for an image of `size` (w, h), from `rng`."""
    w, h = resized_size(opts, *size)
    x = int(rng.integers(0, max(0, w - opts["crop_size"]) + 1))
    y = int(rng.integers(0, max(0, h - opts["crop_size"]) + 1))
    return (x, y), bool(rng.random() > 0.5)


def transform(img, opts, crop_pos, flip, method):
    mode, load, crop = opts["preprocess_mode"], opts["load_size"], opts["crop_size"]
    w, h = img.size
    if "resize" in mode:
        img = img.resize((load, load), method)
    elif "scale_width" in mode and w != load:
        img = img.resize((load, int(load * h / w)), method)
    elif "scale_shortside" in mode and min(w, h) != load:
        ss, ls = min(w, h), max(w, h)
        ls = int(load * ls / ss)
        img = img.resize((ss, ls) if w == ss else (ls, ss), method)
    if "crop" in mode:
        x, y = crop_pos
        img = img.crop((x, y, x + crop, y + crop))
    if mode == "fixed":
        img = img.resize((crop, int(round(crop / opts["aspect_ratio"]))), method)
    if flip:
        img = img.transpose(Image.FLIP_LEFT_RIGHT)
    return img


def instance_edges(inst):
    """1 where a pixel's left/right/upper/lower neighbour has another instance id (the original's get_edges)."""
    e = np.zeros(inst.shape, bool)
    dx = inst[:, 1:] != inst[:, :-1]
    e[:, 1:] |= dx
    e[:, :-1] |= dx
    dy = inst[1:, :] != inst[:-1, :]
    e[1:, :] |= dy
    e[:-1, :] |= dy
    return e.astype(np.float32)


def semantic_channels(opts):
    return opts["label_nc"] + int(opts["contain_dontcare_label"]) + int(not opts["no_instance"])


def encode_labels(label, opts, inst=None, where="label map"):
    """label (H, W) int class ids -> the generator's input (C, H, W) float32: one-hot classes (255 -> the
    don't-care class label_nc) [+ the instance edge map of `inst`]."""
    nc = opts["label_nc"] + int(opts["contain_dontcare_label"])
    label = np.where(label == 255, opts["label_nc"], label)
    bad = label[(label < 0) | (label >= nc)]
    if bad.size:
        hint = " (255, the don't-care value, needs --contain_dontcare_label)" if int(bad.max()) == opts["label_nc"] \
            and not opts["contain_dontcare_label"] else f" (--label_nc is {opts['label_nc']})"
        raise ValueError(f"{where}: class id {int(bad.max())} is out of range{hint}")
    onehot = (label[None] == np.arange(nc)[:, None, None]).astype(np.float32)
    if opts["no_instance"]:
        return onehot
    if inst is None:
        raise ValueError(f"{where}: the model takes an instance map, and none was given")
    return np.concatenate([onehot, instance_edges(inst)[None]], 0)


def load_sample(sample, opts, crop_pos=(0, 0), flip=False, with_image=True):
    """(input (C, H, W), image (3, H, W) in [-1, 1] or None) of one (label, image, instance) sample."""
    lab_path, img_path, inst_path = sample
    lab_im = Image.open(lab_path)
    if lab_im.mode not in ("L", "P", "I", "I;16"):
        raise ValueError(f"{lab_path}: a label map must hold one class id per pixel (a grey or palette PNG), "
                         f"not {lab_im.mode}")
    if lab_im.mode == "P":
        lab_im = Image.fromarray(np.asarray(lab_im).astype(np.uint8), "L")
    label = np.asarray(transform(lab_im, opts, crop_pos, flip, Image.NEAREST)).astype(np.int64)
    inst = None
    if not opts["no_instance"]:
        if inst_path is None:
            raise ValueError(f"{lab_path}: no instance map for this sample (--no_instance true to train without)")
        inst_im = Image.open(inst_path)
        inst = np.asarray(transform(inst_im, opts, crop_pos, flip, Image.NEAREST)).astype(np.int64)
    x = encode_labels(label, opts, inst, lab_path)
    if not with_image:
        return x, None
    img = Image.fromarray(read_training_rgb(img_path))
    img = np.asarray(transform(img, opts, crop_pos, flip, Image.BICUBIC), np.float32)
    return x, np.ascontiguousarray((img / 127.5 - 1.0).transpose(2, 0, 1))


class SemanticSource:
    """Item k: sample `start + k` of the stream: (input, image[, z_G, z_D]), the sample from a per-epoch
    permutation, crop and flip from a generator seeded by (seed, epoch, position); z ~ N(0, 1) for the VAE's
    reparameterisation (one for the G step, one for the D step's regenerated fake)."""

    def __init__(self, samples, opts, seed, start, length, z_dim=0, flip=True):
        self.samples, self.opts, self.seed, self.start, self.length = samples, opts, seed, start, length
        self.z_dim, self.flip = z_dim, flip

    def __len__(self):
        return self.length

    def __getitem__(self, k):
        g = self.start + int(k)
        i, epoch, pos = epoch_pick(self.seed, 31, g, len(self.samples))
        rng = np.random.default_rng([self.seed, 31, epoch, pos, 7])
        size = Image.open(self.samples[i][0]).size
        crop_pos, flip = draw_params(self.opts, size, rng)
        x, img = load_sample(self.samples[i], self.opts, crop_pos, flip and self.flip)
        if not self.z_dim:
            return x, img
        z = np.random.default_rng([self.seed, 32, g]).standard_normal((2, self.z_dim)).astype(np.float32)
        return x, img, z[0], z[1]


def semantic_batches(samples, opts, batch_size, seed, start_iter, n_iters, z_dim=0, flip=True, workers=2):
    from .pipelines import _batches
    length = max(0, (n_iters - start_iter) * batch_size)
    src = SemanticSource(samples, opts, seed, start_iter * batch_size, length, z_dim, flip)
    return _batches(src, ["x", "image"] + (["zg", "zd"] if z_dim else []), batch_size, workers)


def test_options(opts):
    """The options a test-time sample is read with: no flip, the resize at crop size where the mode resizes
    (as the original's test options set load_size), the crop at the corner."""
    out = dict(opts)
    if "resize" in out["preprocess_mode"]:
        out["load_size"] = out["crop_size"]
    return out


def palette(n):
    """The label colours of the sample sheets: the PASCAL VOC bit-interleaved colour map (n x 3 uint8)."""
    cmap = np.zeros((max(n, 1), 3), np.uint8)
    for i in range(max(n, 1)):
        c, r, g, b = i, 0, 0, 0
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        cmap[i] = (r, g, b)
    return cmap


def colorize(x, opts):
    """An input map (C, H, W) -> an RGB picture of its classes (instance edges drawn white)."""
    nc = opts["label_nc"] + int(opts["contain_dontcare_label"])
    rgb = palette(nc)[x[:nc].argmax(0)]
    if not opts["no_instance"]:
        rgb = np.where(x[nc][:, :, None] > 0.5, np.uint8(255), rgb)
    return rgb
