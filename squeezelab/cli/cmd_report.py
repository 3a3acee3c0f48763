"""``squeezelab report STUDY -o report.html``: a study's self-contained HTML report."""

from __future__ import annotations

from squeezelab.cli import _flags


def register(sub) -> None:
    p = sub.add_parser(
        "report",
        help="write a study's HTML report",
        description="Write one self-contained HTML file: the Pareto front with links to each "
        "run directory, accuracy against every cost, metaparameter sweeps and trial counts.",
    )
    p.add_argument(
        "study",
        metavar="STUDY",
        help="a study directory holding study.db (SQLite), or a study name with --storage",
    )
    _flags.add_output(p, "HTML file to write (default: report.html)", default="report.html")
    p.add_argument(
        "--storage",
        help="storage URL holding the study (postgresql://USER@HOST:PORT/DB, sqlite:///FILE); "
        "STUDY is then the study name",
    )
    p.add_argument("--title", help="page title (default: 'Study NAME')")
    p.set_defaults(func=run_report)


def run_report(args) -> int:
    from squeezelab.explore import load_study_results
    from squeezelab.report import render_report

    if args.storage:
        results = load_study_results(args.storage, args.study)
    else:
        results = load_study_results(args.study)
    path = render_report(results, args.output, title=args.title)
    c = results.counts
    print(
        f"wrote {path}: {c.trained} trained, {c.infeasible} infeasible, {c.failed} failed, "
        f"{len(results.pareto)} on the front"
    )
    return 0
