"""Published PyTorch checkpoints -> MindSpore model directories (see convert_weights.py).

One module per family holds the layout detection and config inference; the key tables live next to the
networks in models/. Adding a family: a module with `detect(obj)` and `convert(obj, path, arch)` plus one
line in FAMILIES.
"""
import os

from models.store import write_model_dir

from .core import ConversionError, sha256_of
from .torch_io import load_torch_file
from . import mobilefacenet, ugatit

# arch name -> family module
FAMILIES = {"photo2cartoon": ugatit, "ugatit": ugatit, "mobilefacenet": mobilefacenet}
ARCHES = sorted(FAMILIES) + ["auto"]


def convert_file(src, dst, arch="auto", overwrite=False):
    """Convert `src` into the model directory `dst`; returns the model.json dict written."""
    if arch not in ARCHES:
        raise ConversionError(f"unknown --arch {arch}; choose from {', '.join(ARCHES)}")
    obj = load_torch_file(src)
    if arch == "auto":
        family = None
        for mod in dict.fromkeys(FAMILIES.values()):
            if mod.detect(obj):
                family = mod
                break
        if family is None:
            family = ugatit  # its converter explains what it found
    else:
        family = FAMILIES[arch]
    arch, networks, tensors = family.convert(obj, src, arch)
    meta = {"format": 1, "arch": arch, "networks": networks,
            "source": {"file": os.path.basename(src), "sha256": sha256_of(src)}}
    try:
        write_model_dir(dst, meta, tensors, overwrite=overwrite)
    except FileExistsError as e:
        raise ConversionError(str(e)) from None
    return meta
