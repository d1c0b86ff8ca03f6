"""Reading published PyTorch checkpoints safely (`torch.load(..., weights_only=True)`), torch imported lazily."""
import os

import numpy as np

from .core import ConversionError


def _first_line(e):
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def load_torch_file(path):
    """Return the object in `path` with every tensor turned into a float32 numpy array.

    Only plain containers and tensors are accepted (weights_only=True): a pickle with code, a truncated file
    or a non-PyTorch file gives a one-line ConversionError.
    """
    if not os.path.isfile(path):
        raise ConversionError(f"no such file: {path}")
    import warnings

    import torch

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")   # old pickle protocols warn; weights_only still guards them
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # UnpicklingError, RuntimeError (zip), EOFError (truncated), ...
        raise ConversionError(f"{path} is not a readable PyTorch weights file ({_first_line(e)})") from None
    return _to_numpy(obj)


def _to_numpy(obj):
    import torch

    if isinstance(obj, torch.Tensor):
        return obj.detach().to(torch.float32).numpy() if obj.is_floating_point() else obj.detach().numpy()
    if isinstance(obj, dict):
        return {k: _to_numpy(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_numpy(v) for v in obj)
    return obj


def is_state_dict(obj):
    return isinstance(obj, dict) and len(obj) > 0 and all(
        isinstance(k, str) and isinstance(v, np.ndarray) for k, v in obj.items())


def strip_prefix(sd, prefix="module."):
    """DataParallel saves every key as `module.<name>`; take the prefix off when every key has it."""
    if sd and all(k.startswith(prefix) for k in sd):
        return {k[len(prefix):]: v for k, v in sd.items()}
    return sd
