"""One registry for every network: `create_model(name, **cfg)`, `list_models()`.

A family registers its Cells with `@register_model("name")` in its own file; `models/__init__.py` imports
the family files, so adding a model is one file plus one import line.
"""
_REGISTRY = {}


def register_model(name):
    def deco(cls):
        if name in _REGISTRY:
            raise ValueError(f"model name registered twice: {name}")
        _REGISTRY[name] = cls
        cls.registry_name = name
        return cls
    return deco


def list_models():
    return sorted(_REGISTRY)


def get_model_class(name):
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown model '{name}'; known: {', '.join(list_models())}") from None


def create_model(name, **cfg):
    return get_model_class(name)(**cfg)
