"""Published PyTorch checkpoints -> MindSpore model directories (see convert_weights.py).

One module per family holds the layout detection and config inference; the key tables live next to the
networks in models/. A family module has `detect(obj)` and either `convert(obj, path, arch)` (one file holds
every network) or `convert_files([(path, obj)], arch)` (one file per network, as CycleGAN/pix2pix save them);
add it to FAMILIES.
"""
import os

from models.store import write_model_dir

from .core import ConversionError, sha256_of
from .torch_io import load_torch_file
from . import cyclegan, mobilefacenet, ugatit

# arch name -> family module
FAMILIES = {"photo2cartoon": ugatit, "ugatit": ugatit, "mobilefacenet": mobilefacenet,
            "cyclegan": cyclegan, "pix2pix": cyclegan}
ARCHES = sorted(FAMILIES) + ["auto"]


def _detect(obj):
    for mod in dict.fromkeys(FAMILIES.values()):
        if mod.detect(obj):
            return mod
    return None


def convert_file(src, dst, arch="auto", overwrite=False):
    """Convert `src` (a path, or a list of paths / a checkpoint folder for one-file-per-network families) into
    the model directory `dst`; returns the model.json dict written."""
    if arch not in ARCHES:
        raise ConversionError(f"unknown --arch {arch}; choose from {', '.join(ARCHES)}")
    srcs = cyclegan.expand_sources([src] if isinstance(src, str) else list(src))
    items = [(p, load_torch_file(p)) for p in srcs]
    family = FAMILIES[arch] if arch != "auto" else (_detect(items[0][1]) or ugatit)  # ugatit explains misses
    if hasattr(family, "convert_files"):
        arch, networks, tensors = family.convert_files(items, arch)
    else:
        if len(items) != 1:
            raise ConversionError(f"{arch if arch != 'auto' else 'this'} checkpoint is one file; got {len(items)}")
        arch, networks, tensors = family.convert(items[0][1], items[0][0], arch)
    files = [{"file": os.path.basename(p), "sha256": sha256_of(p)} for p in srcs]
    source = dict(files[0]) if len(files) == 1 else {"files": files}
    meta = {"format": 1, "arch": arch, "networks": networks, "source": source}
    try:
        write_model_dir(dst, meta, tensors, overwrite=overwrite)
    except FileExistsError as e:
        raise ConversionError(str(e)) from None
    return meta
