"""Conversion of yunjey/stargan checkpoints: `<iteration>-G.ckpt` and `<iteration>-D.ckpt`, one state_dict per
network (or their `models/` folder, whose latest pair is taken).

The config is read from the tensors: conv_dim and c_dim from the first conv, repeat_num from the residual
blocks (G) or the stride-2 convs (D), image_size from the classification head's kernel. The running
statistics of the InstanceNorms are carried (num_batches_tracked is not used). A checkpoint cannot say what
its domains are called: 5 domains are taken to be the published CelebA model's, 8 RaFD's expressions, others
`domain0 ..` unless --domains names them.
"""
import os
import re

from models.stargan import TORCH_KEY_RULES
from .core import ConversionError, networks_from_files
from .torch_io import is_state_dict, strip_prefix

ARCHES = ("stargan",)
FILE_NET = re.compile(r"(\d+)-(G|D)\.ckpt$")
CELEBA_5 = ["Black_Hair", "Blond_Hair", "Brown_Hair", "Male", "Young"]
RAFD_8 = ["angry", "contemptuous", "disgusted", "fearful", "happy", "neutral", "sad", "surprised"]


def _is_g(sd):
    w = sd.get("main.0.weight")
    return w is not None and w.ndim == 4 and w.shape[2] == 7 and "main.1.running_mean" in sd


def _is_d(sd):
    return "conv1.weight" in sd and "conv2.weight" in sd and "main.0.weight" in sd


def _g_config(sd):
    w = sd["main.0.weight"]
    blocks = {int(m.group(1)) for k in sd for m in [re.fullmatch(r"main\.(\d+)\.main\.0\.weight", k)] if m}
    return {"conv_dim": int(w.shape[0]), "c_dim": int(w.shape[1]) - 3, "repeat_num": len(blocks)}


def _d_config(sd):
    convs = [k for k in sd if re.fullmatch(r"main\.\d+\.weight", k) and sd[k].ndim == 4]
    head = sd["conv2.weight"]
    return {"image_size": int(head.shape[2]) * 2 ** len(convs), "conv_dim": int(sd["main.0.weight"].shape[0]),
            "c_dim": int(head.shape[0]), "repeat_num": len(convs)}


def detect(obj):
    if not is_state_dict(obj):
        return None
    sd = strip_prefix(obj)
    return "stargan" if _is_g(sd) or _is_d(sd) else None


def domain_info(c_dim, domains=None, label_mode=None):
    if domains:
        if len(domains) != c_dim:
            raise ConversionError(f"--domains names {len(domains)} domains; the checkpoint has {c_dim}")
        names = list(domains)
    else:
        names = CELEBA_5 if c_dim == 5 else RAFD_8 if c_dim == 8 else [f"domain{i}" for i in range(c_dim)]
    mode = label_mode or ("domains" if names == RAFD_8 else "attributes")
    exclusive = [n for n in names if n in ("Black_Hair", "Blond_Hair", "Brown_Hair", "Gray_Hair")] \
        if mode == "attributes" else []
    return {"names": names, "exclusive": exclusive, "label_mode": mode}


def _classify(sd):
    if _is_g(sd):
        return "G", "stargan_generator", _g_config(sd), lambda net: TORCH_KEY_RULES
    if _is_d(sd):
        return "D", "stargan_discriminator", _d_config(sd), lambda net: TORCH_KEY_RULES
    return None


def convert_files(items, arch="auto", domains=None, label_mode=None, **_):
    """items: [(path, loaded object)]: a G file, optionally a D file. Returns (arch, networks, tensors, extra)."""
    meta, tensors = networks_from_files(items, "StarGAN", _classify)
    if "G" not in meta:
        raise ConversionError("no StarGAN generator among the files (a <iteration>-G.ckpt is needed)")
    c_dim = meta["G"]["config"]["c_dim"]
    if "D" in meta and meta["D"]["config"]["c_dim"] != c_dim:
        raise ConversionError(f"G has {c_dim} domains but D {meta['D']['config']['c_dim']}: not one model")
    image_size = meta["D"]["config"]["image_size"] if "D" in meta else 128
    extra = {"domains": dict(domain_info(c_dim, domains, label_mode), img_size=image_size),
             "label": f"StarGAN ({c_dim} domains)"}
    return "stargan", meta, tensors, extra


def files_in_folder(folder):
    """The latest <iteration>-G.ckpt (and its -D.ckpt) of a StarGAN models folder."""
    found = {}
    for f in os.listdir(folder):
        m = FILE_NET.fullmatch(f)
        if m:
            found.setdefault(int(m.group(1)), {})[m.group(2)] = os.path.join(folder, f)
    full = [it for it, nets in found.items() if "G" in nets]
    if not full:
        return []
    latest = found[max(full)]
    return [latest[k] for k in ("G", "D") if k in latest]
