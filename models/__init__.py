"""MindSpore networks for face-image GANs, one file per family, all in one registry.

    import models
    net = models.create_model("ugatit_p2c_generator", ngf=32, img_size=256)   # a new network
    net = models.load_network("pretrained_models/photo2cartoon", "genA2B")     # a converted / trained one
    models.list_models()

Networks are plain Cells on MindSpore's own ops; `load_network` (and training) put the CPU kernels in
(kernels.accelerate). Importing this package imports MindSpore, never torch, TensorFlow or dlib. Every
module in this package is imported here, so a new network file registers itself.
"""
import importlib
import pkgutil

from core import runtime as _runtime  # noqa: F401  (environment defaults that must precede any MindSpore op)
from core.model_dir import NetworkLoadError, load_network, load_params_strict, read_model_json, read_params  # noqa: F401
from .registry import create_model, get_model_class, list_models, register_model  # noqa: F401

for _m in pkgutil.iter_modules(__path__):
    if _m.name not in ("registry", "layers"):
        importlib.import_module(f"{__name__}.{_m.name}")
