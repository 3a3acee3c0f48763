"""The settings of a study run, one frozen dataclass whose fields the CLI turns into flags,
and :func:`explore`, the one call that runs them (``squeezelab explore`` calls it).

Light to import (no torch, no optuna): ``squeezelab --help`` reads the fields. Each field's
``metadata`` holds its help text and its bounds or choices; ``__post_init__`` checks those
same bounds, so a library caller meets the checks the CLI's flags apply while parsing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from squeezelab.errors import ConfigError
from squeezelab.explore.storage import GRACE_S, HEARTBEAT_S

if TYPE_CHECKING:
    from squeezelab.explore.records import FinalRecord, StudyResults, TrialCounts
    from squeezelab.explore.space import Space

SAMPLERS = ("auto", "nsga2", "tpe", "random", "grid")


def _f(default, help: str, min: int | None = None, choices: tuple | None = None):
    meta: dict[str, Any] = {"help": help}
    if min is not None:
        meta["min"] = min
    if choices is not None:
        meta["choices"] = choices
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class ExploreConfig:
    """How ``squeezelab explore`` runs a space: storage, workers and the YAML's overrides.

    ``None`` leaves the space's own value. ``heartbeat_s`` and ``grace_s`` are shared with
    ``squeezelab worker``.

    Example:
        >>> ExploreConfig(trials=4, epochs=1).overrides()
        {'search': {'trials': 4}, 'train': {'epochs': 1}}
    """

    storage: str | None = _f(
        None,
        "study storage URL (default: SQLite in the study directory); "
        "postgresql://USER@HOST:PORT/DB for many workers",
    )
    study: str | None = _f(None, "study name (default: the space's name)")
    workers: int = _f(1, "local worker processes", min=1)
    trials: int | None = _f(None, "trained trials (overrides search.trials)", min=1)
    sampler: str | None = _f(None, "overrides search.sampler", choices=SAMPLERS)
    epochs: int | None = _f(None, "epochs per trial (overrides train.epochs)", min=1)
    train_subset: int | None = _f(
        None, "training images per trial (overrides train.train_subset)", min=1
    )
    final: bool = _f(False, "then retrain the Pareto set with the space's 'final' budget")
    hardware: str | None = _f(
        None, "hardware profile name or YAML file (overrides costing.hardware)"
    )
    data: str | None = _f(None, "dataset each trial trains on (overrides train.data)")
    data_dir: str | None = _f(
        None, "folder holding the named dataset's files (overrides train.data_dir)"
    )
    heartbeat_s: int = _f(HEARTBEAT_S, "seconds between a worker's heartbeats", min=1)
    grace_s: int = _f(
        GRACE_S, "seconds without a heartbeat before a trial is marked failed and retried", min=1
    )

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value is None and "None" in str(f.type):
                continue
            kind = str(f.type).split("|")[0].strip()
            allowed = {"int": "an integer", "str": "a string", "bool": "true or false"}[kind]
            ok = {
                "int": isinstance(value, int) and not isinstance(value, bool),
                "str": isinstance(value, str) and bool(value),
                "bool": isinstance(value, bool),
            }[kind]
            lo, choices = f.metadata.get("min"), f.metadata.get("choices")
            if lo is not None:
                allowed, ok = f"an integer >= {lo}", ok and value >= lo
            if choices is not None:
                allowed, ok = f"one of {list(choices)}", ok and value in choices
            if not ok:
                raise ConfigError(f"{f.name}={value!r} is invalid: allowed {allowed}")

    def overrides(self) -> dict[str, dict[str, Any]]:
        """The space sections these settings replace (``Space.with_overrides`` keywords)."""
        sections = {
            "search": {"trials": self.trials, "sampler": self.sampler},
            "train": {
                "epochs": self.epochs,
                "train_subset": self.train_subset,
                "data": self.data,
                "data_dir": self.data_dir,
            },
            "costing": {"hardware": self.hardware},
        }
        kept = {k: {n: v for n, v in s.items() if v is not None} for k, s in sections.items()}
        return {k: s for k, s in kept.items() if s}

    def apply(self, space: Space) -> Space:
        """``space`` with :meth:`overrides` applied (checked again as a whole space)."""
        changes = self.overrides()
        return space.with_overrides(**changes) if changes else space

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def explore(
    space: Space | str | Path,
    study_dir,
    config: ExploreConfig | None = None,
    on_trial: Callable[[TrialCounts], None] | None = None,
    on_final: Callable[[FinalRecord], None] | None = None,
    train_fn=None,
) -> StudyResults:
    """Run (or resume) the study of ``space`` in ``study_dir`` with ``config``; its results.

    ``space`` is a :class:`Space`, a YAML file or a preset name. With ``config.final`` the
    Pareto set is then retrained at the space's ``final`` budget (``on_final`` sees each
    record). ``train_fn`` replaces the training of a candidate (tests, benchmarks).

    Example:
        >>> from squeezelab.explore import ExploreConfig, explore
        >>> res = explore("paper-sr-sweep", "runs/sr", ExploreConfig(trials=4))  # doctest: +SKIP
        >>> [t.number for t in res.pareto_trials]  # doctest: +SKIP
    """
    from squeezelab.explore.final import retrain_front
    from squeezelab.explore.presets import load_space
    from squeezelab.explore.results import load_study_results
    from squeezelab.explore.tasks import with_data
    from squeezelab.explore.workers import run_study

    config = config or ExploreConfig()
    if not isinstance(space, str | Path):
        space = config.apply(space)
    else:
        space = config.apply(load_space(space))
    space = with_data(space)  # a detector on detection data, at the canvases' geometry
    run_study(
        space,
        study_dir,
        storage=config.storage,
        study_name=config.study,
        workers=config.workers,
        train_fn=train_fn,
        heartbeat_s=config.heartbeat_s,
        grace_s=config.grace_s,
        on_trial=on_trial,
    )
    name = config.study or space.name
    if config.final:
        for rec in retrain_front(config.storage, name, study_dir, train_fn=train_fn):
            if on_final:
                on_final(rec)
    return load_study_results(config.storage or study_dir, name)
