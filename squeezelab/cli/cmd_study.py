"""``squeezelab study show STUDY``: the Pareto front and trial counts of a study."""

from __future__ import annotations

from typing import TYPE_CHECKING

from squeezelab.cli._common import console, print_json, text
from squeezelab.cli._flags import add_json, add_wide

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
    add_wide(s)
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
        render_results(res, args.wide)
    return 0


def render_results(res: StudyResults, wide: bool = False) -> None:
    """Print the front as a table and the counts as one line.

    At 80 columns the table holds the varied parameters, accuracy and the objectives;
    ``wide`` adds every cost and the run directory.
    """
    import os

    from squeezelab.analysis.units import SIZE_NOTE, format_metric
    from squeezelab.cli._common import plain_table, print_table, short

    varied = [
        k
        for k, v in (res.space.raw.get("params") or {}).items()
        if isinstance(v, list) or isinstance(v, dict) and "value" not in v
    ]
    score = res.space.score_key  # "accuracy" (top-1), or a detector's "map50"
    keys = [o.key for o in res.objectives if o.key != score]
    costs = keys + [c for c in _COSTS if c not in keys] if wide else keys
    table = plain_table()
    for col in ["trial", *varied, score, *costs]:
        left = col in varied
        table.add_column(text(col), justify="left" if left else "right", no_wrap=True)
    if wide:
        table.add_column("run dir", no_wrap=True)
    for tr in res.pareto_trials:
        arch = {**(tr.spec or {}), **tr.model_args, "model": tr.model}
        row = [str(tr.number), *(text(tr.params.get(k, arch.get(k))) for k in varied)]
        row += [format_metric(k, tr.metrics.get(k)) for k in (score, *costs)]
        if wide:
            rd = tr.run_dir
            row.append(text(os.path.relpath(rd) if rd and not rd.startswith("..") else rd or "-"))
        table.add_row(*row)
    out = console(wide=wide)
    note = SIZE_NOTE + ("" if wide else "; --wide: every cost and the run dirs")
    print_table(
        out,
        table,
        f"study {short(res.study, wide, 40)}: Pareto front ({len(res.pareto)} trials)",
        note,
    )
    c = res.counts
    rest = [f"{getattr(c, k)} {k}" for k in ("invalid", "failed", "running") if getattr(c, k)]
    out.print(
        ", ".join(
            [
                f"trials: {c.total} total, {c.trained} trained, {c.infeasible} infeasible "
                f"(not trained), {c.duplicate} duplicate",
                *rest,
            ]
        )
    )
