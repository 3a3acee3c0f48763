"""Deep Compression (Han et al. 2016, arXiv 1510.00149) to a real ``.sqz`` file.

Pruning (:mod:`.prune`), weight sharing (:mod:`.share`), the whole pipeline with entropy
coding into ``.sqz`` bytes (:mod:`.pipeline`), its progress records (:mod:`.records`) and
bytes per stage (:mod:`.accounting`). The byte layout is ``squeezelab.io.sqzfile``;
``squeezelab.models.load_model`` decodes it.
"""

from __future__ import annotations

from squeezelab.compress.accounting import Accounting, byte_accounting
from squeezelab.compress.pipeline import Compressed, compress_model, compress_steps, write_sqz
from squeezelab.compress.records import (
    DoneStep,
    EncodeStep,
    EvaluateStep,
    FinetuneStep,
    PrunedStep,
    StepRecord,
)

__all__ = [
    "Accounting",
    "Compressed",
    "DoneStep",
    "EncodeStep",
    "EvaluateStep",
    "FinetuneStep",
    "PrunedStep",
    "StepRecord",
    "byte_accounting",
    "compress_model",
    "compress_steps",
    "write_sqz",
]
