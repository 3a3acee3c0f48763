"""Helpers shared by CLI verbs: the console, JSON output and the input shape."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

from squeezelab.errors import ConfigError


def console(stderr: bool = False, wide: bool = False):
    """A rich console; progress and tables for humans, never mixed into --json output.

    Tables are laid out to fit 80 columns (a pipe's width); ``wide`` lets a table take
    the width it needs (``--wide``) instead of folding it at the terminal's edge.
    """
    from rich.console import Console

    return Console(stderr=stderr, width=1000 if wide else None)


def print_table(
    con, table, title: str | None = None, notes: str | Sequence[str] | None = ()
) -> None:
    """A title line, the table, one line per note: outside the table, so that none is
    folded to the table's width (rich wraps a title or caption longer than its table) but
    cut at the edge instead. Notes are text, never markup (a title's caller escapes it)."""
    if title:
        con.print(f"[bold]{title}[/bold]", overflow="ellipsis", no_wrap=True)
    con.print(table)
    for note in [notes] if isinstance(notes, str) else notes or ():
        con.print(f"[dim]{text(note)}[/dim]", overflow="ellipsis", no_wrap=True)


def plain_table():
    """A rich table without borders: 80 columns hold more of it (headers bold, underlined)."""
    from rich.table import Table

    return Table(box=None, pad_edge=False, header_style="bold underline")


NAME_WIDTH = 24  # layer names longer than this are cut from the middle unless --wide


def short(name: str, wide: bool, width: int = NAME_WIDTH) -> str:
    """A layer name for a table cell: whole with ``--wide``, else cut from the middle."""
    from squeezelab.analysis.units import abbreviate

    return text(name if wide else abbreviate(str(name), width))


def text(value: Any) -> str:
    """``value`` as text for rich, its brackets escaped: strings from files are never markup."""
    from rich.markup import escape

    return escape(str(value))


def shape_errors(text_: str | None, fn, *args):
    """``fn(*args)``; a model that cannot take the ``--input`` shape is one ConfigError line."""
    try:
        return fn(*args)
    except RuntimeError as e:
        first = (str(e).strip().splitlines() or [""])[0][:200]
        shown = f"--input={text_!r}" if text_ else "the model's input shape"
        raise ConfigError(f"{shown}: the model cannot take this shape ({first})") from None


def print_json(data: Any) -> None:
    """Print data as JSON on stdout, nothing else."""
    json.dump(data, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")


def parse_input_shape(text: str) -> tuple[int, int, int]:
    """``"3x224x224"`` -> ``(3, 224, 224)``; ``"28"`` -> ``(1, 28, 28)`` is not guessed."""
    parts = text.lower().split("x")
    try:
        shape = tuple(int(p) for p in parts)
    except ValueError:
        shape = ()
    if len(shape) != 3 or min(shape) < 1:
        raise ConfigError(
            f"--input={text!r} is invalid: allowed CxHxW with positive integers, e.g. 3x224x224"
        )
    return shape  # type: ignore[return-value]


def input_shape(text: str | None, meta) -> tuple[int, int, int]:
    """``--input`` if given, else the model's own ``meta.input_shape``."""
    return parse_input_shape(text) if text else meta.input_shape
