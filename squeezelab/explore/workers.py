"""Worker processes: each joins a study and runs trials until its budget is spent.

:func:`run_study` creates (or resumes) a study and runs it in this process or in several
local ones; :func:`run_worker` is what ``squeezelab worker`` runs on any machine that
reaches the storage (PostgreSQL for many). Heartbeats let a dead worker's trial be retried.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from squeezelab.errors import ConfigError
from squeezelab.explore.records import TrialCounts
from squeezelab.explore.space import Space
from squeezelab.explore.storage import GRACE_S, HEARTBEAT_S, quiet_experimental
from squeezelab.explore.study import (
    claim_lock,
    init_study,
    is_done,
    open_study,
    promote_paused,
    trial_budget,
    trial_counts,
)
from squeezelab.explore.trial import TrainFn, TrialRunner, train_candidate


class _Claim:
    """The claim lock of a study (SQLite only), held from picking a trial until training.

    Optuna's RDB storage relies on row locks to hand each queued trial to one worker;
    SQLite has none, so without this two workers could train the same point.
    """

    def __init__(self, storage: str | None, out_dir) -> None:
        self.storage, self.out_dir, self._held = storage, out_dir, None

    def acquire(self) -> None:
        if self._held is None:
            self._held = claim_lock(self.storage, self.out_dir)
            self._held.__enter__()

    def release(self) -> None:
        held, self._held = self._held, None
        if held is not None:
            held.__exit__(None, None, None)


def _released_on_start(train_fn: TrainFn, claim: _Claim) -> TrainFn:
    """``train_fn`` that lets the next worker claim once this trial is costed and named."""

    def train(candidate, fields, run_dir):
        claim.release()
        yield from train_fn(candidate, fields, run_dir)

    return train


def check_train_fields(space: Space) -> None:
    """Check a space's training fields as TrainConfig would, before any trial starts."""
    import dataclasses

    from squeezelab.train import TrainConfig

    known = {f.name for f in dataclasses.fields(TrainConfig)}
    fields = {k: v for k, v in space.train.items() if k in known}
    try:
        TrainConfig(**fields).resolved()
    except ConfigError as e:
        raise ConfigError(f"train.{e}") from None


def run_worker(
    storage: str | None,
    study_name: str | None,
    out_dir,
    train_fn: TrainFn | None = None,
    seed: int | None = None,
    heartbeat_s: int = HEARTBEAT_S,
    grace_s: int = GRACE_S,
    on_trial: Callable[[TrialCounts], None] | None = None,
    screen: bool = True,
) -> TrialCounts:
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
    # a failed trial's error reaches the caller (the CLI prints one line): no log traceback
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    claim = _Claim(storage, out_dir)

    def counts(step=None) -> TrialCounts:
        return dataclasses.replace(trial_counts(study), of=trial_budget(space), step=step)

    runner = TrialRunner(
        space,
        out_dir,
        _released_on_start(train_fn or train_candidate, claim),
        screen,
        on_step=(lambda step: on_trial(counts(step))) if on_trial else None,
    )
    while True:
        claim.acquire()
        try:
            with quiet_experimental():
                optuna.storages.fail_stale_trials(study)
            p = trial_counts(study)
            if promote_paused(study, space) is not None:  # ASHA: promotions before new work
                p = trial_counts(study)
            if is_done(space, p):
                return p
            if space.sampler == "grid" and not p.waiting:  # the rest runs elsewhere, or died
                claim.release()
                time.sleep(min(heartbeat_s, 5))
                continue
            with quiet_experimental():
                study.optimize(runner, n_trials=1, gc_after_trial=False)
        finally:
            claim.release()
        if runner.interrupt is not None:  # on_trial stopped a trial at a rung: stored, now raise
            raise runner.interrupt
        if on_trial:
            on_trial(counts())


def _worker_main(kwargs: dict[str, Any]) -> None:
    run_worker(**kwargs)


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
    on_trial: Callable[[TrialCounts], None] | None = None,
    screen: bool = True,
) -> TrialCounts:
    """Create (or resume) the study of ``space`` in ``study_dir`` and run it to its budget.

    ``workers`` > 1 starts that many local worker processes on the same storage (use a
    PostgreSQL URL for several). Raises InfeasibleError before any training when the
    analytic screen finds no candidate that meets the constraints.

    Example:
        >>> from squeezelab.explore import load_space, run_study
        >>> run_study(load_space("paper-sr-sweep"), "runs/sr")  # doctest: +SKIP
    """
    check_train_fields(space)
    study = init_study(space, study_dir, storage, study_name, check)
    kw = dict(
        storage=storage,
        study_name=study.study_name,
        out_dir=str(study_dir),
        train_fn=train_fn,
        heartbeat_s=heartbeat_s,
        grace_s=grace_s,
        screen=screen,
    )
    if workers <= 1:
        return run_worker(**kw, seed=space.seed, on_trial=on_trial)
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    procs = [
        ctx.Process(target=_worker_main, args=({**kw, "seed": space.seed + i},))
        for i in range(workers)
    ]
    for pr in procs:
        pr.start()
    for pr in procs:
        pr.join()
    bad = [pr.exitcode for pr in procs if pr.exitcode]
    if bad:
        raise ConfigError(
            f"{len(bad)} of {workers} workers failed (exit codes {bad}); see their stderr"
        )
    return trial_counts(study)
