"""Conversion of published U-GAT-IT and photo2cartoon checkpoints.

Layouts read:
- photo2cartoon `photo2cartoon_weights.pt` and U-GAT-IT `*_params_%07d.pt`: a dict of state_dicts among
  `genA2B genB2A disGA disGB disLA disLB` (every one present is converted);
- a bare state_dict of one generator (-> `genA2B`) or one discriminator (-> `disGA` for n_layers 7,
  `disLA` otherwise).
The constructor config of every network is inferred from tensor shapes.
"""
import math

from models.ugatit import TORCH_KEY_RULES
from .core import ConversionError, map_state_dict
from .torch_io import is_state_dict, strip_prefix

ARCHES = ("photo2cartoon", "ugatit")
FALLBACK = True   # its error names what a U-GAT-IT / photo2cartoon file should hold


NET_NAMES = ("genA2B", "genB2A", "disGA", "disGB", "disLA", "disLB")


def _kind(sd):
    if "ConvBlock1.1.weight" in sd and any(k.startswith("HourGlass1.") for k in sd):
        return "p2c_generator"
    if "DownBlock.1.weight" in sd and "gamma.weight" in sd:
        return "ugatit_generator"
    if "model.1.weight_orig" in sd and "gap_fc.weight_orig" in sd:
        return "discriminator"
    return None


def _p2c_config(sd):
    ngf = int(sd["ConvBlock1.1.weight"].shape[0])
    fc_in = int(sd["FC.0.weight"].shape[1])
    if fc_in == ngf * 4:
        return {"ngf": ngf, "img_size": 256, "light": True}
    side = math.isqrt(fc_in // (ngf * 4))
    if side * side * ngf * 4 != fc_in:
        raise ConversionError(f"FC.0.weight has {fc_in} inputs, which fits no image size for ngf={ngf}")
    return {"ngf": ngf, "img_size": side * 4, "light": False}


def _ugatit_config(sd):
    ngf = int(sd["DownBlock.1.weight"].shape[0])
    input_nc = int(sd["DownBlock.1.weight"].shape[1])
    n_blocks = 0
    while f"DownBlock.{12 + n_blocks}.conv_block.1.weight" in sd:
        n_blocks += 1
    output_nc = int(sd["UpBlock2.11.weight"].shape[0]) if "UpBlock2.11.weight" in sd else 3
    fc_in = int(sd["FC.0.weight"].shape[1])
    cfg = {"ngf": ngf, "n_blocks": n_blocks, "input_nc": input_nc, "output_nc": output_nc}
    if fc_in == ngf * 4:
        cfg.update(img_size=256, light=True)
    else:
        side = math.isqrt(fc_in // (ngf * 4))
        if side * side * ngf * 4 != fc_in:
            raise ConversionError(f"FC.0.weight has {fc_in} inputs, which fits no image size for ngf={ngf}")
        cfg.update(img_size=side * 4, light=False)
    return cfg


def _dis_config(sd):
    w = sd["model.1.weight_orig"]
    n_convs = sum(1 for k in sd if k.startswith("model.") and k.endswith(".weight_orig"))
    return {"input_nc": int(w.shape[1]), "ndf": int(w.shape[0]), "n_layers": n_convs + 1}


KINDS = {
    "p2c_generator": ("ugatit_p2c_generator", _p2c_config),
    "ugatit_generator": ("ugatit_generator", _ugatit_config),
    "discriminator": ("ugatit_discriminator", _dis_config),
}
ARCH_GENERATOR = {"photo2cartoon": "p2c_generator", "ugatit": "ugatit_generator"}


def detect(obj):
    """Return 'photo2cartoon', 'ugatit' or None for a loaded checkpoint object."""
    for sd in _candidate_state_dicts(obj):
        kind = _kind(strip_prefix(sd))
        if kind == "p2c_generator":
            return "photo2cartoon"
        if kind == "ugatit_generator":
            return "ugatit"
    return None


def _candidate_state_dicts(obj):
    if is_state_dict(obj):
        return [obj]
    if isinstance(obj, dict):
        return [v for k, v in obj.items() if k in NET_NAMES and is_state_dict(v)]
    return []


def _split_networks(obj, path):
    if is_state_dict(obj):
        sd = strip_prefix(obj)
        kind = _kind(sd)
        if kind is None:
            raise ConversionError(f"{path}: a state_dict, but not of a U-GAT-IT/photo2cartoon network "
                                  f"(first keys: {', '.join(list(sd)[:3])})")
        if kind == "discriminator":
            name = "disGA" if _dis_config(sd)["n_layers"] == 7 else "disLA"
        else:
            name = "genA2B"
        return {name: sd}
    if isinstance(obj, dict) and any(k in obj for k in NET_NAMES):
        unknown = [str(k) for k in obj if k not in NET_NAMES]
        if unknown:
            raise ConversionError(f"{path}: entries that are not U-GAT-IT networks: {', '.join(unknown[:8])}")
        nets = {}
        for k in NET_NAMES:
            if k in obj:
                if not is_state_dict(obj[k]):
                    raise ConversionError(f"{path}: entry '{k}' is not a state_dict")
                nets[k] = strip_prefix(obj[k])
        return nets
    what = type(obj).__name__
    if isinstance(obj, dict):
        what = "dict with keys " + ", ".join(map(str, list(obj)[:5]))
    raise ConversionError(f"{path}: not a U-GAT-IT/photo2cartoon checkpoint (found a {what})")


def convert(obj, path, arch="auto"):
    """Return (meta_networks, tensors_by_net) for a loaded checkpoint; arch 'photo2cartoon'|'ugatit'|'auto'."""
    from models import create_model

    nets = _split_networks(obj, path)
    found = detect(obj)
    if arch == "auto":
        if found is None:
            # discriminators alone: both families share the discriminator
            found = "ugatit"
        arch = found
    elif found is not None and found != arch:
        raise ConversionError(f"{path} holds a {found} generator, not a {arch} one (use --arch {found} or auto)")
    meta, tensors = {}, {}
    for name, sd in nets.items():
        kind = _kind(sd)
        expected = "discriminator" if name.startswith("dis") else ARCH_GENERATOR[arch]
        if kind != expected:
            raise ConversionError(f"{path}: '{name}' does not look like a {expected.replace('_', ' ')} "
                                  f"(first keys: {', '.join(list(sd)[:3])})")
        model_name, infer = KINDS[kind]
        cfg = infer(sd)
        net = create_model(model_name, **cfg)
        shapes = {p.name: tuple(p.shape) for p in net.get_parameters()}
        tensors[name] = map_state_dict(sd, shapes, TORCH_KEY_RULES, where=f"{path} [{name}]")
        meta[name] = {"model": model_name, "config": cfg}
    return arch, meta, tensors
