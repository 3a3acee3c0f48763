"""MobileNetV1 (Howard et al. 2017, arXiv 1704.04861) and MobileNetV2 (Sandler et al. 2018,
arXiv 1801.04381), the depthwise-separable peers SqueezeNet is compared against.

V2 follows torchvision's ``models/mobilenetv2.py`` layer for layer (same ``features.N``
keys); ``width_mult`` is the width multiplier alpha both papers vary.
"""

from __future__ import annotations

import torch
from torch import nn

from squeezelab.errors import SpecError
from squeezelab.models._registry import register_model


def _conv_bn_act(
    in_ch: int,
    out_ch: int,
    kernel: int,
    stride: int = 1,
    groups: int = 1,
    act: type[nn.Module] = nn.ReLU,
) -> nn.Sequential:
    """Bias-free conv, BatchNorm, activation (torchvision's ``Conv2dNormActivation``)."""
    conv = nn.Conv2d(in_ch, out_ch, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False)
    return nn.Sequential(conv, nn.BatchNorm2d(out_ch), act(inplace=True))


class InvertedResidual(nn.Module):
    """V2 block: 1x1 expand -> 3x3 depthwise -> linear 1x1 project, identity when shapes match."""

    def __init__(self, in_ch: int, out_ch: int, stride: int, expand_ratio: int) -> None:
        super().__init__()
        hidden = round(in_ch * expand_ratio)
        self.use_res_connect = stride == 1 and in_ch == out_ch
        layers: list[nn.Module] = []
        if expand_ratio != 1:
            layers.append(_conv_bn_act(in_ch, hidden, 1, act=nn.ReLU6))
        layers += [
            _conv_bn_act(hidden, hidden, 3, stride, groups=hidden, act=nn.ReLU6),
            nn.Conv2d(hidden, out_ch, 1, bias=False),
            nn.BatchNorm2d(out_ch),
        ]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


class MobileNet(nn.Module):
    """``features`` -> global average pool -> ``classifier``; both versions share it."""

    def __init__(
        self, features: list[nn.Module], feat_ch: int, num_classes: int, dropout: float
    ) -> None:
        super().__init__()
        self.features = nn.Sequential(*features)
        self.classifier = nn.Sequential(nn.Dropout(p=dropout), nn.Linear(feat_ch, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = nn.functional.adaptive_avg_pool2d(self.features(x), 1)
        return self.classifier(torch.flatten(x, 1))


def make_divisible(v: float, divisor: int = 8) -> int:
    """Round ``v`` to a multiple of ``divisor``, never more than 10% down (torchvision, TF)."""
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new_v + divisor if new_v < 0.9 * v else new_v


def _check_width(width_mult: float) -> None:
    if isinstance(width_mult, bool) or not isinstance(width_mult, int | float) or width_mult <= 0:
        raise SpecError(f"width_mult must be a number > 0, got {width_mult!r}")


def _mobilenet_v1(num_classes: int, in_chans: int, width_mult: float, dropout: float):
    _check_width(width_mult)

    def ch(c: int) -> int:
        return max(8, int(c * width_mult))  # the paper's alpha*N, TF-slim's min_depth 8

    features: list[nn.Module] = [_conv_bn_act(in_chans, ch(V1_STEM), 3, 2)]
    in_ch = ch(V1_STEM)
    for out, stride in V1_BLOCKS:
        features.append(
            nn.Sequential(
                _conv_bn_act(in_ch, in_ch, 3, stride, groups=in_ch),
                _conv_bn_act(in_ch, ch(out), 1),
            )
        )
        in_ch = ch(out)
    return MobileNet(features, in_ch, num_classes, dropout)


def _mobilenet_v2(num_classes: int, in_chans: int, width_mult: float, dropout: float):
    _check_width(width_mult)
    in_ch = make_divisible(V2_STEM * width_mult)
    features: list[nn.Module] = [_conv_bn_act(in_chans, in_ch, 3, 2, act=nn.ReLU6)]
    for t, c, n, s in V2_BLOCKS:
        out = make_divisible(c * width_mult)
        for i in range(n):
            features.append(InvertedResidual(in_ch, out, s if i == 0 else 1, t))
            in_ch = out
    last = make_divisible(V2_LAST * max(1.0, width_mult))  # the head never shrinks
    features.append(_conv_bn_act(in_ch, last, 1, act=nn.ReLU6))
    return MobileNet(features, last, num_classes, dropout)


V1_STEM = 32  # 3x3/2 full convolution
# (output channels, stride) of the 13 depthwise-separable blocks, paper Table 1
V1_BLOCKS = [
    (64, 1),
    (128, 2),
    (128, 1),
    (256, 2),
    (256, 1),
    (512, 2),
    (512, 1),
    (512, 1),
    (512, 1),
    (512, 1),
    (512, 1),
    (1024, 2),
    (1024, 1),
]
V2_STEM = 32
# (expansion t, output channels c, repeats n, first stride s), paper Table 2
V2_BLOCKS = [
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
]
V2_LAST = 1280  # final 1x1 conv width


@register_model
def mobilenet_v1(
    num_classes: int = 1000, in_chans: int = 3, width_mult: float = 1.0, dropout: float = 0.0
) -> MobileNet:
    """MobileNetV1 1.0: depthwise-separable convs (4.23M params, 569M MACs).

    Layout at 224: 3x3/2 conv 32, then 13 blocks of 3x3 depthwise + 1x1 pointwise (BN+ReLU
    after each) down to 7x7x1024, global average pool, FC 1024 -> classes.

    Args:
        num_classes: classifier outputs.
        in_chans: input channels.
        width_mult: the paper's alpha; every width becomes ``max(8, int(alpha * N))``.
        dropout: dropout before the classifier.

    Example:
        >>> sum(p.numel() for p in mobilenet_v1(width_mult=0.5).parameters())
        1331592
    """
    return _mobilenet_v1(num_classes, in_chans, width_mult, dropout)


@register_model
def mobilenet_v2(
    num_classes: int = 1000, in_chans: int = 3, width_mult: float = 1.0, dropout: float = 0.2
) -> MobileNet:
    """MobileNetV2 1.0: inverted residuals (3.50M params, 301M MACs).

    Args:
        num_classes: classifier outputs.
        in_chans: input channels.
        width_mult: the paper's alpha; widths are rounded to multiples of 8 and the
            1280-wide head conv only grows (torchvision's rule).
        dropout: dropout before the classifier.

    Example:
        >>> sum(p.numel() for p in mobilenet_v2(width_mult=0.5).parameters())
        1968680
    """
    return _mobilenet_v2(num_classes, in_chans, width_mult, dropout)
