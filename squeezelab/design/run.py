"""``design()``: run (or resume) the stages of the main job over one run context."""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path

from squeezelab.design.config import DesignConfig
from squeezelab.design.context import Event, RunContext
from squeezelab.design.records import STATE_FILE, DesignState, read_state
from squeezelab.design.stages import STAGES
from squeezelab.design.summary import DesignResult, summarize
from squeezelab.errors import ConfigError

RESUME_FREE = {"budget_minutes"}  # settings a resumed run may change
PICK_FREE = RESUME_FREE | {"pick"}  # settings a --pick run may differ in from its search


def run_folder(config: DesignConfig, out_dir) -> Path:
    """Where a run writes: ``OUT``, or ``OUT/pick-TRIAL`` for a ``--pick`` run."""
    out = Path(out_dir)
    return out if config.pick is None else out / f"pick-{config.pick}"


def check_pick(config: DesignConfig, out: Path) -> Path:
    """The study folder a ``--pick`` run reuses, after checking the search in ``out``.

    ``out`` must hold a finished explore stage run with the same settings (but the
    budget), and the trial must be a trained front member other than the one ``out``
    finished; else one ConfigError saying what to do.
    """
    from squeezelab.design.stages import pick_trial

    path = out / STATE_FILE
    state = read_state(path) if path.is_file() else None
    if state is None or "explore" not in state.stages:
        raise ConfigError(
            f"pick={config.pick}: {out} holds no finished search (no explore stage in "
            f"{path}); allowed: run `squeezelab design -o {out}` first, then --pick a "
            "member of its front"
        )
    diff = changed_settings(state, config, PICK_FREE)
    if diff:
        raise ConfigError(
            f"pick={config.pick}: {out} searched with other settings ({', '.join(diff)}); "
            "allowed: that run's settings plus --pick"
        )
    from squeezelab.explore import load_study_results

    study = load_study_results(str(out / "study"))
    pick_trial(study, config.pick, str(out / "study"), taken=state.stages["explore"].best.number)
    return out / "study"


def changed_settings(state: DesignState, config: DesignConfig, free: set[str]) -> list[str]:
    """The settings, but ``free``, in which ``config`` differs from the run ``state`` holds
    (the space as searched: a space left out and the data's default named are the same)."""
    from squeezelab.design.config import resolved_space

    now = config.to_dict()

    def value(settings: dict, key: str):
        return resolved_space(settings) if key == "space" else settings.get(key)

    return sorted(k for k in now if k not in free and value(state.config, k) != value(now, k))


def load_state(config: DesignConfig, out: Path, restart: bool = False) -> DesignState:
    """The state to continue from: a fresh one, or the folder's if its settings match."""
    path = out / STATE_FILE
    if restart or not path.is_file():
        # a relative OUT makes every recorded path relative to this working folder
        return DesignState(config.to_dict(), started_in=None if out.is_absolute() else os.getcwd())
    state = read_state(path)
    here = Path.cwd().resolve()
    if state.stages and state.started_in and Path(state.started_in).resolve() != here:
        raise ConfigError(
            f"{out} holds a design run started in {state.started_in}, whose files it records "
            f"relative to that folder; allowed: run the same command from {state.started_in}, "
            "or --restart here"
        )
    diff = changed_settings(state, config, RESUME_FREE)
    if diff:
        raise ConfigError(
            f"{out} holds a design run with other settings ({', '.join(diff)}); "
            "allowed: the same settings to resume it, or a new output directory"
        )
    state.config = config.to_dict()
    return state


def set_aside(out: Path) -> Path | None:
    """Move a previous run's files into ``OUT/previous-N`` so a restart starts clean."""
    entries = [p for p in out.iterdir() if not p.name.startswith("previous-")]
    if not entries:
        return None
    n = 1
    while (out / f"previous-{n}").exists():
        n += 1
    dest = out / f"previous-{n}"
    dest.mkdir()
    for p in entries:
        p.rename(dest / p.name)
    return dest


def design(
    config: DesignConfig, out_dir, on_event: Event | None = None, restart: bool = False
) -> DesignResult:
    """Run (or resume) the whole design workflow into ``out_dir``; returns the summary.

    Each stage of :data:`STAGES` is ``fn(ctx) -> Record``; its result is saved in
    ``OUT/design.json`` before the next one starts, so a killed run resumes after the last
    finished stage. ``restart`` moves a previous run's files to ``OUT/previous-N`` and
    runs every stage again.

    With ``config.pick`` set, ``out_dir`` is a finished run: no new search; its study's
    front member ``pick`` goes through retrain, compress, export, deploy, benchmark and
    report into ``OUT/pick-TRIAL`` (resumable the same way).

    ``on_event(ev)`` gets a dict per event, with ``"stage"`` and one of ``"message"``
    (text), ``"budget_left_s"`` (once, when the budget's clock starts: the seconds left),
    ``"progress"`` (explore: trial counts) or ``"record"``: retrain passes each
    :class:`~squeezelab.train.EpochRecord` (with ``"epochs"``, the planned total),
    compress each step record of :func:`~squeezelab.compress.compress_steps`
    (``FinetuneStep``, ``EvaluateStep``, ``EncodeStep``); ``to_dict()`` gives their JSON.
    For progress displays, explore's events add ``"of"`` (the trials to train) and
    ``"step"`` (a multi-fidelity rung), retrain's ``"epoch"``/``"batch"``/``"batches"``
    after every optimiser step, compress's ladder messages ``"rung"``/``"rungs"``.

    Example:
        >>> result = design(DesignConfig(budget_minutes=10), "out")  # doctest: +SKIP
        >>> result.rows[1].bytes  # the .sqz file  # doctest: +SKIP
    """
    out = run_folder(config, out_dir)
    study_dir = check_pick(config, Path(out_dir)) if config.pick is not None else None
    emit = on_event or (lambda ev: None)
    ctx = RunContext(config, out, DesignState(config.to_dict()), emit, study_dir=study_dir)
    _ = ctx.hardware  # an unknown profile fails before anything runs
    out.mkdir(parents=True, exist_ok=True)
    if restart and (moved := set_aside(out)) is not None:
        ctx.emit({"stage": "design", "message": f"restart: the previous run moved to {moved}"})
    ctx.state = load_state(config, out, restart)
    # the budget counts the finished stages' time too, so a resumed run keeps to it
    ctx.started = time.monotonic() - sum(r.seconds or 0 for r in ctx.state.stages.values())
    left = ctx.started + config.budget_minutes * 60 - time.monotonic()
    ctx.emit({"stage": "design", "budget_left_s": left})  # a display counts down from it
    for name, fn in STAGES:
        if name in ctx.state.stages:
            ctx.emit({"stage": name, "message": "done earlier; resuming after it"})
            continue
        ctx.emit({"stage": name, "message": "started"})
        t0 = time.monotonic()
        result = fn(ctx)
        result = dataclasses.replace(result, seconds=time.monotonic() - t0)
        ctx.state.stages[name] = result
        ctx.save()
        ctx.emit({"stage": name, "message": f"finished in {result.seconds:.0f} s"})
    return summarize(ctx.state)
