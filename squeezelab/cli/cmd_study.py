"""``squeezelab study show STUDY``: the Pareto front and trial counts of a study."""

from __future__ import annotations

from typing import TYPE_CHECKING

from squeezelab.cli._common import console, print_json
from squeezelab.cli._flags import add_json

if TYPE_CHECKING:
    from squeezelab.explore import StudyResults

_COSTS = ("params", "model_bytes", "macs", "energy_pj", "latency_ms", "peak_activation_bytes")


def register(sub) -> None:
    p = sub.add_parser(
        "study",
        help="inspect a design space study",
        description="Inspect a study made by `squeezelab explore`.",
    )
    verbs = p.add_subparsers(dest="study_command", metavar="ACTION", required=True)
    s = verbs.add_parser(
        "show",
        help="print the Pareto front and the trial counts",
        description="Print the Pareto front (spec, accuracy, every cost) "
        "and the trial counts (trained, infeasible, failed).",
    )
    s.add_argument("study", help="a study directory, or a study name with --storage")
    s.add_argument(
        "--storage", help="storage URL holding the study (postgresql://..., sqlite:///...)"
    )
    add_json(s, "the study results")
    s.set_defaults(func=run_show)


def run_show(args) -> int:
    from squeezelab.explore import load_study_results

    if args.storage:
        res = load_study_results(args.storage, args.study)
    else:
        res = load_study_results(args.study)
    if args.json:
        print_json(res.to_dict())
    else:
        render_results(res)
    return 0


def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float) and v < 1:
        return f"{v:.4f}"
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.3g}"


def render_results(res: StudyResults) -> None:
    """Print the front as a table and the counts as one line."""
    from rich.table import Table

    varied = [
        k
        for k, v in (res.space.raw.get("params") or {}).items()
        if isinstance(v, list) or isinstance(v, dict) and "value" not in v
    ]
    keys = [o.key for o in res.objectives if o.key != "accuracy"]
    costs = keys + [c for c in _COSTS if c not in keys]
    table = Table(title=f"study {res.study}: Pareto front ({len(res.pareto)} trials)")
    for col in ["trial", *varied, "accuracy", *costs, "run dir"]:
        table.add_column(col, justify="left" if col in ("run dir", *varied) else "right")
    for tr in res.pareto_trials:
        arch = {**(tr.spec or {}), **tr.model_args, "model": tr.model}
        row = [str(tr.number), *(str(tr.params.get(k, arch.get(k))) for k in varied)]
        row += [_fmt(tr.metrics.get("accuracy")), *(_fmt(tr.metrics.get(k)) for k in costs)]
        table.add_row(*row, tr.run_dir or "-")
    out = console()
    out.print(table)
    c = res.counts
    out.print(
        f"trials: {c.trained} trained, {c.infeasible} infeasible (never trained), "
        f"{c.invalid} invalid, {c.failed} failed, {c.running} running, {c.total} total"
    )
