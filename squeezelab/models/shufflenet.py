"""ShuffleNetV2 (Ma et al. 2018, arXiv 1807.11164): channel split, two branches, channel shuffle.

Follows torchvision's ``models/shufflenetv2.py`` layer for layer (same state_dict keys).
The width knob is the paper's stage channel table (Table 5), one spec constant per width.
"""

from __future__ import annotations

import torch
from torch import nn

from squeezelab.errors import SpecError
from squeezelab.models._registry import register_model


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """Interleave the channels of ``groups`` groups so the next block mixes both branches."""
    b, c, h, w = x.shape
    return x.view(b, groups, c // groups, h, w).transpose(1, 2).reshape(b, c, h, w)


def _depthwise(ch: int, stride: int) -> list[nn.Module]:
    return [nn.Conv2d(ch, ch, 3, stride, 1, groups=ch, bias=False), nn.BatchNorm2d(ch)]


def _pointwise(in_ch: int, out_ch: int) -> list[nn.Module]:
    return [nn.Conv2d(in_ch, out_ch, 1, bias=False), nn.BatchNorm2d(out_ch), nn.ReLU(inplace=True)]


class ShuffleUnit(nn.Module):
    """Stride 1: split channels, transform one half. Stride 2: both branches see all input.

    Branch 2 is 1x1 -> 3x3 depthwise -> 1x1; branch 1 (stride 2 only) is 3x3 depthwise -> 1x1.
    """

    def __init__(self, in_ch: int, out_ch: int, stride: int) -> None:
        super().__init__()
        self.stride = stride
        half = out_ch // 2
        self.branch1 = (
            nn.Sequential(*_depthwise(in_ch, stride), *_pointwise(in_ch, half))
            if stride > 1
            else nn.Sequential()
        )
        b2_in = in_ch if stride > 1 else half
        self.branch2 = nn.Sequential(
            *_pointwise(b2_in, half), *_depthwise(half, stride), *_pointwise(half, half)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1:
            x1, x2 = x.chunk(2, dim=1)
            out = torch.cat((x1, self.branch2(x2)), dim=1)
        else:
            out = torch.cat((self.branch1(x), self.branch2(x)), dim=1)
        return channel_shuffle(out, 2)


class ShuffleNetV2(nn.Module):
    """3x3/2 stem, 3x3/2 max-pool, three shuffle stages, 1x1 conv5, global pool, FC."""

    def __init__(self, channels: tuple[int, ...], num_classes: int, in_chans: int) -> None:
        super().__init__()
        stem, *stage_ch, last = channels
        self.conv1 = nn.Sequential(
            nn.Conv2d(in_chans, stem, 3, 2, 1, bias=False),
            nn.BatchNorm2d(stem),
            nn.ReLU(inplace=True),
        )
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        in_ch = stem
        for i, (repeats, out) in enumerate(zip(STAGE_REPEATS, stage_ch, strict=True)):
            units = [ShuffleUnit(in_ch, out, 2)] + [
                ShuffleUnit(out, out, 1) for _ in range(repeats - 1)
            ]
            setattr(self, f"stage{i + 2}", nn.Sequential(*units))
            in_ch = out
        self.conv5 = nn.Sequential(*_pointwise(in_ch, last))
        self.fc = nn.Linear(last, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.conv1(x))
        x = self.conv5(self.stage4(self.stage3(self.stage2(x))))
        return self.fc(x.mean((2, 3)))


def _shufflenet_v2(num_classes: int, in_chans: int, width_mult: float) -> ShuffleNetV2:
    if (
        isinstance(width_mult, bool)
        or not isinstance(width_mult, int | float)
        or width_mult not in WIDTHS
    ):
        raise SpecError(
            f"width_mult must be one of {sorted(WIDTHS)} for ShuffleNetV2, got {width_mult!r}"
        )
    return ShuffleNetV2(WIDTHS[width_mult], num_classes, in_chans)


STAGE_REPEATS = (4, 8, 4)  # units in stage2, stage3, stage4 (the first one strides)
# (stem, stage2, stage3, stage4, conv5) output channels, paper Table 5
X0_5 = (24, 48, 96, 192, 1024)
X1_0 = (24, 116, 232, 464, 1024)
X1_5 = (24, 176, 352, 704, 1024)
X2_0 = (24, 244, 488, 976, 2048)
WIDTHS = {0.5: X0_5, 1.0: X1_0, 1.5: X1_5, 2.0: X2_0}


@register_model
def shufflenet_v2_x1_0(
    num_classes: int = 1000, in_chans: int = 3, width_mult: float = 1.0
) -> ShuffleNetV2:
    """ShuffleNetV2 1.0x: channel split and shuffle (2.28M params, 145M MACs).

    Args:
        num_classes: classifier outputs.
        in_chans: input channels.
        width_mult: 0.5, 1.0, 1.5 or 2.0, picking the paper's stage channel table.

    Example:
        >>> sum(p.numel() for p in shufflenet_v2_x1_0(width_mult=1.5).parameters())
        3503624
    """
    return _shufflenet_v2(num_classes, in_chans, width_mult)


@register_model
def shufflenet_v2_x0_5(num_classes: int = 1000, in_chans: int = 3) -> ShuffleNetV2:
    """ShuffleNetV2 0.5x: channel split and shuffle (1.37M params, 40M MACs)."""
    return _shufflenet_v2(num_classes, in_chans, 0.5)
