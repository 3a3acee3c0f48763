"""Search spaces, objectives and constraints: the types, and sampling points from them.

The space generalises the hand sweeps of Iandola et al. 2016 (arXiv 1602.07360),
section 5: each SqueezeNetSpec field (and the model family, and a zoo member's width
knob) is fixed, a list of choices, or an int/float range (linear or log). Parsing and
checking a YAML mapping lives in :mod:`squeezelab.explore.space_checks`.
"""

from __future__ import annotations

import copy
import itertools
import math
from dataclasses import dataclass, field
from typing import Any

from squeezelab.errors import ConfigError, SpecError
from squeezelab.explore.fidelity import Fidelity
from squeezelab.models import ModelMeta

# the validation score a trial's training measures, by task: top-1 for a classifier,
# COCO mAP@0.5 on the validation canvases for a detector (train.detect.coco_map)
SCORES = {"accuracy": "top-1", "map50": "mAP@0.5"}
TASK_SCORE = {"classification": "accuracy", "detection": "map50"}

# metric -> direction; the scores are measured by training, the rest are costs
METRICS = {
    "accuracy": "maximize",
    "map50": "maximize",
    "params": "minimize",
    "model_bytes": "minimize",
    "macs": "minimize",
    "energy_pj": "minimize",
    "latency_ms": "minimize",
    "peak_activation_bytes": "minimize",
    # TFLite Micro's figures at 8-bit weights and activations (analysis.tflm_plan)
    "tflm_arena_bytes": "minimize",
    "tflite_bytes": "minimize",
}
# params that set a trial's training, not its architecture: a grid over ``seed`` repeats
# every point with each seed (the paper sweeps' seed spread, docs/reproduction.md)
TRAIN_PARAMS = ("seed",)


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
    """An upper bound on a metric (a score, ``accuracy`` or ``map50``, takes a lower
    bound, ``min``)."""

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
    """One point of the space, ready to build: the architecture as a :class:`ModelMeta`."""

    meta: ModelMeta  # name, spec (SqueezeNet family) or model_args (width knobs), input size

    @property
    def model(self) -> str:
        return self.meta.name

    @property
    def spec(self) -> dict[str, Any] | None:
        """The SqueezeNetSpec fields, or None outside the SqueezeNet family."""
        return self.meta.spec.to_dict() if self.meta.spec is not None else None

    @property
    def model_args(self) -> dict[str, Any]:
        return dict(self.meta.model_args)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return self.meta.input_shape

    def build(self):
        """The untrained nn.Module (through :func:`squeezelab.models.build_model`)."""
        from squeezelab.models import build_model

        try:
            return build_model(self.meta)
        except TypeError as e:
            raise SpecError(f"model {self.model!r} rejects {sorted(self.model_args)}: {e}") from e

    def to_dict(self) -> dict[str, Any]:
        """The architecture's ModelMeta JSON (what a trial stores as ``arch``)."""
        return self.meta.to_dict()


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
    fidelity: Fidelity | None = None  # multi-fidelity promotion (search.fidelity); None: off
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
            return Candidate(ModelMeta.for_spec(info.spec.replace(**over), name=name))
        args = {
            k: v
            for k, v in values.items()
            if k != "model" and k not in spec_fields and k not in TRAIN_PARAMS
        }
        dims = {"num_classes": info.num_classes, "in_chans": info.in_chans}
        dims.update({k: values[k] for k in dims if k in values})
        size = values.get("input_size", info.input_size)
        return Candidate(ModelMeta(name, **dims, input_size=size, model_args=args))

    def train_for(self, values: dict[str, Any]) -> dict[str, Any]:
        """The TrainConfig fields of the trial at ``values``: ``train`` with its TRAIN_PARAMS."""
        fixed = {n: p.choices[0] for n, p in self.params.items() if p.kind == "fixed"}
        picked = {k: v for k, v in {**fixed, **values}.items() if k in TRAIN_PARAMS}
        return {**self.train, **picked}

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

    @property
    def task(self) -> str:
        """``"detection"`` when the space searches detectors, else ``"classification"``."""
        return space_task(self.params)

    @property
    def score_key(self) -> str:
        """The validation score trials are ranked by: ``accuracy`` (top-1) for classifiers,
        ``map50`` (mAP@0.5) for detectors."""
        return TASK_SCORE[self.task]

    def to_dict(self) -> dict[str, Any]:
        """The YAML mapping this space was read from (what a study stores and reloads)."""
        return copy.deepcopy(self.raw)

    def with_overrides(self, **sections: dict[str, Any]) -> Space:
        """A copy with keys of top-level sections replaced, e.g. ``search={"trials": 4}``."""
        raw = copy.deepcopy(self.raw)
        for key, changes in sections.items():
            raw[key] = {**(raw.get(key) or {}), **changes}
        from squeezelab.explore.space_checks import space_from_dict

        return space_from_dict(raw, self.name)


def space_task(params: dict[str, Param]) -> str:
    """The task of the models ``params`` searches (ConfigError if it mixes the two).

    A zoo detector (``squeezedet_small``), or a SqueezeNet spec with ``head: convdet``.
    """
    from squeezelab.models import model_info

    p = params.get("model")
    names = p.choices if p is not None else ("squeezenet_small",)
    head = params.get("head")
    heads = set(head.choices) if head is not None else {None}
    tasks = set()
    for name in names:
        info = model_info(name)
        for h in heads:
            spec_head = h if h is not None else (info.spec.head if info.spec else None)
            det = info.task == "detection" if info.spec is None else spec_head == "convdet"
            tasks.add("detection" if det else "classification")
    if len(tasks) > 1:
        heads = f" with head {sorted(heads)}" if head is not None else ""
        raise ConfigError(
            f"params.model={list(names)}{heads} mixes classifiers and detectors: allowed one "
            "task per space (their scores, top-1 and mAP@0.5, differ)"
        )
    return tasks.pop()


def _parse_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in text.split(",") if x.strip())
