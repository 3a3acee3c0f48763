"""Module surgery: the modified models whose profiles give the advice's savings.

Each builder returns a new module and leaves the original untouched; layers are
swapped by qualified name on a structural copy that shares the unchanged weights.
The replacements are SqueezeNet's strategies (Iandola et al. 2016, arXiv 1602.07360,
section 3.1) and MobileNet's depthwise separable convolution (Howard et al. 2017).
"""

from __future__ import annotations

import copy
import itertools

import torch
from torch import nn


def swap(model: nn.Module, replacements: dict[str, nn.Module]) -> nn.Module:
    """A copy of ``model`` with the submodules named in ``replacements`` replaced.

    Parameters and buffers are shared with ``model``, not copied, so this is cheap
    even for AlexNet's 61M weights; only the module tree is new.

    Example:
        >>> m = swap(nn.Sequential(nn.Conv2d(3, 8, 3)), {"0": nn.Conv2d(3, 8, 1)})
        >>> m[0].kernel_size
        (1, 1)
    """
    shared = {id(t): t for t in itertools.chain(model.parameters(), model.buffers())}
    new = copy.deepcopy(model, memo=shared)
    for name, module in replacements.items():
        parent, _, child = name.rpartition(".")
        setattr(new.get_submodule(parent) if parent else new, child, module)
    return new


def is_same_3x3(module: nn.Module) -> bool:
    """A dense 3x3 convolution that keeps the spatial size (stride 1, padding 1)."""
    return (
        isinstance(module, nn.Conv2d)
        and module.kernel_size == (3, 3)
        and module.stride == (1, 1)
        and module.padding == (1, 1)
        and module.dilation == (1, 1)
        and module.groups == 1
        and module.padding_mode == "zeros"
    )


def as_1x1(conv: nn.Conv2d) -> nn.Conv2d:
    """Kernel reduction (strategy 1): the same channels with a 1x1 kernel."""
    return nn.Conv2d(conv.in_channels, conv.out_channels, 1, bias=conv.bias is not None)


def with_squeeze(conv: nn.Conv2d, ratio: float = 0.25) -> nn.Sequential:
    """Channel reduction (strategy 2): a 1x1 squeeze to ``ratio`` of the inputs first."""
    squeeze = max(1, round(conv.in_channels * ratio))
    return nn.Sequential(
        nn.Conv2d(conv.in_channels, squeeze, 1),
        nn.ReLU(inplace=True),
        nn.Conv2d(
            squeeze,
            conv.out_channels,
            conv.kernel_size,
            conv.stride,
            conv.padding,
            bias=conv.bias is not None,
        ),
    )


def depthwise_separable(conv: nn.Conv2d) -> nn.Sequential:
    """A depthwise k x k convolution followed by a pointwise 1x1 (MobileNet)."""
    c = conv.in_channels
    return nn.Sequential(
        nn.Conv2d(c, c, conv.kernel_size, conv.stride, conv.padding, groups=c, bias=False),
        nn.Conv2d(c, conv.out_channels, 1, bias=conv.bias is not None),
    )


def grouped(conv: nn.Conv2d, groups: int) -> nn.Conv2d:
    """The same convolution split into ``groups`` channel groups (ResNeXt, ShuffleNet)."""
    return nn.Conv2d(
        conv.in_channels,
        conv.out_channels,
        conv.kernel_size,
        conv.stride,
        conv.padding,
        groups=groups,
        bias=conv.bias is not None,
    )


class ConvHead(nn.Module):
    """SqueezeNet's conv10 head on another model's features.

    ``features`` -> Dropout -> 1x1 conv to the classes -> ReLU -> global average
    pool -> flatten: no fully connected layer at all (section 3.1, strategy 1 applied
    to the classifier; Lin et al. 2013, "Network in Network").
    """

    def __init__(
        self, features: nn.Module, channels: int, num_classes: int, dropout: float = 0.5
    ) -> None:
        super().__init__()
        self.features = features
        self.classifier = nn.Sequential(
            nn.Dropout(p=dropout),
            nn.Conv2d(channels, num_classes, 1),
            nn.ReLU(inplace=True),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


_POOLS = (nn.MaxPool2d, nn.AvgPool2d)


def _kind(module: nn.Module) -> str:
    if isinstance(module, _POOLS):
        return "pool"
    return "compute" if any(isinstance(m, nn.Conv2d) for m in module.modules()) else "other"


def move_pools(seq: nn.Sequential, step: int) -> tuple[nn.Sequential, list[str]] | None:
    """``seq`` with each pool moved past one compute block, later (+1) or earlier (-1).

    A compute block is a child holding a convolution plus the activations and norms
    after it. A pool never moves before the first block (the stem) nor past another
    pool. Returns the reordered Sequential (sharing ``seq``'s children) and the names
    of the pools moved, or None when none can move.

    Example:
        >>> seq = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(8, 8, 3))
        >>> [type(m).__name__ for m in move_pools(seq, 1)[0]]
        ['Conv2d', 'ReLU', 'Conv2d', 'MaxPool2d']
    """
    blocks: list[tuple[str, list[str]]] = []  # (kind, child names)
    for name, child in seq.named_children():
        kind = _kind(child)
        if kind == "other" and blocks and blocks[-1][0] == "compute":
            blocks[-1][1].append(name)
        else:
            blocks.append((kind, [name]))
    kinds = [k for k, _ in blocks]
    stem = kinds.index("compute") if "compute" in kinds else len(blocks)
    moved = []
    for i in range(len(blocks) - 1, -1, -1) if step > 0 else range(len(blocks)):
        j = i + step
        if (
            blocks[i][0] == "pool"
            and min(i, j) > stem
            and j < len(blocks)
            and blocks[j][0] == "compute"
        ):
            blocks[i], blocks[j] = blocks[j], blocks[i]
            moved.append(blocks[j][1][0])
    if not moved:
        return None
    return nn.Sequential(*(seq.get_submodule(n) for _, names in blocks for n in names)), moved
