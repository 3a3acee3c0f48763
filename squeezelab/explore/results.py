"""A study read back as a :class:`~squeezelab.explore.records.StudyResults`.

:func:`load_study_results` is what ``study show``, the HTML report and ``design`` read.
The front is the non-dominated set (Deb et al. 2002) of the feasible trained trials.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from squeezelab.explore.records import (
    FinalRecord,
    StudyResults,
    TrialRecord,
    arch_from_attrs,
)


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


def _trial_record(
    t, final: dict[str, Any] | None, base: Path | None, score: str = "accuracy"
) -> TrialRecord:
    from optuna.trial import TrialState

    ua = t.user_attrs
    metrics = dict(ua.get("metrics") or {})
    metrics.setdefault(score, None)  # "accuracy", or "map50" in a study of detectors
    trained = bool(ua.get("trained"))
    duplicate = "duplicate_of" in ua  # PRUNED now, COMPLETE in studies before issue 17
    if not trained and not duplicate:
        metrics[score] = None
    state = {TrialState.FAIL: "failed"}.get(t.state, t.state.name.lower())
    if t.state == TrialState.COMPLETE:
        state = "trained" if trained else "duplicate" if duplicate else "infeasible"
    elif t.state == TrialState.PRUNED:  # a trained one was stopped at a rung (fidelity.py)
        state = "duplicate" if duplicate else "trained" if trained else "invalid"
    if final:
        final = {**final, "run_dir": resolve_run_dir(final.get("run_dir"), base)}
    return TrialRecord(
        number=t.number,
        state=state,
        params=dict(t.params),
        arch=arch_from_attrs(ua.get("arch"), ua.get("spec")),  # "spec": studies before "arch"
        metrics=metrics,
        constraints=tuple(ua.get("constraints") or ()),
        feasible=bool(ua.get("feasible"))
        if state in ("trained", "infeasible", "duplicate")
        else False,
        run_dir=resolve_run_dir(ua.get("run_dir"), base),
        epoch_accuracy=tuple(ua.get("epoch_accuracy") or ()),
        invalid=ua.get("invalid"),
        retry_of=t.system_attrs.get("failed_trial"),
        duplicate_of=ua.get("duplicate_of"),
        screen_s=ua.get("screen_s"),
        train_s=ua.get("train_s"),
        final=FinalRecord.from_dict(final) if final else None,
        stopped=bool(ua.get("stopped")) and not duplicate,
    )


def resolve_run_dir(run_dir: str | None, base: Path | None) -> str | None:
    """A stored run dir as an absolute path: relative ones are relative to the study dir.

    Studies before issue 17 stored the path as given on the command line (relative to
    where ``explore`` ran); such a path is kept when it exists and ``base/run_dir`` does not.
    """
    if not run_dir:
        return None
    path = Path(run_dir)
    if path.is_absolute() or base is None:
        return str(path)
    if not (base / path).exists() and path.exists():
        return str(path.resolve())
    return str(base / path)


def _study_dir(url: str, study) -> Path | None:
    """What run dirs are relative to: the SQLite file's folder, else the recorded dir."""
    if url.startswith("sqlite:///"):
        return Path(url.removeprefix("sqlite:///")).resolve().parent
    recorded = study.user_attrs.get("study_dir")
    return Path(recorded) if recorded else None


def load_study_results(study_dir_or_url: str | Path, study_name: str | None = None) -> StudyResults:
    """Everything about a study, as typed records.

    Args:
        study_dir_or_url: a study directory (made by ``explore -o``; one whose study is in
            PostgreSQL points to it), ``sqlite:///FILE`` or ``postgresql://USER@HOST:PORT/DB``.
        study_name: the study; None when the storage holds exactly one.

    Returns:
        The :class:`StudyResults`; accuracy is ``None`` for untrained trials; run dirs are
        absolute (stored relative to the study dir);
        ``.to_dict()`` is the JSON of ``study show --json``.

    Example:
        >>> r = load_study_results("runs/sr-sweep")  # doctest: +SKIP
        >>> r.counts.trained  # doctest: +SKIP
        8
    """
    from squeezelab.explore.screen import ScreenReport
    from squeezelab.explore.storage import recorded_storage, storage_url
    from squeezelab.explore.study import open_study, trial_counts

    where = str(study_dir_or_url)
    pointer = None if "://" in where else recorded_storage(where)
    if pointer is not None:  # a study dir whose study lives elsewhere (PostgreSQL)
        where, study_name = pointer[0], study_name or pointer[1]
    is_url = "://" in where
    study, space = open_study(None, where, study_name, None if is_url else where)
    attrs = study.user_attrs
    base = _study_dir(storage_url(where), study)
    stored = study.get_trials(deepcopy=False)
    trials = [
        _trial_record(t, attrs.get(f"final_{t.number}"), base, space.score_key) for t in stored
    ]
    trials = _with_twin_results(_with_promotions(trials, stored))
    keys = [o.key for o in space.objectives]
    dirs = space.directions
    ok = [
        tr
        for tr in trials
        if tr.state == "trained" and tr.feasible and all(_finite(tr.metrics.get(k)) for k in keys)
    ]
    front = [ok[i] for i in pareto_front([[tr.metrics[k] for k in keys] for tr in ok], dirs)]
    sign = [-1 if d == "maximize" else 1 for d in dirs]
    front.sort(key=lambda tr: [tr.metrics[k] * s for k, s in zip(keys, sign, strict=True)])
    screen = attrs.get("screen")
    return StudyResults(
        study=study.study_name,
        storage=storage_url(where),
        space=space,
        trials=tuple(trials),
        pareto=tuple(tr.number for tr in front),
        counts=trial_counts(study),
        screen=ScreenReport.from_dict(screen) if screen else None,
    )


def _with_promotions(trials: list[TrialRecord], stored) -> list[TrialRecord]:
    """A paused trial that was promoted (explore/fidelity.py) is a duplicate of the last
    trial of its chain, which trained the same run dir further; so are its duplicates."""
    import dataclasses

    from squeezelab.explore.fidelity import promotion_ends

    ends = promotion_ends(stored)
    out = []
    for tr in trials:
        if tr.number in ends:
            end = ends[tr.number]
            tr = dataclasses.replace(tr, state="duplicate", duplicate_of=end, stopped=False)
        elif tr.duplicate_of in ends:
            tr = dataclasses.replace(tr, duplicate_of=ends[tr.duplicate_of])
        out.append(tr)
    return out


def _with_twin_results(trials: list[TrialRecord]) -> list[TrialRecord]:
    """Duplicates carrying their twin's result: one drawn while the twin was still
    training (by another worker) stored none (explore/trial.py)."""
    import dataclasses

    trained = {tr.number: tr for tr in trials if tr.state == "trained"}
    out = []
    for tr in trials:
        twin = trained.get(tr.duplicate_of) if tr.state == "duplicate" else None
        if twin is not None:
            tr = dataclasses.replace(
                tr,
                metrics=dict(twin.metrics),
                constraints=twin.constraints,
                feasible=twin.feasible,
                run_dir=twin.run_dir,
                epoch_accuracy=twin.epoch_accuracy,
            )
        out.append(tr)
    return out


def _finite(v: Any) -> bool:
    return isinstance(v, int | float) and math.isfinite(v)
