"""SqueezeNext (Gholami et al. 2018, arXiv 1803.10615): SqueezeNet's successor.

Two-stage squeeze, 3x3 split into 3x1 and 1x3, residual blocks; 1.0-SqNxt-23 is the
[6, 6, 8, 1] variant. Channel arithmetic follows the imgclsmob re-implementation
(724,056 params), whose first block of each stage squeezes harder.
"""

from __future__ import annotations

import torch
from torch import nn

from squeezelab.errors import SpecError
from squeezelab.models._registry import register_model


def _conv_bn_relu(
    in_ch: int, out_ch: int, kernel: tuple[int, int], stride: int = 1
) -> nn.Sequential:
    padding = (kernel[0] // 2, kernel[1] // 2)
    return nn.Sequential(
        nn.Conv2d(in_ch, out_ch, kernel, stride, padding),
        nn.BatchNorm2d(out_ch),
        nn.ReLU(inplace=True),
    )


class SqnxtUnit(nn.Module):
    """1x1 (C/r) -> 1x1 (C/2r) -> 3x1 (C/r) -> 1x3 (C/r) -> 1x1 (out), plus a shortcut, ReLU.

    C is the input width; r = 2 for a plain block, 1 for a strided block and 4 for a
    block that narrows. The shortcut is a 1x1 conv whenever the shape changes.
    """

    def __init__(self, in_ch: int, out_ch: int, stride: int) -> None:
        super().__init__()
        r = 1 if stride == 2 else 4 if in_ch > out_ch else 2
        mid = in_ch // r
        self.body = nn.Sequential(
            _conv_bn_relu(in_ch, mid, (1, 1), stride),
            _conv_bn_relu(mid, mid // 2, (1, 1)),
            _conv_bn_relu(mid // 2, mid, (3, 1)),
            _conv_bn_relu(mid, mid, (1, 3)),
            _conv_bn_relu(mid, out_ch, (1, 1)),
        )
        reshape = stride != 1 or in_ch != out_ch
        self.shortcut = _conv_bn_relu(in_ch, out_ch, (1, 1), stride) if reshape else nn.Identity()
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.body(x) + self.shortcut(x))


class SqueezeNext(nn.Module):
    """7x7/2 stem, 3x3/2 max-pool, four stages of SqnxtUnits, 1x1 conv, global pool, FC."""

    def __init__(
        self,
        depths: tuple[int, ...],
        widths: tuple[int, ...],
        stem: int,
        head: int,
        num_classes: int,
        in_chans: int,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = [
            _conv_bn_relu(in_chans, stem, (7, 7), 2),
            nn.MaxPool2d(3, 2, ceil_mode=True),
        ]
        in_ch = stem
        for i, (depth, width) in enumerate(zip(depths, widths, strict=True)):
            for j in range(depth):
                layers.append(SqnxtUnit(in_ch, width, 2 if j == 0 and i > 0 else 1))
                in_ch = width
        layers.append(_conv_bn_relu(in_ch, head, (1, 1)))
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(head, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x).mean((2, 3)))


def _squeezenext(depths: tuple[int, ...], num_classes: int, in_chans: int, width_mult: float):
    if isinstance(width_mult, bool) or not isinstance(width_mult, int | float) or width_mult <= 0:
        raise SpecError(f"width_mult must be a number > 0, got {width_mult!r}")

    def ch(c: int) -> int:
        return max(8, int(c * width_mult))  # 0.5/1.0/1.5/2.0-SqNxt scale every width

    widths = tuple(ch(c) for c in STAGE_WIDTHS)
    return SqueezeNext(depths, widths, ch(STEM), ch(HEAD), num_classes, in_chans)


STEM = 64  # 7x7/2 conv, then 3x3/2 max-pool
STAGE_WIDTHS = (32, 64, 128, 256)  # block output channels per stage at 1.0 width
HEAD = 128  # the 1x1 conv before global pooling
SQNXT_23 = (6, 6, 8, 1)  # blocks per stage; stages 2-4 start with a stride-2 block


@register_model
def squeezenext_23(
    num_classes: int = 1000, in_chans: int = 3, width_mult: float = 1.0
) -> SqueezeNext:
    """1.0-SqNxt-23: 3x1/1x3 residual blocks (724K params, 282M MACs).

    Layout at 224x224 (C = block input width, ``width_mult`` scales every width)::

        stem     7x7/2 conv 64 (padding 3), BN, ReLU -> 112x112x64
        pool     3x3/2 max-pool (ceil)                ->  56x56
        stage 1  6 blocks,  32 ch, stride 1           ->  56x56x32
        stage 2  6 blocks,  64 ch, first /2           ->  28x28x64
        stage 3  8 blocks, 128 ch, first /2           ->  14x14x128
        stage 4  1 block,  256 ch, /2                 ->   7x7x256
        head     1x1 conv 128, BN, ReLU; global average pool; FC 128 -> classes
        block    1x1 C/2 -> 1x1 C/4 -> 3x1 C/2 -> 1x3 C/2 -> 1x1 out (BN+ReLU after each),
                 + shortcut (identity, or 1x1 conv+BN+ReLU when the shape changes), ReLU;
                 a strided block squeezes to C then C/2, a narrowing one to C/4 then C/8

    The stem pads 3 ("same"); imgclsmob pads 1 (110x110 stem, same params, 276M MACs).

    Args:
        num_classes: classifier outputs.
        in_chans: input channels.
        width_mult: scales every width as ``max(8, int(width_mult * N))`` (the paper's
            0.5/1.0/1.5/2.0-SqNxt-23).

    Example:
        >>> sum(p.numel() for p in squeezenext_23(width_mult=2.0).parameters())
        2583752
    """
    return _squeezenext(SQNXT_23, num_classes, in_chans, width_mult)
