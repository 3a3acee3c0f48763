"""``squeezelab explore SPACE -o STUDY_DIR``: run (or resume) a design space exploration.

Its flags are :class:`squeezelab.explore.ExploreConfig`'s fields (``_flags.add_config_fields``,
defaults and help included), so the two cannot drift; the verb calls
:func:`squeezelab.explore.explore` and renders the results.
"""

from __future__ import annotations

import dataclasses

from squeezelab.cli import _flags
from squeezelab.cli._common import console, print_json

_SHARED = {"data", "data_dir", "hardware"}  # added by the shared adders
_BY_HAND = {"final"}  # a plain switch (--final), not --final/--no-final


def register(sub) -> None:
    from squeezelab.explore.config import ExploreConfig

    p = sub.add_parser(
        "explore",
        help="search a design space for the accuracy/cost Pareto front",
        description="Run a multi-objective study over a search space (YAML file or preset); "
        "candidates that break a constraint are costed, recorded and never trained. "
        "Running the same command again resumes the study.",
    )
    p.add_argument(
        "space",
        help="search space YAML, or a preset: paper-sr-sweep, "
        "paper-pct3x3-sweep, paper-bypass, mcu-256k",
    )
    _flags.add_output(p, "study directory (run dirs, SQLite file); required", kind="dir")
    _flags.deprecated_alias(p, "--out", "-o/--output", dest="output")
    helps = _flags.field_help(ExploreConfig)
    skip = _SHARED | _BY_HAND | set(_flags.HEARTBEAT_FIELDS)
    names = [f.name for f in dataclasses.fields(ExploreConfig) if f.name not in skip]
    _flags.add_config_fields(p, ExploreConfig, names)
    p.add_argument("--final", action="store_true", help=helps["final"])
    _flags.add_hardware(p, default=None, help=helps["hardware"])
    _flags.add_data(p, help=helps["data"])
    _flags.add_heartbeat_args(p)
    _flags.add_json(p, "the study results")
    p.set_defaults(func=run)


def config_from_args(args):
    """The :class:`ExploreConfig` of the parsed flags (checked by its ``__post_init__``)."""
    from squeezelab.explore import ExploreConfig

    return ExploreConfig(
        **{f.name: getattr(args, f.name) for f in dataclasses.fields(ExploreConfig)}
    )


def run(args) -> int:
    from squeezelab.cli._progress import Display, trial_what
    from squeezelab.cli.cmd_study import render_results
    from squeezelab.errors import ConfigError
    from squeezelab.explore import explore

    if not args.output:
        raise ConfigError("-o/--output is missing: allowed a study directory to write")
    config = config_from_args(args)
    err = console(stderr=True)  # progress on stderr: stdout holds the results alone

    def on_trial(p) -> None:
        if p.step is not None and p.step.epochs in p.step.rungs:  # a multi-fidelity rung
            s = p.step
            went = "promoted" if s.promoted else "stopped"
            show.message(
                f"trial {s.number}: {went} at rung {s.rung}/{len(s.rungs)} "
                f"({s.epochs} of {s.max_epochs} epochs, validation score {s.accuracy:.4f})"
            )
        step = p.step.to_dict() if p.step is not None else None
        show.update(
            "explore",
            what=trial_what(p.to_dict(), p.of, step),
            done=p.trained,
            total=p.of or None,
            note=f"{p.infeasible} infeasible, {p.invalid} invalid, {p.failed} failed",
        )

    def on_final(rec) -> None:
        show.message(f"final: trial {rec.number} accuracy {rec.accuracy:.4f}")

    with Display(err) as show:  # a bar on a terminal, else timestamped lines
        res = explore(args.space, args.output, config, on_trial=on_trial, on_final=on_final)
    if args.json:
        print_json(res.to_dict())
    else:
        render_results(res)
    return 0
