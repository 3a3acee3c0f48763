"""The one error root and its subclasses.

Every error a user can cause raises one of these, with a message naming the field,
the value and what is allowed; the CLI prints the message and exits with code 2.
"""


def printable(text: str) -> str:
    """``text`` on one line: a newline or other control character that a file or a flag
    carried into a message is shown escaped (``\\n``), so the error stays one line."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


class SqueezelabError(Exception):
    """Root of every error a user can cause (its message always one line)."""

    def __str__(self) -> str:
        return printable(super().__str__())


class SpecError(SqueezelabError, ValueError):
    """An architecture spec or model override is invalid."""


class UnknownNameError(SqueezelabError, KeyError):
    """A model, hardware profile, dataset or preset name is not registered."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return printable(str(self.args[0])) if self.args else ""


class DatasetError(SqueezelabError):
    """A dataset is missing or one of its files is malformed."""


class FormatError(SqueezelabError):
    """A model file, .sqz file or profile file is truncated, altered or foreign."""


class ConfigError(SqueezelabError, ValueError):
    """A configuration value (CLI flag, YAML field) is out of range."""


class InfeasibleError(SqueezelabError):
    """No candidate in a search space satisfies the constraints."""


def unknown_name(kind: str, name: str, known: list[str]) -> UnknownNameError:
    """Build an UnknownNameError that lists the closest known names."""
    import difflib

    close = difflib.get_close_matches(name, known, n=3, cutoff=0.4)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    listing = ", ".join(sorted(known)[:20]) + (", ..." if len(known) > 20 else "")
    return UnknownNameError(f"unknown {kind} {name!r}{hint} (known: {listing})")


def one_line(e: BaseException) -> str:
    """A third-party exception as one line: YAML's problem and position, else the first line.

    YAML parse errors carry a caret drawing and SQLAlchemy errors the SQL; a user needs the
    problem and where it is, on one line, next to the file or flag the caller names.
    """
    mark, problem = getattr(e, "problem_mark", None), getattr(e, "problem", None)
    if mark is not None and problem:
        return f"{problem} at line {mark.line + 1}, column {mark.column + 1}"
    lines = [x.strip() for x in str(e).splitlines() if x.strip()]
    return f"{type(e).__name__}: {lines[0][:300]}" if lines else type(e).__name__
