"""Conversion of the FID Inception weights, pytorch-fid's `pt_inception-2015-12-05-6726825d.pth` (the TF FID
graph's weights in torchvision's Inception v3 layout, 1008 classes): one network, `inception`."""
from models.inception import torch_key_rules
from .core import ConversionError, map_state_dict
from .torch_io import is_state_dict, strip_prefix

ARCHES = ("inception",)


def detect(obj):
    sd = strip_prefix(obj) if is_state_dict(obj) else None
    if sd and "Mixed_7c.branch_pool.conv.weight" in sd and "Conv2d_1a_3x3.conv.weight" in sd:
        return "inception"
    return None


def convert(obj, path, arch="inception"):
    from models import create_model
    if not is_state_dict(obj) or detect(obj) is None:
        raise ConversionError(f"{path}: not the FID Inception weights (a state_dict with torchvision's Inception v3 "
                              f"names, e.g. pt_inception-2015-12-05-6726825d.pth)")
    sd = strip_prefix(obj)
    fc = sd.get("fc.weight")
    if fc is not None and tuple(fc.shape) != (1008, 2048):
        raise ConversionError(f"{path}: fc.weight is {tuple(fc.shape)}, the FID network's is (1008, 2048): "
                              f"torchvision's ImageNet Inception gives other features than FID's")
    net = create_model("fid_inception")
    shapes = {p.name: tuple(p.shape) for p in net.get_parameters()}
    tensors = {"inception": map_state_dict(sd, shapes, torch_key_rules(net), where=f"{path} [inception]")}
    return "inception", {"inception": {"model": "fid_inception", "config": {}}}, tensors, \
        {"label": "FID Inception v3 (pytorch-fid)"}
