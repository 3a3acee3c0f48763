"""Views of a study's :class:`~squeezelab.explore.StudyResults` for the report: trial
groups, the front, table rows, units.

Reads only the records of :func:`squeezelab.explore.load_study_results` (trials, pareto,
objectives, constraints, counts); it never computes a cost. Number formats follow the
units in the field names (``params``, ``macs``, ``*_bytes``, ``energy_pj``, ``latency_ms``);
a key with options, e.g. ``model_bytes[8bit]``, formats as its metric.
"""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any

from squeezelab.errors import FormatError, SqueezelabError

if TYPE_CHECKING:
    from squeezelab.explore import StudyResults, TrialRecord
# Cost metrics that explore records for every costed candidate, in display order.
COST_METRICS = ("params", "model_bytes", "macs", "energy_pj", "latency_ms", "peak_activation_bytes")

LABELS = {
    "accuracy": "accuracy",
    "map50": "mAP@0.5",
    "params": "parameters",
    "model_bytes": "model size",
    "macs": "MACs (multiply-adds)",
    "energy_pj": "energy per inference",
    "latency_ms": "latency per inference",
    "peak_activation_bytes": "peak activation memory",
    "tflm_arena_bytes": "TFLite Micro arena",
    "tflite_bytes": ".tflite file",
}


def as_results(results: Any) -> StudyResults:
    """``results`` as a StudyResults: the record itself, or its ``to_dict()`` JSON read back.

    Raises FormatError naming what is missing when a mapping is not that JSON.
    """
    from squeezelab.explore import StudyResults

    if isinstance(results, StudyResults):
        return results
    if not isinstance(results, dict):
        raise FormatError(f"study results must be a StudyResults, got {type(results).__name__}")
    missing = [k for k in ("trials", "pareto") if not isinstance(results.get(k), list)]
    if missing:
        raise FormatError(
            f"study results lack list field(s) {missing}; expected the StudyResults of "
            "squeezelab.explore.load_study_results or its to_dict()"
        )
    try:
        return StudyResults.from_dict(results)
    except FormatError:
        raise
    except (KeyError, TypeError, ValueError, SqueezelabError) as e:
        raise FormatError(f"study results: {e}; expected StudyResults.to_dict()") from None


def is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def metric(trial: TrialRecord, name: str) -> float | None:
    """A trial's metric value, or None when absent or not a finite number.

    ``"accuracy"`` is the trial's validation score: top-1, or a detector's mAP@0.5.
    """
    v = trial.accuracy if name == "accuracy" else trial.metrics.get(name)
    return v if is_number(v) else None


def score_label(results: StudyResults) -> str:
    """What a study's "accuracy" columns hold: ``accuracy`` (top-1) or ``mAP@0.5``."""
    return LABELS[results.space.score_key] if results.space is not None else "accuracy"


def is_trained(trial: TrialRecord) -> bool:
    return trial.state == "trained" and metric(trial, "accuracy") is not None


def is_infeasible(trial: TrialRecord) -> bool:
    """Costed, broke a constraint, never trained."""
    return trial.state == "infeasible"


def trained(results: StudyResults) -> list[TrialRecord]:
    return [t for t in results.trials if is_trained(t)]


def infeasible(results: StudyResults) -> list[TrialRecord]:
    return [t for t in results.trials if is_infeasible(t)]


def front(results: StudyResults) -> list[TrialRecord]:
    """The trials that ``results.pareto`` lists by number, best accuracy first."""
    from squeezelab.explore import TrialRecord

    by_number = {t.number: t for t in results.trials}
    members = [
        by_number.get(n) or TrialRecord(number=n, state="", params={}, arch=None, metrics={})
        for n in results.pareto
    ]

    def accuracy(t: TrialRecord) -> float:
        acc = metric(t, "accuracy")
        return -math.inf if acc is None else acc

    return sorted(members, key=accuracy, reverse=True)


def front_numbers(results: StudyResults) -> set:
    return set(results.pareto)


def objective_names(results: StudyResults) -> list[str]:
    return [o.key for o in results.objectives]


def cost_metrics(results: StudyResults) -> list[str]:
    """Cost keys with a value in some trial: objectives, constraints, then COST_METRICS."""
    names = objective_names(results)
    names += [c.key for c in results.constraints]
    names += list(COST_METRICS)
    scores = ("accuracy", "map50")  # the trial's score has its own column
    names = [n for i, n in enumerate(names) if n and n not in scores and n not in names[:i]]
    return [n for n in names if any(metric(t, n) is not None for t in results.trials)]


def constraint_limits(results: StudyResults, bound: str = "max") -> dict[str, float]:
    """``{metric: limit}`` for every constraint with a numeric ``bound`` (max or min)."""
    limits = ((c.key, getattr(c, bound)) for c in results.constraints)
    return {key: limit for key, limit in limits if is_number(limit)}


def base_metric(key: str) -> str:
    """``model_bytes[8bit]`` -> ``model_bytes``."""
    return key.split("[", 1)[0]


def label(key: str) -> str:
    """A human name for a metric key, e.g. ``model size [8bit]``."""
    base = base_metric(key)
    return LABELS.get(base, base) + key[len(base) :].replace("[", " [")


def _key(v: Any) -> str:
    return json.dumps(v, sort_keys=True, default=str)


def varied_params(results: StudyResults) -> list[str]:
    """Trial parameters that take more than one value, in the search space's order."""
    values: dict[str, set] = {}
    for t in results.trials:
        for k, v in t.params.items():
            values.setdefault(k, set()).add(_key(v))
    space = list(results.space.params)
    order = [k for k in space if k in values] + [k for k in values if k not in space]
    return [k for k in order if len(values[k]) > 1]


def fmt(name: str, value: Any) -> str:
    """Format one value for a human, with the unit its field name states.

    Example:
        >>> fmt("model_bytes", 4_992_000), fmt("accuracy", 0.8531), fmt("energy_pj", 2.5e6)
        ('4.76 MiB', '85.31 %', '2.5 µJ')
    """
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if not is_number(value):
        return value if isinstance(value, str) else _key(value)
    name = base_metric(name)
    if name.endswith("accuracy") or name == "map50":
        return f"{100 * value:.2f} %"
    from squeezelab.analysis.units import format_bytes, format_energy  # lazy: torch-free import

    if name.endswith("bytes"):  # the one size and energy formatters of CLI, report, advise
        return format_bytes(value)
    if name == "energy_pj":
        return format_energy(value)
    if _units(name):
        divisor, unit = display_unit(name, [value])
        return f"{_digits(value / divisor)} {unit}".rstrip()
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:.4g}"


def _digits(v: float) -> str:
    """Three significant digits, without exponent up to 999,999."""
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.3g}"


def _units(name: str) -> tuple[int, list[str]] | None:
    from squeezelab.analysis.units import BYTE_UNITS, ENERGY_UNITS

    if name.endswith("bytes"):
        return 1024, list(BYTE_UNITS)
    if name == "energy_pj":
        return 1000, list(ENERGY_UNITS)
    if name in ("params", "macs"):
        return 1000, ["", "k", "M", "G", "T"]
    if name == "latency_ms":
        return 1000, ["ms"]
    return None


def display_unit(name: str, values: list[float]) -> tuple[float, str]:
    """``(divisor, unit)`` that shows the largest of ``values`` with 1 to 3 integer digits.

    Example:
        >>> display_unit("model_bytes", [200_000, 1_500_000]), display_unit("params", [5e4])
        ((1048576, 'MiB'), (1000, 'k'))
    """
    base, units = _units(base_metric(name)) or (1, [""])
    top = max((abs(v) for v in values), default=0.0)
    i = 0
    while top >= base ** (i + 1) and i < len(units) - 1:
        i += 1
    return base**i, units[i]


def front_table(results: StudyResults) -> tuple[list[str], list[dict]]:
    """Columns and rows of the front table: trial, varied parameters, accuracy, costs.

    When the study's second stage retrained the front, ``final_accuracy`` and
    ``final_run_dir`` come with each row (None where that member is not retrained yet).
    """
    costs = cost_metrics(results)
    params = varied_params(results)
    members = front(results)
    finals = any(t.final for t in members)
    columns = ["trial", *params, "accuracy", *(["final_accuracy"] if finals else []), *costs]
    rows = []
    for t in members:
        row = {"trial": t.number, "accuracy": metric(t, "accuracy")}
        if finals:
            acc = t.final.accuracy if t.final else None
            row["final_accuracy"] = acc if is_number(acc) else None
        row.update({c: metric(t, c) for c in costs})
        row.update({p: t.params.get(p) for p in params})
        row["run_dir"] = t.run_dir
        row["final_run_dir"] = t.final.run_dir if t.final else None
        rows.append(row)
    return columns, rows


def _architecture(trial: TrialRecord) -> dict:
    """The model name plus its SqueezeNetSpec fields, or its builder keywords (zoo peers)."""
    arch = {"model": trial.model} if trial.model else {}
    return {**arch, **(trial.spec or trial.model_args)}


def spec_table(results: StudyResults) -> tuple[list[str], list[dict]]:
    """Spec fields as rows, one column per front member; ``varies`` marks differing fields."""
    members = [(t, _architecture(t)) for t in front(results)]
    members = [(t, a) for t, a in members if a]
    fields: list[str] = []
    for _, arch in members:
        fields += [k for k in arch if k not in fields]
    rows = []
    for f in fields:
        cells = [arch.get(f) for _, arch in members]
        rows.append({"field": f, "cells": cells, "varies": len({_key(c) for c in cells}) > 1})
    return [f"#{t.number}" for t, _ in members], rows


def images_label(images: Any) -> str:
    """``"5,000 images"``, or ``"the training split"`` when no subset is set."""
    return f"{int(images):,} images" if is_number(images) else "the training split"


def _budget(epochs: Any, images: Any) -> str:
    n = f"{epochs} epoch{'s' if epochs != 1 else ''}" if is_number(epochs) else "its epochs"
    return f"{n} on {images_label(images)}"


def trial_epochs(trial: TrialRecord) -> int | None:
    """Epochs a trial trained: its per-epoch validation record (promotions train longer)."""
    return len(trial.epoch_accuracy) or None


def trial_budget(results: StudyResults, trial: TrialRecord | None = None) -> str:
    """Split and training budget of a trial's accuracy: ``validation, 1 epoch on 5,000 images``.

    Without ``trial``: the budget every trained trial shares, or the range of epochs when
    a multi-fidelity search trained them for different lengths.
    """
    train = results.space.train
    images = train.get("train_subset")
    if trial is not None:
        epochs = trial_epochs(trial) or train.get("epochs")
        return f"validation, {_budget(epochs, images)}"
    seen = sorted({e for t in trained(results) if (e := trial_epochs(t))})
    if len(seen) > 1:
        return f"validation, {seen[0]}–{seen[-1]} epochs on {images_label(images)}"
    return f"validation, {_budget(seen[0] if seen else train.get('epochs'), images)}"


def final_budget(results: StudyResults) -> str:
    """Split and budget of the study's retraining of the front (``final_accuracy``)."""
    final = {**results.space.train, **(results.space.final or {})}
    return f"validation, retrained {_budget(final.get('epochs'), final.get('train_subset'))}"
