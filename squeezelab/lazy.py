"""Package attributes imported on first use, so that light callers stay light.

``squeezelab --help`` builds every verb's flags from config dataclasses; the packages
that hold them (``train``, ``design``) keep their torch-, onnx- and optuna-heavy names
behind :func:`lazy_attributes` instead of importing them with the package.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable


def lazy_attributes(package: str, names: dict[str, str]) -> Callable[[str], object]:
    """A module ``__getattr__`` that imports ``package.<names[attr]>`` when ``attr`` is read.

    Example:
        >>> __getattr__ = lazy_attributes(__name__, {"fit": "run"})  # doctest: +SKIP
    """

    def getattr_(name: str):
        if name in names:
            return getattr(importlib.import_module(f"{package}.{names[name]}"), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return getattr_
