"""The study report: one self-contained HTML file (inline CSS, plots as base64 PNG).

Renders the StudyResults of :func:`squeezelab.explore.load_study_results` and what a
caller adds: first a :class:`~squeezelab.report.ship.ShipCard` (what to ship) and summary
sections, then trial counts, objectives and constraints, the Pareto front with links to
each run directory, the plots of :mod:`squeezelab.report.plots`, the front's specs. The
chosen design is highlighted in every table and plot; every accuracy names its split and
training budget. No scripts, no external files, fonts or styles.
"""

from __future__ import annotations

import base64
import os
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote, urlsplit, urlunsplit

from squeezelab.report import plots
from squeezelab.report import tables as tb
from squeezelab.report.ship import ShipCard, render_ship

if TYPE_CHECKING:
    from squeezelab.explore import StudyResults

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:#222;margin:24px auto;
max-width:1200px;padding:0 16px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #ccc}
.meta{color:#555;margin:0 0 12px}.counts span{display:inline-block;margin-right:18px}
.counts b{font-size:18px}.scroll{overflow-x:auto}
table{border-collapse:collapse;font-size:13px;margin:6px 0}
th,td{border:1px solid #d0d0d0;padding:3px 8px;text-align:left;white-space:nowrap}
th{background:#f2f2f2}td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.front td{background:#fff3f3}tr.varies td{font-weight:600}
.plots{display:flex;flex-wrap:wrap;gap:10px}
figure{margin:0;border:1px solid #e0e0e0;padding:4px}figure img{display:block;max-width:100%}
figcaption{font-size:12px;color:#555;max-width:520px}
.note{color:#555;font-size:13px}
tr.chosen td{background:#e3f2e1;font-weight:600}
#ship{border:2px solid #2ca02c;padding:2px 14px 10px;margin-top:16px}
#ship h2{border:0}.verdict{font-size:16px}.bad{color:#b00;font-weight:700}
.kind{font-size:11px;padding:0 4px;border-radius:3px;background:#eee}
.kind.measured{background:#d8f0d8}.kind.predicted{background:#fbe8c8}.kind.host{background:#dde6f5}
tr.over td{background:#fdd}.split{color:#555}td.diag{font-weight:700}
"""

DIRECTIONS = {"maximize": "maximise", "minimize": "minimise"}


def render_report(
    results,
    out_path: str | os.PathLike,
    title: str | None = None,
    extra_sections: list[dict] | None = None,
    ship: ShipCard | None = None,
) -> Path:
    """Write the HTML report of a study to ``out_path`` atomically; returns the path.

    Args:
        results: the ``StudyResults`` of ``squeezelab.explore.load_study_results`` (or
            its ``to_dict()`` JSON, as ``study show --json`` prints it).
        out_path: the HTML file to write; run-directory links are relative to its folder.
        title: page title; defaults to ``"Study <name>"``.
        extra_sections: summary tables shown first, each ``{"title": str, "rows":
            [dict, ...], "text": str (optional)}``; columns are the rows' keys and
            values are formatted by the unit in the key (``model_bytes``, ``latency_ms``...).
        ship: the first section, what to ship (its ``trial`` is highlighted everywhere).

    Example:
        >>> from squeezelab.explore import load_study_results  # doctest: +SKIP
        >>> render_report(load_study_results("sqlite:///runs/sr/study.db", "sr"),
        ...               "report.html")  # doctest: +SKIP
    """
    from squeezelab.io import atomic_write_bytes

    out_path = Path(out_path)
    base_dir = out_path.resolve().parent
    page = render_html(results, title, extra_sections, base_dir=base_dir, ship=ship)
    atomic_write_bytes(out_path, page.encode("utf-8"))
    return out_path


def render_html(
    results,
    title: str | None = None,
    extra_sections: list[dict] | None = None,
    base_dir: str | os.PathLike = ".",
    ship: ShipCard | None = None,
) -> str:
    """The report as an HTML string; see :func:`render_report`."""
    results = tb.as_results(results)
    chosen = ship.trial if ship is not None else None
    title = title or f"Study {results.study}".strip()
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{escape(title)}</title><style>{CSS}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        _meta(results),
        render_ship(ship, base_dir) if ship is not None else "",
    ]
    for section in extra_sections or []:
        parts.append(render_section(section))
    parts += [
        _overview(results),
        _front(results, Path(base_dir), ship),
        _plots(results, chosen),
        _specs(results),
        _space(results),
        _all_trials(results, Path(base_dir), chosen),
        "</body></html>",
    ]
    return "\n".join(p for p in parts if p)


def render_section(section: dict) -> str:
    """One summary section: ``{"title", "rows": [dict, ...], "text"?}`` as h2 + table.

    Example:
        >>> render_section({"title": "Design", "rows": [{"stage": "int8", "model_bytes": 2048}]})
        ... # doctest: +ELLIPSIS
        '<h2>Design</h2>...<td class="num">2 KiB</td>...'
    """
    rows = section.get("rows") or []
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    out = [f"<h2>{escape(str(section.get('title', '')))}</h2>"]
    if section.get("text"):
        out.append(f'<p class="note">{escape(str(section["text"]))}</p>')
    out.append(_table(columns, [[(c, r.get(c)) for c in columns] for r in rows]))
    return "".join(out)


def _cell(name: str, value) -> str:
    cls = ' class="num"' if value is None or tb.is_number(value) else ""
    return f"<td{cls}>{escape(tb.fmt(name, value))}</td>"


def _table(columns: list[str], rows: list[list], row_classes: list[str] | None = None) -> str:
    """``rows`` hold ``(column, value)`` pairs, or ready ``<td>`` strings."""
    # <wbr> lets long field names (peak_activation_bytes) break at their underscores
    head = "".join(f"<th>{escape(c).replace('_', '_<wbr>')}</th>" for c in columns)
    body = []
    for i, row in enumerate(rows):
        cls = f' class="{row_classes[i]}"' if row_classes and row_classes[i] else ""
        cells = "".join(c if isinstance(c, str) else _cell(*c) for c in row)
        body.append(f"<tr{cls}>{cells}</tr>")
    return f'<div class="scroll"><table><tr>{head}</tr>{"".join(body)}</table></div>'


def _safe_storage(url: str) -> str:
    """The storage URL with any password replaced by ``***``."""
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urlunsplit(parts._replace(netloc=netloc))
    return url


def _meta(results: StudyResults) -> str:
    items = []
    if results.study:
        items.append(f"study <b>{escape(results.study)}</b>")
    if results.storage:
        items.append(f"storage <code>{escape(_safe_storage(results.storage))}</code>")
    return f'<p class="meta">{" · ".join(items)}</p>' if items else ""


def _overview(results: StudyResults) -> str:
    counts = results.counts.to_dict()
    order = ["trained", "infeasible", "invalid", "failed", "running", "waiting", "total"]
    keys = [k for k in order if k in counts] + [k for k in counts if k not in order]
    keys = [k for k in keys if counts[k] or k in ("trained", "infeasible", "failed", "total")]
    spans = "".join(f"<span><b>{escape(str(counts[k]))}</b> {escape(k)}</span>" for k in keys)
    objs = [
        f"{escape(o.key)} ({DIRECTIONS.get(o.direction, o.direction)})" for o in results.objectives
    ]
    cons = []
    for c in results.constraints:
        name = c.key
        bounds = [
            f"{op} {tb.fmt(name, getattr(c, k))}"
            for k, op in (("min", "≥"), ("max", "≤"))
            if getattr(c, k) is not None
        ]
        cons.append(escape(f"{name} {' and '.join(bounds)}"))
    return (
        f'<h2>Trials</h2><p class="counts">{spans}</p>'
        f"<p><b>Objectives:</b> {', '.join(objs) or 'none recorded'}<br>"
        f"<b>Constraints:</b> {', '.join(cons) or 'none'}</p>{_screen(results)}"
    )


def _screen(results: StudyResults) -> str:
    """One line on the analytic screen: candidates costed, feasible, how fast."""
    sc = results.screen
    if sc is None:
        return ""
    speed = sc.candidates_per_s
    rate = f", {tb.fmt('', speed)} candidates/s" if tb.is_number(speed) else ""
    reach = ", ".join(f"{k} {tb.fmt(k, v)}" for k, v in sc.best.items() if tb.is_number(v))
    return (
        f'<p class="note">Analytic screen before training: {sc.checked:,} candidate(s) '
        f"costed, {sc.feasible} feasible, {sc.invalid} invalid{rate}."
        + (f" Smallest reachable: {escape(reach)}." if reach else "")
        + "</p>"
    )


def _run_link(run_dir, base_dir: Path) -> str:
    """A relative file link to a run directory (absolute ``file:`` URI across drives)."""
    if not run_dir:
        return "<td>–</td>"
    target = Path(run_dir)
    target = target if target.is_absolute() else Path.cwd() / target
    try:
        href = quote(Path(os.path.relpath(target, base_dir)).as_posix()) + "/"
    except ValueError:
        href = target.as_uri() + "/"
    short = "/".join(target.parts[-2:])
    return f'<td><a href="{escape(href)}" title="{escape(str(run_dir))}">{escape(short)}</a></td>'


def _headers(results: StudyResults, columns: list[str]) -> list[str]:
    """Column heads; accuracy columns name their split and training budget."""
    labels = {
        "accuracy": f"{tb.score_label(results)} ({tb.trial_budget(results)})",
        "final_accuracy": f"final_accuracy ({tb.final_budget(results)})",
    }
    return [labels.get(c, c) for c in columns]


def _front(results: StudyResults, base_dir: Path, ship: ShipCard | None = None) -> str:
    columns, rows = tb.front_table(results)
    if not rows:
        return '<h2>Pareto front</h2><p class="note">No trained trial yet: the front is empty.</p>'
    finals = "final_accuracy" in columns
    chosen = ship.trial if ship is not None else None
    commands = {a.trial: a.command for a in ship.alternatives} if ship is not None else {}
    body, classes = [], []
    for r in rows:
        links = [_run_link(r["run_dir"], base_dir)]
        links += [_run_link(r["final_run_dir"], base_dir)] if finals else []
        if ship is not None:
            if r["trial"] == chosen:
                links.append("<td><b>chosen</b>: the file above</td>")
            elif r["trial"] in commands:
                links.append(f"<td><code>{escape(commands[r['trial']])}</code></td>")
            else:
                links.append("<td>–</td>")
        body.append([(c, r.get(c)) for c in columns] + links)
        classes.append("chosen" if r["trial"] == chosen else "front")
    note = (
        f'<p class="note">{len(rows)} trials on the front the study recorded, best accuracy '
        "first. Each link opens that model's run directory"
        + ("; final_accuracy is the retraining at full budget." if finals else ".")
        + "</p>"
    )
    if chosen is not None:
        note += _alternatives(results, rows, chosen, commands)
    heads = [*_headers(results, columns), "run directory", *(["final run"] * finals)]
    heads += ["finish this one instead"] * (ship is not None)
    table = _table(heads, body, classes)
    return f'<h2>Pareto front</h2>{note}<div id="front">{table}</div>'


def _alternatives(results: StudyResults, rows: list[dict], chosen: int, commands: dict) -> str:
    """One sentence naming the front members smaller than the chosen design."""
    size = next((c for c in tb.cost_metrics(results) if tb.base_metric(c) == "model_bytes"), None)
    mine = next((r.get(size) for r in rows if r["trial"] == chosen), None) if size else None
    smaller = [
        r for r in rows if r["trial"] in commands and tb.is_number(mine) and r.get(size) < mine
    ]
    if not smaller:
        return (
            f'<p class="note">The chosen design is trial #{chosen} (shaded green); no front '
            "member is smaller.</p>"
        )
    each = ", ".join(
        f"#{r['trial']} ({tb.fmt(size, r[size])}, {tb.fmt('accuracy', r['accuracy'])})"
        for r in sorted(smaller, key=lambda r: r[size])
    )
    return (
        f'<p class="note">The chosen design is trial #{chosen} (shaded green, '
        f"{escape(tb.fmt(size, mine))}). Smaller alternatives: {escape(each)}; the command "
        "in a row finishes that member through the same retrain → compress → export → "
        "deploy stages, reusing this study, into its own folder.</p>"
    )


def _img(fig, alt: str, caption: str) -> str:
    data = base64.b64encode(plots.to_png(fig)).decode("ascii")
    return (
        f'<figure><img src="data:image/png;base64,{data}" alt="{escape(alt)}">'
        f"<figcaption>{escape(caption)}</figcaption></figure>"
    )


def _plots(results: StudyResults, chosen: int | None = None) -> str:
    if not tb.trained(results):
        return '<h2>Plots</h2><p class="note">No trained trial yet: nothing to plot.</p>'
    limits = tb.constraint_limits(results)
    star = f"; green star: the chosen design #{chosen}" if chosen is not None else ""
    budget = f" Accuracy: {tb.trial_budget(results)}."
    costs = [
        _img(
            plots.accuracy_vs_cost(results, c, chosen),
            f"accuracy vs {c}",
            f"Accuracy against {c}. Red: Pareto front (trial numbers){star}; orange x: "
            "infeasible candidates, costed but never trained"
            + (", dashed: the limit" if c in limits else "")
            + "."
            + budget,
        )
        for c in tb.cost_metrics(results)
    ]
    sweeps = []
    for p in tb.varied_params(results):
        fig = plots.sweep(results, p, chosen)
        if fig is not None:
            caption = (
                f"Accuracy and median model size at each {p} (as SqueezeNet's Figure 3){star}."
                + budget
            )
            sweeps.append(_img(fig, f"sweep of {p}", caption))
    more = []
    fig = plots.parallel_coordinates(results, chosen)
    if fig is not None:
        caption = f"Each line is one trained trial{star.replace('star', 'line')}." + budget
        more.append(_img(fig, "parallel coordinates", caption))
    fig = plots.learning_curves(results, chosen)
    if fig is not None:
        caption = f"Does the per-trial budget suffice?{star.replace('star', 'line')}" + budget
        more.append(_img(fig, "accuracy per epoch", caption))
    out = [f'<h2>Accuracy against each cost</h2><div class="plots">{"".join(costs)}</div>']
    if sweeps:
        out.append(f'<h2>Metaparameter sweeps</h2><div class="plots">{"".join(sweeps)}</div>')
    if more:
        out.append(f'<h2>Across trials</h2><div class="plots">{"".join(more)}</div>')
    return "".join(out)


def _specs(results: StudyResults) -> str:
    heads, rows = tb.spec_table(results)
    if not rows:
        return ""
    body = [
        [f"<th>{escape(r['field'])}</th>"] + [(r["field"], c) for c in r["cells"]] for r in rows
    ]
    classes = ["varies" if r["varies"] else "" for r in rows]
    note = '<p class="note">Bold rows differ between front members.</p>'
    return f"<h2>Specs of the front</h2>{note}{_table(['field', *heads], body, classes)}"


def _space(results: StudyResults) -> str:
    """The space's parameters (fixed value, choices or range) and its other sections."""
    space = results.space.to_dict()  # the mapping it was read from, as the user wrote it
    if not space:
        return ""
    params = space.get("params") if isinstance(space.get("params"), dict) else {}
    rows = [[f"<th>{escape(str(k))}</th>", ("", v)] for k, v in params.items()]
    rows += [[f"<th>{escape(str(k))}</th>", ("", v)] for k, v in space.items() if k != "params"]
    return f"<h2>Search space</h2>{_table(['field', 'values'], rows)}"


def _all_trials(results: StudyResults, base_dir: Path, chosen: int | None = None) -> str:
    costs = tb.cost_metrics(results)
    params = tb.varied_params(results)
    on_front = tb.front_numbers(results)
    columns = ["trial", "state", *params, "accuracy", *costs, "run directory"]
    varied = len({tb.trial_epochs(t) for t in tb.trained(results)}) > 1
    body, classes = [], []
    for t in sorted(results.trials, key=lambda t: t.number):
        row = [("trial", t.number), ("state", t.state)]
        row += [(p, t.params.get(p)) for p in params]
        row += [(m, tb.metric(t, m)) for m in ["accuracy", *costs]]
        if varied:  # a multi-fidelity search: each trial's own budget
            row.insert(-len(costs) or len(row), ("epochs", tb.trial_epochs(t)))
        body.append([*row, _run_link(t.run_dir, base_dir)])
        classes.append("chosen" if t.number == chosen else "front" if t.number in on_front else "")
    if varied:
        columns.insert(columns.index("accuracy") + 1, "epochs")
    return (
        f"<h2>Every trial</h2><details><summary>{len(body)} trials (front rows shaded"
        + (f", the chosen #{chosen} green" if chosen is not None else "")
        + f")</summary>{_table(_headers(results, columns), body, classes)}</details>"
    )
