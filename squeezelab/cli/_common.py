"""Helpers shared by CLI verbs: the console, JSON output, input-shape and model parsing."""

from __future__ import annotations

import json
import sys
from pathlib import Path
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


def resolve_model(ref: str, **overrides):
    """A zoo name, a spec YAML/JSON file, a model file or a ``.sqz`` -> ``(module, name, input_shape)``."""
    from squeezelab.models import create_model, model_info
    from squeezelab.models.spec import SqueezeNetSpec
    from squeezelab.models.squeezenet import SqueezeNet

    path = Path(ref)
    if path.suffix in (".yaml", ".yml", ".json") and path.is_file():
        text = path.read_text()
        spec = (
            SqueezeNetSpec.from_json(text)
            if path.suffix == ".json"
            else SqueezeNetSpec.from_yaml(text)
        )
        spec = spec.replace(**overrides) if overrides else spec
        return SqueezeNet(spec), spec.short_name, (spec.in_chans, spec.input_size, spec.input_size)
    if path.suffix in (".safetensors", ".sqz") and path.is_file():
        from squeezelab.compress import load_any_model

        model, meta = load_any_model(path)
        size = meta.get("input_size", 224)
        return model, meta["model"], (meta.get("in_chans", 3), size, size)
    info = model_info(ref)
    model = create_model(ref, **overrides)
    spec = getattr(model, "spec", None)
    in_chans = overrides.get("in_chans", info.in_chans)
    size = spec.input_size if spec is not None else info.input_size
    return model, ref, (in_chans, size, size)


def add_heartbeat_args(p) -> None:
    """The worker-liveness flags shared by ``explore`` and ``worker``."""
    p.add_argument("--heartbeat-s", type=int, default=10,
                   help="seconds between a worker's heartbeats (default 10)")  # fmt: skip
    p.add_argument("--grace-s", type=int, default=40, help="seconds without a heartbeat "
                   "before a trial is marked failed and retried (default 40)")  # fmt: skip
