"""``squeezelab report STUDY -o report.html``: a study's self-contained HTML report."""

from __future__ import annotations

from pathlib import Path

from squeezelab.errors import ConfigError

DB_NAME = "study.db"


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
        help=f"a study directory holding {DB_NAME} (SQLite), or a study name with --storage",
    )
    p.add_argument(
        "-o", "--output", default="report.html", help="HTML file to write (default: report.html)"
    )
    p.add_argument(
        "--storage",
        help="Optuna storage URL, e.g. postgresql://user@host:5432/db; STUDY is then the name",
    )
    p.add_argument(
        "--study-name", help=f"which study in STUDY/{DB_NAME} when it holds more than one"
    )
    p.add_argument("--title", help="page title (default: 'Study NAME')")
    p.set_defaults(func=run_report)


def study_location(study: str, storage: str | None, name: str | None) -> tuple[str, str]:
    """``(storage URL, study name)`` from the command line's STUDY, --storage, --study-name."""
    if storage:
        return storage, study
    db = Path(study) / DB_NAME
    if not db.is_file():
        raise ConfigError(
            f"STUDY={study!r} holds no {DB_NAME}: pass a study directory written by "
            "`squeezelab explore`, or a study name with --storage URL"
        )
    url = f"sqlite:///{db.resolve()}"
    if name:
        return url, name
    import optuna

    names = optuna.get_all_study_names(url)
    if len(names) != 1:
        raise ConfigError(
            f"{db} holds {len(names)} studies {sorted(names)}; pick one with --study-name"
        )
    return url, names[0]


def run_report(args) -> int:
    from squeezelab.explore import load_study_results
    from squeezelab.report import render_report

    storage, name = study_location(args.study, args.storage, args.study_name)
    results = load_study_results(storage, name)
    path = render_report(results, args.output, title=args.title)
    counts = results.get("counts") or {}
    print(
        f"wrote {path}: {counts.get('trained', '?')} trained, "
        f"{counts.get('infeasible', '?')} infeasible, {counts.get('failed', '?')} failed, "
        f"{len(results['pareto'])} on the front"
    )
    return 0
