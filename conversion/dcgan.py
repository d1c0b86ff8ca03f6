"""Conversion of pytorch/examples' DCGAN checkpoints: `netG_epoch_<N>.pth` and `netD_epoch_<N>.pth` (one
state_dict each, or their output folder, whose latest epoch is taken). nz, ngf, nc and the image size are
read from the generator's tensors, ndf and nc from the discriminator's."""
import os
import re

from .core import ConversionError, networks_from_files
from .torch_io import is_state_dict, strip_prefix

ARCHES = ("dcgan",)
FILE_NET = re.compile(r"net(G|D)_epoch_(\d+)\.pth$")


def _convs(sd):
    return sorted((int(m.group(1)), k) for k in sd for m in [re.fullmatch(r"main\.(\d+)\.weight", k)]
                  if m and sd[k].ndim == 4)


def _is_g(sd):
    c = _convs(sd)
    return bool(c) and "conv1.weight" not in sd and sd[c[0][1]].shape[2:] == (4, 4) and "main.1.running_mean" in sd


def _is_d(sd):
    c = _convs(sd)
    return bool(c) and "conv1.weight" not in sd and sd[c[0][1]].shape[2:] == (4, 4) and \
        "main.1.running_mean" not in sd and sd[c[-1][1]].shape[0] == 1


def _g_config(sd):
    c = _convs(sd)
    first, last = sd[c[0][1]], sd[c[-1][1]]            # transposed convs: (in, out, k, k)
    n_up = len(c) - 1
    return {"nz": int(first.shape[0]), "ngf": int(first.shape[1]) // 2 ** (n_up - 1), "nc": int(last.shape[1]),
            "img_size": 2 ** (n_up + 2)}


def _d_config(sd):
    c = _convs(sd)
    first = sd[c[0][1]]
    return {"ndf": int(first.shape[0]), "nc": int(first.shape[1]), "img_size": 2 ** (len(c) + 1)}


def detect(obj):
    if not is_state_dict(obj):
        return None
    sd = strip_prefix(obj)
    return "dcgan" if "main.0.weight" in sd and (_is_g(sd) or _is_d(sd)) else None


def _classify(sd):
    from models.dcgan import torch_key_rules
    if _is_g(sd):
        return "G", "dcgan_generator", _g_config(sd), torch_key_rules
    if _is_d(sd):
        return "D", "dcgan_discriminator", _d_config(sd), torch_key_rules
    return None


def convert_files(items, arch="auto", **_):
    meta, tensors = networks_from_files(items, "DCGAN", _classify)
    if "G" not in meta:
        raise ConversionError("no DCGAN generator among the files (a netG_epoch_N.pth is needed)")
    if "D" in meta:
        g, d = meta["G"]["config"], meta["D"]["config"]
        if (g["nc"], g["img_size"]) != (d["nc"], d["img_size"]):
            raise ConversionError(f"G makes {g['nc']}-channel {g['img_size']} px images, D takes "
                                  f"{d['nc']}-channel {d['img_size']} px: not one model")
    return "dcgan", meta, tensors, {"label": f"DCGAN (nz {meta['G']['config']['nz']})"}


def files_in_folder(folder):
    """The latest epoch's netG_epoch_N.pth (and netD_epoch_N.pth) of a DCGAN output folder."""
    found = {}
    for f in os.listdir(folder):
        m = FILE_NET.fullmatch(f)
        if m:
            found.setdefault(int(m.group(2)), {})[m.group(1)] = os.path.join(folder, f)
    full = [e for e, nets in found.items() if "G" in nets]
    if not full:
        return []
    latest = found[max(full)]
    return [latest[k] for k in ("G", "D") if k in latest]
