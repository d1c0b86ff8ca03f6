"""Published PyTorch checkpoints -> MindSpore model directories (see convert_weights.py).

One module per family holds its layout detection and config inference (the key tables live next to the
networks in models/). A conversion module declares `ARCHES` (the --arch names it converts), `detect(obj)`
(the arch of a loaded checkpoint, or None) and either `convert(obj, path, arch)` (one file holds every
network) or `convert_files([(path, obj)], arch, **options)` (one file per network, as CycleGAN/pix2pix,
StarGAN and DCGAN save them; `files_in_folder` picks them in a checkpoint folder); each returns (arch,
model.json networks, tensors by network[, more model.json entries]). Every module in this package is found
by itself; `FALLBACK = True` marks the one whose error message explains a file nothing detects.
"""
import importlib
import os
import pkgutil

from core.model_dir import write_model_dir

from .core import ConversionError, sha256_of
from .torch_io import load_torch_file

_SKIP = ("core", "torch_io")


def _modules():
    mods = [importlib.import_module(f"{__name__}.{m.name}") for m in pkgutil.iter_modules(__path__)
            if m.name not in _SKIP]
    return [m for m in mods if hasattr(m, "ARCHES")]


def families():
    """arch name -> conversion module."""
    return {arch: m for m in _modules() for arch in m.ARCHES}


def arches():
    return sorted(families()) + ["auto"]


def _detect(obj):
    for mod in _modules():
        if mod.detect(obj):
            return mod
    return None


def _expand(srcs):
    """A checkpoint folder stands for the files a conversion module finds in it (`files_in_folder`)."""
    out = []
    for s in srcs:
        if not os.path.isdir(s):
            out.append(s)
            continue
        found = next((f for m in _modules() if hasattr(m, "files_in_folder") for f in [m.files_in_folder(s)] if f), None)
        if not found:
            raise ConversionError(f"{s} holds no checkpoint files of a known layout (e.g. latest_net_G_A.pth); "
                                  f"pass the files explicitly")
        out += found
    return out


def convert_file(src, dst, arch="auto", overwrite=False, no_dropout=False, **options):
    """Convert `src` (a path, or a list of paths / a checkpoint folder for one-file-per-network families) into
    the model directory `dst`; returns the model.json dict written. `options` go to the family's converter
    (e.g. StarGAN's domains)."""
    table = families()
    if arch != "auto" and arch not in table:
        raise ConversionError(f"unknown --arch {arch}; choose from {', '.join(arches())}")
    srcs = _expand([src] if isinstance(src, str) else list(src))
    items = [(p, load_torch_file(p)) for p in srcs]
    fallback = next(m for m in _modules() if getattr(m, "FALLBACK", False))
    family = table[arch] if arch != "auto" else (_detect(items[0][1]) or fallback)
    if hasattr(family, "convert_files"):
        arch, networks, tensors, *extra = family.convert_files(items, arch, no_dropout=no_dropout, **options)
    else:
        if len(items) != 1:
            raise ConversionError(f"{arch if arch != 'auto' else 'this'} checkpoint is one file; got {len(items)}")
        arch, networks, tensors, *extra = family.convert(items[0][1], items[0][0], arch)
    files = [{"file": os.path.basename(p), "sha256": sha256_of(p)} for p in srcs]
    source = dict(files[0]) if len(files) == 1 else {"files": files}
    meta = {"format": 1, "arch": arch, "networks": networks, "source": source}
    if extra:           # more model.json entries the family's runner reads (e.g. StarGAN's domain names)
        meta.update(extra[0])
    try:
        write_model_dir(dst, meta, tensors, overwrite=overwrite)
    except FileExistsError as e:
        raise ConversionError(str(e)) from None
    except OSError as e:   # a full disk or a read-only folder: write_model_dir has removed what it wrote
        raise ConversionError(f"cannot write {dst}: {e.strerror or e}") from None
    return meta
