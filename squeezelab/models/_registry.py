"""The model registry: one decorator filling one dict, in the style of timm.

A builder registered with :func:`register_model` takes ``num_classes``, ``in_chans``
and keyword overrides and returns a plain ``torch.nn.Module``.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from squeezelab.errors import SpecError, unknown_name


@dataclass(frozen=True)
class ModelInfo:
    name: str
    builder: Callable
    input_size: int  # default square input side, pixels
    in_chans: int  # default input channels
    num_classes: int  # default number of classes
    description: str  # one line for `squeezelab models`
    spec: object | None = None  # SqueezeNetSpec for the SqueezeNet family, else None
    task: str = "classification"  # what the outputs mean: classification | detection


_REGISTRY: dict[str, ModelInfo] = {}


def register_model(
    fn: Callable | None = None,
    *,
    input_size: int = 224,
    in_chans: int = 3,
    num_classes: int = 1000,
    spec: object | None = None,
    task: str = "classification",
):
    """Register a builder under its function name; a duplicate name is an error.

    Example:
        >>> @register_model(input_size=28, in_chans=1, num_classes=10)  # doctest: +SKIP
        ... def my_net(num_classes=10, in_chans=1, **kw): ...
    """

    def wrap(f: Callable) -> Callable:
        name = f.__name__
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} is already registered")
        doc = (f.__doc__ or "").strip().splitlines()
        _REGISTRY[name] = ModelInfo(
            name, f, input_size, in_chans, num_classes, doc[0] if doc else "", spec, task
        )
        return f

    return wrap(fn) if fn is not None else wrap


def _ensure_families() -> None:
    import squeezelab.models  # noqa: F401  (importing the package registers every family)


def list_models(pattern: str = "*") -> list[str]:
    """Registered model names matching a glob ``pattern``, sorted."""
    _ensure_families()
    return sorted(n for n in _REGISTRY if fnmatch.fnmatch(n, pattern))


def model_info(name: str) -> ModelInfo:
    """The registry entry of ``name``; an unknown name lists the closest matches."""
    _ensure_families()
    if name not in _REGISTRY:
        raise unknown_name("model", name, list(_REGISTRY))
    return _REGISTRY[name]


def create_model(
    name: str | Any, num_classes: int | None = None, in_chans: int | None = None, **overrides
):
    """Build a registered model, or a SqueezeNet from a spec; ``None`` keeps the default.

    ``name`` is a registry name, a ``SqueezeNetSpec`` or a mapping of its fields. ImageNet
    members default to 1000 classes and 3 channels, the small-input members (``*_small``)
    to 10 classes and 1 channel. ``overrides`` are spec fields for the SqueezeNet family
    (``sr=0.25``, ``bypass="simple"``) or the builder's keywords.

    Example:
        >>> m = create_model("squeezenet1_0")
        >>> sum(p.numel() for p in m.parameters())
        1248424
        >>> from squeezelab.models import SQUEEZENET_SMALL
        >>> create_model(SQUEEZENET_SMALL, sr=0.25).spec.sr
        0.25
    """
    for field, value in (("num_classes", num_classes), ("in_chans", in_chans)):
        if value is not None and (
            not isinstance(value, int) or isinstance(value, bool) or value < 1
        ):
            raise SpecError(f"{field} must be an integer >= 1, got {value!r}")
    if not isinstance(name, str):
        from squeezelab.models.detect import SqueezeDet
        from squeezelab.models.spec import SqueezeNetSpec
        from squeezelab.models.squeezenet import SqueezeNet

        spec = name if isinstance(name, SqueezeNetSpec) else SqueezeNetSpec.from_dict(name)
        dims = {"num_classes": num_classes, "in_chans": in_chans}
        spec = spec.replace(**{k: v for k, v in dims.items() if v is not None}, **overrides)
        return SqueezeDet(spec) if spec.head == "convdet" else SqueezeNet(spec)
    info = model_info(name)
    nc = info.num_classes if num_classes is None else num_classes
    ic = info.in_chans if in_chans is None else in_chans
    return info.builder(num_classes=nc, in_chans=ic, **overrides)
