"""Worker processes: each joins a study and runs trials until its budget is spent.

:func:`run_study` creates (or resumes) a study and runs it in this process or in several
local ones; :func:`run_worker` is what ``squeezelab worker`` runs on any machine that
reaches the storage (PostgreSQL for many). Heartbeats let a dead worker's trial be retried.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from squeezelab.errors import ConfigError
from squeezelab.explore.records import TrialCounts
from squeezelab.explore.space import Space
from squeezelab.explore.storage import GRACE_S, HEARTBEAT_S, quiet_experimental
from squeezelab.explore.study import init_study, is_done, open_study, trial_counts
from squeezelab.explore.trial import TrainFn, TrialRunner, train_candidate


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
    runner = TrialRunner(space, out_dir, train_fn or train_candidate, screen)
    while True:
        with quiet_experimental():
            optuna.storages.fail_stale_trials(study)
        p = trial_counts(study)
        if is_done(space, p):
            return p
        if space.sampler == "grid" and not p.waiting:  # the rest runs elsewhere, or died there
            time.sleep(min(heartbeat_s, 5))
            continue
        with quiet_experimental():
            study.optimize(runner, n_trials=1, gc_after_trial=False)
        if on_trial:
            on_trial(trial_counts(study))


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
