"""AlexNet (Krizhevsky et al. 2012) in torchvision's variant, and a small-input baseline.

``alexnet`` is the reference of SqueezeNet's "50x fewer parameters" claim on ImageNet;
``alexnet_small`` plays that role on 28x28 and 32x32 data.
"""

from __future__ import annotations

import torch
from torch import nn

from squeezelab.models._registry import register_model


class AlexNet(nn.Module):
    """Convolutional features, adaptive average pool, three fully connected layers."""

    def __init__(
        self,
        features: list[nn.Module],
        pooled: int,
        fc_in: int,
        fc_width: int,
        num_classes: int,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        self.features = nn.Sequential(*features)
        self.avgpool = nn.AdaptiveAvgPool2d(pooled)
        self.classifier = nn.Sequential(
            nn.Dropout(p=dropout),
            nn.Linear(fc_in * pooled * pooled, fc_width),
            nn.ReLU(inplace=True),
            nn.Dropout(p=dropout),
            nn.Linear(fc_width, fc_width),
            nn.ReLU(inplace=True),
            nn.Linear(fc_width, num_classes),
        )
        self._init_weights()

    def _init_weights(self) -> None:
        # He init (He et al. 2015), the classifier's last layer small: under PyTorch's
        # default init these eight ReLU layers without BatchNorm start with near-zero
        # logits and SGD sat at chance (loss 2.303) for whole epochs on Fashion-MNIST.
        for m in self.modules():
            if isinstance(m, nn.Conv2d | nn.Linear):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                nn.init.zeros_(m.bias)
        nn.init.normal_(self.classifier[-1].weight, std=0.01)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


def _convs(layout: list, in_chans: int) -> list[nn.Module]:
    """Layers from ``(out, kernel, stride, padding)`` tuples and ``"M"`` (3x3/2 max-pool)."""
    layers: list[nn.Module] = []
    ch = in_chans
    for item in layout:
        if item == "M":
            layers.append(nn.MaxPool2d(3, 2))
            continue
        out, k, s, p = item
        layers += [nn.Conv2d(ch, out, k, stride=s, padding=p), nn.ReLU(inplace=True)]
        ch = out
    return layers


@register_model
def alexnet(num_classes: int = 1000, in_chans: int = 3, dropout: float = 0.5) -> AlexNet:
    """AlexNet, torchvision's single-tower variant (61.1M params, 714M MACs at 224)."""
    layout = [
        (64, 11, 4, 2),
        "M",
        (192, 5, 1, 2),
        "M",
        (384, 3, 1, 1),
        (256, 3, 1, 1),
        (256, 3, 1, 1),
        "M",
    ]
    return AlexNet(_convs(layout, in_chans), 6, 256, 4096, num_classes, dropout)


@register_model(input_size=28, in_chans=1, num_classes=10)
def alexnet_small(num_classes: int = 10, in_chans: int = 1, dropout: float = 0.5) -> AlexNet:
    """AlexNet-style baseline for 28x28/32x32: 5 convs, 3 fully connected (23.3M params).

    Layout at 28x28 (32x32 in brackets)::

        conv1  3x3/1 pad 1,  64  -> 28x28 [32]   max-pool 3x3/2 -> 13 [15]
        conv2  3x3/1 pad 1, 192  -> 13x13 [15]   max-pool 3x3/2 ->  6  [7]
        conv3  3x3/1 pad 1, 384
        conv4  3x3/1 pad 1, 256
        conv5  3x3/1 pad 1, 256  ->  6x6   [7]   max-pool 3x3/2 ->  2  [3]
        adaptive average pool to 2x2 -> 1024
        fc6 1024 -> 4096, fc7 4096 -> 4096, fc8 4096 -> classes (dropout before fc6, fc7)
    """
    layout = [
        (64, 3, 1, 1),
        "M",
        (192, 3, 1, 1),
        "M",
        (384, 3, 1, 1),
        (256, 3, 1, 1),
        (256, 3, 1, 1),
        "M",
    ]
    return AlexNet(_convs(layout, in_chans), 2, 256, 4096, num_classes, dropout)
