"""Anchor shapes by k-means over the training boxes with IoU distance (Redmon & Farhadi,
YOLO9000, 2017, sec. 2 "Dimension Clusters"): boxes are compared by shape alone, as if
they shared a centre, so ``d = 1 - IoU`` does not favour large boxes as Euclidean does.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from squeezelab.errors import ConfigError, DatasetError

MAX_ITERATIONS = 300


def shape_iou(wh: np.ndarray, anchors: np.ndarray) -> np.ndarray:
    """IoU of every ``wh (n, 2)`` with every ``anchors (k, 2)``, centres aligned: ``(n, k)``."""
    inter = np.minimum(wh[:, None, 0], anchors[None, :, 0]) * np.minimum(
        wh[:, None, 1], anchors[None, :, 1]
    )
    union = wh[:, None, 0] * wh[:, None, 1] + anchors[None, :, 0] * anchors[None, :, 1] - inter
    return inter / union


def _widths_heights(boxes: Sequence[torch.Tensor]) -> np.ndarray:
    parts = [torch.as_tensor(b, dtype=torch.float64).reshape(-1, 4) for b in boxes]
    xyxy = torch.cat(parts).numpy() if parts else np.zeros((0, 4))
    wh = xyxy[:, 2:4] - xyxy[:, 0:2]
    return wh[(wh > 0).all(1)]


def kmeans_anchors(boxes: Sequence[torch.Tensor], k: int, seed: int = 0) -> torch.Tensor:
    """``k`` anchor shapes ``(w, h)`` in pixels fitted to ``boxes`` (per image ``(n_i, 4)``
    x1, y1, x2, y2), sorted by area, float32 ``(k, 2)``.

    k-means++ seeding with the IoU distance, then Lloyd steps (each anchor the mean shape of
    the boxes closest to it) until no box changes cluster; an emptied cluster restarts at
    the box worst served. Deterministic in ``seed``.

    Example:
        >>> b = [torch.tensor([[0.0, 0, 10, 10], [0, 0, 11, 11], [0, 0, 40, 20]])]
        >>> kmeans_anchors(b, 2).tolist()
        [[10.5, 10.5], [40.0, 20.0]]
    """
    if type(k) is not int or k < 1:
        raise ConfigError(f"k={k!r} is invalid: allowed an integer >= 1 (anchors)")
    wh = _widths_heights(boxes)
    distinct = len(np.unique(wh, axis=0))
    if distinct < k:
        raise DatasetError(
            f"k={k} anchors need at least {k} distinct box shapes; the boxes hold {distinct}"
        )
    rng = np.random.default_rng(seed)
    centres = wh[[rng.integers(len(wh))]]
    while len(centres) < k:  # k-means++: the next centre far (in 1 - IoU) from the chosen
        d = 1 - shape_iou(wh, centres).max(1)
        centres = np.vstack([centres, wh[rng.choice(len(wh), p=d / d.sum())]])
    assign = np.full(len(wh), -1)
    for _ in range(MAX_ITERATIONS):
        iou = shape_iou(wh, centres)
        new = iou.argmax(1)
        if np.array_equal(new, assign):
            break
        assign = new
        for c in range(k):
            members = wh[assign == c]
            if len(members):
                centres[c] = members.mean(0)
            else:
                worst = int(iou.max(1).argmin())
                centres[c], assign[worst] = wh[worst], c
    order = np.argsort(centres[:, 0] * centres[:, 1], kind="stable")
    return torch.from_numpy(centres[order].astype(np.float32))


def mean_best_iou(boxes: Sequence[torch.Tensor], anchors: torch.Tensor) -> float:
    """The mean over boxes of the IoU with their closest anchor (shapes only): how well
    ``anchors`` cover ``boxes``, the figure YOLO9000 compares anchor sets by."""
    wh = _widths_heights(boxes)
    if not len(wh):
        return 0.0
    return float(shape_iou(wh, anchors.double().numpy()).max(1).mean())
