"""What a study holds, as typed records: one trial, the trial counts, the whole study.

:class:`StudyResults` is what :func:`squeezelab.explore.load_study_results` returns and
what ``study show``, the HTML report and ``design`` read; ``to_dict()`` is the JSON of
``study show --json`` (the same layout as before these records existed).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from squeezelab.explore.screen import ScreenReport
from squeezelab.explore.space import Constraint, Objective, Space
from squeezelab.models import ModelMeta

STATES = ("trained", "infeasible", "duplicate", "invalid", "failed", "running", "waiting")


@dataclass(frozen=True)
class TrialStep:
    """Where one trial stands in a multi-fidelity study: what ``on_trial`` sees after each
    of its epochs (but the last, which ends the trial)."""

    number: int  # the trial
    epochs: int  # epochs trained so far
    rung: int  # rungs passed (0: before the first); at a rung, ``epochs`` is its epochs
    rungs: tuple[int, ...]  # the epoch counts of every rung
    max_epochs: int  # the full budget
    accuracy: float  # validation accuracy after ``epochs``
    promoted: bool  # goes on training (False: stopped at this rung)

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "rungs": list(self.rungs)}


@dataclass(frozen=True)
class TrialCounts:
    """How many trials of a study are in each state (what the stop rule and the CLI see).

    ``of`` and ``step`` are progress for ``on_trial``: the trained-trial budget (trial k
    of n is ``trained`` of ``of``) and, in a multi-fidelity study, the epoch just trained.
    """

    trained: int = 0
    infeasible: int = 0  # costed, broke a constraint, never trained
    duplicate: int = 0  # a point already trained; its result reused
    invalid: int = 0  # not a buildable architecture
    failed: int = 0
    running: int = 0
    waiting: int = 0  # queued grid points and retries
    total: int = 0
    stopped: int = 0  # of the trained: stopped at a rung, before the full budget
    seen: frozenset = field(default=frozenset(), repr=False, compare=False)  # finished points
    of: int = field(default=0, compare=False)  # trials to train (the space's search.trials)
    step: TrialStep | None = field(default=None, compare=False)  # the epoch just trained

    def to_dict(self) -> dict[str, int]:
        return {k: getattr(self, k) for k in (*STATES, "total", "stopped")}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TrialCounts:
        return cls(**{k: int(d.get(k) or 0) for k in (*STATES, "total", "stopped")})


@dataclass(frozen=True)
class FinalRecord:
    """A Pareto trial retrained at the full budget (the second stage of a study)."""

    number: int  # the trial it retrains
    run_dir: str
    accuracy: float  # best validation accuracy of the retraining
    epoch_accuracy: tuple[float, ...]

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "epoch_accuracy": list(self.epoch_accuracy)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> FinalRecord:
        return cls(
            int(d["number"]),
            str(d["run_dir"]),
            float(d["accuracy"]),
            tuple(float(x) for x in d.get("epoch_accuracy") or ()),
        )


@dataclass(frozen=True)
class TrialRecord:
    """One trial: the sampled point, its architecture, its costs and what training gave."""

    number: int
    state: str  # one of STATES
    params: Mapping[str, Any]  # the sampled values
    arch: ModelMeta | None  # the architecture; None when the point is not buildable
    # every cost and the score, "accuracy" or "map50" (None: not trained)
    metrics: Mapping[str, float | None]
    constraints: tuple[float, ...] = ()  # per constraint: > 0 violated (Optuna's convention)
    feasible: bool = False
    run_dir: str | None = None
    epoch_accuracy: tuple[float, ...] = ()  # validation accuracy per epoch
    invalid: str | None = None  # why the point is not buildable
    retry_of: int | None = None  # the failed trial this one retries
    duplicate_of: int | None = None  # the trained trial whose result this one reuses
    screen_s: float | None = None  # seconds the analytic costing took
    train_s: float | None = None  # seconds the training took
    final: FinalRecord | None = None  # the retraining at the full budget, if any
    stopped: bool = False  # multi-fidelity: stopped at a rung (len(epoch_accuracy) epochs)

    @property
    def accuracy(self) -> float | None:
        """The validation score: top-1 (``accuracy``), or a detector's mAP@0.5 (``map50``)."""
        m = self.metrics
        return m.get("accuracy") if "accuracy" in m or "map50" not in m else m["map50"]

    @property
    def model(self) -> str | None:
        """The zoo name of the architecture."""
        return self.arch.name if self.arch else None

    @property
    def spec(self) -> dict[str, Any] | None:
        """The architecture's SqueezeNetSpec fields (None outside the SqueezeNet family)."""
        return self.arch.spec.to_dict() if self.arch and self.arch.spec else None

    @property
    def model_args(self) -> dict[str, Any]:
        """The architecture's builder keywords (width knobs)."""
        return dict(self.arch.model_args) if self.arch else {}

    def to_dict(self) -> dict[str, Any]:
        """JSON; ``model``/``spec``/``model_args`` repeat ``arch`` for scripts that read them."""
        arch = self.arch
        return {
            "number": self.number,
            "state": self.state,
            "params": dict(self.params),
            "arch": arch.to_dict() if arch else None,
            "model": self.model,
            "spec": self.spec,
            "model_args": self.model_args,
            "metrics": dict(self.metrics),
            "constraints": list(self.constraints),
            "feasible": self.feasible,
            "run_dir": self.run_dir,
            "epoch_accuracy": list(self.epoch_accuracy),
            "invalid": self.invalid,
            "retry_of": self.retry_of,
            "duplicate_of": self.duplicate_of,
            "screen_s": self.screen_s,
            "train_s": self.train_s,
            "final": self.final.to_dict() if self.final else None,
            "stopped": self.stopped,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TrialRecord:
        """Read :meth:`to_dict`'s JSON (or that of a study written before ``arch`` existed)."""
        arch = arch_from_attrs(d.get("arch"), d)
        final = d.get("final")
        return cls(
            number=int(d["number"]),
            state=str(d["state"]),
            params=dict(d.get("params") or {}),
            arch=arch,
            metrics=dict(d.get("metrics") or {}),
            constraints=tuple(d.get("constraints") or ()),
            feasible=bool(d.get("feasible")),
            run_dir=d.get("run_dir"),
            epoch_accuracy=tuple(d.get("epoch_accuracy") or ()),
            invalid=d.get("invalid"),
            retry_of=d.get("retry_of"),
            duplicate_of=d.get("duplicate_of"),
            screen_s=d.get("screen_s"),
            train_s=d.get("train_s"),
            final=FinalRecord.from_dict(final) if final else None,
            stopped=bool(d.get("stopped")),
        )


def arch_from_attrs(arch: Any, old: Any = None) -> ModelMeta | None:
    """The architecture of a trial: ``arch`` (a ModelMeta dict), else the old layout.

    Studies written before ``arch`` existed hold ``{"model", "spec", "model_args"}`` (the
    trial user attr ``spec``), with ``num_classes``/``in_chans`` of non-SqueezeNet models
    inside ``model_args``.
    """
    if arch:
        return ModelMeta.from_dict(arch, where="trial arch")
    if not isinstance(old, Mapping) or not old.get("model"):
        return None
    args = dict(old.get("model_args") or {})
    d = {"model": old["model"], "model_args": args}
    if old.get("spec"):
        d["spec"] = old["spec"]
    for k in ("num_classes", "in_chans", "input_size"):
        if k in args:
            d[k] = args.pop(k)
    return ModelMeta.from_dict(d, where="trial spec")


@dataclass(frozen=True)
class StudyResults:
    """Everything about a study: its space, every trial, the Pareto front, the counts."""

    study: str  # the study name
    storage: str  # its storage URL
    space: Space  # the space it searched (objectives, constraints, params)
    trials: tuple[TrialRecord, ...]
    pareto: tuple[int, ...]  # trial numbers on the front, best first
    counts: TrialCounts
    screen: ScreenReport | None = None  # the analytic screen run before training

    @property
    def objectives(self) -> list[Objective]:
        return list(self.space.objectives)

    @property
    def constraints(self) -> list[Constraint]:
        return list(self.space.constraints)

    @property
    def pareto_trials(self) -> list[TrialRecord]:
        """The front's trials, in the order of :attr:`pareto`."""
        by_number = {t.number: t for t in self.trials}
        return [by_number[n] for n in self.pareto]

    def trial(self, number: int) -> TrialRecord:
        return next(t for t in self.trials if t.number == number)

    def to_dict(self) -> dict[str, Any]:
        """The JSON of ``study show --json``."""
        return {
            "study": self.study,
            "storage": self.storage,
            "objectives": [
                {"name": o.key, "metric": o.metric, "direction": o.direction}
                for o in self.space.objectives
            ],
            "constraints": [c.to_dict() for c in self.space.constraints],
            "space": self.space.to_dict(),
            "trials": [t.to_dict() for t in self.trials],
            "pareto": list(self.pareto),
            "pareto_trials": [t.to_dict() for t in self.pareto_trials],
            "counts": self.counts.to_dict(),
            "screen": self.screen.to_dict() if self.screen else None,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> StudyResults:
        """Read :meth:`to_dict`'s JSON back."""
        from squeezelab.explore.space_checks import space_from_dict

        screen = d.get("screen")
        return cls(
            study=str(d["study"]),
            storage=str(d.get("storage") or ""),
            space=space_from_dict(d["space"], str(d["study"])),
            trials=tuple(TrialRecord.from_dict(t) for t in d.get("trials") or ()),
            pareto=tuple(int(n) for n in d.get("pareto") or ()),
            counts=TrialCounts.from_dict(d.get("counts") or {}),
            screen=ScreenReport.from_dict(screen) if screen else None,
        )
