"""Magnitude pruning to a target sparsity, per layer or global (Han et al. 2015/2016).

Deep Compression (arXiv 1510.00149, section 2) removes the weights of smallest magnitude
from every convolution and fully connected layer and retrains with the rest; the masks
returned here are kept during fine-tuning (:func:`keep_pruned`) so removed weights stay 0.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch
from torch import nn

from squeezelab.compress.records import FinetuneStep, PrunedStep
from squeezelab.errors import ConfigError

SCOPES = ("layer", "global")


def prunable(model: nn.Module) -> dict[str, nn.Parameter]:
    """The weights that pruning and weight sharing act on: conv and linear layers'.

    Keys are state_dict names (``features.0.weight``); biases, BatchNorm and the rest
    are stored plainly.
    """
    out = {}
    for name, module in model.named_modules():
        if isinstance(module, nn.modules.conv._ConvNd | nn.Linear):
            out[f"{name}.weight" if name else "weight"] = module.weight
    return out


def is_fc(model: nn.Module, name: str) -> bool:
    """Whether state_dict entry ``name`` is a fully connected layer's weight."""
    return isinstance(model.get_submodule(name.rsplit(".", 1)[0]), nn.Linear)


def _check_sparsity(value: float, what: str) -> None:
    if not isinstance(value, int | float) or not 0 <= value < 1:
        raise ConfigError(f"{what}={value!r} is invalid: allowed a fraction removed in [0, 1)")


def magnitude_masks(
    model: nn.Module,
    sparsity: float | dict[str, float],
    scope: str = "layer",
) -> dict[str, torch.Tensor]:
    """Boolean keep-masks removing the ``sparsity`` fraction of smallest-magnitude weights.

    Args:
        model: any module; its conv and linear weights are pruned.
        sparsity: fraction of weights removed (0.67 keeps a third, the SqueezeNet paper's
            "33% sparsity"); a dict gives it per layer (missing layers are not pruned).
        scope: "layer" removes the fraction from every layer; "global" ranks all weights
            together (one magnitude threshold), so layers are pruned unevenly.

    Example:
        >>> masks = magnitude_masks(nn.Linear(10, 10), 0.5)
        >>> int(masks["weight"].sum())
        50
    """
    if scope not in SCOPES:
        raise ConfigError(f"scope={scope!r} is invalid: allowed one of {list(SCOPES)}")
    weights = prunable(model)
    if isinstance(sparsity, dict):
        unknown = sorted(set(sparsity) - set(weights))
        if unknown:
            raise ConfigError(f"sparsity names unknown layer(s) {unknown}; known: {list(weights)}")
        for name, value in sparsity.items():
            _check_sparsity(value, f"sparsity[{name!r}]")
        return {n: _keep_largest(w.detach(), sparsity.get(n, 0.0)) for n, w in weights.items()}
    _check_sparsity(sparsity, "sparsity")
    if scope == "layer":
        return {n: _keep_largest(w.detach(), sparsity) for n, w in weights.items()}
    flat = torch.cat([w.detach().abs().reshape(-1) for w in weights.values()])
    drop = int(round(sparsity * flat.numel()))
    if drop == 0:
        return {n: torch.ones_like(w, dtype=torch.bool) for n, w in weights.items()}
    threshold = flat.kthvalue(drop).values
    return {n: w.detach().abs() > threshold for n, w in weights.items()}


def _keep_largest(w: torch.Tensor, sparsity: float) -> torch.Tensor:
    """Keep weights above the ``drop``-th smallest magnitude (ties at it are removed too)."""
    drop = int(round(sparsity * w.numel()))
    if drop == 0:
        return torch.ones_like(w, dtype=torch.bool)
    return w.abs() > w.abs().reshape(-1).kthvalue(drop).values


@torch.no_grad()
def apply_masks(model: nn.Module, masks: dict[str, torch.Tensor]) -> None:
    """Zero the removed weights in place."""
    weights = prunable(model)
    for name, mask in masks.items():
        weights[name].mul_(mask.to(weights[name].device, weights[name].dtype))


def keep_pruned(masks: dict[str, torch.Tensor]) -> Callable[[nn.Module], None]:
    """An ``on_step`` hook for :func:`squeezelab.train.finetune` re-applying ``masks``.

    Called after every optimizer step, it undoes what momentum and weight decay did to
    the removed weights, so they are exactly 0 when fine-tuning ends.
    """
    return lambda model: apply_masks(model, masks)


def sparsity_of(model: nn.Module) -> dict[str, float]:
    """Fraction of zero weights per prunable layer."""
    return {n: float((w == 0).float().mean()) for n, w in prunable(model).items()}


def prune_iterative(
    model: nn.Module,
    sparsity: float,
    scope: str = "layer",
    steps: int = 1,
    finetune_config=None,
    data=None,
) -> Iterator[FinetuneStep | PrunedStep]:
    """Prune in ``steps`` rounds of rising sparsity, fine-tuning after each round.

    Yields a :class:`FinetuneStep` (``stage`` "prune", its ``round``) per fine-tuning epoch
    and finally a :class:`PrunedStep` with the masks. Without ``finetune_config`` the
    rounds are pruning only; ``data`` is its training split already loaded (as
    :func:`squeezelab.train.finetune` takes it). Masks of a round include the previous.

    Example:
        >>> for rec in prune_iterative(nn.Linear(4, 4), 0.5): pass
        >>> rec.stage
        'pruned'
    """
    if not isinstance(steps, int) or steps < 1:
        raise ConfigError(f"prune steps={steps!r} is invalid: allowed an integer >= 1")
    masks: dict[str, torch.Tensor] = {}
    for r in range(1, steps + 1):
        masks = magnitude_masks(model, sparsity * r / steps, scope)
        apply_masks(model, masks)
        if finetune_config is not None and finetune_config.epochs > 0:
            from squeezelab.train import finetune

            on_step = keep_pruned(masks)
            for rec in finetune(model, finetune_config, on_step=on_step, data=data):
                yield FinetuneStep("prune", rec, r)
            apply_masks(model, masks)
    yield PrunedStep(masks)
