"""Training: a loop that yields per-epoch records, run directories, resume and DDP.

``fit(config, out_dir)`` writes a run directory; ``finetune(model, config)`` trains an
in-memory module; both yield an :class:`EpochRecord` per epoch. ``evaluate(model,
dataset)`` scores one. See docs/training.md.
"""

from squeezelab.lazy import lazy_attributes
from squeezelab.train.config import RECIPES, TrainConfig
from squeezelab.train.records import EpochRecord

# the loop and run directories need torch: imported on first use, so that the CLI can
# build its flags from TrainConfig without importing torch
_LAZY = {
    "Scores": "loop",
    "evaluate": "loop",
    "build_run_model": "run",
    "finetune": "run",
    "fit": "run",
    "load_training_split": "run",
    "read_metrics": "records",
    "trained_meta": "run",
    "lr_at": "schedule",
}

__getattr__ = lazy_attributes(__name__, _LAZY)


__all__ = [
    "RECIPES",
    "EpochRecord",
    "Scores",
    "TrainConfig",
    "build_run_model",
    "evaluate",
    "finetune",
    "fit",
    "load_training_split",
    "lr_at",
    "read_metrics",
    "trained_meta",
]
