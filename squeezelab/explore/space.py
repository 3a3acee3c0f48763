"""Search spaces, objectives and constraints, read from YAML.

The space generalises the hand sweeps of Iandola et al. 2016 (arXiv 1602.07360),
section 5: each SqueezeNetSpec field (and the model family, and a zoo member's width
knob) is fixed, a list of choices, or an int/float range (linear or log).
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from squeezelab.errors import ConfigError, SpecError, UnknownNameError, unknown_name

# metric -> direction; accuracy is measured by training, the rest are costs
METRICS = {
    "accuracy": "maximize",
    "params": "minimize",
    "model_bytes": "minimize",
    "macs": "minimize",
    "energy_pj": "minimize",
    "latency_ms": "minimize",
    "peak_activation_bytes": "minimize",
}
SAMPLERS = ("auto", "nsga2", "tpe", "random", "grid")
_SIZE_UNITS = {"b": 1, "kb": 1000, "kib": 1024, "mb": 1000**2, "mib": 1024**2, "gb": 1000**3}


@dataclass(frozen=True)
class Param:
    """One searched (or fixed) dimension of the space."""

    name: str
    kind: str  # fixed | choice | int | float
    choices: tuple = ()  # fixed: (value,); choice: the values
    low: float = 0.0
    high: float = 0.0
    step: float | None = None  # int/float ranges: grid step (None = continuous for floats)
    log: bool = False

    def grid(self) -> list:
        """Every value of a finite dimension; ConfigError for a continuous one."""
        if self.kind in ("fixed", "choice"):
            return list(self.choices)
        if self.kind == "int" and not self.log:
            return list(range(int(self.low), int(self.high) + 1, int(self.step or 1)))
        if self.kind == "int":
            return sorted({int(round(v)) for v in _geom(self.low, self.high)})
        if self.step:
            n = int(math.floor((self.high - self.low) / self.step + 1e-9))
            return [round(self.low + i * self.step, 10) for i in range(n + 1)]
        raise ConfigError(
            f"params.{self.name} is a continuous range [{self.low}, {self.high}]: a grid needs "
            "choices, an int range or a float range with a step"
        )


def _geom(low: float, high: float) -> list[float]:
    out, v = [], float(low)
    while v <= high:
        out.append(v)
        v *= 2
    return out


@dataclass(frozen=True)
class Objective:
    """A metric to optimise; ``key`` names it in results, e.g. ``model_bytes[8bit]``."""

    metric: str
    bits: int | None = None  # model_bytes at this weight bit width
    hardware: str | None = None  # energy_pj / latency_ms on this profile
    measured: bool = False  # latency_ms measured on this host instead of predicted
    compression: tuple[float, int] | None = None  # model_bytes of the .sqz at (sparsity, bits)

    @property
    def direction(self) -> str:
        return METRICS[self.metric]

    @property
    def key(self) -> str:
        tags = [f"{self.bits}bit"] if self.bits else []
        if self.compression:
            tags.append(f"sqz-s{self.compression[0]:g}-{self.compression[1]}bit")
        tags += [self.hardware] if self.hardware else []
        tags += ["measured"] if self.measured else []
        return f"{self.metric}[{','.join(tags)}]" if tags else self.metric

    def to_dict(self) -> dict[str, Any]:
        d = {"metric": self.metric, "key": self.key, "direction": self.direction}
        d.update(
            {k: getattr(self, k) for k in ("bits", "hardware", "measured") if getattr(self, k)}
        )
        if self.compression:
            d["compression"] = {"sparsity": self.compression[0], "bits": self.compression[1]}
        return d


@dataclass(frozen=True)
class Constraint:
    """An upper bound on a metric (``accuracy`` takes a lower bound, ``min``)."""

    objective: Objective
    max: float | None = None
    min: float | None = None

    @property
    def key(self) -> str:
        return self.objective.key

    def violation(self, value: float) -> float:
        """Optuna's convention: > 0 violated, <= 0 satisfied."""
        if self.max is not None:
            return float(value - self.max)
        return float(self.min - value)

    def describe(self) -> str:
        return (
            f"{self.key} <= {self.max:g}" if self.max is not None else f"{self.key} >= {self.min:g}"
        )

    def to_dict(self) -> dict[str, Any]:
        d = {"metric": self.key, **({"max": self.max} if self.max is not None else {})}
        return {**d, **({"min": self.min} if self.min is not None else {})}


@dataclass(frozen=True)
class Candidate:
    """One point of the space, ready to build: a zoo name plus spec or model keywords."""

    model: str
    spec: dict[str, Any] | None  # full SqueezeNetSpec dict for the SqueezeNet family
    model_args: dict[str, Any]  # builder keywords for other families (width_mult)
    input_shape: tuple[int, int, int]

    def build(self):
        """The untrained nn.Module."""
        from squeezelab.models import create_model

        if self.spec is not None:
            from squeezelab.models.spec import SqueezeNetSpec
            from squeezelab.models.squeezenet import SqueezeNet

            return SqueezeNet(SqueezeNetSpec.from_dict(self.spec))
        try:
            return create_model(self.model, **self.model_args)
        except TypeError as e:
            raise SpecError(f"model {self.model!r} rejects {sorted(self.model_args)}: {e}") from e

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "spec": self.spec, "model_args": self.model_args}


@dataclass
class Space:
    """A design space plus what to optimise, the limits, the search and the training budget."""

    name: str
    params: dict[str, Param]
    objectives: list[Objective]
    constraints: list[Constraint] = field(default_factory=list)
    hardware: str = "horowitz-45nm"  # default profile for energy_pj / latency_ms
    weight_bits: int = 32  # default bit width of model_bytes
    activation_bits: int = 32  # bit width of activations (peak_activation_bytes, energy)
    sampler: str = "auto"
    trials: int = 20  # trained trials
    max_candidates: int | None = None  # screened candidates at most (default 50 x trials)
    population: int | None = None  # NSGA-II population (default from trials)
    seed: int = 0
    train: dict[str, Any] = field(default_factory=dict)  # TrainConfig fields for each trial
    final: dict[str, Any] | None = None  # TrainConfig overrides to retrain the Pareto set
    raw: dict[str, Any] = field(default_factory=dict)  # the mapping it was parsed from

    # --- building candidates -------------------------------------------------------------
    def candidate(self, values: dict[str, Any]) -> Candidate:
        """The candidate for sampled ``values`` (SpecError if the combination is invalid)."""
        from squeezelab.models import model_info
        from squeezelab.models.spec import field_names

        values = {
            **{n: p.choices[0] for n, p in self.params.items() if p.kind == "fixed"},
            **values,
        }
        name = values.get("model", "squeezenet_small")
        info = model_info(name)
        spec_fields = set(field_names())
        if info.spec is not None:
            over = {k: v for k, v in values.items() if k in spec_fields}
            if "pool_after" in over and isinstance(over["pool_after"], str):
                over["pool_after"] = _parse_tuple(over["pool_after"])
            spec = info.spec.replace(**over)
            shape = (spec.in_chans, spec.input_size, spec.input_size)
            return Candidate(name, spec.to_dict(), {}, shape)
        args = {k: v for k, v in values.items() if k != "model" and k not in spec_fields}
        task = {k: values[k] for k in ("num_classes", "in_chans") if k in values}
        size = values.get("input_size", info.input_size)
        shape = (task.get("in_chans", info.in_chans), size, size)
        return Candidate(name, None, {**task, **args}, shape)

    def grid(self) -> dict[str, list]:
        """The searched dimensions as value lists (finite spaces only)."""
        return {n: p.grid() for n, p in self.params.items() if p.kind != "fixed"}

    def size(self) -> int | None:
        """Number of points of a finite space, None for a continuous one."""
        try:
            return math.prod(len(v) for v in self.grid().values())
        except ConfigError:
            return None

    def enumerate(self):
        """Every point of a finite space as a values dict."""
        grid = self.grid()
        for combo in itertools.product(*grid.values()):
            yield dict(zip(grid, combo, strict=True))

    def sample(self, rng) -> dict[str, Any]:
        """One random point (uniform, log-uniform for log ranges), given a ``random.Random``."""
        out = {}
        for n, p in self.params.items():
            if p.kind == "choice":
                out[n] = rng.choice(p.choices)
            elif p.kind == "int":
                v = math.exp(rng.uniform(math.log(p.low), math.log(p.high))) if p.log else None
                step = int(p.step or 1)
                v = round(v) if v is not None else rng.randrange(int(p.low), int(p.high) + 1, step)
                out[n] = int(min(max(v, p.low), p.high))
            elif p.kind == "float":
                lo, hi = (math.log(p.low), math.log(p.high)) if p.log else (p.low, p.high)
                v = rng.uniform(lo, hi)
                out[n] = math.exp(v) if p.log else v
        return out

    # --- metrics -------------------------------------------------------------------------
    def metric_list(self) -> list[Objective]:
        """Objectives and constrained metrics, without duplicates, objectives first."""
        seen, out = set(), []
        for o in [*self.objectives, *(c.objective for c in self.constraints)]:
            if o.key not in seen:
                seen.add(o.key)
                out.append(o)
        return out

    @property
    def directions(self) -> list[str]:
        return [o.direction for o in self.objectives]

    def to_dict(self) -> dict[str, Any]:
        """The YAML mapping this space was read from (what a study stores and reloads)."""
        return copy.deepcopy(self.raw)

    def with_overrides(self, **sections: dict[str, Any]) -> Space:
        """A copy with keys of top-level sections replaced, e.g. ``search={"trials": 4}``."""
        raw = copy.deepcopy(self.raw)
        for key, changes in sections.items():
            raw[key] = {**(raw.get(key) or {}), **changes}
        return space_from_dict(raw, self.name)


def _parse_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in text.split(",") if x.strip())


def parse_size(value: Any, where: str) -> float:
    """A number, or a string with a byte unit: ``"256KiB"``, ``"1 MB"``."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    m = re.fullmatch(r"\s*([0-9.]+)\s*([a-zA-Z]*)\s*", str(value))
    unit = m.group(2).lower() if m else ""
    if not m or unit not in {"", *_SIZE_UNITS}:
        raise ConfigError(
            f"{where}={value!r} is invalid: allowed a number or a size like 256KiB, 1MB"
        )
    return float(m.group(1)) * _SIZE_UNITS.get(unit, 1)


# --- parsing ------------------------------------------------------------------------------
def _parse_param(name: str, raw: Any, int_field: bool) -> Param:
    where = f"params.{name}"
    if name == "pool_after":  # a tuple field: a flat list is one value, a list of lists choices
        if isinstance(raw, list) and raw and all(isinstance(x, list) for x in raw):
            raw = {"choices": raw}
        if isinstance(raw, dict) and "choices" in raw:
            return Param(name, "choice", tuple(",".join(map(str, c)) for c in raw["choices"]))
        return Param(name, "fixed", (",".join(map(str, raw)),))
    if isinstance(raw, list):
        raw = {"choices": raw}
    if not isinstance(raw, dict):
        return Param(name, "fixed", (raw,))
    keys = set(raw)
    if keys == {"value"}:
        return Param(name, "fixed", (raw["value"],))
    if keys == {"choices"}:
        choices = raw["choices"]
        if not isinstance(choices, list) or not choices:
            raise ConfigError(f"{where}.choices={choices!r} is invalid: allowed a non-empty list")
        return Param(name, "choice", tuple(choices))
    allowed = {"low", "high", "step", "log"}
    if not {"low", "high"} <= keys or keys - allowed:
        raise ConfigError(
            f"{where}={raw!r} is invalid: allowed a value, a list of choices, "
            "{choices: [...]}, or {low, high[, step][, log]}"
        )
    low, high, step, log = raw["low"], raw["high"], raw.get("step"), bool(raw.get("log", False))
    nums = [v for v in (low, high, step) if v is not None]
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in nums):
        raise ConfigError(f"{where}: low, high and step must be numbers, got {raw!r}")
    if not low < high:
        raise ConfigError(f"{where}: low={low} must be below high={high}")
    if log and (low <= 0 or step is not None):
        raise ConfigError(f"{where}: a log range needs low > 0 and no step, got {raw!r}")
    is_int = int_field or all(isinstance(v, int) for v in nums)
    if int_field and not all(isinstance(v, int) for v in nums):
        raise ConfigError(f"{where}: {name} is an integer field; low/high/step must be integers")
    return Param(name, "int" if is_int else "float", (), low, high, step, log)


def _parse_objective(raw: Any, where: str) -> Objective:
    if isinstance(raw, str):
        raw = {"metric": raw}
    if not isinstance(raw, dict) or "metric" not in raw:
        raise ConfigError(f"{where}={raw!r} is invalid: allowed a metric name or {{metric: ...}}")
    metric = raw["metric"]
    if metric not in METRICS:
        raise ConfigError(f"{where}.metric={metric!r} is invalid: allowed {list(METRICS)}")
    extra = set(raw) - {"metric", "bits", "hardware", "measured", "compression", "max", "min"}
    if extra:
        raise ConfigError(
            f"{where}: unknown key(s) {sorted(extra)}; allowed bits, hardware, measured, compression"
        )
    bits = raw.get("bits")
    if bits is not None and (
        metric != "model_bytes" or not isinstance(bits, int) or not 1 <= bits <= 32
    ):
        raise ConfigError(f"{where}.bits={bits!r} is invalid: allowed 1..32, on model_bytes only")
    hw = raw.get("hardware")
    if hw is not None and metric not in ("energy_pj", "latency_ms", "peak_activation_bytes"):
        raise ConfigError(f"{where}.hardware is for energy_pj / latency_ms, not {metric}")
    measured = bool(raw.get("measured", False))
    if measured and metric != "latency_ms":
        raise ConfigError(f"{where}.measured is for latency_ms only, not {metric}")
    return Objective(metric, bits, hw, measured, _parse_compression(raw, where, metric))


def _parse_compression(raw: dict, where: str, metric: str) -> tuple[float, int] | None:
    comp = raw.get("compression")
    if comp is None:
        return None
    ok = (
        metric == "model_bytes"
        and isinstance(comp, dict)
        and set(comp) <= {"sparsity", "bits"}
        and isinstance(comp.get("sparsity", 0.67), int | float)
        and 0 <= comp.get("sparsity", 0.67) < 1
        and comp.get("bits", 6) in range(2, 9)
    )
    if not ok:
        raise ConfigError(
            f"{where}.compression={comp!r} is invalid: allowed on model_bytes only, "
            "{sparsity: 0..1 (removed share, default 0.67), bits: 2..8 (default 6)}"
        )
    return (float(comp.get("sparsity", 0.67)), int(comp.get("bits", 6)))


def _parse_constraint(raw: Any, i: int) -> Constraint:
    where = f"constraints[{i}]"
    obj = _parse_objective(raw, where)
    has = [k for k in ("max", "min") if k in raw]
    if len(has) != 1:
        raise ConfigError(f"{where}={raw!r} is invalid: give exactly one of max or min")
    if obj.metric == "accuracy" and has != ["min"] or obj.metric != "accuracy" and has != ["max"]:
        raise ConfigError(
            f"{where}: {obj.metric} takes {'min' if obj.metric == 'accuracy' else 'max'}"
        )
    bound = parse_size(raw[has[0]], f"{where}.{has[0]}")
    return Constraint(obj, bound if has == ["max"] else None, bound if has == ["min"] else None)


_TOP = {
    "name",
    "model",
    "params",
    "objectives",
    "constraints",
    "costing",
    "search",
    "train",
    "final",
}


def space_from_dict(data: Any, default_name: str = "study") -> Space:
    """Parse and validate a space mapping (the YAML's content)."""
    from squeezelab.models.spec import SqueezeNetSpec, field_names

    if not isinstance(data, dict):
        raise ConfigError(f"a search space must be a mapping, got {type(data).__name__}")
    unknown = set(data) - _TOP
    if unknown:
        raise ConfigError(f"unknown top-level key(s) {sorted(unknown)}; allowed {sorted(_TOP)}")
    int_fields = {f.name for f in dataclasses.fields(SqueezeNetSpec) if f.type == "int"}
    raw_params = dict(data.get("params") or {})
    if "model" in data:
        raw_params["model"] = data["model"]
    params = {n: _parse_param(n, v, n in int_fields) for n, v in raw_params.items()}
    _check_models(params)
    objectives = [
        _parse_objective(o, f"objectives[{i}]")
        for i, o in enumerate(data.get("objectives") or ["accuracy"])
    ]
    keys = [o.key for o in objectives]
    if len(set(keys)) != len(keys):
        raise ConfigError(f"objectives {keys} repeat a metric")
    constraints = [_parse_constraint(c, i) for i, c in enumerate(data.get("constraints") or [])]
    costing = _section(data, "costing", {"hardware", "weight_bits", "activation_bits"})
    search = _section(data, "search", {"sampler", "trials", "max_candidates", "population", "seed"})
    sampler = search.get("sampler", "auto")
    if sampler not in SAMPLERS:
        raise ConfigError(f"search.sampler={sampler!r} is invalid: allowed {list(SAMPLERS)}")
    for k in ("trials", "max_candidates", "population"):
        v = search.get(k)
        if v is not None and (not isinstance(v, int) or v < 1):
            raise ConfigError(f"search.{k}={v!r} is invalid: allowed an integer >= 1")
    space = Space(
        name=str(data.get("name") or default_name),
        params=params,
        objectives=objectives,
        constraints=constraints,
        hardware=costing.get("hardware", "horowitz-45nm"),
        weight_bits=costing.get("weight_bits", 32),
        activation_bits=costing.get("activation_bits", 32),
        sampler=sampler,
        trials=search.get("trials", 20),
        max_candidates=search.get("max_candidates"),
        population=search.get("population"),
        seed=search.get("seed", 0),
        train=_section(data, "train", None),
        final=_section(data, "final", None) if data.get("final") is not None else None,
        raw=copy.deepcopy({"name": str(data.get("name") or default_name), **data}),
    )
    if sampler == "grid":
        space.grid()  # raises for a continuous dimension
    search_names = set(params) - {"model"}
    known = set(field_names()) | {"model", "width_mult"}
    odd = sorted(search_names - known)
    if odd:
        raise ConfigError(
            f"params {odd} are unknown: allowed SqueezeNetSpec fields {field_names()}, model, width_mult"
        )
    return space


def _check_models(params: dict[str, Param]) -> None:
    from squeezelab.models import list_models, model_info

    p = params.get("model")
    for name in p.choices if p else ():
        try:
            model_info(name)
        except UnknownNameError:
            raise unknown_name("model (params.model)", name, list_models()) from None


def _section(data: dict, key: str, allowed: set[str] | None) -> dict[str, Any]:
    sec = data.get(key) or {}
    if not isinstance(sec, dict):
        raise ConfigError(f"{key}={sec!r} is invalid: allowed a mapping")
    if allowed is not None and set(sec) - allowed:
        raise ConfigError(
            f"{key}: unknown key(s) {sorted(set(sec) - allowed)}; allowed {sorted(allowed)}"
        )
    return dict(sec)


PRESET_DIR = Path(__file__).resolve().parent.parent / "presets"


def list_presets() -> list[str]:
    """Names of the search spaces shipped in ``squeezelab/presets``."""
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))


def load_space(path_or_preset: str | Path) -> Space:
    """Read a space from a YAML file or a preset name.

    Example:
        >>> load_space("paper-sr-sweep").sampler
        'grid'
    """
    import yaml

    path = Path(path_or_preset)
    if not path.is_file():
        if str(path_or_preset) not in list_presets():
            raise unknown_name("search space (file or preset)", str(path_or_preset), list_presets())
        path = PRESET_DIR / f"{path_or_preset}.yaml"
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from e
    return space_from_dict(data, default_name=path.stem)
