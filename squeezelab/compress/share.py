"""Weight sharing: per-layer 1-D k-means on the surviving weights, and centroid fine-tuning.

Deep Compression (Han et al. 2016, arXiv 1510.00149, section 3): k = 2**bits centroids per
layer, initialised linearly over [min, max] (the paper's best), so every weight is stored as
a ``bits``-wide index into a float32 codebook. During fine-tuning a weight is
``codebook[index]``, so autograd gives each centroid the sum of its members' gradients.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn.utils import parametrize

from squeezelab.compress.prune import is_fc, prunable
from squeezelab.compress.records import FinetuneStep
from squeezelab.errors import ConfigError
from squeezelab.io.sqzfile import MAX_BITS, MIN_BITS


def kmeans_1d(values: np.ndarray, k: int, iters: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """Lloyd's k-means in one dimension with linear initialisation over [min, max].

    In 1-D the clusters are runs of the sorted values split at the midpoints between
    centroids, so one sort and a prefix sum make every iteration O(k log n) instead of
    O(n k). Empty clusters keep their centroid.

    Returns:
        ``(centroids, labels)``: float32 centroids (ascending) and an index per value.

    Example:
        >>> c, lab = kmeans_1d(np.array([0.0, 0.1, 1.0, 1.1], np.float32), 2)
        >>> c.tolist(), lab.tolist()
        ([0.05000000074505806, 1.0499999523162842], [0, 0, 1, 1])
    """
    values = np.asarray(values, dtype=np.float32).reshape(-1)
    if not len(values):
        return np.zeros(0, np.float32), np.zeros(0, np.int64)
    xs = np.sort(values)
    prefix = np.concatenate(([0.0], np.cumsum(xs, dtype=np.float64)))
    c = np.linspace(float(xs[0]), float(xs[-1]), k)
    for _ in range(iters):
        cuts = np.searchsorted(xs, (c[1:] + c[:-1]) / 2)
        edges = np.concatenate(([0], cuts, [len(xs)]))
        counts = np.diff(edges)
        sums = prefix[edges[1:]] - prefix[edges[:-1]]
        new = np.sort(np.where(counts > 0, sums / np.maximum(counts, 1), c))
        if np.array_equal(new, c):
            break
        c = new
    centroids = c.astype(np.float32)
    bounds = (centroids[1:].astype(np.float64) + centroids[:-1]) / 2
    return centroids, np.searchsorted(bounds, values.astype(np.float64)).astype(np.int64)


class SharedWeight(nn.Module):
    """A parametrization: ``weight = where(mask, centroids[index], 0)``.

    ``centroids`` is the only trainable tensor; the index and the pruning mask are fixed.
    """

    def __init__(self, centroids: torch.Tensor, index: torch.Tensor, mask: torch.Tensor):
        super().__init__()
        self.centroids = nn.Parameter(centroids)
        self.register_buffer("index", index.to(torch.uint8))
        self.register_buffer("mask", mask.to(torch.bool))

    def forward(self, original: torch.Tensor) -> torch.Tensor:
        shared = self.centroids[self.index.long()]
        return torch.where(self.mask, shared, torch.zeros((), dtype=shared.dtype))


def check_bits(bits: int, flag: str = "bits") -> None:
    if not isinstance(bits, int) or isinstance(bits, bool) or not MIN_BITS <= bits <= MAX_BITS:
        raise ConfigError(f"{flag}={bits!r} is invalid: allowed an integer {MIN_BITS}..{MAX_BITS}")


@torch.no_grad()
def share_weights(
    model: nn.Module, bits: int = 6, fc_bits: int | None = None, iters: int = 100
) -> dict[str, int]:
    """Replace every conv / linear weight by a k-means codebook and indices (in place).

    Zero weights count as pruned and stay 0; only the survivors are clustered. Call
    :func:`bake` afterwards to turn the parametrizations back into plain weights.

    Args:
        model: the (pruned) module.
        bits: index width of conv layers, 2..8 (k = 2**bits centroids).
        fc_bits: index width of fully connected layers (default ``bits``).
        iters: k-means iterations at most.

    Returns:
        The index width used per layer (state_dict names).
    """
    check_bits(bits)
    fc_bits = bits if fc_bits is None else fc_bits
    check_bits(fc_bits, "fc_bits")
    widths = {}
    for name, weight in prunable(model).items():
        b = fc_bits if is_fc(model, name) else bits
        w = weight.detach().cpu().numpy().reshape(-1)
        mask = w != 0
        centroids, labels = kmeans_1d(w[mask], 1 << b, iters)
        index = np.zeros(len(w), dtype=np.uint8)
        index[mask] = labels
        if not len(centroids):
            centroids = np.zeros(1, np.float32)
        shared = SharedWeight(
            torch.from_numpy(centroids),
            torch.from_numpy(index).reshape(weight.shape),
            torch.from_numpy(mask).reshape(weight.shape),
        )
        module = model.get_submodule(name.rsplit(".", 1)[0])
        parametrize.register_parametrization(
            module, "weight", shared.to(weight.device), unsafe=True
        )
        widths[name] = b
    return widths


def _shared_modules(model: nn.Module) -> dict[str, SharedWeight]:
    out = {}
    for name, module in model.named_modules():
        if parametrize.is_parametrized(module, "weight"):
            for p in module.parametrizations["weight"]:
                if isinstance(p, SharedWeight):
                    out[f"{name}.weight" if name else "weight"] = p
    return out


@dataclass
class SharedTensor:
    """A weight-shared tensor as stored: codebook, one index per survivor, their positions."""

    name: str
    shape: tuple[int, ...]
    bits: int
    codebook: np.ndarray  # float32, only the centroids in use
    index: np.ndarray  # int64 in [0, len(codebook)), one per surviving weight
    positions: np.ndarray  # int64 flat (row-major) positions of the survivors, ascending

    @property
    def numel(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    def dense(self) -> torch.Tensor:
        """The float32 tensor these stand for."""
        out = np.zeros(self.numel, dtype=np.float32)
        out[self.positions] = self.codebook[self.index]
        return torch.from_numpy(out).reshape(self.shape)


def shared_tensors(model: nn.Module, widths: dict[str, int]) -> list[SharedTensor]:
    """The weight-shared tensors of a model prepared by :func:`share_weights`."""
    out = []
    for name, p in _shared_modules(model).items():
        mask = p.mask.reshape(-1).cpu().numpy()
        positions = np.flatnonzero(mask)
        index = p.index.reshape(-1).cpu().numpy()[positions].astype(np.int64)
        centroids = p.centroids.detach().cpu().numpy().astype(np.float32)
        used = np.flatnonzero(np.bincount(index, minlength=len(centroids)))
        remap = np.zeros(len(centroids), dtype=np.int64)
        remap[used] = np.arange(len(used))
        out.append(
            SharedTensor(
                name, tuple(p.mask.shape), widths[name], centroids[used], remap[index], positions
            )
        )
    return out


def bake(model: nn.Module) -> None:
    """Turn every sharing parametrization into a plain weight holding its current value."""
    for name in _shared_modules(model):
        module = model.get_submodule(name.rsplit(".", 1)[0])
        parametrize.remove_parametrizations(module, "weight", leave_parametrized=True)


def finetune_centroids(model: nn.Module, config, data=None) -> Iterator[FinetuneStep]:
    """Fine-tune only what sharing leaves free: centroids, biases, BatchNorm.

    Yields a :class:`FinetuneStep` (``stage`` "share") per epoch; ``data`` is the config's
    training split already loaded. The original weights under the parametrizations get
    no gradient, so they do not move.
    """
    from squeezelab.train import finetune

    for p in model.parameters():
        p.requires_grad_(True)
    for module in model.modules():
        if parametrize.is_parametrized(module, "weight"):
            module.parametrizations["weight"].original.requires_grad_(False)
    try:
        for rec in finetune(model, config, data=data):
            yield FinetuneStep("share", rec)
    finally:
        for p in model.parameters():
            p.requires_grad_(True)
