"""``squeezelab explore SPACE -o STUDY_DIR``: run (or resume) a design space exploration."""

from __future__ import annotations

from squeezelab.cli._common import add_heartbeat_args, console, print_json
from squeezelab.cli._flags import (
    add_data,
    add_json,
    add_output,
    deprecated_alias,
    positive_int,
)


def register(sub) -> None:
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
    add_output(p, "study directory (run dirs, SQLite file); required", kind="dir")
    deprecated_alias(p, "--out", "-o/--output", dest="output")
    p.add_argument(
        "--storage",
        help="study storage URL (default: SQLite in the study "
        "directory); postgresql://USER@HOST:PORT/DB for many workers",
    )
    p.add_argument("--study", help="study name (default: the space's name)")
    p.add_argument(
        "--workers", type=positive_int, default=1, help="local worker processes (default 1)"
    )
    p.add_argument("--trials", type=positive_int, help="trained trials (overrides search.trials)")
    p.add_argument(
        "--sampler",
        choices=["auto", "nsga2", "tpe", "random", "grid"],
        help="overrides search.sampler",
    )
    p.add_argument("--epochs", type=positive_int, help="epochs per trial (overrides train.epochs)")
    p.add_argument(
        "--train-subset",
        type=positive_int,
        help="training images per trial (overrides train.train_subset)",
    )
    p.add_argument(
        "--final",
        action="store_true",
        help="then retrain the Pareto set with the space's 'final' budget",
    )
    p.add_argument(
        "--hardware", help="hardware profile name or YAML file (overrides costing.hardware)"
    )
    add_data(p, help="dataset each trial trains on (overrides train.data)")
    add_heartbeat_args(p)
    add_json(p, "the study results")
    p.set_defaults(func=run)


def run(args) -> int:
    from squeezelab.cli.cmd_study import render_results
    from squeezelab.errors import ConfigError
    from squeezelab.explore import load_space, load_study_results, run_study

    if not args.output:
        raise ConfigError("-o/--output is missing: allowed a study directory to write")
    if args.workers < 1:
        raise ConfigError(f"--workers={args.workers} is invalid: allowed an integer >= 1")
    space = load_space(args.space)
    search = {
        k: v for k, v in (("trials", args.trials), ("sampler", args.sampler)) if v is not None
    }
    train = {
        k: v
        for k, v in (
            ("epochs", args.epochs),
            ("train_subset", args.train_subset),
            ("data", args.data),
            ("data_dir", args.data_dir),
        )
        if v is not None
    }
    costing = {"hardware": args.hardware} if args.hardware else {}
    sections = {"search": search, "train": train, "costing": costing}
    if any(sections.values()):
        space = space.with_overrides(**{k: v for k, v in sections.items() if v})
    err = console(stderr=True)

    def on_trial(p) -> None:
        err.print(
            f"[dim]trials: {p.trained} trained, {p.infeasible} infeasible, "
            f"{p.invalid} invalid, {p.failed} failed[/dim]"
        )

    run_study(
        space,
        args.output,
        storage=args.storage,
        study_name=args.study,
        workers=args.workers,
        heartbeat_s=args.heartbeat_s,
        grace_s=args.grace_s,
        on_trial=None if args.json else on_trial,
    )
    if args.final:
        from squeezelab.explore.final import retrain_front

        for rec in retrain_front(args.storage, args.study or space.name, args.output):
            err.print(f"final: trial {rec.number} accuracy {rec.accuracy:.4f}")
    res = load_study_results(args.storage or args.output, args.study or space.name)
    if args.json:
        print_json(res.to_dict())
    else:
        render_results(res)
    return 0
