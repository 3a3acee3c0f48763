"""Atomic file writes and the model file: safetensors weights plus JSON metadata.

A model file is a plain safetensors file whose header metadata holds one JSON string
under the key ``squeezelab``: model name, spec, classes, input shape, normalisation and
metrics. Nothing in it can execute code when read.
"""

from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from squeezelab.errors import FormatError

META_KEY = "squeezelab"


@contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temporary path beside ``path``; on success fsync it and rename over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; give the usual mode
        os.replace(tmp, path)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temporary file, fsync, rename)."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented JSON to ``path`` atomically."""
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


def save_model_file(path: str | os.PathLike, model, meta: dict[str, Any]) -> None:
    """Save a module's state_dict as safetensors with ``meta`` as JSON in the header.

    ``meta`` must hold at least ``model`` (a registry name) and may hold ``spec``,
    ``num_classes``, ``in_chans``, ``input_size``, ``classes``, ``normalization`` and
    ``metrics``; :func:`load_model_file` rebuilds the module from it.
    """
    from safetensors.torch import save_file

    import squeezelab

    meta = {"squeezelab_version": squeezelab.__version__, **meta}
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={META_KEY: json.dumps(meta, sort_keys=True)})


def read_model_meta(path: str | os.PathLike) -> dict[str, Any]:
    """Read only the JSON metadata of a model file (no weights are loaded)."""
    path = Path(path)
    if not path.is_file():
        raise FormatError(f"model file {str(path)!r} does not exist")
    try:
        with open(path, "rb") as f:
            head = f.read(8)
            if len(head) < 8:
                raise FormatError(f"{path}: too short to be a safetensors model file")
            n = int.from_bytes(head, "little")
            if n > 100_000_000 or n > path.stat().st_size - 8:
                raise FormatError(f"{path}: not a safetensors model file (bad header length)")
            header = json.loads(f.read(n))
        meta = json.loads(header["__metadata__"][META_KEY])
    except FormatError:
        raise
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as e:
        raise FormatError(f"{path}: not a squeezelab model file ({e.__class__.__name__})") from e
    if not isinstance(meta, dict) or "model" not in meta:
        raise FormatError(f"{path}: model metadata lacks the 'model' field")
    return meta


def build_from_meta(meta: dict[str, Any]):
    """Rebuild an untrained module from model-file metadata."""
    from squeezelab.models import create_model
    from squeezelab.models.spec import SqueezeNetSpec

    if meta.get("spec"):
        from squeezelab.models.squeezenet import SqueezeNet

        return SqueezeNet(SqueezeNetSpec.from_dict(meta["spec"]))
    kwargs = {k: meta[k] for k in ("num_classes", "in_chans") if k in meta}
    return create_model(meta["model"], **kwargs, **(meta.get("model_args") or {}))


def load_model_file(path: str | os.PathLike):
    """Load a model file written by :func:`save_model_file`; returns ``(module, meta)``.

    Example:
        >>> model, meta = load_model_file("runs/fmnist/best.safetensors")  # doctest: +SKIP
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    meta = read_model_meta(path)
    model = build_from_meta(meta)
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise FormatError(f"{path}: cannot read weights: {e}") from e
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise FormatError(f"{path}: weights do not fit model {meta['model']!r}: {e}") from e
    model.eval()
    return model, meta


# ImageNet statistics for 3-channel zoo models, a neutral 0.5/0.5 for single-channel ones.
IMAGENET_NORM = {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}
SQZ_MAGIC = b"\x89SQZ\r\n\x1a\n"


def default_normalization(in_chans: int) -> dict[str, list[float]]:
    """Normalisation stored for an untrained zoo model: ImageNet for RGB, 0.5/0.5 otherwise."""
    if in_chans == 3:
        return {k: list(v) for k, v in IMAGENET_NORM.items()}
    return {"mean": [0.5] * in_chans, "std": [0.5] * in_chans}


def zoo_meta(name: str, model=None) -> dict[str, Any]:
    """Model-file metadata for a registry model at its defaults (no class names, no metrics)."""
    from squeezelab.models import model_info

    info = model_info(name)
    spec = getattr(model, "spec", None) or info.spec
    in_chans = spec.in_chans if spec is not None else info.in_chans
    meta = {
        "model": name,
        "num_classes": spec.num_classes if spec is not None else info.num_classes,
        "in_chans": in_chans,
        "input_size": spec.input_size if spec is not None else info.input_size,
        "normalization": default_normalization(in_chans),
    }
    if spec is not None:
        meta["spec"] = spec.to_dict()
    return meta


def _is_sqz(path: Path) -> bool:
    if path.suffix == ".sqz":
        return True
    with open(path, "rb") as f:
        return f.read(len(SQZ_MAGIC)) == SQZ_MAGIC


def load_any_model(ref: str | os.PathLike):
    """A zoo name, a ``.safetensors`` model file or a ``.sqz`` file -> ``(module, meta)``.

    A zoo name gives the untrained module with metadata from the registry.

    Example:
        >>> model, meta = load_any_model("squeezenet_small")
        >>> meta["model"], meta["input_size"]
        ('squeezenet_small', 28)
    """
    path = Path(ref)
    if path.is_file() and _is_sqz(path):
        from squeezelab.compress.sqz import decode_sqz, read_sqz_bytes

        model, header = decode_sqz(read_sqz_bytes(path))
        return model, header["meta"]
    if path.suffix == ".safetensors":
        return load_model_file(path)
    if path.suffix == ".sqz":
        raise FormatError(f"model file {str(path)!r} does not exist")
    if path.suffix or path.exists():
        raise FormatError(
            f"{str(path)!r} is not a model: allowed a .safetensors model file, a .sqz file "
            "or a zoo name (see `squeezelab models`)"
        )
    from squeezelab.models import create_model

    model = create_model(str(ref)).eval()
    return model, zoo_meta(str(ref), model)
