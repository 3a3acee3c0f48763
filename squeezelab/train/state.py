"""Resume state: model, optimiser tensors and run progress in one safetensors file.

Tensors (``model.*``, ``optim.<param>.<name>``) go into safetensors, everything else
(epoch, step, history, best metric, optimiser hyper-parameters, AMP scaler) into its JSON
metadata block, so that resuming never unpickles anything. Written atomically each epoch.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from squeezelab.errors import FormatError
from squeezelab.io import atomic_path

STATE_FILE = "resume.safetensors"
_KEY = "squeezelab_resume"


def save_state(
    path: str | Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer, info: dict[str, Any]
) -> None:
    """Write the model and optimiser state plus the JSON-able ``info`` to ``path``."""
    from safetensors.torch import save_file

    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    opt = optimizer.state_dict()
    scalars: dict[str, dict[str, Any]] = {}
    for pid, entry in opt["state"].items():
        for name, value in entry.items():
            if torch.is_tensor(value):
                tensors[f"optim.{pid}.{name}"] = value.detach().cpu().contiguous()
            else:
                scalars.setdefault(str(pid), {})[name] = value
    meta = {**info, "optim_groups": opt["param_groups"], "optim_scalars": scalars}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={_KEY: json.dumps(meta)})


def load_state(
    path: str | Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer
) -> dict[str, Any]:
    """Restore ``model`` and ``optimizer`` from :func:`save_state`'s file; returns ``info``."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = json.loads(f.metadata()[_KEY])
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (not a dict)
    except (SafetensorError, OSError, KeyError, ValueError, TypeError) as e:
        raise FormatError(f"{path}: not a squeezelab resume state ({e})") from e
    model_state = {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}
    try:
        model.load_state_dict(model_state, strict=True)
    except RuntimeError as e:  # torch lists every mismatched tensor: keep the first
        lines = [x.strip() for x in str(e).splitlines() if x.strip()]
        first = lines[1] if len(lines) > 1 else (lines[0] if lines else "")
        more = f" (and {len(lines) - 2} more)" if len(lines) > 2 else ""
        raise FormatError(
            f"{path}: model weights do not fit the configured model: {first}{more}"
        ) from None
    state: dict[int, dict[str, Any]] = {}
    for k, v in tensors.items():
        if k.startswith("optim."):
            _, pid, name = k.split(".", 2)
            state.setdefault(int(pid), {})[name] = v
    for pid, entry in meta.pop("optim_scalars").items():
        state.setdefault(int(pid), {}).update(entry)
    optimizer.load_state_dict({"state": state, "param_groups": meta.pop("optim_groups")})
    return meta
