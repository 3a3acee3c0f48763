"""Training: a loop that yields per-epoch records, run directories, resume and DDP.

``fit(config, out_dir)`` writes a run directory; ``finetune(model, config)`` trains an
in-memory module; ``evaluate(model, dataset)`` scores one. See docs/training.md.
"""

from squeezelab.train.config import RECIPES, TrainConfig
from squeezelab.train.loop import evaluate
from squeezelab.train.run import build_run_model, finetune, fit, trained_meta
from squeezelab.train.schedule import lr_at

__all__ = [
    "RECIPES",
    "TrainConfig",
    "build_run_model",
    "evaluate",
    "finetune",
    "fit",
    "lr_at",
    "trained_meta",
]
