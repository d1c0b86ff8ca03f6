"""Conversion of junyanz/pytorch-CycleGAN-and-pix2pix checkpoints (`latest_net_G_A.pth`, `latest_net_G.pth`,
`*_net_D_B.pth`, ...): one state_dict per file, the network named by the file.

The generator type (resnet / unet), block count or depth, ngf, norm and dropout (resnet) are read from the
tensors; discriminators likewise (basic / n_layers / pixel, ndf, norm). A U-Net's dropout layers hold no
tensors, so its file cannot tell whether it was trained with dropout: a pix2pix U-Net is taken to be, as
pix2pix trains by default (the original's test-time forward then keeps dropout on, like its test.py without
--eval), a CycleGAN one not (CycleGAN sets --no_dropout); `no_dropout=True` (convert_weights.py --no_dropout)
says otherwise. Old checkpoints' InstanceNorm running
statistics are dropped (the original loader patches them away too); everything else is strict.
"""
import os
import re

from models.cyclegan import batchnorm_prefixes, torch_key_rules
from .core import ConversionError, local_state, map_state_dict
from .torch_io import is_state_dict, strip_prefix

ARCHES = ("cyclegan", "pix2pix")
FILE_NET = re.compile(r"net_(G_A|G_B|D_A|D_B|G|D)\.pth?$")
NET_NAMES = {"cyclegan": ("G_A", "G_B", "D_A", "D_B"), "pix2pix": ("G", "D")}


def _norm_of(sd, bn_weight_key, conv_bias_key):
    if bn_weight_key in sd and sd[bn_weight_key].ndim == 1:
        return "batch"
    return "instance" if conv_bias_key in sd else "none"


def _resnet_config(sd):
    w = sd["model.1.weight"]
    n_blocks = 0
    while f"model.{10 + n_blocks}.conv_block.1.weight" in sd:
        n_blocks += 1
    out = sd.get(f"model.{17 + n_blocks}.weight")
    if out is None:
        raise ConversionError(f"resnet generator with {n_blocks} blocks: missing its last conv model.{17 + n_blocks}")
    return {"input_nc": int(w.shape[1]), "output_nc": int(out.shape[0]), "ngf": int(w.shape[0]),
            "norm": _norm_of(sd, "model.2.weight", "model.1.bias"),
            "use_dropout": "model.10.conv_block.6.weight" in sd, "n_blocks": n_blocks}


def _unet_config(sd, no_dropout=False):
    w = sd["model.model.0.weight"]
    prefix, num_downs = "model.model.1", 2
    while any(k.startswith(prefix + ".model.3.model.") for k in sd):
        prefix += ".model.3"
        num_downs += 1
    return {"input_nc": int(w.shape[1]), "output_nc": int(sd["model.model.3.weight"].shape[1]),
            "num_downs": num_downs, "ngf": int(w.shape[0]),
            "norm": _norm_of(sd, "model.model.1.model.2.weight", "model.model.0.bias"),
            "use_dropout": not no_dropout and num_downs > 5}


def _nlayer_config(sd):
    w = sd["model.0.weight"]
    n_convs = sum(1 for k, v in sd.items() if re.fullmatch(r"model\.\d+\.weight", k) and v.ndim == 4)
    return {"input_nc": int(w.shape[1]), "ndf": int(w.shape[0]), "n_layers": n_convs - 2,
            "norm": _norm_of(sd, "model.3.weight", "model.2.bias")}


def _pixel_config(sd):
    w = sd["net.0.weight"]
    return {"input_nc": int(w.shape[1]), "ndf": int(w.shape[0]), "norm": _norm_of(sd, "net.3.weight", "net.2.bias")}


def kind_of(sd):
    """(registry name, config inferer) for a state_dict, or None."""
    if "model.1.weight" in sd and sd["model.1.weight"].ndim == 4 and sd["model.1.weight"].shape[2] == 7:
        return "cyclegan_resnet_generator", _resnet_config
    if "model.model.0.weight" in sd:
        return "cyclegan_unet_generator", _unet_config
    if "model.0.weight" in sd and sd["model.0.weight"].ndim == 4 and sd["model.0.weight"].shape[2] == 4:
        return "patchgan_discriminator", _nlayer_config
    if "net.0.weight" in sd and sd["net.0.weight"].ndim == 4 and sd["net.0.weight"].shape[2] == 1:
        return "pixel_discriminator", _pixel_config
    return None


def detect(obj):
    if not is_state_dict(obj):
        return None
    kind = kind_of(strip_prefix(obj))
    if kind is None:
        return None
    return "pix2pix" if kind[0] == "cyclegan_unet_generator" else "cyclegan"


def net_name(path, model_name, arch, taken):
    """The network a file holds: from its published name (`..._net_G_A.pth`), else by role."""
    m = FILE_NET.search(os.path.basename(path))
    is_gen = model_name.startswith("cyclegan_")
    if m:
        name = m.group(1)
        if arch == "cyclegan" and name in ("G", "D"):
            name += "_A"      # a published single-direction CycleGAN model ships as latest_net_G.pth
        elif arch == "pix2pix" and name not in ("G", "D"):
            raise ConversionError(f"{path}: a pix2pix model has networks G and D, not {name}")
        if name.startswith("G") != is_gen:
            raise ConversionError(f"{path} is named {m.group(0)} but holds a "
                                  f"{'generator' if is_gen else 'discriminator'}")
    else:
        base = "G" if is_gen else "D"
        options = [base] if arch == "pix2pix" else [base + "_A", base + "_B"]
        free = [n for n in options if n not in taken]
        if not free:
            raise ConversionError(f"{path}: cannot tell which network it is (name files like latest_net_G_A.pth)")
        name = free[0]
    if name in taken:
        raise ConversionError(f"{path} and {taken[name]} both hold network {name}")
    return name


def convert_files(items, arch="auto", no_dropout=False, **_):
    """items: [(path, loaded object)]. Returns (arch, meta networks, tensors by net)."""
    from models import create_model

    sds = []
    for path, obj in items:
        if not is_state_dict(obj):
            raise ConversionError(f"{path}: not a state_dict (CycleGAN/pix2pix files hold one network's state_dict)")
        sd = strip_prefix(obj)
        kind = kind_of(sd)
        if kind is None:
            raise ConversionError(f"{path}: not a CycleGAN/pix2pix network (first keys: {', '.join(list(sd)[:3])})")
        sds.append((path, sd, kind))
    if arch == "auto":
        named = [FILE_NET.search(os.path.basename(p)) for p, _, _ in sds]
        if any(m and m.group(1) in NET_NAMES["cyclegan"][:4] and "_" in m.group(1) for m in named):
            arch = "cyclegan"
        else:
            arch = "pix2pix" if any(k[0] == "cyclegan_unet_generator" for _, _, k in sds) else "cyclegan"
    if arch not in ARCHES:
        raise ConversionError(f"--arch {arch} is not a CycleGAN/pix2pix arch")
    taken, meta, tensors = {}, {}, {}
    for path, sd, (model_name, infer) in sds:
        # a U-Net's dropout: on as pix2pix trains it unless told otherwise; CycleGAN trains without
        cfg = infer(sd, no_dropout or arch != "pix2pix") if model_name == "cyclegan_unet_generator" else infer(sd)
        name = net_name(path, model_name, arch, taken)
        taken[name] = path
        net = create_model(model_name, **cfg)
        shapes = {p.name: tuple(p.shape) for p in net.get_parameters()}
        rules = torch_key_rules(cfg["norm"], batchnorm_prefixes(net))
        tensors[name] = map_state_dict(sd, shapes, rules, where=f"{path} [{name}]", fill=local_state(net))
        meta[name] = {"model": model_name, "config": cfg}
    return arch, meta, tensors


def files_in_folder(folder):
    """junyanz's checkpoint folder (`checkpoints/<name>/`): its latest_net_*.pth files."""
    return sorted(os.path.join(folder, f) for f in os.listdir(folder) if re.fullmatch(r"latest_net_\w+\.pth", f))
