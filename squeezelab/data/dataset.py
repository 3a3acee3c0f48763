"""The in-memory dataset: uint8 image tensor, int64 labels, class names, normalisation.

Data lives in one tensor, as in cifar10-airbench (Jordan 2024): a split or subset is an
index operation, never a copy through a Python loop.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from squeezelab.errors import ConfigError


@dataclass
class Dataset:
    images: torch.Tensor  # uint8 (N, C, H, W)
    labels: torch.Tensor  # int64 (N,), values in [0, len(classes))
    classes: list[str]  # class names, index = label
    mean: tuple[float, ...]  # per channel, for images / 255
    std: tuple[float, ...]  # per channel, for images / 255
    name: str  # dataset name or directory, plus the split

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(C, H, W)`` of one image."""
        return tuple(self.images.shape[1:])  # type: ignore[return-value]

    def take(self, index: torch.Tensor, suffix: str = "") -> Dataset:
        """The rows at ``index`` (a 1-D int64 tensor) as a new dataset."""
        return replace(
            self, images=self.images[index], labels=self.labels[index], name=self.name + suffix
        )


def _permutation(n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randperm(n, generator=g)


def split_train_val(
    ds: Dataset, val_fraction: float = 0.1, seed: int = 0
) -> tuple[Dataset, Dataset]:
    """Carve a validation set from ``ds`` deterministically (stratified by class).

    Each class gives ``round(val_fraction * count)`` of its images, picked by a permutation
    seeded with ``seed``; both parts keep the original order of their rows.

    Example:
        >>> train, val = split_train_val(load_dataset("synthetic"), 0.1)  # doctest: +SKIP
    """
    if not 0 <= val_fraction < 1:
        raise ConfigError(f"val_fraction={val_fraction!r} is invalid: allowed [0, 1)")
    perm = _permutation(len(ds), seed)
    labels = ds.labels[perm]
    is_val = torch.zeros(len(ds), dtype=torch.bool)
    for c in range(len(ds.classes)):
        rows = perm[labels == c]
        is_val[rows[: round(val_fraction * len(rows))]] = True
    train_idx = torch.nonzero(~is_val).flatten()
    val_idx = torch.nonzero(is_val).flatten()
    return ds.take(train_idx, ":train"), ds.take(val_idx, ":val")


def subset(ds: Dataset, n: int, seed: int = 0) -> Dataset:
    """``n`` rows of ``ds``, class-balanced where the classes allow, deterministic in ``seed``.

    Rows are dealt round-robin over classes from a seeded permutation, so every class
    gets ``n // classes`` rows (or all it has) and the rest come from the largest classes.

    Example:
        >>> len(subset(load_dataset("synthetic"), 100))  # doctest: +SKIP
        100
    """
    if not isinstance(n, int) or n < 1:
        raise ConfigError(f"subset size n={n!r} is invalid: allowed an integer >= 1")
    if n >= len(ds):
        return ds
    perm = _permutation(len(ds), seed)
    labels = ds.labels[perm]
    # rank of each row within its class in permutation order; take the lowest ranks first
    rank = torch.zeros(len(ds), dtype=torch.int64)
    for c in range(len(ds.classes)):
        mask = labels == c
        rank[mask] = torch.arange(int(mask.sum()))
    order = torch.argsort(rank * len(ds) + torch.arange(len(ds)), stable=True)
    chosen = perm[order[:n]].sort().values
    return ds.take(chosen, f":subset{n}")
