"""The report's first section: the file to flash or load, what it costs there, how it scores.

A :class:`ShipCard` is filled by the caller (``squeezelab.design`` from its run's records)
and rendered here: the file (a relative link), its costs on the target against the
profile's limits with the headroom left (each figure labelled measured, predicted or
host), its test accuracy with per-class accuracy and the confusion matrix, and the
ladders the settings were chosen from (compression, int8 form, runtime).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any

from squeezelab.errors import FormatError
from squeezelab.report import tables as tb

KINDS = {
    "measured": "measured",  # by the target's runtime (TFLM's host interpreter: arena, file)
    "predicted": "predicted",  # by analysis.profile on the hardware profile
    "host": "host",  # timed on this machine, not on the target
}


@dataclass(frozen=True)
class CostLine:
    """One cost of the shipped file on the target."""

    figure: str  # what it is, e.g. "flash: model.tflite"
    key: str  # a unit-bearing field name: "flash_bytes", "latency_ms", "energy_pj"
    value: float | None
    kind: str  # one of KINDS
    source: str  # who measured or predicted it, e.g. "TFLite Micro host interpreter"
    limit: float | None = None  # the profile's limit (None: none)


@dataclass(frozen=True)
class Rung:
    """One setting of a ladder the job chose from."""

    setting: str  # e.g. "67% pruned, 6-bit" or "U8S8/minmax"
    bytes: int | None
    accuracy: float | None  # on the ladder's split (validation)
    chosen: bool
    why: str  # "chosen", or why not: "0.8 points below fp32 (tolerance 0.5)"
    latency_ms: float | None = None  # host, batch 1, where timed


@dataclass(frozen=True)
class Ladder:
    title: str  # "Compression ladder"
    accuracy_label: str  # split and budget of its accuracies
    rule: str  # how the winner is chosen, one sentence
    rungs: tuple[Rung, ...]


@dataclass(frozen=True)
class Alternative:
    """Another front member the user may finish instead, with the command that does it."""

    trial: int
    command: str


@dataclass(frozen=True)
class ShipCard:
    """What to ship: the first section of a design report."""

    file: str  # the file to flash or load
    runtime: str  # the runtime that runs it on the target
    target: str  # the hardware profile's name
    shipped: bool  # False: a check failed (``problems``); do not ship it
    trial: int | None  # the study trial it was built from (highlighted everywhere)
    costs: tuple[CostLine, ...]
    test_accuracy: float | None  # the shipped file's top-1, scored once on the test split
    test_images: int
    accuracy_label: str  # e.g. "test, final: retrained 3 epochs on 54,000 images"
    fp32_test_accuracy: float | None = None  # the decoded fp32 model on the same images
    classes: tuple[str, ...] = ()
    confusion: tuple[tuple[int, ...], ...] = ()  # rows: true, columns: predicted (test)
    problems: tuple[str, ...] = ()
    ladders: tuple[Ladder, ...] = ()
    alternatives: tuple[Alternative, ...] = ()
    note: str = ""  # one more sentence (e.g. which front member a --pick run finished)
    metric: str = "top-1"  # what test_accuracy is: top-1, or a detector's "mAP@0.5"
    per_class: tuple[tuple[str, float], ...] = ()  # detectors: (class, AP@0.5) on the test split

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], where: str = "ship card") -> ShipCard:
        """Read :meth:`to_dict`'s JSON back; a missing or malformed field is a FormatError."""
        try:
            kw = dict(d)
            kw["costs"] = tuple(CostLine(**c) for c in d.get("costs", ()))
            kw["ladders"] = tuple(
                Ladder(**{**lad, "rungs": tuple(Rung(**r) for r in lad["rungs"])})
                for lad in d.get("ladders", ())
            )
            kw["alternatives"] = tuple(Alternative(**a) for a in d.get("alternatives", ()))
            kw["classes"] = tuple(d.get("classes", ()))
            kw["confusion"] = tuple(tuple(r) for r in d.get("confusion", ()))
            kw["problems"] = tuple(d.get("problems", ()))
            kw["per_class"] = tuple((str(c), float(v)) for c, v in d.get("per_class", ()))
            return cls(**kw)
        except (KeyError, TypeError, ValueError) as e:
            raise FormatError(f"{where}: {e}; expected ShipCard.to_dict()") from None


def _link(path: str, base_dir: Path) -> str:
    """A relative link to ``path`` from the report's folder (a file URI across drives)."""
    target = Path(path)
    target = target if target.is_absolute() else Path.cwd() / target
    try:
        href = Path(os.path.relpath(target, base_dir)).as_posix()
    except ValueError:
        href = target.as_uri()
    from urllib.parse import quote

    return f'<a href="{escape(quote(href))}"><code>{escape(target.name)}</code></a>'


def headroom(value: float | None, limit: float | None) -> str:
    """``"104 KiB free (80 % used)"``, ``"over by 3 KiB"``, or ``"no limit"``.

    Example:
        >>> headroom(400 * 1024, 512 * 1024)
        '112 KiB free (78 % used)'
    """
    if not tb.is_number(limit) or not limit:
        return "no limit"
    if not tb.is_number(value):
        return "–"
    if value > limit:
        return f"OVER by {tb.fmt('bytes', value - limit)}"
    return f"{tb.fmt('bytes', limit - value)} free ({100 * value / limit:.0f} % used)"


def _costs(card: ShipCard) -> str:
    rows = []
    for c in card.costs:
        kind = KINDS.get(c.kind, c.kind)
        limit = tb.fmt(c.key, c.limit) if tb.is_number(c.limit) else "–"
        room = headroom(c.value, c.limit) if c.key.endswith("bytes") else "–"
        over = tb.is_number(c.limit) and tb.is_number(c.value) and c.value > c.limit
        cls = ' class="over"' if over else ""
        rows.append(
            f"<tr{cls}><td>{escape(c.figure)}</td>"
            f'<td class="num">{escape(tb.fmt(c.key, c.value))}</td>'
            f'<td><span class="kind {escape(c.kind)}">{escape(kind)}</span> '
            f"{escape(c.source)}</td>"
            f'<td class="num">{escape(limit)}</td><td>{escape(room)}</td></tr>'
        )
    head = "<tr><th>cost</th><th>value</th><th>how</th><th>limit</th><th>headroom</th></tr>"
    return f'<div class="scroll"><table class="costs">{head}{"".join(rows)}</table></div>'


def _accuracy(card: ShipCard) -> str:
    acc = tb.fmt("accuracy", card.test_accuracy)
    out = [
        f'<p class="acc"><b>{escape(acc)}</b> {escape(card.metric)} '
        f'<span class="split">({escape(card.accuracy_label)}; {card.test_images:,} test '
        "images, scored once)</span>"
    ]
    if tb.is_number(card.fp32_test_accuracy):
        out.append(
            f" · fp32 before int8: {escape(tb.fmt('accuracy', card.fp32_test_accuracy))} "
            "on the same images"
        )
    out.append("</p>")
    return "".join(out) + _per_class(card)


def _per_class(card: ShipCard) -> str:
    """Per-class accuracy and the confusion matrix, shaded by each row's share (a
    detector: AP per class)."""
    if card.per_class:
        rows = "".join(
            f'<tr><th>{escape(str(c))}</th><td class="num">{escape(tb.fmt("accuracy", v))}</td></tr>'
            for c, v in card.per_class
        )
        return (
            f'<p class="note">AP@0.5 per class ({escape(card.accuracy_label)}).</p>'
            f'<div class="scroll"><table><tr><th>class</th><th>AP@0.5</th></tr>{rows}</table></div>'
        )
    if not card.confusion:
        return (
            '<p class="note">Per-class accuracy: this runtime\'s test predictions were not '
            "recorded.</p>"
        )
    from squeezelab.export.scores import ClassScores

    scores = ClassScores.from_dict({"classes": card.classes, "confusion": card.confusion})
    names = [escape(str(c)) for c in scores.classes]
    head = "".join(f"<th>{n}</th>" for n in names)
    body = []
    per_class = scores.per_class
    for i, row in enumerate(scores.confusion):
        total = sum(row) or 1
        cells = []
        for j, v in enumerate(row):
            share = v / total
            style = f"background:rgba({'44,160,44' if i == j else '214,39,40'},{share:.2f})"
            cls = "num diag" if i == j else "num"
            cells.append(f'<td class="{cls}" style="{style}">{v:,}</td>')
        acc = tb.fmt("accuracy", per_class[scores.classes[i]])
        body.append(
            f'<tr><th>{names[i]}</th><td class="num">{escape(acc)}</td>{"".join(cells)}</tr>'
        )
    label = escape(card.accuracy_label)
    return (
        f'<p class="note">Per-class accuracy and confusion matrix ({label}; rows: true class, '
        "columns: predicted class).</p>"
        f'<div class="scroll"><table class="confusion"><tr><th>true \\ predicted</th>'
        f"<th>accuracy</th>{head}</tr>{''.join(body)}</table></div>"
    )


def _ladder(ladder: Ladder) -> str:
    timed = any(tb.is_number(r.latency_ms) for r in ladder.rungs)
    head = "<tr><th>setting</th><th>size</th>"
    head += f"<th>accuracy ({escape(ladder.accuracy_label)})</th>"
    head += "<th>host latency (ms, batch 1)</th>" * timed + "<th>chosen or why not</th></tr>"
    rows = []
    for r in ladder.rungs:
        cells = [
            f"<td>{escape(r.setting)}</td>",
            f'<td class="num">{escape(tb.fmt("bytes", r.bytes))}</td>',
            f'<td class="num">{escape(tb.fmt("accuracy", r.accuracy))}</td>',
        ]
        if timed:
            cells.append(f'<td class="num">{escape(tb.fmt("", r.latency_ms))}</td>')
        why = escape(r.why.removeprefix("chosen"))  # "chosen: within 0.5 points"
        cells.append(f"<td><b>chosen</b>{why}</td>" if r.chosen else f"<td>{why}</td>")
        cls = ' class="chosen"' if r.chosen else ""
        rows.append(f"<tr{cls}>{''.join(cells)}</tr>")
    return (
        f'<h3>{escape(ladder.title)}</h3><p class="note">{escape(ladder.rule)}</p>'
        f'<div class="scroll"><table>{head}{"".join(rows)}</table></div>'
    )


def render_ship(card: ShipCard, base_dir: str | os.PathLike = ".") -> str:
    """The "What to ship" section as HTML; links are relative to ``base_dir``."""
    base = Path(base_dir)
    trial = f" (study trial #{card.trial})" if card.trial is not None else ""
    if card.shipped:
        verdict = f"Ship {_link(card.file, base)} to the {escape(card.target)} with " + (
            f"{escape(card.runtime)}{escape(trial)}."
        )
    else:
        verdict = (
            f'<span class="bad">NOT SHIPPED</span>: {_link(card.file, base)} fails on '
            f"{escape(card.target)}: {escape('; '.join(card.problems))}."
        )
    parts = [
        '<section id="ship"><h2>What to ship</h2>',
        f'<p class="verdict">{verdict}</p>',
        f'<p class="note">{escape(card.note)}</p>' if card.note else "",
        f"<h3>Cost on the {escape(card.target)}</h3>",
        '<p class="note">measured: by the target\'s runtime; predicted: by the hardware '
        "profile's model, not run on the device; host: timed on this machine.</p>",
        _costs(card),
        "<h3>Accuracy</h3>",
        _accuracy(card),
        *(_ladder(lad) for lad in card.ladders),
        "</section>",
    ]
    return "".join(p for p in parts if p)
