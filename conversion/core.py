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


def map_state_dict(src, dst_shapes, rules=IDENTITY, where="network"):
    """Map `src` (name -> ndarray) onto `dst_shapes` (name -> shape) with `rules`; return name -> ndarray.

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
