"""Conversion of photo2cartoon's face-ID network `model_mobilefacenet.pth` (a MobileFaceNet state_dict)."""
from models.mobilefacenet import TORCH_KEY_RULES
from .core import ConversionError, map_state_dict
from .torch_io import is_state_dict, strip_prefix

ARCHES = ("mobilefacenet",)


def detect(obj):
    sd = strip_prefix(obj) if is_state_dict(obj) else None
    if sd and "conv_6_dw.conv.weight" in sd and "conv1.prelu.weight" in sd:
        return "mobilefacenet"
    return None


def convert(obj, path, arch="mobilefacenet"):
    from models import create_model
    if not is_state_dict(obj):
        raise ConversionError(f"{path}: not a state_dict (MobileFaceNet weights are a plain state_dict)")
    sd = strip_prefix(obj)
    if detect(sd) is None:
        raise ConversionError(f"{path}: not a MobileFaceNet state_dict (first keys: {', '.join(list(sd)[:3])})")
    cfg = {"embedding_size": int(sd["linear.weight"].shape[0])}
    net = create_model("mobilefacenet", **cfg)
    shapes = {p.name: tuple(p.shape) for p in net.get_parameters()}
    tensors = {"mobilefacenet": map_state_dict(sd, shapes, TORCH_KEY_RULES, where=f"{path} [mobilefacenet]")}
    return "mobilefacenet", {"mobilefacenet": {"model": "mobilefacenet", "config": cfg}}, tensors
