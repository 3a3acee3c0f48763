"""Learning-rate schedules as a pure function of the step, and optimiser construction.

poly is the SqueezeNet Caffe solver's decay, lr * (1 - t/T)^power (Iandola et al. 2016);
one-cycle follows Smith & Topin 2019 (ramp lr/25 -> lr, then cosine to lr/1e4); cosine
follows Loshchilov & Hutter 2017 (SGDR without restarts). A pure function needs no saved
state to resume: the step number is enough.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def lr_at(
    step: int, total: int, base_lr: float, schedule: str, warmup: int = 0, power: float = 1.0
) -> float:
    """Learning rate before optimiser step ``step`` (0-based) of ``total``.

    Example:
        >>> lr_at(50, 100, 0.1, "poly")
        0.05
    """
    if schedule == "onecycle":
        ramp = warmup or max(1, round(0.3 * total))
        if step < ramp:
            return (
                base_lr / 25 + (base_lr - base_lr / 25) * (1 - math.cos(math.pi * step / ramp)) / 2
            )
        p = (step - ramp) / max(1, total - ramp)
        return base_lr / 1e4 + (base_lr - base_lr / 1e4) * (1 + math.cos(math.pi * p)) / 2
    if step < warmup:
        return base_lr * (step + 1) / warmup
    p = min(1.0, (step - warmup) / max(1, total - warmup))
    if schedule == "linear":
        return base_lr * (1 - p)
    if schedule == "poly":
        return base_lr * (1 - p) ** power
    if schedule == "cosine":
        return base_lr * (1 + math.cos(math.pi * p)) / 2
    return base_lr


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Weight decay on conv/linear weights only; biases and BatchNorm parameters get none."""
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (decay if p.ndim > 1 else no_decay).append(p)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def make_optimizer(model: nn.Module, config) -> torch.optim.Optimizer:
    """SGD with momentum or AdamW over :func:`param_groups` of a resolved config."""
    groups = param_groups(model, config.weight_decay)
    if config.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=config.lr, betas=(config.momentum, 0.999))
    return torch.optim.SGD(
        groups,
        lr=config.lr,
        momentum=config.momentum,
        nesterov=bool(config.nesterov and config.momentum > 0),
    )
