"""Reading a search space: parse and check its YAML mapping, errors naming the field.

Every key a user can write is checked here; :func:`space_from_dict` returns the
:class:`~squeezelab.explore.space.Space` that sampling works on.
"""

from __future__ import annotations

import copy
import dataclasses
import re
from typing import Any

from squeezelab.errors import ConfigError, UnknownNameError, unknown_name
from squeezelab.explore.config import SAMPLERS  # one list: --sampler's choices and the YAML's
from squeezelab.explore.fidelity import parse_fidelity
from squeezelab.explore.space import (
    METRICS,
    SCORES,
    TASK_SCORE,
    TRAIN_PARAMS,
    Constraint,
    Objective,
    Param,
    Space,
    space_task,
)

_SIZE_UNITS = {"b": 1, "kb": 1000, "kib": 1024, "mb": 1000**2, "mib": 1024**2, "gb": 1000**3}


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
    score = obj.metric in SCORES  # a score has a floor, a cost a ceiling
    if score and has != ["min"] or not score and has != ["max"]:
        raise ConfigError(f"{where}: {obj.metric} takes {'min' if score else 'max'}")
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
    int_fields |= set(TRAIN_PARAMS)  # seed
    raw_params = dict(data.get("params") or {})
    if "model" in data:
        raw_params["model"] = data["model"]
    params = {n: _parse_param(n, v, n in int_fields) for n, v in raw_params.items()}
    _check_models(params)
    task = space_task(params)
    objectives = [
        _parse_objective(o, f"objectives[{i}]")
        for i, o in enumerate(data.get("objectives") or [TASK_SCORE[task]])
    ]
    keys = [o.key for o in objectives]
    if len(set(keys)) != len(keys):
        raise ConfigError(f"objectives {keys} repeat a metric")
    constraints = [_parse_constraint(c, i) for i, c in enumerate(data.get("constraints") or [])]
    _check_scores(objectives, constraints, task)
    costing = _section(data, "costing", {"hardware", "weight_bits", "activation_bits"})
    search = _section(
        data, "search", {"sampler", "trials", "max_candidates", "population", "seed", "fidelity"}
    )
    sampler = search.get("sampler", "auto")
    if sampler not in SAMPLERS:
        raise ConfigError(f"search.sampler={sampler!r} is invalid: allowed {list(SAMPLERS)}")
    for k in ("trials", "max_candidates", "population"):
        v = search.get(k)
        if v is not None and (not isinstance(v, int) or v < 1):
            raise ConfigError(f"search.{k}={v!r} is invalid: allowed an integer >= 1")
    train = _section(data, "train", None)
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
        train=train,
        fidelity=parse_fidelity(search.get("fidelity"), train, len(objectives)),
        final=_section(data, "final", None) if data.get("final") is not None else None,
        raw=copy.deepcopy({"name": str(data.get("name") or default_name), **data}),
    )
    if sampler == "grid":
        space.grid()  # raises for a continuous dimension
    search_names = set(params) - {"model"}
    known = set(field_names()) | {"model", "width_mult", *TRAIN_PARAMS}
    odd = sorted(search_names - known)
    if odd:
        raise ConfigError(
            f"params {odd} are unknown: allowed SqueezeNetSpec fields {field_names()}, model, "
            "width_mult, seed (the training seed)"
        )
    seed = params.get("seed")
    if seed is not None and not all(_int(v) for v in seed.choices or (seed.low, seed.high)):
        raise ConfigError(f"params.seed={raw_params['seed']!r} is invalid: allowed integers")
    return space


def _int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _check_scores(objectives: list[Objective], constraints: list[Constraint], task: str) -> None:
    """The score a space ranks by is its task's: top-1 for classifiers, mAP@0.5 for detectors."""
    want = TASK_SCORE[task]
    for where, o in [
        *((f"objectives[{i}]", o) for i, o in enumerate(objectives)),
        *((f"constraints[{i}]", c.objective) for i, c in enumerate(constraints)),
    ]:
        if o.metric in SCORES and o.metric != want:
            raise ConfigError(
                f"{where}.metric={o.metric!r} ({SCORES[o.metric]}) is invalid for a space of "
                f"{task} models: allowed {want!r} ({SCORES[want]} on the validation split)"
            )


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
