"""Multi-objective studies on Optuna: screen analytically, train only what fits.

The systematic version of the hand sweeps of Iandola et al. 2016 (arXiv 1602.07360),
section 5. NSGA-II (Deb et al. 2002) by default for several objectives; every
candidate is costed first and an infeasible one is recorded through Optuna's
constraints (user attr ``constraints``) and never trained.
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from squeezelab.errors import ConfigError, SpecError
from squeezelab.explore.costs import cost_candidate, objective_values, violations
from squeezelab.explore.space import Candidate, Space, space_from_dict
from squeezelab.explore.storage import GRACE_S, HEARTBEAT_S, open_storage, quiet_experimental

# train_fn(candidate, train_config_fields, run_dir) yields per-epoch records with "val_acc"
TrainFn = Callable[[Candidate, dict[str, Any], Path], Iterator[dict[str, Any]]]
_SEARCH_KEYS = ("params", "model", "objectives", "constraints", "costing")


def train_candidate(candidate: Candidate, train: dict[str, Any], run_dir: Path) -> Iterator[dict]:
    """The real trainer: :func:`squeezelab.train.fit` on the candidate, resuming its run dir."""
    from squeezelab.train import TrainConfig, fit

    fields = {**train, "model": candidate.model, "spec": candidate.spec}
    if candidate.model_args:
        fields["model_args"] = candidate.model_args
    yield from fit(
        TrainConfig.from_dict(fields), run_dir, resume=(run_dir / "config.json").is_file()
    )


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


def _suggest(trial, space: Space) -> dict[str, Any]:
    out = {}
    for name, p in space.params.items():
        if p.kind == "fixed":
            continue
        if p.kind == "choice" or space.sampler == "grid":
            out[name] = trial.suggest_categorical(name, p.grid())
        elif p.kind == "int":
            out[name] = trial.suggest_int(
                name, int(p.low), int(p.high), step=int(p.step or 1), log=p.log
            )
        else:
            out[name] = trial.suggest_float(name, p.low, p.high, step=p.step, log=p.log)
    return out


@dataclass
class TrialRunner:
    """The Optuna objective: screen, then train the feasible (``screen=False`` trains all)."""

    space: Space
    out_dir: Path
    train_fn: TrainFn = train_candidate
    screen: bool = True

    def __call__(self, trial) -> list[float]:
        import optuna

        space = self.space
        values = _suggest(trial, space)
        try:
            cand = space.candidate(values)
            t0 = time.perf_counter()
            metrics = cost_candidate(space, cand)
        except SpecError as e:  # a hole in the space: not buildable, never trained
            trial.set_user_attr("invalid", str(e))
            trial.set_user_attr("constraints", [1.0] * len(space.constraints))
            raise optuna.TrialPruned(str(e)) from None
        trial.set_user_attr("screen_s", time.perf_counter() - t0)
        trial.set_user_attr("spec", cand.to_dict())
        trial.set_user_attr("metrics", metrics)
        viol = violations(space.constraints, metrics)
        trial.set_user_attr("constraints", viol)
        if self.screen and any(v > 0 for v in viol):
            trial.set_user_attr("feasible", False)
            trial.set_user_attr("trained", False)
            return objective_values(space.objectives, metrics)
        twin = _trained_twin(trial, values)
        if twin is not None:  # samplers redraw points; train each once, reuse its result
            for k in ("metrics", "constraints", "feasible", "run_dir", "epoch_accuracy"):
                trial.set_user_attr(k, twin.user_attrs.get(k))
            trial.set_user_attr("duplicate_of", twin.number)
            trial.set_user_attr("trained", False)
            return list(twin.values)
        run_dir = self.out_dir / "trials" / f"{trial.number:05d}"
        trial.set_user_attr("run_dir", str(run_dir))
        epoch_acc: list[float] = []
        t0 = time.perf_counter()
        for rec in self.train_fn(cand, space.train, run_dir):
            if rec.get("val_acc") is None:
                raise ConfigError(
                    f"train.val_fraction={space.train.get('val_fraction')!r} leaves no validation "
                    "split to rank candidates by; allowed: a share in (0, 1)"
                )
            epoch_acc.append(float(rec["val_acc"]))
            trial.set_user_attr("epoch_accuracy", epoch_acc)
        if not epoch_acc:
            raise ConfigError(f"train.epochs={space.train.get('epochs')!r} trained no epoch")
        metrics = {**metrics, **_trained_costs(space, cand, run_dir), "accuracy": max(epoch_acc)}
        viol = violations(space.constraints, metrics)
        trial.set_user_attr("train_s", time.perf_counter() - t0)
        trial.set_user_attr("metrics", metrics)
        trial.set_user_attr("constraints", viol)
        trial.set_user_attr("feasible", all(v <= 0 for v in viol))
        trial.set_user_attr("trained", True)
        return objective_values(space.objectives, metrics)


def _trained_twin(trial, values: dict[str, Any]):
    """A finished trained trial of the same study with the same parameters, or None."""
    from optuna.trial import TrialState

    key = _key(values)
    for t in trial.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        if t.user_attrs.get("trained") and _key(t.params) == key:
            return t
    return None


def _trained_costs(space: Space, cand: Candidate, run_dir: Path) -> dict[str, float]:
    """Costs that depend on the trained weights: the compressed file of best.safetensors."""
    comp = [o for o in space.metric_list() if o.compression]
    if not comp or not (run_dir / "best.safetensors").is_file():
        return {}
    from squeezelab.explore.costs import compressed_bytes
    from squeezelab.fileio import load_model_file

    model, _ = load_model_file(run_dir / "best.safetensors")
    return {o.key: compressed_bytes(model, cand, o.compression) for o in comp}


@dataclass
class Progress:
    """Trial counts of a study, as the stop rule and the CLI see them."""

    trained: int = 0
    infeasible: int = 0
    duplicate: int = 0
    invalid: int = 0
    failed: int = 0
    running: int = 0
    waiting: int = 0
    total: int = 0
    grid_done: set = field(default_factory=set)

    def to_dict(self) -> dict[str, int]:
        return {k: v for k, v in self.__dict__.items() if k != "grid_done"}


def progress(study) -> Progress:
    from optuna.trial import TrialState

    p = Progress()
    for t in study.get_trials(deepcopy=False):
        p.total += 1
        if t.state == TrialState.COMPLETE:
            if t.user_attrs.get("trained"):
                p.trained += 1
            elif "duplicate_of" in t.user_attrs:
                p.duplicate += 1
            else:
                p.infeasible += 1
            p.grid_done.add(_key(t.params))
        elif t.state == TrialState.PRUNED:
            p.invalid += 1
            p.grid_done.add(_key(t.params))
        elif t.state == TrialState.FAIL:
            p.failed += 1
        elif t.state == TrialState.RUNNING:
            p.running += 1
        elif t.state == TrialState.WAITING:
            p.waiting += 1
    return p


def _key(params: dict[str, Any]) -> tuple:
    return tuple(sorted((k, str(v)) for k, v in params.items()))


def is_done(space: Space, p: Progress) -> bool:
    """The budget is spent: every grid point, ``trials`` trained, every point of a finite
    space seen, or the candidate cap reached."""
    if p.waiting:
        return False
    if space.sampler == "grid":
        return all(_key(v) in p.grid_done for v in space.enumerate())
    size = space.size()
    if size is not None and len(p.grid_done) >= size:  # a finite space, every point seen
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


def prepare(study, space: Space, max_retry: int = 3) -> None:
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
            _key(t.params)
            for t in study.get_trials(deepcopy=False)
            if t.state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.WAITING)
        }
        have |= {_key(t.params) for t in trials if t.state == TrialState.RUNNING}
        for values in space.enumerate():
            if _key(values) not in have:
                study.enqueue_trial(values)


def run_worker(
    storage: str | None,
    study_name: str | None,
    out_dir,
    train_fn: TrainFn | None = None,
    seed: int | None = None,
    heartbeat_s: int = HEARTBEAT_S,
    grace_s: int = GRACE_S,
    on_trial: Callable[[Progress], None] | None = None,
    screen: bool = True,
) -> Progress:
    """Join a study and run trials until its budget is spent; returns the final counts.

    ``screen=False`` trains every candidate, feasible or not (the plain-search baseline of
    ``benchmarks/explore_efficiency.py``).

    Example:
        >>> run_worker("postgresql://u@db:5432/sq", "mcu-256k", "runs/mcu")  # doctest: +SKIP
    """
    import optuna

    out_dir = Path(out_dir)
    seed = os.getpid() if seed is None else seed
    study, space = open_study(None, storage, study_name, out_dir, heartbeat_s, grace_s, seed=seed)
    runner = TrialRunner(space, out_dir, train_fn or train_candidate, screen)
    while True:
        with quiet_experimental():
            optuna.storages.fail_stale_trials(study)
        p = progress(study)
        if is_done(space, p):
            return p
        if space.sampler == "grid" and not p.waiting:  # the rest runs elsewhere, or died there
            time.sleep(min(heartbeat_s, 5))
            continue
        with quiet_experimental():
            study.optimize(runner, n_trials=1, gc_after_trial=False)
        if on_trial:
            on_trial(progress(study))


def _worker_main(kwargs: dict[str, Any]) -> None:
    run_worker(**kwargs)


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
    study, space = open_study(space, storage, study_name, study_dir)
    if report is not None:
        study.set_user_attr("screen", report.to_dict())
    prepare(study, space)
    return study


def run_study(
    space: Space,
    study_dir,
    storage: str | None = None,
    study_name: str | None = None,
    workers: int = 1,
    train_fn: TrainFn | None = None,
    heartbeat_s: int = HEARTBEAT_S,
    grace_s: int = GRACE_S,
    check: bool = True,
    on_trial: Callable[[Progress], None] | None = None,
    screen: bool = True,
) -> Progress:
    """Create (or resume) the study of ``space`` in ``study_dir`` and run it to its budget.

    ``workers`` > 1 starts that many local worker processes on the same storage (use a
    PostgreSQL URL for several). Raises InfeasibleError before any training when the
    analytic screen finds no candidate that meets the constraints.

    Example:
        >>> from squeezelab.explore import load_space, run_study
        >>> run_study(load_space("paper-sr-sweep"), "runs/sr")  # doctest: +SKIP
    """
    study = init_study(space, study_dir, storage, study_name, check)
    kw = dict(storage=storage, study_name=study.study_name, out_dir=str(study_dir),
              train_fn=train_fn, heartbeat_s=heartbeat_s, grace_s=grace_s, screen=screen)  # fmt: skip
    if workers <= 1:
        return run_worker(**kw, seed=space.seed, on_trial=on_trial)
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_worker_main, args=({**kw, "seed": space.seed + i},))
             for i in range(workers)]  # fmt: skip
    for pr in procs:
        pr.start()
    for pr in procs:
        pr.join()
    bad = [pr.exitcode for pr in procs if pr.exitcode]
    if bad:
        raise ConfigError(
            f"{len(bad)} of {workers} workers failed (exit codes {bad}); see their stderr"
        )
    return progress(study)
