"""A study's lifecycle on Optuna: create or reopen it, queue its points, count its trials.

The systematic version of the hand sweeps of Iandola et al. 2016 (arXiv 1602.07360),
section 5. NSGA-II (Deb et al. 2002) by default for several objectives, TPE for one.
Worker processes that run the trials live in :mod:`squeezelab.explore.workers`.
"""

from __future__ import annotations

import warnings
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from squeezelab.errors import ConfigError
from squeezelab.explore.fidelity import make_pruner, next_promotion, promotion_ends
from squeezelab.explore.records import STATES, TrialCounts
from squeezelab.explore.space import Space
from squeezelab.explore.space_checks import space_from_dict
from squeezelab.explore.storage import (
    GRACE_S,
    HEARTBEAT_S,
    open_storage,
    quiet_experimental,
    storage_url,
)
from squeezelab.io.atomic import exclusive_lock

_SEARCH_KEYS = ("params", "model", "objectives", "constraints", "costing")


def claim_lock_path(storage: str | None, study_dir) -> Path | None:
    """The lock file that serialises claiming trials on a SQLite study (None: PostgreSQL).

    SQLite has no row locks, so two processes could pop the same queued trial or queue
    the same grid point; every SQLite worker takes this OS lock around its claims.
    """
    url = storage_url(storage, study_dir)
    return (
        Path(url.removeprefix("sqlite:///") + ".claim.lock") if url.startswith("sqlite:") else None
    )


def claim_lock(storage: str | None, study_dir):
    """A context holding :func:`claim_lock_path` (waiting for other workers), or nothing."""
    path = claim_lock_path(storage, study_dir)
    return exclusive_lock(path, f"study {path}", wait=True) if path else nullcontext()


def _constraints(trial) -> list[float]:
    return list(trial.user_attrs.get("constraints", ()))


def make_sampler(space: Space, seed: int | None = None):
    """NSGA-II for several objectives, TPE for one, or the sampler the space names."""
    import optuna

    seed = space.seed if seed is None else seed
    kind = space.sampler
    if kind == "auto":
        kind = "nsga2" if len(space.objectives) > 1 else "tpe"
    if kind in ("random", "grid"):  # grid points are enqueued; random covers retries only
        return optuna.samplers.RandomSampler(seed=seed)
    # constraints_func works on Optuna 4 and 5 (5 deprecates it for Trial.set_constraint)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        if kind == "tpe":
            return optuna.samplers.TPESampler(seed=seed, constraints_func=_constraints)
        pop = space.population or max(4, min(50, space.trials // 2))
        return optuna.samplers.NSGAIISampler(
            population_size=pop, seed=seed, constraints_func=_constraints
        )


def trial_counts(study) -> TrialCounts:
    """How many trials of ``study`` are in each state, and which points are finished."""
    from optuna.trial import TrialState

    n = dict.fromkeys(STATES, 0)
    seen, stopped = set(), 0
    trials = study.get_trials(deepcopy=False)
    promoted = promotion_ends(trials)  # paused, then continued: counted in the continuation
    for t in trials:
        if t.number in promoted:
            n["duplicate"] += 1
            seen.add(point_key(t.params))
            continue
        stopped += bool(t.user_attrs.get("stopped")) and "duplicate_of" not in t.user_attrs
        if t.state == TrialState.COMPLETE:
            if t.user_attrs.get("trained"):
                n["trained"] += 1
            elif "duplicate_of" in t.user_attrs:
                n["duplicate"] += 1
            else:
                n["infeasible"] += 1
            seen.add(point_key(t.params))
        elif t.state == TrialState.PRUNED:  # a duplicate (explore/trial.py), not buildable,
            # or stopped at a rung (explore/fidelity.py): trained, to fewer epochs
            ua = t.user_attrs
            kind = "duplicate" if "duplicate_of" in ua else "trained" if ua.get("trained") else None
            n[kind or "invalid"] += 1
            seen.add(point_key(t.params))
        elif t.state == TrialState.FAIL:
            n["failed"] += 1
        elif t.state == TrialState.RUNNING:
            n["running"] += 1
        elif t.state == TrialState.WAITING:
            n["waiting"] += 1
    return TrialCounts(**n, total=len(trials), stopped=stopped, seen=frozenset(seen))


def promote_paused(study, space: Space) -> int | None:
    """ASHA's first choice of work: queue the continuation of a paused trial that has
    become promotable (:func:`~squeezelab.explore.fidelity.next_promotion`); returns the
    paused trial's number, None when there is none (then a new candidate starts).

    The continuation is a new WAITING trial of the same point, ``promoted_from`` the paused
    one, carrying its run dir and curve: the next ``optimize`` resumes that checkpoint.
    Hold the claim lock (SQLite) around this and the ``optimize`` that takes it.
    """
    fid = space.fidelity
    if fid is None or not fid.pauses:
        return None
    t = next_promotion(study.get_trials(deepcopy=False), fid, space.objectives)
    if t is None:
        return None
    import optuna

    ua = t.user_attrs
    attrs = {"promoted_from": t.number, "run_dir": ua["run_dir"]}
    # its curve and costs rank it at the rungs while it waits (fidelity.rung_points)
    attrs |= {k: ua[k] for k in ("epoch_accuracy", "metrics") if k in ua}
    study.add_trial(
        optuna.trial.create_trial(
            state=optuna.trial.TrialState.WAITING,
            params=t.params,
            distributions=t.distributions,
            user_attrs=attrs,
        )
    )
    return t.number


def point_key(params: dict[str, Any]) -> tuple:
    """A hashable key of a point's values (to find a point already seen)."""
    return tuple(sorted((k, str(v)) for k, v in params.items()))


def trial_budget(space: Space) -> int:
    """How many trials the study trains: every grid point, else ``trials`` (at most the
    points of a finite space)."""
    size = space.size()
    if space.sampler == "grid":
        return size or space.trials
    return min(space.trials, size) if size is not None else space.trials


def is_done(space: Space, p: TrialCounts) -> bool:
    """The budget is spent: every grid point, ``trials`` trained, every point of a finite
    space seen, or the candidate cap reached."""
    if p.waiting:
        return False
    if space.sampler == "grid":
        return all(point_key(v) in p.seen for v in space.enumerate())
    size = space.size()
    if size is not None and len(p.seen) >= size:  # a finite space, every point seen
        return True
    cap = space.max_candidates or 50 * space.trials
    return p.trained >= space.trials or p.trained + p.infeasible + p.invalid + p.duplicate >= cap


def open_study(
    space: Space | None,
    storage: str | None,
    study_name: str | None,
    study_dir,
    heartbeat_s: int = HEARTBEAT_S,
    grace_s: int = GRACE_S,
    seed: int | None = None,
):
    """Create or load a study; a stored space must match ``space`` (None: use the stored one).

    Returns ``(study, space)``.
    """
    import optuna

    from squeezelab.explore.storage import storage_url

    url = storage_url(storage, study_dir)
    given = space is not None
    if not given and url.startswith("sqlite:///") and not Path(url[10:]).is_file():
        raise ConfigError(f"no study at {url[10:]!r}: allowed a study directory made by explore")
    st = open_storage(storage, study_dir, heartbeat_s, grace_s)
    name = study_name or (space.name if space else None)
    if not given:
        names = [s.study_name for s in optuna.get_all_study_summaries(st)]
        if name is None and len(names) == 1:
            name = names[0]
        if name not in names:
            raise ConfigError(f"--study={name!r} is not in the storage; studies there: {names}")
        stored = optuna.load_study(study_name=name, storage=st).user_attrs.get("space")
        if stored is None:
            raise ConfigError(f"study {name!r} was not made by squeezelab explore (no space)")
        space = space_from_dict(stored, name)
    study = optuna.create_study(
        storage=st,
        study_name=name,
        directions=space.directions,
        sampler=make_sampler(space, seed),
        pruner=make_pruner(space.fidelity, space.objectives),
        load_if_exists=True,
    )
    stored = study.user_attrs.get("space")
    if stored is None:
        study.set_user_attr("space", space.to_dict())
    elif {k: stored.get(k) for k in _SEARCH_KEYS} != {k: space.raw.get(k) for k in _SEARCH_KEYS}:
        raise ConfigError(
            f"study {name!r} in {st.url} was made from a different search space "
            "(params/objectives/constraints/costing differ); allowed: the same space to resume, "
            "or a new --study name / -o directory"
        )
    elif given and stored != space.to_dict():  # budget and training may change on resume
        study.set_user_attr("space", space.to_dict())
    return study, space


def queue_pending(study, space: Space, max_retry: int = 3) -> None:
    """Queue the grid's missing points and retry interrupted trials (one process, at start)."""
    from optuna.storages import RetryHeartbeatStaleTrialCallback
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    retried = {n for t in trials for n in t.system_attrs.get("retry_history", ())}
    with quiet_experimental():
        retry = RetryHeartbeatStaleTrialCallback(max_retry=max_retry)
    for t in trials:
        if t.state == TrialState.FAIL and t.number not in retried:
            retry(study, t)
    if space.sampler == "grid":
        have = {
            point_key(t.params)
            for t in study.get_trials(deepcopy=False)
            if t.state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.WAITING)
        }
        have |= {point_key(t.params) for t in trials if t.state == TrialState.RUNNING}
        for values in space.enumerate():
            if point_key(values) not in have:
                study.enqueue_trial(values)


def init_study(
    space: Space,
    study_dir,
    storage: str | None = None,
    study_name: str | None = None,
    check: bool = True,
):
    """Screen the space, create (or reopen) its study, queue grid points and retries.

    Raises InfeasibleError before anything is stored when no candidate meets the
    constraints. Returns the Optuna study.
    """
    from squeezelab.explore.screen import check_feasible

    Path(study_dir).mkdir(parents=True, exist_ok=True)
    report = check_feasible(space) if check else None
    with claim_lock(storage, study_dir):  # two `explore` starting together queue once
        study, space = open_study(space, storage, study_name, study_dir)
        if report is not None:
            study.set_user_attr("screen", report.to_dict())
        _describe(study, space, storage, study_dir)
        queue_pending(study, space)
    return study


def _describe(study, space: Space, storage: str | None, study_dir) -> None:
    """Metric names (optuna-dashboard's axes), the study dir that run dirs are relative
    to, and a pointer from that dir to a study stored elsewhere (PostgreSQL)."""
    from squeezelab.explore.storage import record_storage, storage_url

    names = [o.key for o in space.objectives]
    with quiet_experimental():
        if study.metric_names != names:
            study.set_metric_names(names)
    study.set_user_attr("study_dir", str(Path(study_dir).resolve()))
    record_storage(study_dir, storage_url(storage, study_dir), study.study_name)
