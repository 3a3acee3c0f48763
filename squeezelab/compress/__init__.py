"""Deep Compression (Han et al. 2016, arXiv 1510.00149) to a real ``.sqz`` file and back.

Pruning (:mod:`.prune`), weight sharing (:mod:`.share`), entropy coding (:mod:`.coding`),
the file format (:mod:`.sqz`), bytes per stage (:mod:`.accounting`), and
:func:`load_any_model`, which opens a model file, a ``.sqz`` file or a zoo name alike.
"""

from __future__ import annotations

from squeezelab.compress.accounting import Accounting, accounting
from squeezelab.compress.pipeline import Compressed, compress_model, compress_steps
from squeezelab.compress.sqz import (
    decode_sqz,
    encode_sqz,
    load_sqz,
    read_sqz_header,
    read_sqz_layout,
    write_sqz,
)
from squeezelab.fileio import load_any_model

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
