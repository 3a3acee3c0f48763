"""Deep Compression (Han et al. 2016, arXiv 1510.00149) to a real ``.sqz`` file and back.

Pruning (:mod:`.prune`), weight sharing (:mod:`.share`), entropy coding (:mod:`.coding`),
the file format (:mod:`.sqz`), bytes per stage (:mod:`.accounting`), and
:func:`load_any_model`, which opens a model file, a ``.sqz`` file or a zoo name alike.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from squeezelab.compress.accounting import Accounting, accounting
from squeezelab.compress.pipeline import Compressed, compress_model, compress_steps
from squeezelab.compress.sqz import (
    MAGIC,
    decode_sqz,
    encode_sqz,
    load_sqz,
    read_sqz_bytes,
    read_sqz_header,
    read_sqz_layout,
    write_sqz,
)


def _starts_with_magic(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(len(MAGIC)) == MAGIC


def load_any_model(path_or_name: str | os.PathLike) -> tuple[Any, dict[str, Any]]:
    """A ``.safetensors`` model file, a ``.sqz`` file or a zoo name -> ``(module, meta)``.

    A zoo name gives the untrained module with metadata from the registry.

    Example:
        >>> model, meta = load_any_model("squeezenet_small")
        >>> meta["model"], meta["input_size"]
        ('squeezenet_small', 28)
    """
    from squeezelab.compress.pipeline import complete_meta
    from squeezelab.fileio import load_model_file
    from squeezelab.models import create_model

    path = Path(path_or_name)
    if path.suffix == ".sqz" or (path.is_file() and _starts_with_magic(path)):
        model, header = decode_sqz(read_sqz_bytes(path))
        return model, header["meta"]
    if path.suffix == ".safetensors" or path.is_file():
        return load_model_file(path)
    model = create_model(str(path_or_name))
    model.eval()
    return model, complete_meta(model, {"model": str(path_or_name)})


__all__ = [
    "Accounting",
    "Compressed",
    "accounting",
    "compress_model",
    "compress_steps",
    "decode_sqz",
    "encode_sqz",
    "load_any_model",
    "load_sqz",
    "read_sqz_header",
    "read_sqz_layout",
    "write_sqz",
]
