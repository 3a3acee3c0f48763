"""ModelMeta: what a model is, apart from its weights; the one model record at every seam.

Every model file (``.safetensors``, ``.sqz``) carries it as JSON (:meth:`ModelMeta.to_dict`),
every verb receives it from :func:`squeezelab.models.load_model`, and
:func:`squeezelab.models.build_model` rebuilds the module from it. :meth:`from_dict`
checks a stranger's JSON (types, and sizes bounded so a small file cannot ask for a huge
model) and raises ``FormatError`` naming the field.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from squeezelab.errors import FormatError, SqueezelabError
from squeezelab.io.limits import MAX_INPUT_ELEMENTS
from squeezelab.models.spec import SqueezeNetSpec

TASKS = ("classification", "detection")
MAX_ANCHORS = 1024  # anchor shapes per grid cell a file may list
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
MAX_DIM = 1 << 16  # no class count, channel count or input side of a real model comes near
MAX_FIRE = 256
MAX_DEPTH = 32  # JSON nesting of any metadata value (real files nest 3 deep)
_FIELDS = (
    "model",
    "num_classes",
    "in_chans",
    "input_size",
    "spec",
    "model_args",
    "task",
    "classes",
    "normalization",
    "input_height",
    "anchors",
    "squeezelab_version",
)  # the writer adds its version


def default_normalization(in_chans: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """``(mean, std)`` of an untrained zoo model: ImageNet's for RGB, 0.5/0.5 otherwise."""
    if in_chans == 3:
        return IMAGENET_MEAN, IMAGENET_STD
    return (0.5,) * in_chans, (0.5,) * in_chans


@dataclass(frozen=True)
class ModelMeta:
    """A model's identity and preprocessing; the module is ``build_model(meta)``.

    Example:
        >>> from squeezelab.models import load_model
        >>> _, meta = load_model("squeezenet_small")
        >>> meta.name, meta.input_shape
        ('squeezenet_small', (1, 28, 28))
    """

    name: str  # registry name, or the spec's short name for a spec file
    num_classes: int  # outputs of the classifier
    in_chans: int  # input channels
    input_size: int  # input side in pixels (square)
    spec: SqueezeNetSpec | None = None  # the architecture, for the SqueezeNet family
    model_args: Mapping[str, Any] = field(default_factory=dict)  # builder keywords (width knobs)
    task: str = "classification"  # what the outputs mean
    classes: tuple[str, ...] | None = None  # class names, in output order
    mean: tuple[float, ...] = ()  # per-channel mean of x/255 subtracted before the model
    std: tuple[float, ...] = ()  # per-channel std of x/255 divided by before the model
    extra: Mapping[str, Any] = field(default_factory=dict)  # metrics, dataset, recipe, ...
    input_height: int | None = None  # input rows when not square (SqueezeDet: 375 of 1242)
    anchors: tuple[tuple[float, float], ...] = ()  # detection: anchor (w, h) px, head order

    def __post_init__(self) -> None:
        if not self.mean:
            mean, std = default_normalization(self.in_chans)
            object.__setattr__(self, "mean", mean)
            object.__setattr__(self, "std", std)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """``(channels, height, width)`` of one input image."""
        return (self.in_chans, self.input_height or self.input_size, self.input_size)

    @property
    def normalization(self) -> dict[str, list[float]]:
        return {"mean": list(self.mean), "std": list(self.std)}

    def replace(self, **changes: Any) -> ModelMeta:
        """A copy with ``changes`` applied; ``extra`` is merged, not replaced."""
        if "extra" in changes:
            changes["extra"] = {**self.extra, **changes["extra"]}
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """The JSON stored in model files (flat, as files have always held it)."""
        d: dict[str, Any] = dict(self.extra)
        d.update(
            model=self.name,
            num_classes=self.num_classes,
            in_chans=self.in_chans,
            input_size=self.input_size,
            task=self.task,
            normalization=self.normalization,
        )
        if self.spec is not None:
            d["spec"] = self.spec.to_dict()
        if self.model_args:
            d["model_args"] = dict(self.model_args)
        if self.classes is not None:
            d["classes"] = list(self.classes)
        if self.input_height is not None:
            d["input_height"] = self.input_height
        if self.anchors:
            d["anchors"] = [list(a) for a in self.anchors]
        return d

    @classmethod
    def from_dict(cls, d: Any, where: str = "model metadata") -> ModelMeta:
        """Check and read the JSON of a model file; ``FormatError`` naming the field."""
        from squeezelab.models._registry import model_info

        def bad(msg: str) -> FormatError:
            return FormatError(f"{where}: {msg}")

        if not isinstance(d, Mapping):
            raise bad(f"is a {type(d).__name__}, not a JSON object")
        name = d.get("model")
        if not isinstance(name, str) or not name:
            raise bad("lacks the model name ('model')")
        for key, value in d.items():
            _shallow(value, bad, str(key))
        spec = d.get("spec")
        if spec is not None:
            if not isinstance(spec, Mapping):
                raise bad(f"spec is a {type(spec).__name__}, not a mapping of fields")
            spec = _checked_spec(dict(spec), bad, "spec")
            defaults = {k: getattr(spec, k) for k in ("num_classes", "in_chans", "input_size")}
            height = d.get("input_height", spec.input_height)
        else:
            try:
                info = model_info(name)
            except SqueezelabError as e:
                raise bad(str(e)) from e
            defaults = {
                "num_classes": info.num_classes,
                "in_chans": info.in_chans,
                "input_size": info.input_size,
            }
            height = d.get("input_height")
        if height is not None and (
            not isinstance(height, int) or isinstance(height, bool) or not 1 <= height <= MAX_DIM
        ):
            raise bad(
                f"input_height={height!r} is invalid: allowed null or an integer 1..{MAX_DIM}"
            )
        dims = {}
        for key, default in defaults.items():
            v = d.get(key, default)
            if not isinstance(v, int) or isinstance(v, bool) or not 1 <= v <= MAX_DIM:
                raise bad(f"{key}={v!r} is invalid: allowed an integer 1..{MAX_DIM}")
            dims[key] = v
        if dims["in_chans"] * dims["input_size"] * (height or dims["input_size"]) > (
            MAX_INPUT_ELEMENTS
        ):
            raise bad(
                f"in_chans={dims['in_chans']} x input_size={dims['input_size']}^2 exceeds "
                f"{MAX_INPUT_ELEMENTS} input elements per image"
            )
        model_args = d.get("model_args") or {}
        if not isinstance(model_args, Mapping):
            raise bad("model_args is not a mapping of builder keywords")
        if spec is None:
            _check_model_args(info, dict(model_args), dims, bad)
        task = d.get("task", "classification")
        if task not in TASKS:
            raise bad(f"task={task!r} is invalid: allowed {', '.join(TASKS)}")
        if spec is not None and (spec.head == "convdet") != (task == "detection"):
            raise bad(f"task={task!r} does not fit spec head={spec.head!r}")
        anchors = _anchors(d.get("anchors"), bad)
        classes = d.get("classes")
        if classes is not None:
            if not isinstance(classes, list) or not all(isinstance(c, str) for c in classes):
                raise bad("classes is not a list of names")
            if len(classes) != dims["num_classes"]:
                raise bad(f"{len(classes)} class names for num_classes={dims['num_classes']}")
            classes = tuple(classes)
        mean, std = _normalization(d.get("normalization"), dims["in_chans"], bad)
        extra = {k: v for k, v in d.items() if k not in _FIELDS}
        return cls(
            name,
            **dims,
            spec=spec,
            model_args=dict(model_args),
            task=task,
            classes=classes,
            mean=mean,
            std=std,
            extra=extra,
            input_height=height,
            anchors=anchors,
        )

    @classmethod
    def for_spec(cls, spec: SqueezeNetSpec, name: str | None = None) -> ModelMeta:
        """The metadata of an untrained model built from ``spec``."""
        return cls(
            name or spec.short_name,
            spec.num_classes,
            spec.in_chans,
            spec.input_size,
            spec=spec,
            task="detection" if spec.head == "convdet" else "classification",
            input_height=spec.input_height,
        )


def _bounded(fields: Mapping[str, Any], bad, where: str) -> None:
    for key, value in fields.items():
        if isinstance(value, float) and not math.isfinite(value):
            raise bad(f"{where} field {key}={value} is invalid: allowed a finite number")
        if isinstance(value, int | float) and not isinstance(value, bool) and abs(value) > MAX_DIM:
            raise bad(
                f"{where} field {key}={value} is out of any model's range (|value| <= {MAX_DIM})"
            )


def check_spec_caps(fields: Mapping[str, Any], bad, where: str = "spec") -> None:
    """The caps on a spec read from any file: finite numbers, ``|x| <= MAX_DIM``, ``num_fire
    <= MAX_FIRE``. Cheap, so they run before the spec's own checks and before anything is
    built (a 30-byte file cannot ask for 20,000 Fire modules). ``bad(msg)`` makes the error.
    """
    _bounded(fields, bad, where)
    num_fire = fields.get("num_fire")
    if isinstance(num_fire, int) and num_fire > MAX_FIRE:
        raise bad(f"{where} num_fire={num_fire} exceeds {MAX_FIRE}")


def spec_from_file(fields: Mapping[str, Any], where: str) -> SqueezeNetSpec:
    """The fields of a spec file someone wrote (``where`` names it) -> a spec, under the
    same caps as a spec in a model file's metadata; SpecError ``"{where}: ..."`` naming the
    field. What :func:`~squeezelab.models.load.read_spec_file` and
    ``SqueezeNetSpec.from_yaml``/``from_json`` build with."""
    from squeezelab.errors import SpecError

    check_spec_caps(fields, lambda msg: SpecError(f"{where}: {msg}"))
    try:
        return SqueezeNetSpec.from_dict(dict(fields))
    except SqueezelabError as e:
        raise type(e)(f"{where}: {e}") from e


def _checked_spec(fields: dict[str, Any], bad, where: str) -> SqueezeNetSpec:
    """A spec from a file's fields, under the same limits as a spec written by hand."""
    check_spec_caps(fields, bad, where)
    try:
        return SqueezeNetSpec.from_dict(fields)
    except SqueezelabError as e:
        raise bad(f"{where}: {e}") from e


def _check_model_args(info, args: dict[str, Any], dims: dict[str, int], bad) -> None:
    """``model_args`` of a file: only the builder's own keywords, bounded like a spec.

    For the SqueezeNet family they are spec fields, so the merged spec passes the same
    checks as a spec written by hand (a tiny file cannot ask for 20,000 Fire modules).
    """
    top = sorted(set(args) & {"num_classes", "in_chans", "input_size"})
    if top:
        raise bad(f"model_args may not set {top}: they are top-level fields of the metadata")
    if info.spec is not None:
        merged = {**info.spec.to_dict(), **dims, **args}
        _checked_spec(merged, bad, "model_args")
        return
    params = inspect.signature(info.builder).parameters
    allowed = sorted(k for k in params if k not in ("num_classes", "in_chans"))
    for key, value in args.items():
        if key not in allowed:
            raise bad(f"model_args key {key!r} is not a keyword of {info.name}: allowed {allowed}")
        if not isinstance(value, bool | int | float | str):
            raise bad(f"model_args {key}={str(value)[:40]} is not a number, string or boolean")
    _bounded(args, bad, "model_args")


def _shallow(value: Any, bad, where: str, depth: int = 0) -> None:
    """Refuse JSON nested deeper than ``MAX_DEPTH`` (printing or re-saving it would recurse)."""
    if depth > MAX_DEPTH:
        raise bad(f"field {where!r} nests deeper than {MAX_DEPTH} levels")
    if isinstance(value, Mapping):
        for v in value.values():
            _shallow(v, bad, where, depth + 1)
    elif isinstance(value, list | tuple):
        for v in value:
            _shallow(v, bad, where, depth + 1)


def _anchors(value: Any, bad) -> tuple[tuple[float, float], ...]:
    """``anchors`` of a file: at most ``MAX_ANCHORS`` pairs of positive finite (w, h) px."""
    if value is None:
        return ()
    ok = (
        isinstance(value, list)
        and len(value) <= MAX_ANCHORS
        and all(
            isinstance(a, list)
            and len(a) == 2
            and all(
                isinstance(x, int | float)
                and not isinstance(x, bool)
                and math.isfinite(x)
                and 0 < x <= MAX_DIM
                for x in a
            )
            for a in value
        )
    )
    if not ok:
        raise bad(f"anchors must be a list of at most {MAX_ANCHORS} [w, h] pairs of pixels > 0")
    return tuple((float(w), float(h)) for w, h in value)


def _normalization(norm: Any, in_chans: int, bad) -> tuple[tuple[float, ...], tuple[float, ...]]:
    if not norm:
        return default_normalization(in_chans)
    ok = isinstance(norm, Mapping) and all(
        isinstance(norm.get(k), list)
        and len(norm[k]) == in_chans
        and all(
            isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)
            for x in norm[k]
        )
        for k in ("mean", "std")
    )
    if not ok or min(norm["std"]) <= 0:
        raise bad(f"normalization must hold {in_chans} means and {in_chans} positive stds")
    return tuple(float(x) for x in norm["mean"]), tuple(float(x) for x in norm["std"])
