"""The Fire module and the SqueezeNet family (Iandola et al. 2016, arXiv 1602.07360).

Sub-layer names and ``features.N`` indices follow torchvision's
``models/squeezenet.py``, so a torchvision checkpoint loads with ``strict=True``.
A variant is a :class:`SqueezeNetSpec` value, never a branch in the code.
"""

from __future__ import annotations

import torch
from torch import nn

from squeezelab.models._registry import register_model
from squeezelab.models.spec import (
    SQUEEZENET1_0,
    SQUEEZENET1_1,
    SQUEEZENET_SMALL,
    SqueezeNetSpec,
    expand,
    stem_padding,
)


def _conv_bn_relu(prefix: str, owner: nn.Module, conv: nn.Conv2d, batchnorm: bool) -> None:
    owner.add_module(prefix, conv)
    if batchnorm:
        owner.add_module(f"{prefix}_bn", nn.BatchNorm2d(conv.out_channels))
    owner.add_module(f"{prefix}_activation", nn.ReLU(inplace=True))


class Fire(nn.Module):
    """squeeze 1x1 -> ReLU -> (expand 1x1 || expand 3x3, padding 1) -> ReLU -> concat.

    Args:
        in_ch: input channels.
        squeeze: squeeze filters s (channel reduction: s < expand1x1 + expand3x3).
        expand1x1: 1x1 expand filters (0 drops the branch).
        expand3x3: 3x3 expand filters (0 drops the branch).
        batchnorm: BatchNorm after each convolution.
        bypass: "none", "identity" (needs in_ch == out channels) or "conv" (a 1x1 conv).

    Example:
        >>> Fire(96, 16, 64, 64)(torch.zeros(1, 96, 55, 55)).shape
        torch.Size([1, 128, 55, 55])
    """

    def __init__(
        self,
        in_ch: int,
        squeeze: int,
        expand1x1: int,
        expand3x3: int,
        batchnorm: bool = False,
        bypass: str = "none",
    ) -> None:
        super().__init__()
        self.inplanes = in_ch
        out_ch = expand1x1 + expand3x3
        _conv_bn_relu("squeeze", self, nn.Conv2d(in_ch, squeeze, 1), batchnorm)
        self.branches = []
        if expand1x1:
            _conv_bn_relu("expand1x1", self, nn.Conv2d(squeeze, expand1x1, 1), batchnorm)
            self.branches.append("expand1x1")
        if expand3x3:
            conv = nn.Conv2d(squeeze, expand3x3, 3, padding=1)
            _conv_bn_relu("expand3x3", self, conv, batchnorm)
            self.branches.append("expand3x3")
        if bypass == "identity" and in_ch != out_ch:
            raise ValueError(f"identity bypass needs in_ch == out channels ({in_ch} != {out_ch})")
        self.bypass = bypass
        if bypass == "conv":
            self.bypass_conv = nn.Conv2d(in_ch, out_ch, 1)

    def _stage(self, prefix: str, x: torch.Tensor) -> torch.Tensor:
        x = getattr(self, prefix)(x)
        if hasattr(self, f"{prefix}_bn"):
            x = getattr(self, f"{prefix}_bn")(x)
        return getattr(self, f"{prefix}_activation")(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self._stage("squeeze", x)
        out = torch.cat([self._stage(b, s) for b in self.branches], 1)
        if self.bypass == "identity":
            out = out + x
        elif self.bypass == "conv":
            out = out + self.bypass_conv(x)
        return out


class SqueezeNet(nn.Module):
    """A SqueezeNet built from a :class:`SqueezeNetSpec` (torchvision's layout).

    Example:
        >>> m = SqueezeNet(SqueezeNetSpec(sr=0.25))
        >>> m(torch.zeros(1, 3, 224, 224)).shape
        torch.Size([1, 1000])
    """

    def __init__(self, spec: SqueezeNetSpec) -> None:
        super().__init__()
        self.spec = spec
        plan = expand(spec)
        stem = nn.Conv2d(
            spec.in_chans,
            spec.stem_channels,
            spec.stem_kernel,
            stride=spec.stem_stride,
            padding=stem_padding(spec),
        )
        layers: list[nn.Module] = [stem]
        if spec.batchnorm:
            layers.append(nn.BatchNorm2d(spec.stem_channels))
        layers.append(nn.ReLU(inplace=True))
        if 1 in spec.pool_after:
            layers.append(nn.MaxPool2d(3, 2, ceil_mode=spec.pool_ceil))
        for i, f in enumerate(plan.fires):
            layers.append(
                Fire(f.in_channels, f.squeeze, f.expand1x1, f.expand3x3, spec.batchnorm, f.bypass)
            )
            if i + 2 in spec.pool_after:
                layers.append(nn.MaxPool2d(3, 2, ceil_mode=spec.pool_ceil))
        self.features = nn.Sequential(*layers)
        final_conv = nn.Conv2d(plan.fires[-1].out_channels, spec.num_classes, 1)
        self.classifier = nn.Sequential(
            nn.Dropout(p=spec.dropout), final_conv, nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d(1)
        )
        for m in self.modules():  # torchvision's initialisation
            if isinstance(m, nn.Conv2d):
                if m is final_conv:
                    nn.init.normal_(m.weight, mean=0.0, std=0.01)
                else:
                    nn.init.kaiming_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.constant_(m.bias, 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(self.classifier(self.features(x)), 1)


def build_squeezenet(
    base: SqueezeNetSpec, num_classes: int, in_chans: int, **overrides
) -> SqueezeNet:
    """Build from a spec constant with task fields and spec overrides applied."""
    from squeezelab.models._registry import create_model  # head="convdet" builds a detector

    return create_model(base.replace(num_classes=num_classes, in_chans=in_chans, **overrides))


def load_torchvision_weights(model: nn.Module, path: str) -> nn.Module:
    """Load a torchvision SqueezeNet ``.pth`` into ``model`` (strict), without unpickling code.

    Example:
        >>> load_torchvision_weights(create_model("squeezenet1_1"), "squeezenet1_1.pth")  # doctest: +SKIP
    """
    from squeezelab.errors import FormatError

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError as e:
        raise FormatError(f"checkpoint {path!r} does not exist") from e
    except Exception as e:  # torch raises UnpicklingError, RuntimeError, EOFError ...
        raise FormatError(f"{path}: not a weights-only torch checkpoint ({e})") from e
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    try:
        model.load_state_dict(state, strict=True)
    except (RuntimeError, TypeError) as e:
        raise FormatError(f"{path}: keys or shapes do not match the model: {e}") from e
    return model


@register_model(spec=SQUEEZENET1_0)
def squeezenet1_0(num_classes: int = 1000, in_chans: int = 3, **overrides) -> SqueezeNet:
    """SqueezeNet v1.0: 7x7/2 conv1, pools after conv1, fire4, fire8 (1.25M params)."""
    return build_squeezenet(SQUEEZENET1_0, num_classes, in_chans, **overrides)


@register_model(spec=SQUEEZENET1_1)
def squeezenet1_1(num_classes: int = 1000, in_chans: int = 3, **overrides) -> SqueezeNet:
    """SqueezeNet v1.1: 3x3/2 conv1 of 64, pools after conv1, fire3, fire5 (2.4x fewer MACs)."""
    return build_squeezenet(SQUEEZENET1_1, num_classes, in_chans, **overrides)


@register_model(input_size=28, in_chans=1, num_classes=10, spec=SQUEEZENET_SMALL)
def squeezenet_small(num_classes: int = 10, in_chans: int = 1, **overrides) -> SqueezeNet:
    """SqueezeNet for 28x28 / 32x32 inputs: full-resolution conv1, late pools, BatchNorm."""
    return build_squeezenet(SQUEEZENET_SMALL, num_classes, in_chans, **overrides)
