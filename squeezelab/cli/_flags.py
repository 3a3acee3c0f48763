"""The CLI's one vocabulary: every verb adds its common flags through these functions.

``MODEL`` is positional and goes through ``squeezelab.models.load_model``; outputs are
``-o/--output``; hardware is ``--hardware``; data is ``--data`` plus ``--data-dir``;
``--threads`` is one integer; ``--weight-bits``/``--activation-bits`` cost a model and
``--bits`` only ever means codebook bits. Spellings users may have in scripts stay for one
release as hidden aliases that print a deprecation line (:func:`deprecated_alias`).
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import math
import re
import sys

MODEL_HELP = "zoo name, spec .yaml/.json, .safetensors model file or .sqz file"


# Typed argparse converters: a bad value is refused while parsing, before any work, with
# one line naming the flag (argparse adds "argument --flag:") and the allowed values.


def _number(text: str, kind, allowed: str):
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is invalid: allowed {allowed}") from None
    if kind is float and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is invalid: allowed {allowed} (finite)")
    return value


def int_range(lo: int | None = None, hi: int | None = None):
    """An argparse type: an integer in ``[lo, hi]`` (``None``: unbounded on that side)."""
    if lo is not None and hi is not None:
        allowed = f"an integer in {lo}..{hi}"
    else:
        allowed = f"an integer >= {lo}" if lo is not None else f"an integer <= {hi}"

    def parse(text: str) -> int:
        value = _number(text, int, allowed)
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise argparse.ArgumentTypeError(f"{text!r} is invalid: allowed {allowed}")
        return value

    parse.__name__ = "int"
    return parse


positive_int = int_range(1)
nonneg_int = int_range(0)


def positive_float(text: str) -> float:
    """An argparse type: a finite number > 0."""
    value = _number(text, float, "a number > 0")
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is invalid: allowed a number > 0")
    return value


def nonneg_float(text: str) -> float:
    """An argparse type: a finite number >= 0."""
    value = _number(text, float, "a number >= 0")
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is invalid: allowed a number >= 0")
    return value


def fraction(text: str) -> float:
    """An argparse type: a number in [0, 1]."""
    value = _number(text, float, "a number in [0, 1]")
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"{text!r} is invalid: allowed a number in [0, 1]")
    return value


def finite_float(text: str) -> float:
    """An argparse type: any finite number."""
    return _number(text, float, "a number")


def add_model(p, many: bool = False, help: str = MODEL_HELP, optional: bool = False) -> None:
    """The positional ``MODEL`` (``many``: one or more, as ``args.models``; else ``args.model``).

    ``optional``: ``MODEL`` may be left out (``args.model`` is then None), e.g. by
    ``train --resume``.
    """
    if many:
        p.add_argument("models", nargs="+", metavar="MODEL", help=help)
    elif optional:
        p.add_argument("model", nargs="?", default=None, metavar="MODEL", help=help)
    else:
        p.add_argument("model", metavar="MODEL", help=help)


def add_input(p) -> None:
    """``--input CxHxW``: the input shape, overriding the model's own (``meta.input_shape``)."""
    p.add_argument(
        "--input",
        metavar="CxHxW",
        help="input shape, channels x height x width, e.g. 3x224x224 (default: the model's own)",
    )


def add_output(p, help: str, required: bool = False, default=None, kind: str = "file") -> None:
    """``-o/--output``: the file (``kind="file"``) or folder (``"dir"``) a verb writes.

    ``squeezelab.cli.main`` checks it is writable (:func:`check_output`) before the verb runs.
    """
    p.add_argument("-o", "--output", required=required, default=default, metavar="PATH", help=help)
    p.set_defaults(output_kind=kind)


def check_output(path, kind: str = "file"):
    """Refuse an unwritable ``-o`` before any work (``kind``: "file" or "dir"); returns it."""
    if path is None:
        return None
    from squeezelab.io.atomic import check_writable

    return check_writable(path, "-o", kind)


def add_hardware(p, default: str | None = "horowitz-45nm", help: str | None = None) -> None:
    """``--hardware``: a packaged hardware profile name or a YAML file."""
    p.add_argument(
        "--hardware",
        default=default,
        help=help or f"hardware profile name or YAML file (default: {default})",
    )


def add_data(p, required: bool = False, help: str | None = None) -> None:
    """``--data`` (a dataset name or folder) and ``--data-dir`` (where named datasets live)."""
    p.add_argument(
        "--data",
        required=required,
        metavar="DATASET",
        help=help or "dataset: fashion-mnist, cifar10, or an ImageFolder path",
    )
    p.add_argument(
        "--data-dir",
        metavar="DIR",
        help="folder holding the named dataset's files (default: the system's)",
    )


def add_json(p, what: str = "the result") -> None:
    p.add_argument("--json", action="store_true", help=f"print {what} as JSON on stdout")


def add_wide(p) -> None:
    """``--wide``: tables at full width (every column, whole names) instead of 80 columns."""
    p.add_argument(
        "--wide",
        action="store_true",
        help="print tables at full width (every column, whole layer names); default fits 80",
    )


def add_threads(p, default: int | None = None, shown: str = "PyTorch's setting") -> None:
    """``--threads``: CPU threads (one integer everywhere)."""
    shown = shown if default is None else str(default)
    p.add_argument(
        "--threads",
        type=positive_int,
        default=default,
        help=f"CPU threads to use (default: {shown})",
    )


def add_cost_bits(p) -> None:
    """``--weight-bits`` / ``--activation-bits``: storage widths the costing assumes."""
    bits = int_range(1, 64)
    p.add_argument("--weight-bits", type=bits, default=32, help="bits per weight (default: 32)")
    p.add_argument(
        "--activation-bits", type=bits, default=32, help="bits per activation element (default: 32)"
    )


def add_batch_size(p, default: int, help: str = "images per batch") -> None:
    p.add_argument(
        "--batch-size", type=positive_int, default=default, help=f"{help} (default: {default})"
    )


_COMMENT = re.compile(r"^\s+(\w+)\s*:[^#]*#\s*(.+?)\s*$")


def field_help(cls) -> dict[str, str]:
    """A dataclass's per-field help: ``metadata["help"]``, else the field's trailing comment."""
    try:
        source = inspect.getsource(cls)
    except (OSError, TypeError):  # no source (frozen app): metadata only
        source = ""
    comments = {m[1]: m[2] for m in map(_COMMENT.match, source.splitlines()) if m}
    return {
        f.name: f.metadata.get("help") or comments.get(f.name, "") for f in dataclasses.fields(cls)
    }


def _scalar(annotation: str):
    """``"int | None"`` -> ``int``: the one scalar type a flag parses (None: not a scalar)."""
    names = {t.strip() for t in annotation.split("|")} - {"None"}
    if len(names) != 1:
        return None
    return {"int": int, "float": float, "str": str, "bool": bool}.get(names.pop())


def _finite(kind):
    """``int``/``float`` as an argparse type that refuses nan and inf in one line."""
    return {float: finite_float, int: _plain_int}.get(kind, kind)


def _plain_int(text: str) -> int:
    return _number(text, int, "an integer")


def add_config_fields(
    p, cls, names, choices: dict | None = None, shown: dict | None = None
) -> None:
    """One ``--field-name`` flag per dataclass field in ``names``, typed and defaulted by it.

    The flag's type, default and help come from the field (:func:`field_help`), so a
    verb that wraps a config cannot drift from it; ``args.<field>`` holds the value. A bool
    field becomes ``--name/--no-name``. ``choices`` maps a field to its allowed values,
    ``shown`` to the default the help names where the field's own is None. A field's
    ``metadata`` may hold ``min`` (an integer's lower bound) and ``choices``.
    """
    fields = {f.name: f for f in dataclasses.fields(cls)}
    helps = field_help(cls)
    for name in names:
        f = fields[name]
        annotation = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
        kind = _scalar(annotation)
        if kind is None:
            raise TypeError(f"{cls.__name__}.{name}: {annotation!r} is not a flag type")
        default = f.default if f.default is not dataclasses.MISSING else None
        text = helps[name] or name.replace("_", " ")
        if default is not None or (shown and name in shown):
            text += f" (default: {default if default is not None else shown[name]})"
        flag = "--" + name.replace("_", "-")
        kw: dict = {"dest": name, "default": default, "help": text.replace("%", "%%")}
        if kind is bool:
            kw["action"] = _TypedBool
        else:
            kw["action"] = _TypedStore
            # a field's metadata may name a checking argparse type, or the lower bound its
            # __post_init__ checks (``min``); else any finite number
            lo = f.metadata.get("min")
            bounded = int_range(lo) if kind is int and lo is not None else None
            kw["type"] = f.metadata.get("type") or bounded or _finite(kind)
            allowed = (choices or {}).get(name) or f.metadata.get("choices")
            if allowed:
                kw["choices"] = tuple(allowed)
        p.add_argument(flag, **kw)


def config_values(args, names) -> dict:
    """The values of :func:`add_config_fields` flags, by field name."""
    return {name: getattr(args, name) for name in names}


def typed_fields(args) -> frozenset[str]:
    """The :func:`add_config_fields` fields whose flag was typed, even with the default
    value (``train --resume`` refuses a typed value that contradicts the saved run)."""
    return getattr(args, "typed_fields", frozenset())


def _mark_typed(namespace, dest: str) -> None:
    # a new frozenset each time: a mutable default would be shared by every parse
    namespace.typed_fields = getattr(namespace, "typed_fields", frozenset()) | {dest}


class _TypedStore(argparse.Action):
    """``store`` that also records the field in ``args.typed_fields``."""

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, values)
        _mark_typed(namespace, self.dest)


class _TypedBool(argparse.BooleanOptionalAction):
    """``--name/--no-name`` that also records the field in ``args.typed_fields``."""

    def __call__(self, parser, namespace, values, option_string=None):
        super().__call__(parser, namespace, values, option_string)
        _mark_typed(namespace, self.dest)


def add_heartbeat_args(p) -> None:
    """``--heartbeat-s`` / ``--grace-s``: worker liveness, shared by ``explore`` and ``worker``.

    Typed and defaulted by :class:`squeezelab.explore.ExploreConfig`'s fields of those names.
    """
    from squeezelab.explore.config import ExploreConfig

    add_config_fields(p, ExploreConfig, HEARTBEAT_FIELDS)


HEARTBEAT_FIELDS = ("heartbeat_s", "grace_s")


class _Deprecated(argparse.Action):
    def __init__(self, option_strings, dest, new: str, **kw):
        self.new = new
        super().__init__(option_strings, dest, **kw)

    def __call__(self, parser, namespace, values, option_string=None):
        print(
            f"warning: {option_string} is deprecated and goes in the next release; use {self.new}",
            file=sys.stderr,
        )
        if self.nargs == 0:
            values = self.const
        setattr(namespace, self.dest, values)


def deprecated_alias(p, old: str, new: str, dest: str, **kw) -> None:
    """Accept ``old`` (hidden from --help) as ``new`` for one release, with a warning line."""
    kw.setdefault("default", argparse.SUPPRESS)  # the new flag's default stands
    p.add_argument(old, dest=dest, action=_Deprecated, new=new, help=argparse.SUPPRESS, **kw)
