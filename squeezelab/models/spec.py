"""SqueezeNetSpec: the SqueezeNet design space as a frozen dataclass.

Follows Iandola et al. 2016 (arXiv 1602.07360), section 5: the microarchitecture
metaparameters base_e, incr_e, freq, pct_3x3 and SR, and the macroarchitecture
(stem, Fire count, pool positions, bypass). :func:`expand` turns a spec into the
per-Fire channel counts and spatial sizes without building a module.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from typing import Any

from squeezelab.errors import SpecError, one_line

BYPASS_CHOICES = ("none", "simple", "complex")


@dataclass(frozen=True)
class SqueezeNetSpec:
    # microarchitecture (paper section 5)
    base_e: int = 128  # expand filters of the first Fire module
    incr_e: int = 128  # expand filters added every `freq` Fire modules
    freq: int = 2  # Fire modules between increments of incr_e
    pct_3x3: float = 0.5  # share of expand filters that are 3x3 (kernel reduction)
    sr: float = 0.125  # squeeze ratio s_i / e_i (channel reduction)
    # macroarchitecture
    num_fire: int = 8  # Fire modules, named fire2 ... fire{num_fire+1} as in the paper
    stem_channels: int = 96  # filters of conv1
    stem_kernel: int = 7  # conv1 kernel side
    stem_stride: int = 2  # conv1 stride; stride 1 pads to keep the resolution
    pool_after: tuple[int, ...] = (
        1,
        4,
        8,
    )  # 3x3/2 max-pools after these layers (1 = conv1, i = fire_i)
    bypass: str = "none"  # none | simple (identity around fire3, 5, 7, 9) | complex (all, 1x1 conv where needed)
    batchnorm: bool = False  # BatchNorm after every convolution but the classifier
    dropout: float = 0.5  # dropout before conv10
    pool_ceil: bool = True  # max-pools round up (torchvision); False = TF "VALID" (SqueezeDet)
    extra_fire: tuple[int, ...] = ()  # e_i of Fire modules after the last (SqueezeDet: 768, 768)
    head: str = "classifier"  # classifier (conv10 + global pool) | convdet (SqueezeDet's ConvDet)
    head_anchors: int = 9  # ConvDet anchors per grid cell K (head="convdet")
    # task
    num_classes: int = 1000  # filters of conv10
    in_chans: int = 3  # input channels
    input_size: int = 224  # input side (width) in pixels, used for validation and analysis
    input_height: int | None = None  # input rows when not square (SqueezeDet: 375); None = square

    def __post_init__(self) -> None:
        for name in ("pool_after", "extra_fire"):
            value = getattr(self, name)
            if not isinstance(value, list | tuple):  # e.g. null in a model file's JSON
                raise SpecError(f"{name}={value!r} is invalid: allowed a list of integers")
            object.__setattr__(self, name, tuple(value))
        validate(self)

    def replace(self, **changes: Any) -> SqueezeNetSpec:
        """A copy with ``changes`` applied (and validated)."""
        unknown = sorted(set(changes) - {f.name for f in dataclasses.fields(self)})
        if unknown:
            raise SpecError(f"unknown spec field(s) {unknown}; allowed: {field_names()}")
        return dataclasses.replace(self, **changes)

    @property
    def short_name(self) -> str:
        """A stable name from the microarchitecture, e.g. ``sqz-b128-i128-f2-p50-sr125``.

        Fields that differ from v1.0's macroarchitecture add a short hash suffix so that
        two different specs never share a name.
        """
        name = (
            f"sqz-b{self.base_e}-i{self.incr_e}-f{self.freq}"
            f"-p{round(self.pct_3x3 * 100)}-sr{round(self.sr * 1000)}"
        )
        macro = _macro(self.to_dict())
        if macro != _DEFAULT_MACRO:
            import hashlib

            digest = hashlib.sha1(json.dumps(macro, sort_keys=True).encode()).hexdigest()[:6]
            name += f"-{digest}"
        return name

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["pool_after"] = list(self.pool_after)
        d["extra_fire"] = list(self.extra_fire)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SqueezeNetSpec:
        if not isinstance(d, dict):
            raise SpecError(f"a spec must be a mapping of fields, got {type(d).__name__}")
        d = {("sr" if k == "SR" else k): v for k, v in d.items()}
        unknown = sorted(set(d) - set(field_names()))
        if unknown:
            raise SpecError(f"unknown spec field(s) {unknown}; allowed: {field_names()}")
        return cls(**d)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_json(cls, text: str, where: str = "spec JSON") -> SqueezeNetSpec:
        """A spec from JSON text, under the caps of a spec in a file (``where`` names it)."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise SpecError(f"spec is not valid JSON: {e}") from e
        return _from_file(data, where)

    def to_yaml(self) -> str:
        import yaml

        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    @classmethod
    def from_yaml(cls, text: str, where: str = "spec YAML") -> SqueezeNetSpec:
        """A spec from YAML text (or ``{spec: {...}}``), under the caps of a spec in a file."""
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise SpecError(f"spec is not valid YAML: {one_line(e)}") from e
        if isinstance(data, dict) and "spec" in data and isinstance(data["spec"], dict):
            data = data["spec"]
        return _from_file(data, where)


def _from_file(data: Any, where: str) -> SqueezeNetSpec:
    """``data`` read from a file: the caps of ``models.meta.spec_from_file``, then the checks."""
    from squeezelab.models.meta import spec_from_file  # meta imports this module

    if not isinstance(data, dict):
        return SqueezeNetSpec.from_dict(data)  # the one "must be a mapping" error
    return spec_from_file(data, where)


HEADS = ("classifier", "convdet")
# fields added after short names were fixed: at these defaults they leave a name unchanged
_LATER = {
    "pool_ceil": True,
    "extra_fire": [],
    "head": "classifier",
    "head_anchors": 9,
    "input_height": None,
}
_MICRO = ("base_e", "incr_e", "freq", "pct_3x3", "sr", "num_classes", "in_chans", "input_size")


def _macro(fields: dict[str, Any]) -> dict[str, Any]:
    """The fields a short name hashes: macroarchitecture, later fields only when set."""
    return {
        k: v for k, v in fields.items() if k not in _MICRO and not (k in _LATER and _LATER[k] == v)
    }


def field_names() -> list[str]:
    return [f.name for f in dataclasses.fields(SqueezeNetSpec)]


@dataclass(frozen=True)
class FireConfig:
    name: str  # fire2 ... as in the paper
    in_channels: int
    squeeze: int  # s_i
    expand1x1: int  # e_i,1x1
    expand3x3: int  # e_i,3x3
    bypass: str  # none | identity | conv
    spatial: int  # input (= output) side in pixels

    @property
    def out_channels(self) -> int:
        return self.expand1x1 + self.expand3x3


@dataclass(frozen=True)
class Expanded:
    stem_out: int  # side after conv1
    fires: list[FireConfig] = field(default_factory=list)
    pools: dict[int, tuple[int, int]] = field(default_factory=dict)  # layer -> (in side, out side)
    head_spatial: int = 0  # side entering conv10


def _round(x: float) -> int:
    return int(math.floor(x + 0.5))


def conv_out(size: int, kernel: int, stride: int, padding: int) -> int:
    return (size + 2 * padding - kernel) // stride + 1


def pool_out(size: int, ceil: bool = True) -> int:
    """3x3 stride-2 max-pool: ceil_mode=True as torchvision's SqueezeNet, else TF "VALID"."""
    if not ceil:
        return (size - 3) // 2 + 1
    out = math.ceil((size - 3) / 2) + 1
    if (out - 1) * 2 >= size:  # PyTorch drops a last window that starts in the padding
        out -= 1
    return out


def stem_padding(spec: SqueezeNetSpec) -> int:
    """conv1 keeps the resolution at stride 1 (small inputs); no padding otherwise (v1.0)."""
    return spec.stem_kernel // 2 if spec.stem_stride == 1 else 0


def fire_channels(spec: SqueezeNetSpec) -> list[tuple[int, int, int]]:
    """``(s_i, e_i,1x1, e_i,3x3)`` for Fire i = 0 ... num_fire-1 (paper section 5).

    e_i = base_e + incr_e * floor(i / freq); e_i,3x3 = pct_3x3 * e_i; s_i = SR * e_i.
    The ``extra_fire`` modules follow with their own e_i (SqueezeDet's fire10, fire11).

    Example:
        >>> fire_channels(SqueezeNetSpec())[:2]
        [(16, 64, 64), (16, 64, 64)]
    """
    out = []
    widths = [spec.base_e + spec.incr_e * (i // spec.freq) for i in range(spec.num_fire)]
    for e in [*widths, *spec.extra_fire]:
        e3 = _round(spec.pct_3x3 * e)
        out.append((max(1, _round(spec.sr * e)), e - e3, e3))
    return out


def expand(spec: SqueezeNetSpec) -> Expanded:
    """Per-Fire channel counts, bypass kinds and spatial sizes of a spec (pure)."""
    side = conv_out(spec.input_size, spec.stem_kernel, spec.stem_stride, stem_padding(spec))
    stem_out = side
    pools: dict[int, tuple[int, int]] = {}
    if 1 in spec.pool_after:
        pools[1] = (side, pool_out(side, spec.pool_ceil))
        side = pools[1][1]
    fires = []
    in_ch = spec.stem_channels
    for i, (s, e1, e3) in enumerate(fire_channels(spec)):
        layer = i + 2
        out_ch = e1 + e3
        if spec.bypass == "complex":
            kind = "identity" if in_ch == out_ch else "conv"
        elif spec.bypass == "simple" and layer % 2 == 1 and in_ch == out_ch:
            kind = "identity"
        else:
            kind = "none"
        fires.append(FireConfig(f"fire{layer}", in_ch, s, e1, e3, kind, side))
        in_ch = out_ch
        if layer in spec.pool_after:
            pools[layer] = (side, pool_out(side, spec.pool_ceil))
            side = pools[layer][1]
    return Expanded(stem_out, fires, pools, side)


def _check(ok: bool, field_: str, value: Any, allowed: str) -> None:
    if not ok:
        raise SpecError(f"{field_}={value!r} is invalid: allowed {allowed}")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def validate(spec: SqueezeNetSpec) -> None:
    """Raise SpecError naming the first bad field, its value and the allowed range."""
    for name in (
        "base_e",
        "num_fire",
        "stem_channels",
        "stem_kernel",
        "stem_stride",
        "num_classes",
        "in_chans",
        "input_size",
        "freq",
    ):
        v = getattr(spec, name)
        _check(_is_int(v) and v >= 1, name, v, "an integer >= 1")
    _check(_is_int(spec.incr_e) and spec.incr_e >= 0, "incr_e", spec.incr_e, "an integer >= 0")
    _check(
        isinstance(spec.pct_3x3, int | float) and 0 <= spec.pct_3x3 <= 1,
        "pct_3x3",
        spec.pct_3x3,
        "a number in [0, 1]",
    )
    _check(
        isinstance(spec.sr, int | float) and 0 < spec.sr <= 1, "sr", spec.sr, "a number in (0, 1]"
    )
    _check(
        isinstance(spec.dropout, int | float) and 0 <= spec.dropout < 1,
        "dropout",
        spec.dropout,
        "a number in [0, 1)",
    )
    _check(spec.bypass in BYPASS_CHOICES, "bypass", spec.bypass, f"one of {list(BYPASS_CHOICES)}")
    _check(isinstance(spec.batchnorm, bool), "batchnorm", spec.batchnorm, "true or false")
    _check(isinstance(spec.pool_ceil, bool), "pool_ceil", spec.pool_ceil, "true or false")
    _check(spec.head in HEADS, "head", spec.head, f"one of {list(HEADS)}")
    _check(
        _is_int(spec.head_anchors) and 1 <= spec.head_anchors <= 1024,
        "head_anchors",
        spec.head_anchors,
        "an integer in 1..1024",
    )
    _check(
        all(_is_int(e) and e >= 1 for e in spec.extra_fire),
        "extra_fire",
        list(spec.extra_fire),
        "a list of expand widths e_i, integers >= 1",
    )
    _check(
        spec.input_height is None or (_is_int(spec.input_height) and spec.input_height >= 1),
        "input_height",
        spec.input_height,
        "null (square) or an integer >= 1",
    )
    last = spec.num_fire + len(spec.extra_fire) + 1
    _check(
        all(_is_int(p) and 1 <= p <= last for p in spec.pool_after)
        and len(set(spec.pool_after)) == len(spec.pool_after),
        "pool_after",
        list(spec.pool_after),
        f"distinct layer numbers from 1 (conv1) to {last} (fire{last})",
    )
    for i, (_, e1, e3) in enumerate(fire_channels(spec)):
        if (e1 == 0 and spec.pct_3x3 < 1) or (e3 == 0 and spec.pct_3x3 > 0):
            raise SpecError(
                f"pct_3x3={spec.pct_3x3!r} rounds fire{i + 2}'s "
                f"{'1x1' if e1 == 0 else '3x3'} expand channels to 0 (e_i={e1 + e3}); "
                "allowed: 0, 1, or a share that leaves both branches at least one filter"
            )
    short = min(spec.input_size, spec.input_height or spec.input_size)
    side = conv_out(short, spec.stem_kernel, spec.stem_stride, stem_padding(spec))
    _check(
        side >= 1,
        "input_size",
        spec.input_size,
        f">= {spec.stem_kernel} for a {spec.stem_kernel}x{spec.stem_kernel}/{spec.stem_stride} conv1",
    )
    for layer in sorted(spec.pool_after):
        if side < 2:
            raise SpecError(
                f"pool_after={list(spec.pool_after)} is invalid for input_size={spec.input_size}"
                f"{f' x input_height={spec.input_height}' if spec.input_height else ''}: "
                f"the pool after layer {layer} sees a {side}x{side} map, too small to pool "
                "(needs at least 2x2); allowed: fewer pools or a larger input"
            )
        side = pool_out(side, spec.pool_ceil)


SQUEEZENET1_0 = SqueezeNetSpec()
SQUEEZENET1_1 = SqueezeNetSpec(stem_channels=64, stem_kernel=3, pool_after=(1, 3, 5))
# Small inputs (28x28x1 Fashion-MNIST, 32x32x3 CIFAR): conv1 keeps the resolution and the
# pools come late (delayed downsampling); BatchNorm makes short CPU budgets train well.
SQUEEZENET_SMALL = SqueezeNetSpec(
    base_e=64,
    incr_e=64,
    stem_channels=64,
    stem_kernel=3,
    stem_stride=1,
    pool_after=(3, 6),
    batchnorm=True,
    dropout=0.2,
    num_classes=10,
    in_chans=1,
    input_size=28,
)
_DEFAULT_MACRO = _macro(SQUEEZENET1_0.to_dict())
