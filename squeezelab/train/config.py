"""TrainConfig and recipes: named presets that fill the fields a user leaves unset.

``squeezenet-caffe`` is the solver of SqueezeNet's Caffe release (Iandola et al. 2016:
SGD momentum 0.9, weight decay 2e-4, poly learning-rate decay with power 1.0).
Resolution order: built-in defaults < recipe < fields set explicitly (not ``None``).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from squeezelab.errors import ConfigError, unknown_name

OPTIMIZERS = ("sgd", "adamw")
SCHEDULES = ("constant", "linear", "poly", "cosine", "onecycle")
AMP_CHOICES = ("auto", "bf16", "fp16", "off")
MAX_INPUT_SIZE = 8192  # load_dataset's cap on a resized side (2**26 pixels per image)

# Fields a recipe may set; None in a TrainConfig means "recipe value, else this default".
BASE: dict[str, Any] = {
    "epochs": 10,
    "batch_size": 128,
    "lr": 0.1,
    "optimizer": "sgd",
    "momentum": 0.9,
    "nesterov": True,
    "schedule": "onecycle",
    "poly_power": 1.0,
    "warmup_epochs": 0.0,
    "weight_decay": 5e-4,
    "label_smoothing": 0.1,
    "augment": None,  # None -> the dataset's default (crop+flip for Fashion-MNIST)
    "crop_padding": 2,
    "grad_clip": None,  # None = no clipping
}

RECIPES: dict[str, dict[str, Any]] = {
    # Fashion-MNIST in few epochs: one-cycle SGD, label smoothing, crop + flip.
    "fmnist-fast": {
        "epochs": 10,
        "batch_size": 128,
        "lr": 0.1,
        "optimizer": "sgd",
        "schedule": "onecycle",
        "weight_decay": 5e-4,
        "label_smoothing": 0.1,
    },
    # SqueezeNet's Caffe solver (base_lr 0.04, poly power 1.0, momentum 0.9, wd 2e-4).
    "squeezenet-caffe": {
        "batch_size": 512,
        "lr": 0.04,
        "optimizer": "sgd",
        "nesterov": False,
        "schedule": "poly",
        "poly_power": 1.0,
        "weight_decay": 2e-4,
        "label_smoothing": 0.0,
        "warmup_epochs": 0.0,
    },
    # AdamW with cosine decay after one warm-up epoch (Loshchilov & Hutter 2019).
    "adamw-cosine": {
        "lr": 2e-3,
        "optimizer": "adamw",
        "schedule": "cosine",
        "warmup_epochs": 1.0,
        "weight_decay": 0.05,
        "label_smoothing": 0.1,
    },
}
# SqueezeDet's solver (kitti_squeezeDet_config.py: SGD momentum 0.9, lr 0.01, weight decay
# 1e-4, gradient norm clipped at 1.0); cosine decay instead of its steps, no augmentation.
RECIPES["squeezedet"] = {
    "lr": 0.01,
    "optimizer": "sgd",
    "momentum": 0.9,
    "nesterov": False,
    "schedule": "cosine",
    "weight_decay": 1e-4,
    "label_smoothing": 0.0,
    "augment": "none",
    "grad_clip": 1.0,
}
# Time to accuracy on a CPU (benchmarks/time_to_accuracy.py): batch 128 (more steps an
# epoch than 256 for 16% fewer images a second: the better trade in few epochs), flips
# only (crops slow the first epochs more than they help their end), one-cycle SGD.
RECIPES["fmnist-tta"] = {**RECIPES["fmnist-fast"], "epochs": 8, "augment": "flip"}
# Search trials: fmnist-fast cut to a short, fixed budget (explore ranks candidates by it).
RECIPES["search-short"] = {**RECIPES["fmnist-fast"], "epochs": 3}


@dataclass
class TrainConfig:
    model: str = "squeezenet_small"  # registry name
    spec: dict | None = None  # SqueezeNetSpec (or its fields); wins over the model's own spec
    model_args: dict | None = None  # builder keywords of other families, e.g. {"width_mult": 0.5}
    data: str = "fashion-mnist"  # dataset name or directory
    data_dir: str | None = None  # where to look for a named dataset first
    input_size: int | None = dataclasses.field(  # the help, too long for a trailing comment
        default=None,
        metadata={
            "help": "resize ImageFolder images to this square side, px: shorter side, then "
            "centre crop (default: a one-size tree as it is, a mixed one to its lower-median "
            "shorter side)"
        },
    )
    recipe: str | None = None  # a RECIPES name supplying unset fields
    epochs: int | None = None  # passes over the training split
    batch_size: int | None = None  # global batch (all ranks together), images
    lr: float | None = None  # peak learning rate
    optimizer: str | None = None  # sgd | adamw
    momentum: float | None = None  # SGD momentum (AdamW: beta1)
    nesterov: bool | None = None  # Nesterov momentum for SGD
    schedule: str | None = None  # constant | linear | poly | cosine | onecycle
    poly_power: float | None = None  # exponent of the poly schedule
    warmup_epochs: float | None = None  # linear warm-up from 0, epochs (onecycle: its ramp)
    weight_decay: float | None = None  # on conv/linear weights only, never biases or BN
    label_smoothing: float | None = None  # cross-entropy target smoothing, 0..1
    augment: str | None = None  # "crop,flip", "crop", "none"; None -> dataset default
    crop_padding: int | None = None  # pixels of zero padding for the random crop
    grad_clip: float | None = None  # clip the global gradient norm to this (None = off)
    train_subset: int | None = None  # train on N class-balanced images (search trials)
    val_fraction: float = 0.1  # share of the training split held out for validation
    seed: int = 0  # weights, data order, augmentation and dropout
    channels_last: bool = True  # NHWC activations (faster convolutions on CPU and GPU)
    amp: str = "auto"  # auto (bf16 on CPUs with native bf16, AMP on CUDA) | bf16 | fp16 | off
    compile: bool = False  # torch.compile the model
    teacher: str | None = None  # model file of a teacher for knowledge distillation
    distill_alpha: float = 0.5  # weight of the distillation term (Hinton et al. 2015)
    distill_temperature: float = 4.0  # softmax temperature of the distillation term
    device: str = "auto"  # auto | cpu | cuda | cuda:N

    def __post_init__(self) -> None:
        from squeezelab.models import SqueezeNetSpec

        if isinstance(self.spec, SqueezeNetSpec):  # stored as fields: config.json is JSON
            self.spec = self.spec.to_dict()

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"unknown train config field(s) {unknown}; allowed: {sorted(known)}")
        return cls(**d)

    def resolved(self) -> TrainConfig:
        """A copy with every ``None`` recipe field filled (recipe, then BASE), validated."""
        recipe: dict[str, Any] = {}
        if self.recipe is not None:
            if self.recipe not in RECIPES:
                raise unknown_name("recipe", self.recipe, list(RECIPES))
            recipe = RECIPES[self.recipe]
        values = {
            k: (getattr(self, k) if getattr(self, k) is not None else recipe.get(k, BASE[k]))
            for k in BASE
        }
        out = dataclasses.replace(self, **values)
        if isinstance(out.amp, bool):
            out.amp = "auto" if out.amp else "off"
        validate(out)
        return out


def _need(ok: bool, field: str, value: Any, allowed: str) -> None:
    if not ok:
        raise ConfigError(f"{field}={value!r} is invalid: allowed {allowed}")


def _finite(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


_NUMERIC = (
    "lr",
    "momentum",
    "poly_power",
    "warmup_epochs",
    "weight_decay",
    "label_smoothing",
    "val_fraction",
    "distill_alpha",
    "distill_temperature",
)
_INTEGER = ("epochs", "batch_size", "crop_padding", "seed")


def validate(c: TrainConfig) -> None:
    """Raise ConfigError naming the first bad field of a resolved config."""
    for name in _NUMERIC:
        value = getattr(c, name)
        _need(_finite(value), name, value, "a finite number")
    for name in _INTEGER:
        value = getattr(c, name)
        _need(isinstance(value, int) and not isinstance(value, bool), name, value, "an integer")
    for name in ("model", "data"):
        _need(isinstance(getattr(c, name), str), name, getattr(c, name), "a name")
    _need(isinstance(c.epochs, int) and c.epochs >= 1, "epochs", c.epochs, "an integer >= 1")
    _need(
        isinstance(c.batch_size, int) and c.batch_size >= 1,
        "batch_size",
        c.batch_size,
        "an integer >= 1",
    )
    _need(isinstance(c.lr, int | float) and c.lr > 0, "lr", c.lr, "a number > 0")
    _need(c.optimizer in OPTIMIZERS, "optimizer", c.optimizer, f"one of {list(OPTIMIZERS)}")
    _need(c.schedule in SCHEDULES, "schedule", c.schedule, f"one of {list(SCHEDULES)}")
    _need(0 <= c.momentum < 1, "momentum", c.momentum, "a number in [0, 1)")
    _need(c.poly_power > 0, "poly_power", c.poly_power, "a number > 0")
    _need(
        0 <= c.warmup_epochs <= c.epochs,
        "warmup_epochs",
        c.warmup_epochs,
        f"a number in [0, epochs={c.epochs}]",
    )
    _need(c.weight_decay >= 0, "weight_decay", c.weight_decay, "a number >= 0")
    _need(0 <= c.label_smoothing < 1, "label_smoothing", c.label_smoothing, "a number in [0, 1)")
    _need(c.crop_padding >= 0, "crop_padding", c.crop_padding, "an integer >= 0")
    _need(
        c.grad_clip is None or (_finite(c.grad_clip) and c.grad_clip > 0),
        "grad_clip",
        c.grad_clip,
        "None or a number > 0",
    )
    _need(c.amp in AMP_CHOICES, "amp", c.amp, f"one of {list(AMP_CHOICES)}")
    _need(0 <= c.val_fraction < 1, "val_fraction", c.val_fraction, "a number in [0, 1)")
    _need(0 <= c.distill_alpha <= 1, "distill_alpha", c.distill_alpha, "a number in [0, 1]")
    _need(c.distill_temperature > 0, "distill_temperature", c.distill_temperature, "a number > 0")
    _need(
        c.input_size is None or (type(c.input_size) is int and 1 <= c.input_size <= MAX_INPUT_SIZE),
        "input_size",
        c.input_size,
        f"None or an integer in 1..{MAX_INPUT_SIZE}",
    )
    _need(
        c.train_subset is None or (isinstance(c.train_subset, int) and c.train_subset >= 1),
        "train_subset",
        c.train_subset,
        "None or an integer >= 1",
    )
    if c.augment is not None:
        from squeezelab.data.augment import AUGMENTATIONS

        ops = augment_ops(c.augment)
        _need(
            all(o in AUGMENTATIONS for o in ops),
            "augment",
            c.augment,
            f"'none' or a comma list of {list(AUGMENTATIONS)}",
        )


def augment_ops(text: str) -> tuple[str, ...]:
    """``"crop,flip"`` -> ``("crop", "flip")``; ``"none"`` or ``""`` -> ``()``."""
    return tuple(
        o.strip() for o in text.replace("+", ",").split(",") if o.strip() not in ("", "none")
    )
