"""Second stage of a study: retrain its Pareto set at the full training budget.

Search trials train briefly (few epochs, a data subset) to rank candidates; the
front is then retrained with the space's ``final`` overrides and the results stored
in the study as user attrs ``final_<trial number>``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from squeezelab.errors import ConfigError
from squeezelab.explore.results import load_study_results
from squeezelab.explore.study import TrainFn, open_study, train_candidate


def retrain_front(
    storage: str | None, study_name: str | None, study_dir, train_fn: TrainFn | None = None
) -> Iterator[dict[str, Any]]:
    """Retrain every Pareto trial not yet retrained; yields one record per trial.

    Each record: ``{"number", "run_dir", "accuracy", "epoch_accuracy"}``; it is also saved
    in the study, so an interrupted second stage resumes where it stopped.
    """
    from squeezelab.explore.space import Candidate

    study_dir = Path(study_dir)
    study, space = open_study(None, storage, study_name, study_dir)
    if space.final is None:
        raise ConfigError(
            f"study {study.study_name!r}: the space has no 'final' section to retrain with"
        )
    res = load_study_results(storage or str(study_dir), study.study_name)
    train = {**space.train, **space.final}
    for tr in res["pareto_trials"]:
        if tr["final"] is not None:
            continue
        cand = Candidate(tr["model"], tr["spec"], tr["model_args"], (0, 0, 0))
        run_dir = study_dir / "final" / f"{tr['number']:05d}"
        acc = [float(r["val_acc"]) for r in (train_fn or train_candidate)(cand, train, run_dir)]
        rec = {
            "number": tr["number"],
            "run_dir": str(run_dir),
            "accuracy": max(acc),
            "epoch_accuracy": acc,
        }
        study.set_user_attr(f"final_{tr['number']}", rec)
        yield rec
