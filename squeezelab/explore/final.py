"""Second stage of a study: retrain its Pareto set at the full training budget.

Search trials train briefly (few epochs, a data subset) to rank candidates; the
front is then retrained with the space's ``final`` overrides and the results stored
in the study as user attrs ``final_<trial number>``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from squeezelab.errors import ConfigError
from squeezelab.explore.records import FinalRecord
from squeezelab.explore.results import load_study_results
from squeezelab.explore.space import Candidate
from squeezelab.explore.study import open_study
from squeezelab.explore.trial import TrainFn, train_candidate, val_acc


def retrain_front(
    storage: str | None, study_name: str | None, study_dir, train_fn: TrainFn | None = None
) -> Iterator[FinalRecord]:
    """Retrain every Pareto trial not yet retrained; yields one record per trial.

    Each record is also saved in the study, so an interrupted second stage resumes where
    it stopped.
    """
    study_dir = Path(study_dir)
    study, space = open_study(None, storage, study_name, study_dir)
    if space.final is None:
        raise ConfigError(
            f"study {study.study_name!r}: the space has no 'final' section to retrain with"
        )
    res = load_study_results(storage or study_dir, study.study_name)
    for tr in res.pareto_trials:
        if tr.final is not None or tr.arch is None:
            continue
        train = {**space.train_for(tr.params), **space.final}
        rel = f"final/{tr.number:05d}"  # stored relative to the study dir, like trial run dirs
        run_dir = study_dir / rel
        records = (train_fn or train_candidate)(Candidate(tr.arch), train, run_dir)
        acc = tuple(float(val_acc(r)) for r in records)
        rec = FinalRecord(tr.number, str(run_dir.resolve()), max(acc), acc)
        study.set_user_attr(f"final_{tr.number}", {**rec.to_dict(), "run_dir": rel})
        yield rec
