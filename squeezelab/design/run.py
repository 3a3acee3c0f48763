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
    now = config.to_dict()
    diff = sorted(k for k in now if k not in RESUME_FREE and state.config.get(k) != now[k])
    if diff:
        raise ConfigError(
            f"{out} holds a design run with other settings ({', '.join(diff)}); "
            "allowed: the same settings to resume it, or a new output directory"
        )
    state.config = now
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

    ``on_event(ev)`` gets a dict per event, with ``"stage"`` and one of ``"message"``
    (text), ``"progress"`` (explore: trial counts) or ``"record"``: retrain passes each
    :class:`~squeezelab.train.EpochRecord` (with ``"epochs"``, the planned total),
    compress each step record of :func:`~squeezelab.compress.compress_steps`
    (``FinetuneStep``, ``EvaluateStep``, ``EncodeStep``); ``to_dict()`` gives their JSON.

    Example:
        >>> result = design(DesignConfig(budget_minutes=10), "out")  # doctest: +SKIP
        >>> result.rows[1].bytes  # the .sqz file  # doctest: +SKIP
    """
    out = Path(out_dir)
    ctx = RunContext(config, out, DesignState(config.to_dict()), on_event or (lambda ev: None))
    _ = ctx.hardware  # an unknown profile fails before anything runs
    out.mkdir(parents=True, exist_ok=True)
    if restart and (moved := set_aside(out)) is not None:
        ctx.emit({"stage": "design", "message": f"restart: the previous run moved to {moved}"})
    ctx.state = load_state(config, out, restart)
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
