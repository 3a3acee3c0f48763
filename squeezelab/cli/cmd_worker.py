"""``squeezelab worker --storage URL --study NAME``: join a shared study from any machine."""

from __future__ import annotations

from squeezelab.cli._common import console, print_json
from squeezelab.cli._flags import add_heartbeat_args, add_json, add_output, deprecated_alias


def register(sub) -> None:
    p = sub.add_parser(
        "worker",
        help="join a study in a shared storage and run its trials",
        description="Run trials of an existing study until its budget is spent. Heartbeats "
        "let other workers retry this worker's trial if it dies.",
    )
    p.add_argument(
        "--storage",
        required=True,
        help="postgresql://USER@HOST:PORT/DB, sqlite:///FILE or a study directory",
    )
    p.add_argument("--study", help="study name (default: the only study in the storage)")
    add_output(
        p,
        "directory for this worker's run dirs (default: the study directory when "
        "--storage is one, else the current directory)",
        kind="dir",
    )
    deprecated_alias(p, "--out", "-o/--output", dest="output")
    add_heartbeat_args(p)
    add_json(p, "the final trial counts")
    p.set_defaults(func=run)


def run(args) -> int:
    from pathlib import Path

    from squeezelab.explore import run_worker

    err = console(stderr=True)
    out = args.output or (args.storage if Path(args.storage).is_dir() else ".")
    counts = run_worker(
        args.storage,
        args.study,
        out,
        heartbeat_s=args.heartbeat_s,
        grace_s=args.grace_s,
        on_trial=lambda p: err.print(f"[dim]{p.trained} trained, {p.infeasible} infeasible[/dim]"),
    )
    if args.json:
        print_json(counts.to_dict())
    else:
        err.print(f"study done: {counts.to_dict()}")
    return 0
