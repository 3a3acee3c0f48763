"""The ``squeezelab`` command: a thin layer over the library.

Each verb lives in its own module ``squeezelab/cli/cmd_<verb>.py`` exposing
``register(subparsers)``, which adds a parser whose ``func(args) -> int`` calls one
library function and renders what it returns. Verb modules are found by name, so
adding a verb touches no other file; they import heavy libraries inside ``func``.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys
from pathlib import Path

import squeezelab
from squeezelab.errors import SqueezelabError


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line (no usage block), exit 2."""

    def error(self, message: str):
        print(f"{self.prog}: error: {message} (see --help)", file=sys.stderr)
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="squeezelab",
        description="Design small deep neural networks for embedded hardware.",
    )
    parser.add_argument(
        "--version", action="version", version=f"squeezelab {squeezelab.__version__}"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    package = importlib.import_module(__name__)
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        if info.name.startswith("cmd_"):
            importlib.import_module(f"{__name__}.{info.name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help, --version, or a flag refused while parsing (one line)
        return e.code if isinstance(e.code, int) else 2
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        if getattr(args, "output_kind", None):
            from squeezelab.cli._flags import check_output

            check_output(getattr(args, "output", None), args.output_kind)
        code = int(args.func(args) or 0)
        sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's exit
        return code
    except SqueezelabError as e:
        print(f"squeezelab {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"squeezelab {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `squeezelab ... | head`: the reader left, end quietly
        _quiet_stdout()
        return 141  # 128 + SIGPIPE, as a shell reports a command its pipe closed
    except Exception as e:  # a bug, or an error we failed to name: one line and a log
        log = _write_log(args.command)
        first = (str(e).strip().splitlines() or [""])[0][:300]
        where = f"; full traceback in {log}" if log else ""
        print(
            f"squeezelab {args.command}: internal error: {type(e).__name__}: {first}{where}",
            file=sys.stderr,
        )
        return 1


def log_dir() -> Path:
    """Where the last-resort handler writes tracebacks: ``$XDG_CACHE_HOME/squeezelab/logs``."""
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(cache) / "squeezelab" / "logs"


def _write_log(command: str) -> Path | None:
    """Write the current exception's traceback to a new log file; its path, or None."""
    import time
    import traceback

    try:
        folder = log_dir()
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{time.strftime('%Y%m%d-%H%M%S')}-{command}-{os.getpid()}.log"
        text = f"squeezelab {squeezelab.__version__}: {' '.join(sys.argv)}\n"
        path.write_text(text + traceback.format_exc())
        return path
    except OSError:  # no writable cache: the one line still says what went wrong
        return None


def _quiet_stdout() -> None:
    """Point stdout at devnull so the interpreter's final flush cannot raise again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout is not a real file (captured in tests)
        pass


if __name__ == "__main__":
    sys.exit(main())
