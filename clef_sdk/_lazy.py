"""Attributes of a package imported on first use (PEP 562), for names whose modules are slow or optional."""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module

__all__ = ["lazy_getattr"]


def lazy_getattr(package: str, modules: dict[str, str]) -> Callable[[str], object]:
    """A module ``__getattr__`` that imports ``package.<modules[name]>`` when ``name`` is first used."""

    def __getattr__(name: str) -> object:
        if name in modules:
            return getattr(import_module(f".{modules[name]}", package), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
