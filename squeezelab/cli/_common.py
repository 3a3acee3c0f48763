"""Helpers shared by CLI verbs: the console, JSON output and the input shape."""

from __future__ import annotations

import json
import sys
from typing import Any

from squeezelab.errors import ConfigError


def console(stderr: bool = False):
    """A rich console; progress and tables for humans, never mixed into --json output."""
    from rich.console import Console

    return Console(stderr=stderr)


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


def add_heartbeat_args(p) -> None:
    """The worker-liveness flags shared by ``explore`` and ``worker``."""
    p.add_argument(
        "--heartbeat-s",
        type=int,
        default=10,
        help="seconds between a worker's heartbeats (default 10)",
    )
    p.add_argument(
        "--grace-s",
        type=int,
        default=40,
        help="seconds without a heartbeat before a trial is marked failed and retried (default 40)",
    )
