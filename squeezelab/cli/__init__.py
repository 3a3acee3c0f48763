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

import squeezelab
from squeezelab.errors import SqueezelabError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
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
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
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


def _quiet_stdout() -> None:
    """Point stdout at devnull so the interpreter's final flush cannot raise again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout is not a real file (captured in tests)
        pass


if __name__ == "__main__":
    sys.exit(main())
