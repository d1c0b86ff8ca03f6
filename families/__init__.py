"""Every GAN family in one registry: train.py, test.py and the engine take their choices from it.

    from families import get_family, list_families
    fam = get_family("cyclegan")

A family is one file in this package defining a `Family` subclass decorated with `@register_family`;
every module here is imported on first use, so a new family needs no edit elsewhere. See
docs/adding_a_family.md.
"""
import importlib
import pkgutil

from .base import Family, Losses, Option, Runner, TrainingData, adopt_pretrained, parse_bool  # noqa: F401

_REGISTRY = {}
_loaded = []


def register_family(cls):
    if not cls.name:
        raise ValueError(f"{cls.__name__} has no name")
    if cls.name in _REGISTRY:
        raise ValueError(f"family name registered twice: {cls.name}")
    _REGISTRY[cls.name] = cls()
    return cls


def _load_all():
    if not _loaded:
        _loaded.append(True)
        for m in pkgutil.iter_modules(__path__):
            if m.name != "base":
                importlib.import_module(f"{__name__}.{m.name}")


def list_families():
    _load_all()
    return list(_REGISTRY)


def get_family(name):
    _load_all()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown model family '{name}'; known: {', '.join(_REGISTRY)}") from None
