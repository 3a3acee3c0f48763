"""Batched augmentation and normalisation on uint8 image tensors.

Each transform is one or two tensor ops over the whole batch, as in cifar10-airbench
(Jordan 2024): random crop with zero padding and horizontal flip (Krizhevsky et al. 2012).
Every random draw comes from an explicit ``torch.Generator`` so that a seed fixes the result.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

AUGMENTATIONS = ("crop", "flip")


def random_crop(x: torch.Tensor, padding: int, generator: torch.Generator) -> torch.Tensor:
    """Shift each image by up to ``padding`` pixels, filling with zeros (pad then crop).

    Example:
        >>> random_crop(torch.zeros(8, 1, 28, 28, dtype=torch.uint8), 2, torch.Generator()).shape
        torch.Size([8, 1, 28, 28])
    """
    if padding <= 0:
        return x
    n, c, h, w = x.shape
    padded = F.pad(x, (padding,) * 4)
    dy = torch.randint(0, 2 * padding + 1, (n,), generator=generator)
    dx = torch.randint(0, 2 * padding + 1, (n,), generator=generator)
    rows = (dy[:, None] + torch.arange(h))[:, None, :, None].to(x.device)
    cols = (dx[:, None] + torch.arange(w))[:, None, None, :].to(x.device)
    batch = torch.arange(n, device=x.device)[:, None, None, None]
    chans = torch.arange(c, device=x.device)[None, :, None, None]
    return padded[batch, chans, rows, cols]


def random_flip(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Mirror each image left-right with probability 1/2."""
    flip = (torch.rand(x.shape[0], generator=generator) < 0.5).to(x.device)
    return torch.where(flip[:, None, None, None], x.flip(3), x)


def augment(
    x: torch.Tensor, ops: tuple[str, ...], generator: torch.Generator, padding: int = 2
) -> torch.Tensor:
    """Apply ``ops`` (names from :data:`AUGMENTATIONS`) in order to a uint8 batch."""
    for op in ops:
        x = random_crop(x, padding, generator) if op == "crop" else random_flip(x, generator)
    return x


def normalize(
    x: torch.Tensor,
    mean: tuple[float, ...],
    std: tuple[float, ...],
    memory_format: torch.memory_format = torch.contiguous_format,
) -> torch.Tensor:
    """uint8 ``x`` -> float32 ``(x / 255 - mean) / std`` per channel, in ``memory_format``."""
    scale = torch.tensor([1 / (255 * s) for s in std], device=x.device)[None, :, None, None]
    shift = torch.tensor([m / s for m, s in zip(mean, std, strict=True)], device=x.device)
    out = x.to(dtype=torch.float32, memory_format=memory_format)
    return out.mul_(scale).sub_(shift[None, :, None, None])
