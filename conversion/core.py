"""Strict, table-driven weight mapping (numpy only).

A mapping table is an ordered list of `(regex, replacement)` rename rules applied to each source key (the
first rule that matches wins; a rule with replacement None drops the key on purpose, e.g. stale
InstanceNorm running statistics). Strict both ways: every kept source tensor lands on exactly one
destination parameter, every destination parameter is filled exactly once, shapes are equal.
"""
import hashlib
import re

import numpy as np


class ConversionError(Exception):
    """A conversion that cannot be done; the message is one line (plus an optional list of names)."""


IDENTITY = [(r"^(.*)$", r"\1")]


def rename(key, rules):
    for pattern, repl in rules:
        if re.match(pattern, key):
            return None if repl is None else re.sub(pattern, repl, key, count=1)
    return key


def local_state(net):
    """name -> initial value of `net`'s parameters that the published networks do not have (models.layers.
    LOCAL_STATE, e.g. the dropout layers' step counters): conversion fills them instead of finding them."""
    from models.layers import LOCAL_STATE
    return {p.name: p.asnumpy() for p in net.get_parameters() if p.name.rsplit(".", 1)[-1] in LOCAL_STATE}


def map_state_dict(src, dst_shapes, rules=IDENTITY, where="network", fill=None):
    """Map `src` (name -> ndarray) onto `dst_shapes` (name -> shape) with `rules`; return name -> ndarray.
    `fill`: name -> value for destination parameters that the source does not hold by design (local_state).

    Raises ConversionError listing every unmatched source key, unfilled destination key and shape mismatch.
    """
    out, used_by, problems = {}, {}, []
    for key, value in src.items():
        new = rename(key, rules)
        if new is None:
            continue
        if new in used_by:
            problems.append(f"{key} and {used_by[new]} both map to {new}")
            continue
        used_by[new] = key
        if new not in dst_shapes:
            problems.append(f"unused source tensor {key}" + (f" (-> {new})" if new != key else ""))
            continue
        if tuple(value.shape) != tuple(dst_shapes[new]):
            problems.append(f"shape of {key} {tuple(value.shape)} != {new} {tuple(dst_shapes[new])}")
            continue
        out[new] = np.ascontiguousarray(value, dtype=np.float32)
    for name in dst_shapes:
        if name not in used_by:
            if fill and name in fill:
                out[name] = np.asarray(fill[name])
            else:
                problems.append(f"unfilled parameter {name}")
    if problems:
        listed = "\n  ".join(problems[:40]) + (f"\n  ... and {len(problems) - 40} more" if len(problems) > 40 else "")
        raise ConversionError(f"{where}: {len(problems)} unmatched names\n  {listed}")
    return out


def sha256_of(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def networks_from_files(items, what, classify):
    """The one-network-per-file layouts (StarGAN's -G/-D.ckpt, DCGAN's netG/netD): items [(path, loaded
    object)], classify(state_dict) -> (network name, registry name, config, rules_of(built net)) or None.
    Returns ({name: {"model", "config"}}, {name: tensors}); a file that is not a state_dict, not `what`,
    or a network given twice is a ConversionError."""
    from models import create_model
    from .torch_io import is_state_dict, strip_prefix
    meta, tensors = {}, {}
    for path, obj in items:
        if not is_state_dict(obj):
            raise ConversionError(f"{path}: not a state_dict ({what} saves one network's state_dict per file)")
        sd = strip_prefix(obj)
        kind = classify(sd)
        if kind is None:
            raise ConversionError(f"{path}: not a {what} network (first keys: {', '.join(list(sd)[:3])})")
        name, model, cfg, rules_of = kind
        if name in meta:
            raise ConversionError(f"{path}: a second {name} network among the files")
        try:
            net = create_model(model, **cfg)
        except ValueError as e:
            raise ConversionError(f"{path}: {e}") from None
        shapes = {p.name: tuple(p.shape) for p in net.get_parameters()}
        tensors[name] = map_state_dict(sd, shapes, rules_of(net), where=f"{path} [{name}]")
        meta[name] = {"model": model, "config": cfg}
    return meta, tensors
