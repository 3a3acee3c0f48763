"""Detectors: SqueezeDet's ConvDet head on a SqueezeNet (or MobileNet-style) backbone.

Follows Wu, Iandola, Jin, Keutzer 2016 (arXiv 1612.01051) and BichenWuUCB/squeezeDet
(``src/nets/squeezeDet.py``, ``src/config/kitti_squeezeDet_config.py``): ConvDet is one
3x3 stride-1 conv with K*(C+1+4) outputs per grid cell, ordered as K*C class logits,
K confidences, K*4 box deltas; anchor k of cell (i, j) is ``meta.anchors[k]`` (w, h)
centred on the cell. The module returns the raw head map; ``split_head`` reads it.
"""

from __future__ import annotations

import torch
from torch import nn

from squeezelab.models._registry import register_model
from squeezelab.models.mobilenet import V1_BLOCKS, _conv_bn_act
from squeezelab.models.spec import SQUEEZENET1_1, SqueezeNetSpec, expand
from squeezelab.models.squeezenet import SqueezeNet


class ConvDet(nn.Conv2d):
    """3x3 stride-1 conv, K*(C+1+4) outputs; weights N(0, 1e-4) as SqueezeDet's conv12.

    Example:
        >>> ConvDet(768, 3, 9)(torch.zeros(1, 768, 22, 76)).shape
        torch.Size([1, 72, 22, 76])
    """

    def __init__(self, in_ch: int, num_classes: int, anchors: int) -> None:
        super().__init__(in_ch, anchors * (num_classes + 5), 3, padding=1)
        self.num_classes, self.anchors = num_classes, anchors
        nn.init.normal_(self.weight, std=1e-4)
        nn.init.zeros_(self.bias)


class Detector(nn.Module):
    """``features`` -> dropout -> :class:`ConvDet`; forward gives the raw head map."""

    def __init__(
        self, features: nn.Module, feat_ch: int, num_classes: int, anchors: int, dropout: float
    ) -> None:
        super().__init__()
        self.features = features
        self.dropout = nn.Dropout(p=dropout)
        self.convdet = ConvDet(feat_ch, num_classes, anchors)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.convdet(self.dropout(self.features(x)))


class SqueezeDet(Detector):
    """A SqueezeNet backbone from a spec with ``head="convdet"`` (fire10/11 = ``extra_fire``).

    Example:
        >>> m = SqueezeDet(SQUEEZEDET)
        >>> m(torch.zeros(1, 3, 375, 1242)).shape
        torch.Size([1, 72, 22, 76])
    """

    def __init__(self, spec: SqueezeNetSpec) -> None:
        features = SqueezeNet(spec.replace(head="classifier")).features
        feat_ch = expand(spec).fires[-1].out_channels
        super().__init__(features, feat_ch, spec.num_classes, spec.head_anchors, spec.dropout)
        self.spec = spec


def split_head(out: torch.Tensor, num_classes: int, anchors: int):
    """Raw head map ``(N, K*(C+5), H, W)`` -> class logits ``(N, A, C)``, confidence logits
    ``(N, A)`` and deltas ``(N, A, 4)``, anchor a = (i*W + j)*K + k as SqueezeDet reshapes.
    """
    n, ch, h, w = out.shape
    k, c = anchors, num_classes
    if ch != k * (c + 5):
        raise ValueError(f"head has {ch} channels, K={k} anchors x (C={c} + 5) need {k * (c + 5)}")
    x = out.permute(0, 2, 3, 1)  # (N, H, W, channels): per cell, anchors innermost
    logits = x[..., : k * c].reshape(n, h * w * k, c)
    conf = x[..., k * c : k * c + k].reshape(n, h * w * k)
    deltas = x[..., k * c + k :].reshape(n, h * w * k, 4)
    return logits, conf, deltas


def anchor_grid(
    shapes: torch.Tensor | list, grid: tuple[int, int], image: tuple[int, int]
) -> torch.Tensor:
    """``(H*W*K, 4)`` anchors ``cx, cy, w, h`` px for a ``grid`` (H, W) over an ``image``
    (H, W); centres at ``(j + 1) * width / (W + 1)`` as SqueezeDet's ``set_anchors``.

    Example:
        >>> anchor_grid([[10.0, 20.0]], (1, 2), (30, 30)).tolist()
        [[10.0, 15.0, 10.0, 20.0], [20.0, 15.0, 10.0, 20.0]]
    """
    wh = torch.as_tensor(shapes, dtype=torch.float32).reshape(-1, 2)
    gh, gw = grid
    cy = torch.arange(1, gh + 1, dtype=torch.float32) * image[0] / (gh + 1)
    cx = torch.arange(1, gw + 1, dtype=torch.float32) * image[1] / (gw + 1)
    yy, xx = torch.meshgrid(cy, cx, indexing="ij")
    k = len(wh)
    centres = torch.stack([xx, yy], -1).reshape(gh * gw, 1, 2).expand(gh * gw, k, 2)
    sizes = wh.reshape(1, k, 2).expand(gh * gw, k, 2)
    return torch.cat([centres, sizes], -1).reshape(-1, 4)


def head_layout(model: nn.Module) -> tuple[int, int]:
    """``(num_classes, anchors per cell)`` of a detector's ConvDet."""
    heads = [m for m in model.modules() if isinstance(m, ConvDet)]
    if not heads:
        raise ValueError("not a detector: the model has no ConvDet head")
    return heads[-1].num_classes, heads[-1].anchors


def anchor_shapes(meta, anchors: int) -> tuple[tuple[float, float], ...]:
    """The anchor (w, h) of a detector's metadata: ``meta.anchors``, else the published
    set (``squeezedet``), else ``anchors`` squares from 1/10 to 1/2 of the input's side."""
    if meta.anchors:
        if len(meta.anchors) != anchors:
            from squeezelab.errors import FormatError

            raise FormatError(
                f"model {meta.name!r}: {len(meta.anchors)} anchor shapes for a head of "
                f"{anchors} anchors per cell"
            )
        return tuple(meta.anchors)
    if meta.name == "squeezedet" and anchors == len(KITTI_ANCHORS):
        return KITTI_ANCHORS
    side = min(meta.input_shape[1:])
    lo, hi = side / 10, side / 2
    step = (hi / lo) ** (1 / max(1, anchors - 1))
    return tuple((lo * step**i, lo * step**i) for i in range(anchors))


# kitti_squeezeDet_config.py: 9 anchor (w, h) px on the 1242x375 input, 76x22 grid
KITTI_ANCHORS = (
    (36.0, 37.0),
    (366.0, 174.0),
    (115.0, 59.0),
    (162.0, 87.0),
    (38.0, 90.0),
    (258.0, 173.0),
    (224.0, 108.0),
    (78.0, 170.0),
    (72.0, 43.0),
)
# SqueezeDet on KITTI: SqueezeNet v1.1 with TF "VALID" pools, fire10/fire11 (squeeze 96,
# expand 384 + 384), dropout 0.5, ConvDet with K = 9 anchors for 3 classes (72 outputs).
SQUEEZEDET = SQUEEZENET1_1.replace(
    extra_fire=(768, 768),
    pool_ceil=False,
    head="convdet",
    head_anchors=9,
    num_classes=3,
    input_size=1242,
    input_height=375,
)
# The generated 128x128 benchmark: one pool less (a 15x15 grid for 14-56 px objects),
# narrower Fire modules, BatchNorm for short CPU budgets; about 0.3M parameters at C = 10.
SQUEEZEDET_SMALL = SqueezeNetSpec(
    base_e=64,
    incr_e=32,
    freq=2,
    num_fire=6,
    stem_channels=32,
    stem_kernel=3,
    stem_stride=2,
    pool_after=(1, 3),
    pool_ceil=False,
    batchnorm=True,
    dropout=0.1,
    head="convdet",
    head_anchors=9,
    num_classes=10,
    in_chans=1,
    input_size=128,
)


def _mobiledet(num_classes: int, in_chans: int, width_mult: float, head_anchors: int):
    """MobileNetV1's stem, its first five blocks (stride 8) and two more 256-wide ones."""

    def ch(c: int) -> int:
        return max(8, int(c * width_mult))  # the paper's alpha*N, TF-slim's min_depth 8

    layers: list[nn.Module] = [_conv_bn_act(in_chans, ch(32), 3, 2)]
    in_ch = ch(32)
    for out, stride in [*V1_BLOCKS[:5], (256, 1), (256, 1)]:
        layers.append(
            nn.Sequential(
                _conv_bn_act(in_ch, in_ch, 3, stride, groups=in_ch), _conv_bn_act(in_ch, ch(out), 1)
            )
        )
        in_ch = ch(out)
    return Detector(nn.Sequential(*layers), in_ch, num_classes, head_anchors, 0.1)


@register_model(input_size=1242, in_chans=3, num_classes=3, spec=SQUEEZEDET, task="detection")
def squeezedet(num_classes: int = 3, in_chans: int = 3, **overrides) -> SqueezeDet:
    """SqueezeDet as published for KITTI: 1242x375 input, 76x22x72 head, 2,082,120 params."""
    return SqueezeDet(SQUEEZEDET.replace(num_classes=num_classes, in_chans=in_chans, **overrides))


@register_model(input_size=128, in_chans=1, num_classes=10, spec=SQUEEZEDET_SMALL, task="detection")
def squeezedet_small(num_classes: int = 10, in_chans: int = 1, **overrides) -> SqueezeDet:
    """SqueezeDet for 128x128 canvases (fashion-mnist-det): 15x15 grid, BatchNorm."""
    return SqueezeDet(
        SQUEEZEDET_SMALL.replace(num_classes=num_classes, in_chans=in_chans, **overrides)
    )


@register_model(input_size=128, in_chans=1, num_classes=10, task="detection")
def mobiledet_small(
    num_classes: int = 10, in_chans: int = 1, width_mult: float = 0.5, head_anchors: int = 9
) -> Detector:
    """ConvDet on a MobileNetV1-style stride-8 backbone (depthwise-separable peer)."""
    if not isinstance(head_anchors, int) or isinstance(head_anchors, bool) or head_anchors < 1:
        from squeezelab.errors import SpecError

        raise SpecError(f"head_anchors={head_anchors!r} is invalid: allowed an integer >= 1")
    if isinstance(width_mult, bool) or not isinstance(width_mult, int | float) or width_mult <= 0:
        from squeezelab.errors import SpecError

        raise SpecError(f"width_mult={width_mult!r} is invalid: allowed a number > 0")
    return _mobiledet(num_classes, in_chans, float(width_mult), head_anchors)


__all__ = [
    "KITTI_ANCHORS",
    "SQUEEZEDET",
    "SQUEEZEDET_SMALL",
    "ConvDet",
    "Detector",
    "SqueezeDet",
    "anchor_grid",
    "anchor_shapes",
    "head_layout",
    "split_head",
]
