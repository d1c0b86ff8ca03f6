"""Training checkpoints: everything needed to resume exactly, written atomically.

RUN/checkpoints/iter_0001000.ckpt   every network parameter (names `genA2B.<param>`), and both optimisers'
                                    state (`G_optim/moment1.<param>`, `.../global_step`, beta powers)
RUN/checkpoints/iter_0001000.json   iteration, seed, resolved config, loss history
RUN/checkpoints/iter_0001000.extra.npz  host-side training state, if the family has any (e.g. an image pool)
RUN/checkpoints/iter_0001000.extra.rank1.npz  ... of worker 1 (2, ...) of a data-parallel run, written by that
                                    worker before worker 0 writes the rest (training/distributed.py)
RUN/checkpoints/latest.json         points at the newest complete set (written last)
Each file goes to a temporary name first and is renamed into place, so a kill at any moment leaves the
previous checkpoint intact and `latest.json` pointing at a complete one. The newest KEEP are kept.
"""
import json
import os

import numpy as np

import mindspore as ms
from mindspore import nn

from core.files import atomic_write, save_checkpoint_atomic, write_text_atomic

KEEP = 3


def _optimizer_state(opt):
    params = [opt.global_step, opt.beta1_power, opt.beta2_power] + list(opt.moment1) + list(opt.moment2)
    return params


def _named_state(cells):
    out = {}
    for cname, cell in cells.items():
        if isinstance(cell, nn.Optimizer):
            for p in _optimizer_state(cell):
                out[f"{cname}/{p.name}"] = p
        else:
            for p in cell.get_parameters():
                out[p.name] = p
    return out


EXTRA = ".extra.npz"


def _extra_name(stem, rank=0):
    return stem + (EXTRA if not rank else f".extra.rank{rank}.npz")


def _write_npz(path, arrays):
    def write_npz(t):
        with open(t, "wb") as f:
            np.savez(f, **arrays)
    atomic_write(path, write_npz)


def save_worker_extra(run_dir, iteration, rank, extra):
    """A data-parallel worker's own host-side state (rank > 0) for the checkpoint of `iteration`."""
    folder = os.path.join(run_dir, "checkpoints")
    os.makedirs(folder, exist_ok=True)
    _write_npz(os.path.join(folder, _extra_name(f"iter_{int(iteration):07d}", rank)), extra)


def save_training_state(run_dir, cells, meta, extra=None):
    folder = os.path.join(run_dir, "checkpoints")
    os.makedirs(folder, exist_ok=True)
    stem = f"iter_{int(meta['iteration']):07d}"
    state = _named_state(cells)
    params = [{"name": k, "data": ms.Tensor(p.asnumpy())} for k, p in state.items()]
    ckpt = os.path.join(folder, stem + ".ckpt")
    save_checkpoint_atomic(params, ckpt)

    def dump(obj):
        return json.dumps(obj, indent=1, sort_keys=True)
    if extra is not None:
        _write_npz(os.path.join(folder, stem + EXTRA), extra)
    write_text_atomic(os.path.join(folder, stem + ".json"), dump(meta))
    write_text_atomic(os.path.join(folder, "latest.json"), dump({"checkpoint": stem + ".ckpt",
                                                                 "iteration": meta["iteration"]}))
    olds = sorted(f for f in os.listdir(folder) if f.startswith("iter_") and f.endswith(".ckpt"))[:-KEEP]
    stems = tuple(f[:-5] + "." for f in olds)      # each one's .ckpt, .json and every worker's .extra*.npz
    if stems:
        for name in os.listdir(folder):
            if name.startswith(stems) and name.endswith((".ckpt", ".json", ".npz")):
                os.unlink(os.path.join(folder, name))
    return ckpt


def load_extra_state(ckpt, rank=0):
    """The host-side state saved with `ckpt` (name -> array) for worker `rank`; {} if there is none."""
    path = _extra_name(ckpt[:-5], rank)
    if not os.path.isfile(path):
        return {}
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


def latest_checkpoint(run_dir):
    pointer = os.path.join(run_dir, "checkpoints", "latest.json")
    if not os.path.isfile(pointer):
        return None
    with open(pointer, encoding="utf-8") as f:
        name = json.load(f)["checkpoint"]
    path = os.path.join(run_dir, "checkpoints", name)
    return path if os.path.isfile(path) else None


class CheckpointMismatch(Exception):
    pass


def load_training_state(ckpt, cells):
    with open(ckpt[:-5] + ".json", encoding="utf-8") as f:
        meta = json.load(f)
    saved = ms.load_checkpoint(ckpt)
    state = _named_state(cells)
    missing = sorted(set(state) - set(saved))
    extra = sorted(set(saved) - set(state))
    bad = sorted(k for k in set(state) & set(saved) if tuple(state[k].shape) != tuple(saved[k].shape))
    if missing or extra or bad:
        first = (missing or extra or bad)[0]
        raise CheckpointMismatch(f"{ckpt} does not fit this configuration ({len(missing)} missing, {len(extra)} "
                                 f"unexpected, {len(bad)} differently shaped parameters, e.g. {first})")
    for k, p in state.items():
        p.set_data(ms.Tensor(saved[k].asnumpy()))
    return meta
