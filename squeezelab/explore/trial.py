"""One trial of a study: sample a point, cost it, train it if it fits.

:class:`TrialRunner` is the Optuna objective. Every candidate is costed first; an
infeasible one is recorded through Optuna's constraints (user attr ``constraints``) and
never trained. The architecture is stored as the trial user attr ``arch`` (ModelMeta JSON).
Each metric is also its own user attr (sortable in optuna-dashboard); a point already
trained, or being trained by another worker, is recorded PRUNED with ``duplicate_of`` and
not trained, so it is never trained twice nor a second Pareto member.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from squeezelab.errors import ConfigError, SpecError
from squeezelab.explore.costs import cost_candidate, objective_values, violations
from squeezelab.explore.fidelity import (
    continuations,
    pareto_promotable,
    rung_competitors,
    rung_keys,
    rung_vector,
)
from squeezelab.explore.records import TrialStep
from squeezelab.explore.space import Candidate, Space
from squeezelab.explore.study import point_key
from squeezelab.train import EpochRecord

# train_fn(candidate, train_config_fields, run_dir) yields one EpochRecord per epoch
TrainFn = Callable[[Candidate, dict[str, Any], Path], Iterator[EpochRecord]]


def train_candidate(
    candidate: Candidate, train: dict[str, Any], run_dir: Path, data=None
) -> Iterator[EpochRecord]:
    """The real trainer: :func:`squeezelab.train.fit` on the candidate, resuming its run dir.

    ``data``: the training split already loaded (``fit``'s ``data``), e.g. by a design run.
    """
    from squeezelab.train import TrainConfig, fit

    fields = {**train, "model": candidate.model, "spec": candidate.spec}
    if candidate.model_args:
        fields["model_args"] = candidate.model_args
    config = TrainConfig.from_dict(fields)
    yield from fit(config, run_dir, resume=(run_dir / "config.json").is_file(), data=data)


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
    on_step: Callable[[TrialStep], None] | None = None  # each epoch of a fidelity study
    interrupt: Exception | None = None  # what on_step raised, for the worker to re-raise

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
        trial.set_user_attr("arch", cand.to_dict())
        _set_metrics(trial, metrics)
        viol = violations(space.constraints, metrics)
        trial.set_user_attr("constraints", viol)
        if self.screen and any(v > 0 for v in viol):
            trial.set_user_attr("feasible", False)
            trial.set_user_attr("trained", False)
            return objective_values(space.objectives, metrics)
        # samplers redraw points, and two workers may draw one point at once: train each
        # point once (a SQLite worker holds the claim lock here, so it sees every claim)
        _skip_if_twin(trial, _twin(trial, values))
        rel = f"trials/{trial.number:05d}"  # relative to the study dir: the study can move
        fid = space.fidelity
        # a retry (RetryHeartbeatStaleTrialCallback) carries the failed trial's user attrs,
        # a promotion (fidelity.next_promotion) the paused trial's run dir: that checkpoint
        # is resumed, not retrained
        resumed = fid is not None and bool(trial.user_attrs.get("run_dir"))
        if resumed:
            rel = trial.user_attrs["run_dir"]
        run_dir = self.out_dir / rel
        trial.set_user_attr("run_dir", rel)  # claims the point (see _twin)
        # without the claim lock (PostgreSQL) two trials may claim a point at once: of
        # those, the lowest number trains it; both wrote their claim before reading
        _skip_if_twin(trial, _twin(trial, values, below=trial.number))
        epoch_acc: list[float] = []
        # intermediate values are single-objective only in Optuna (learning curves in
        # optuna-dashboard); "epoch_accuracy" holds the same curve for every study
        report = [o.key for o in space.objectives] == [space.score_key]
        t0 = time.perf_counter()
        if resumed:
            epoch_acc = _resumed_curve(trial, run_dir)
            for i, acc in enumerate(epoch_acc, 1):  # the pruner sees the whole curve again
                if len(space.objectives) == 1:
                    trial.report(acc, step=i)
        records = self.train_fn(cand, space.train_for(values), run_dir)
        stopped = False
        try:
            for rec in records:
                acc = val_acc(rec)
                if acc is None:
                    raise ConfigError(
                        f"train.val_fraction={space.train.get('val_fraction')!r} leaves no "
                        "validation split to rank candidates by; allowed: a share in (0, 1)"
                    )
                epoch_acc.append(float(acc))
                trial.set_user_attr("epoch_accuracy", epoch_acc)
                if fid is not None:
                    if self._at_rung(trial, epoch_acc, metrics):
                        stopped = True
                        break
                elif report:
                    trial.report(epoch_acc[-1], step=len(epoch_acc) - 1)
        finally:
            close = getattr(records, "close", None)
            if close is not None:  # fit() writes its checkpoint before yielding: kept
                close()
        if not epoch_acc:
            raise ConfigError(f"train.epochs={space.train.get('epochs')!r} trained no epoch")
        # the best validation score: top-1 ("accuracy"), or mAP@0.5 ("map50") of a detector
        score = {space.score_key: max(epoch_acc)}
        metrics = {**metrics, **_trained_costs(space, cand, run_dir), **score}
        viol = violations(space.constraints, metrics)
        trial.set_user_attr("train_s", time.perf_counter() - t0)
        _set_metrics(trial, metrics)
        trial.set_user_attr("constraints", viol)
        trial.set_user_attr("feasible", all(v <= 0 for v in viol))
        trial.set_user_attr("trained", True)
        if fid is not None:
            trial.set_user_attr("stopped", stopped)
            if stopped and fid.pauses:  # ASHA: a later worker may promote it (resumes here)
                trial.set_user_attr("paused", True)
        if stopped and len(space.objectives) == 1:  # Optuna's idiom: a pruned trial
            raise optuna.TrialPruned(f"stopped at {len(epoch_acc)} epochs")
        return objective_values(space.objectives, metrics)

    def _at_rung(self, trial, epoch_acc: list[float], metrics: dict[str, Any]) -> bool:
        """After an epoch: whether the trial stops here (a rung it is not promoted from).

        After every epoch but the last, ``on_step`` sees a :class:`TrialStep`; if it raises
        (a caller's budget is spent) the trial stops here, recorded as stopped, and the
        error is kept in ``interrupt`` for the worker to raise once the trial is stored.
        """
        space, fid = self.space, self.space.fidelity
        epochs = len(epoch_acc)
        if len(space.objectives) == 1:
            trial.report(epoch_acc[-1], step=epochs)
        if epochs >= fid.max_epochs:  # the full budget: nothing left to stop
            return False
        if len(space.objectives) == 1:
            go_on = not trial.should_prune()
        elif epochs in fid.rungs:
            keys, dirs = rung_keys(space.objectives)
            mine = rung_vector(epoch_acc[-1], metrics, keys, dirs)
            others = rung_competitors(trial, epochs, keys, dirs)
            go_on = mine is None or pareto_promotable(
                mine, epoch_acc[-1], others, fid.eta, fid.quorum
            )
        else:
            go_on = True
        rung = sum(r <= epochs for r in fid.rungs)  # rungs passed (0: before the first)
        if epochs in fid.rungs:
            trial.set_user_attr("rung", rung)
        step = TrialStep(
            trial.number, epochs, rung, fid.rungs, fid.max_epochs, epoch_acc[-1], go_on
        )
        if self.on_step is not None:
            try:
                self.on_step(step)
            except Exception as e:  # the caller's stop: keep this rung's result first
                self.interrupt = e
                trial.set_user_attr("promoted", go_on)  # True: owed the rest (next_promotion)
                return True
        return not go_on


def _set_metrics(trial, metrics: dict[str, Any]) -> None:
    """``metrics`` as one dict (what the report reads) and each as its own user attr."""
    trial.set_user_attr("metrics", metrics)
    for k, v in metrics.items():
        trial.set_user_attr(k, v)


def _skip_if_twin(trial, twin) -> None:
    """Record ``trial`` as a duplicate of ``twin`` (raises TrialPruned); nothing if None.

    PRUNED, not COMPLETE: the twin is the Pareto member, in our report and in
    optuna-dashboard alike; this trial stays listed, pointing at it. A twin still
    training has no result yet: :func:`~squeezelab.explore.results.load_study_results`
    reads a duplicate's result from its twin.
    """
    import optuna

    if twin is None:
        return
    trial.set_user_attr("duplicate_of", twin.number)  # first: it withdraws any claim
    trial.set_user_attr("trained", False)
    if twin.user_attrs.get("trained"):
        for k in ("constraints", "feasible", "epoch_accuracy"):
            trial.set_user_attr(k, twin.user_attrs.get(k))
        _set_metrics(trial, twin.user_attrs.get("metrics") or {})
    trial.set_user_attr("run_dir", twin.user_attrs.get("run_dir"))
    raise optuna.TrialPruned(f"duplicate of trial {twin.number}")


def _twin(trial, values: dict[str, Any], below: int | None = None):
    """The trial that trains ``values`` in this study, or None.

    That is a finished trained trial, or a running one that claimed the point (set its
    ``run_dir``, not a duplicate); ``below``: only running ones numbered lower.
    """
    from optuna.trial import TrialState

    key = point_key(values)
    running = None
    states = (TrialState.COMPLETE, TrialState.RUNNING, TrialState.PRUNED)
    trials = trial.study.get_trials(deepcopy=False)
    # a paused trial being continued (fidelity.next_promotion) lives on in its continuation
    gone = {o for o, c in continuations(trials).items() if c.state != TrialState.WAITING}
    for t in trials:
        if t.number == trial.number or t.state not in states or t.number in gone:
            continue
        if point_key(t.params) != key:
            continue
        ua = t.user_attrs
        # PRUNED and trained: stopped at a rung (explore/fidelity.py), not a duplicate
        if t.state != TrialState.RUNNING and ua.get("trained") and "duplicate_of" not in ua:
            return t
        claimed = "run_dir" in ua and "duplicate_of" not in ua
        if t.state == TrialState.RUNNING and claimed and (below is None or t.number < below):
            running = running or t
    return running


def _resumed_curve(trial, run_dir: Path) -> list[float]:
    """The validation curve a resumed run dir already holds (the trainer yields only the
    epochs after it): its metrics.jsonl, else what the failed trial recorded."""
    if (run_dir / "metrics.jsonl").is_file():
        from squeezelab.train.records import read_metrics

        return [float(r.val_acc) for r in read_metrics(run_dir) if r.val_acc is not None]
    return [float(a) for a in trial.user_attrs.get("epoch_accuracy") or ()]


def _trained_costs(space: Space, cand: Candidate, run_dir: Path) -> dict[str, float]:
    """Costs that depend on the trained weights: the compressed file of best.safetensors."""
    comp = [o for o in space.metric_list() if o.compression]
    if not comp or not (run_dir / "best.safetensors").is_file():
        return {}
    from squeezelab.explore.costs import compressed_bytes
    from squeezelab.models import load_model

    model, _ = load_model(run_dir / "best.safetensors")
    return {o.key: compressed_bytes(model, cand, o.compression) for o in comp}


def val_acc(rec: EpochRecord | Mapping[str, Any]) -> float | None:
    """A record's validation accuracy; a train_fn of the old API yields dicts (one release)."""
    if isinstance(rec, Mapping):
        warnings.warn(
            "a train_fn yielding dicts is deprecated: yield squeezelab.train.EpochRecord",
            DeprecationWarning,
            stacklevel=3,
        )
        return rec.get("val_acc")
    return rec.val_acc
