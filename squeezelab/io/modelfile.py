"""The model file: safetensors weights plus one JSON metadata string in the header.

The header metadata holds the JSON under the key ``squeezelab`` (the fields of
``squeezelab.models.ModelMeta.to_dict``). Nothing in the file can execute code when
read, the header is bounded by the file's size (and 16 MiB) before it is parsed, and
``squeezelab.models.load_model`` counts the model it describes before building it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from squeezelab.errors import FormatError
from squeezelab.io.atomic import atomic_path

META_KEY = "squeezelab"
MAX_HEADER_BYTES = 1 << 24  # the tensor index of a 10,000-tensor model is ~1 MB


def save_model_file(path: str | os.PathLike, tensors: dict[str, Any], meta: dict[str, Any]) -> None:
    """Write ``tensors`` (a state_dict) as safetensors with ``meta`` as JSON, atomically."""
    from safetensors.torch import save_file

    import squeezelab

    meta = {"squeezelab_version": squeezelab.__version__, **meta}
    tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={META_KEY: json.dumps(meta, sort_keys=True)})


def read_model_meta(path: str | os.PathLike) -> dict[str, Any]:
    """Only the JSON metadata of a model file (no weights are read)."""
    path = Path(path)
    if not path.exists():
        raise FormatError(f"model file {str(path)!r} does not exist")
    if not path.is_file():  # a FIFO or device would block or never end
        raise FormatError(f"model file {str(path)!r} is not a regular file")
    try:
        with open(path, "rb") as f:
            head = f.read(8)
            if len(head) < 8:
                raise FormatError(f"{path}: too short to be a safetensors model file")
            n = int.from_bytes(head, "little")
            if n > MAX_HEADER_BYTES or n > path.stat().st_size - 8:
                raise FormatError(f"{path}: not a safetensors model file (bad header length)")
            header = json.loads(f.read(n))
        meta = json.loads(header["__metadata__"][META_KEY])
    except FormatError:
        raise
    except (ValueError, KeyError, TypeError, UnicodeDecodeError, RecursionError) as e:
        raise FormatError(f"{path}: not a squeezelab model file ({e.__class__.__name__})") from e
    if not isinstance(meta, dict) or "model" not in meta:
        raise FormatError(f"{path}: model metadata lacks the 'model' field")
    return meta


def read_model_tensors(path: str | os.PathLike) -> dict[str, Any]:
    """The tensors of a model file, as torch tensors on the CPU."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise FormatError(f"{path}: cannot read weights: {e}") from e
