"""MindSpore networks for face-image GANs. Importing this package imports MindSpore, never torch/TF/dlib."""
from . import runtime  # noqa: F401  (must run before any MindSpore op)
from .registry import create_model, get_model_class, list_models, register_model  # noqa: F401
from . import cyclegan, mobilefacenet, stgan, ugatit  # noqa: F401  (register their networks)
from .store import load_network, load_params_strict, read_model_json, read_params, NetworkLoadError  # noqa: F401
