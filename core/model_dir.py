"""A converted or trained model directory: `DIR/model.json` + `DIR/<net>.ckpt` per network.

model.json:
    {"format": 1, "arch": "photo2cartoon", "networks": {"genA2B": {"model": "ugatit_p2c_generator",
     "config": {...}}, ...}, "source": {"file": "...", "sha256": "..."}}
"""
import json
import os
import shutil
import tempfile

MODEL_JSON = "model.json"
FORMAT_VERSION = 1


class NetworkLoadError(Exception):
    """A model directory that cannot be loaded; the message is one line, fit for the user."""


def read_model_json(directory):
    path = os.path.join(directory, MODEL_JSON)
    if not os.path.isdir(directory):
        raise NetworkLoadError(f"model directory not found: {directory}")
    if not os.path.isfile(path):
        raise NetworkLoadError(f"{directory} has no {MODEL_JSON}: it is not a converted model directory "
                               f"(make one with: python convert_weights.py --src WEIGHTS.pt --dst {directory})")
    try:
        with open(path, encoding="utf-8") as f:
            meta = json.load(f)
    except (OSError, ValueError) as e:
        raise NetworkLoadError(f"cannot read {path}: {e}") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_VERSION or "networks" not in meta:
        raise NetworkLoadError(f"{path} is not a model.json of format {FORMAT_VERSION}")
    return meta


def load_network(directory, net_name, expect_model=None, accelerate=True, **overrides):
    """Build network `net_name` (e.g. "genA2B") from `directory`, load its weights strictly, set eval mode.
    `accelerate`: put the CPU kernels in (kernels.accelerate; nothing happens off CPU). `overrides`: constructor
    options that shape no parameter (e.g. the Inception network's output_blocks)."""
    from models.registry import create_model
    meta = read_model_json(directory)
    nets = meta["networks"]
    if net_name not in nets:
        raise NetworkLoadError(f"{directory} holds no network '{net_name}' (it has: {', '.join(sorted(nets))})")
    entry = nets[net_name]
    if expect_model is not None and entry["model"] != expect_model:
        raise NetworkLoadError(f"{directory}/{net_name} is a '{entry['model']}', not a '{expect_model}'")
    net = create_model(entry["model"], **dict(entry.get("config", {}), **overrides))
    load_params_strict(net, read_params(directory, net_name), os.path.join(directory, f"{net_name}.ckpt"))
    if accelerate:
        import kernels
        kernels.accelerate(net)
    net.set_train(False)
    return net


def read_params(directory, net_name):
    """The name -> Parameter dict of `directory/<net_name>.ckpt`, or a one-line NetworkLoadError."""
    import mindspore as ms
    ckpt = os.path.join(directory, f"{net_name}.ckpt")
    if not os.path.isfile(ckpt):
        raise NetworkLoadError(f"missing weights file {ckpt}")
    try:
        return ms.load_checkpoint(ckpt)
    except Exception as e:  # MindSpore raises ValueError/RuntimeError with multi-line text
        raise NetworkLoadError(f"cannot read {ckpt}: {str(e).splitlines()[0] if str(e) else type(e).__name__}") from None


def load_params_strict(net, params, where):
    """Copy `params` (name -> Parameter/Tensor) into `net`; every name on both sides must match with equal shapes."""
    from models.layers import LOCAL_STATE
    own = {p.name: p for p in net.get_parameters()}
    # state the network gained after the directory was written (e.g. dropout step counters) keeps its
    # initial value
    missing = sorted(n for n in set(own) - set(params) if n.rsplit(".", 1)[-1] not in LOCAL_STATE)
    extra = sorted(set(params) - set(own))
    bad_shape = sorted(n for n in set(own) & set(params) if tuple(own[n].shape) != tuple(params[n].shape))
    if missing or extra or bad_shape:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} (e.g. {', '.join(missing[:3])})")
        if extra:
            parts.append(f"unexpected {len(extra)} (e.g. {', '.join(extra[:3])})")
        if bad_shape:
            n = bad_shape[0]
            parts.append(f"shape mismatch {len(bad_shape)} (e.g. {n}: {tuple(params[n].shape)} vs {tuple(own[n].shape)})")
        raise NetworkLoadError(f"{where} does not fit {type(net).__name__}: " + "; ".join(parts))
    import mindspore as ms
    for name, p in own.items():
        if name in params:
            p.set_data(ms.Tensor(params[name].asnumpy() if hasattr(params[name], "asnumpy") else params[name]))


def write_model_dir(dst, meta, tensors_by_net, overwrite=False):
    """Write `dst/<net>.ckpt` for every network and `dst/model.json`, all or nothing.

    Everything is written into a temporary sibling directory first, then swapped in with renames, so a
    crash never leaves a half-written `dst`. An existing `dst` is replaced only with `overwrite=True`.
    """
    import mindspore as ms
    dst = os.path.abspath(dst)
    if os.path.exists(dst) and not overwrite and (not os.path.isdir(dst) or os.listdir(dst)):
        raise FileExistsError(f"{dst} already exists and is not empty (pass --overwrite to replace it)")
    parent = os.path.dirname(dst)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".tmp-" + os.path.basename(dst) + "-", dir=parent)
    try:
        from .files import quiet_mindspore_log
        for net, tensors in tensors_by_net.items():
            params = [{"name": k, "data": ms.Tensor(v)} for k, v in tensors.items()]
            with quiet_mindspore_log():
                ms.save_checkpoint(params, os.path.join(tmp, f"{net}.ckpt"))
        with open(os.path.join(tmp, "model.json"), "w", encoding="utf-8") as f:
            json.dump(meta, f, indent=2, sort_keys=True)
            f.write("\n")
        old = None
        if os.path.exists(dst):
            old = tempfile.mkdtemp(prefix=".old-" + os.path.basename(dst) + "-", dir=parent)
            os.rename(dst, os.path.join(old, "d"))
        os.rename(tmp, dst)
        if old:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
