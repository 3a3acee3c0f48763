"""A study as plain data: trials, costs, per-epoch accuracy, the Pareto front, counts.

:func:`load_study_results` is what ``study show`` and the HTML report read. The front
is the non-dominated set (Deb et al. 2002) of the feasible trained trials.
"""

from __future__ import annotations

import math
from typing import Any

from squeezelab.explore.space import Space


def dominates(a: list[float], b: list[float], directions: list[str]) -> bool:
    """``a`` is no worse than ``b`` in every objective and better in one."""
    better = False
    for x, y, d in zip(a, b, directions, strict=True):
        if d == "maximize":
            x, y = -x, -y
        if x > y:
            return False
        better |= x < y
    return better


def pareto_front(points: list[list[float]], directions: list[str]) -> list[int]:
    """Indices of the non-dominated points (duplicates keep their first occurrence)."""
    front = []
    for i, p in enumerate(points):
        if any(
            dominates(q, p, directions) or (q == p and j < i)
            for j, q in enumerate(points)
            if j != i
        ):
            continue
        front.append(i)
    return front


def hypervolume(points: list[list[float]], directions: list[str], reference: list[float]) -> float:
    """Hypervolume dominated by ``points`` up to ``reference`` (Optuna's exact algorithm)."""
    import numpy as np
    from optuna._hypervolume import compute_hypervolume

    sign = np.array([-1.0 if d == "maximize" else 1.0 for d in directions])
    ref = np.asarray(reference, float) * sign
    pts = [np.asarray(p, float) * sign for p in points]
    pts = [p for p in pts if np.all(p < ref)]
    if not pts:
        return 0.0
    return float(compute_hypervolume(np.stack(pts), ref))


def _trial_dict(t, space: Space) -> dict[str, Any]:
    from optuna.trial import TrialState

    ua = t.user_attrs
    metrics = {k: v for k, v in (ua.get("metrics") or {}).items()}
    metrics.setdefault("accuracy", None)
    trained = bool(ua.get("trained"))
    if not trained and "duplicate_of" not in ua:
        metrics["accuracy"] = None
    state = {TrialState.FAIL: "failed"}.get(t.state, t.state.name.lower())
    if t.state == TrialState.COMPLETE:
        state = "trained" if trained else "duplicate" if "duplicate_of" in ua else "infeasible"
    elif t.state == TrialState.PRUNED:
        state = "invalid"
    spec = ua.get("spec") or {}
    return {
        "number": t.number,
        "state": state,
        "params": dict(t.params),
        "spec": spec.get("spec"),
        "model": spec.get("model"),
        "model_args": spec.get("model_args") or {},
        "metrics": metrics,
        "constraints": list(ua.get("constraints") or []),
        "feasible": bool(ua.get("feasible")) if t.state == TrialState.COMPLETE else False,
        "run_dir": ua.get("run_dir"),
        "epoch_accuracy": list(ua.get("epoch_accuracy") or []),
        "invalid": ua.get("invalid"),
        "retry_of": t.system_attrs.get("failed_trial"),
        "duplicate_of": ua.get("duplicate_of"),
        "screen_s": ua.get("screen_s"),
        "train_s": ua.get("train_s"),
        "final": None,
    }


def load_study_results(storage: str, study_name: str | None = None) -> dict[str, Any]:
    """Everything about a study as one JSON-ready dict.

    Args:
        storage: a study directory, ``sqlite:///FILE`` or ``postgresql://...``.
        study_name: the study; None when the storage holds exactly one.

    Returns:
        ``{"study", "storage", "objectives": [{"name", "direction"}], "constraints":
        [{"metric", "max"}], "space", "trials": [...], "pareto": [trial numbers],
        "pareto_trials": [...], "counts": {"trained", "infeasible", "duplicate", "invalid", "failed",
        "running", "total"}, "screen"}``; accuracy is ``None`` for untrained trials.

    Example:
        >>> r = load_study_results("runs/sr-sweep")  # doctest: +SKIP
        >>> r["counts"]["trained"]  # doctest: +SKIP
        8
    """
    from squeezelab.explore.storage import storage_url
    from squeezelab.explore.study import open_study

    study, space = open_study(None, storage, study_name, storage if "://" not in storage else None)
    trials = [_trial_dict(t, space) for t in study.get_trials(deepcopy=False)]
    finals = {k: v for k, v in study.user_attrs.items() if k.startswith("final_")}
    for tr in trials:
        tr["final"] = finals.get(f"final_{tr['number']}")
    keys = [o.key for o in space.objectives]
    dirs = space.directions
    ok = [
        tr for tr in trials
        if tr["state"] == "trained" and tr["feasible"]
        and all(_finite(tr["metrics"].get(k)) for k in keys)
    ]  # fmt: skip
    front = [ok[i] for i in pareto_front([[tr["metrics"][k] for k in keys] for tr in ok], dirs)]
    front.sort(
        key=lambda tr: [
            tr["metrics"][k] * (-1 if d == "maximize" else 1)
            for k, d in zip(keys, dirs, strict=True)
        ]
    )
    counts = {
        s: sum(tr["state"] == s for tr in trials)
        for s in ("trained", "infeasible", "duplicate", "invalid", "failed", "running", "waiting")
    }
    counts["total"] = len(trials)
    return {
        "study": study.study_name,
        "storage": storage_url(storage),
        "objectives": [
            {"name": o.key, "metric": o.metric, "direction": o.direction} for o in space.objectives
        ],
        "constraints": [c.to_dict() for c in space.constraints],
        "space": space.to_dict(),
        "trials": trials,
        "pareto": [tr["number"] for tr in front],
        "pareto_trials": front,
        "counts": counts,
        "screen": study.user_attrs.get("screen"),
    }


def _finite(v: Any) -> bool:
    return isinstance(v, int | float) and math.isfinite(v)
