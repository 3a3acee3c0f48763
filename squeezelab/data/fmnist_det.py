"""fashion-mnist-det: a detection benchmark generated from Debian's Fashion-MNIST.

Each canvas holds 1-6 Fashion-MNIST items resized to 14-56 px (aspect jittered) on a
procedural background (low-frequency blobs, a grating and pixel noise), with tight boxes
around each item's drawn pixels, as the multi-digit MNIST detection setups do. Canvas ``i``
depends only on ``(seed, split, i)``: canvases are made in fixed chunks, each from its own
numpy Generator, so ``count=N`` gives the first N canvases of any larger count.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

# split -> (Fashion-MNIST file prefix, first source index, end): val is carved from the
# training file's last 6,000 items, test from the test file, so no item is in two splits
SOURCES = {
    "train": ("train", 0, 54_000),
    "val": ("train", 54_000, 60_000),
    "test": ("t10k", 0, 10_000),
}
DEFAULT_COUNTS = {"train": 10_000, "val": 1_000, "test": 2_000}
MIN_SCALE, MAX_SCALE = 14, 56  # an item's longer side before aspect jitter, pixels
ASPECT_JITTER = 0.2  # log of the largest width/height stretch
MAX_ITEMS = 6
MAX_OVERLAP = 0.35  # most intersection / smaller box area between two items of a canvas
MASK_LEVEL = 4  # source pixels above this are the item (Fashion-MNIST's background is 0)
TRIES = 8  # placements tried per item before it is left out
CHUNK = 256  # canvases per Generator: fixed, so canvas i never depends on the count
_SPLIT_ID = {"train": 0, "val": 1, "test": 2}


@dataclass(frozen=True)
class Canvases:
    """Generated canvases and, per item, the index of its source in the Fashion-MNIST file."""

    images: torch.Tensor  # uint8 (N, 1, size, size)
    boxes: tuple[torch.Tensor, ...]  # per canvas float32 (n_i, 4): x1, y1, x2, y2 pixels
    labels: tuple[torch.Tensor, ...]  # per canvas int64 (n_i,)
    sources: tuple[torch.Tensor, ...]  # per canvas int64 (n_i,): index in the source file


def _background(rng: np.random.Generator, m: int, size: int) -> torch.Tensor:
    """Clutter: blobs at two scales, an oriented grating and Gaussian noise, float (m, s, s)."""
    low = F.interpolate(
        torch.from_numpy(rng.random((m, 1, 5, 5), np.float32)), size, mode="bilinear"
    )
    mid = F.interpolate(
        torch.from_numpy(rng.random((m, 1, 17, 17), np.float32)), size, mode="bilinear"
    )
    blobs = low.mul_(0.6).add_(mid, alpha=0.4).sub_(0.5)[:, 0]
    base, contrast, amp, sigma, angle, period, phase = (
        torch.from_numpy(v.astype(np.float32))[:, None, None]
        for v in (
            rng.uniform(30, 110, m),
            rng.uniform(20, 100, m),
            rng.uniform(0, 25, m),
            rng.uniform(4, 16, m),
            rng.uniform(0, np.pi, m),
            rng.uniform(4, 16, m),
            rng.uniform(0, 2 * np.pi, m),
        )
    )
    pos = torch.arange(float(size))
    # the grating sin(2 pi (x cos a + y sin a) / period + phase) as
    # sin(u) cos(v) + cos(u) sin(v): the sines are per row and per column, not per pixel
    u = pos[None, None, :] * (2 * torch.pi * angle.cos() / period)  # (m, 1, s)
    v = pos[None, :, None] * (2 * torch.pi * angle.sin() / period) + phase  # (m, s, 1)
    out = (amp * u.sin()) * v.cos()
    out.addcmul_(amp * u.cos(), v.sin()).addcmul_(blobs, contrast)
    noise = torch.from_numpy(rng.standard_normal((m, size, size), np.float32))
    return out.addcmul_(noise, sigma).add_(base)


def _render(items: torch.Tensor, w: torch.Tensor, h: torch.Tensor):
    """Items (P, 28, 28) uint8 resized to w x h inside MAX_SCALE patches: premultiplied
    value and alpha, float (P, S, S) each, and each item's tight box in the patch.
    """
    p, s = len(items), MAX_SCALE
    src = items.float()
    mask = (src > MASK_LEVEL).float()
    chans = torch.stack([src * mask / 255, mask], 1)  # value is 0 where alpha is: premultiplied
    pos = torch.arange(s, dtype=torch.float32) + 0.5
    gx = (2 * pos[None] / w[:, None] - 1)[:, None, :].expand(p, s, s)  # align_corners=False
    gy = (2 * pos[None] / h[:, None] - 1)[:, :, None].expand(p, s, s)
    out = F.grid_sample(chans, torch.stack([gx, gy], -1), align_corners=False)
    inside = (pos[None, None, :] < w[:, None, None]) & (pos[None, :, None] < h[:, None, None])
    value, alpha = out[:, 0] * inside, out[:, 1] * inside
    on = alpha > 0.5
    cols, rows = on.any(1), on.any(2)
    idx = torch.arange(s)
    box = torch.stack(
        [
            torch.where(cols, idx, s).min(1).values,
            torch.where(rows, idx, s).min(1).values,
            torch.where(cols, idx, -1).max(1).values + 1,
            torch.where(rows, idx, -1).max(1).values + 1,
        ],
        1,
    )
    return value, alpha, box, on.flatten(1).any(1)


def _overlap(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Intersection / smaller area of boxes ``a (..., 4)`` and ``b (..., 4)`` (broadcast)."""
    iw = (torch.minimum(a[..., 2], b[..., 2]) - torch.maximum(a[..., 0], b[..., 0])).clamp_min(0)
    ih = (torch.minimum(a[..., 3], b[..., 3]) - torch.maximum(a[..., 1], b[..., 1])).clamp_min(0)
    area = lambda t: (t[..., 2] - t[..., 0]) * (t[..., 3] - t[..., 1])  # noqa: E731
    return iw * ih / torch.minimum(area(a), area(b)).clamp_min(1)


def _chunk(
    items: torch.Tensor,
    labels: torch.Tensor,
    m: int,
    size: int,
    rng: np.random.Generator,
    use: int | None = None,
):
    """``use`` (default ``m``) of ``m`` canvases drawn from ``rng``: uint8 (use, size, size),
    boxes (use, MAX_ITEMS, 4), labels, sources, kept. Every draw is made for all ``m``, so
    canvas i is the same whatever ``use``; only the first ``use`` are rendered."""
    k = MAX_ITEMS
    count = torch.from_numpy(rng.integers(1, k + 1, m))
    src = torch.from_numpy(rng.integers(0, len(items), (m, k)))
    scale = torch.from_numpy(np.exp(rng.uniform(np.log(MIN_SCALE), np.log(MAX_SCALE), (m, k))))
    stretch = torch.from_numpy(np.exp(rng.uniform(-ASPECT_JITTER, ASPECT_JITTER, (m, k))))
    tries = torch.from_numpy(rng.random((m, k, TRIES, 2)))
    canvas = _background(rng, m, size)
    m = m if use is None else use
    count, src, scale, stretch, tries, canvas = (
        t[:m] for t in (count, src, scale, stretch, tries, canvas)
    )
    # the longer side is the scale; the other shrinks by the stretch
    w = (scale * stretch.clamp(max=1)).round().clamp(8, MAX_SCALE).float()
    h = (scale / stretch.clamp(min=1)).round().clamp(8, MAX_SCALE).float()
    want = torch.arange(k)[None] < count[:, None]
    value, alpha, patch_box, drawn = _render(items[src[want]], w[want], h[want])
    slot = torch.full((m, k), -1)
    slot[want] = torch.arange(int(want.sum()))
    # placements keep the whole patch inside the canvas
    room = torch.stack([size - w, size - h], -1)[:, :, None, :] + 1  # (m, k, 1, 2)
    origin = (tries * room).floor().long()  # (m, k, TRIES, 2)
    boxes = torch.zeros(m, k, 4)
    kept = torch.zeros(m, k, dtype=torch.bool)
    canvas = F.pad(canvas, (0, MAX_SCALE, 0, MAX_SCALE))  # room for a patch at the edge
    side = size + MAX_SCALE
    flat = canvas.view(-1)  # patches are read and written through one flat index: faster
    ar = torch.arange(MAX_SCALE)
    for j in range(k):
        live = want[:, j].clone()
        rows_live = torch.nonzero(live).flatten()
        live[rows_live] = drawn[slot[rows_live, j]]
        pb = torch.zeros(m, 4, dtype=torch.long)
        pb[live] = patch_box[slot[live, j]]
        cand = (pb[:, None, :] + origin[:, j].repeat(1, 1, 2)).float()  # (m, TRIES, 4)
        clash = _overlap(cand[:, :, None, :], boxes[:, None, :j, :]) > MAX_OVERLAP
        ok = ~(clash & kept[:, None, :j]).any(2)  # (m, TRIES)
        first = ok.float().argmax(1)
        place = live & ok.any(1)
        kept[:, j] = place
        boxes[place, j] = cand[place, first[place]]
        ci = torch.nonzero(place).flatten()
        if len(ci) == 0:
            continue
        o = origin[ci, j, first[ci]]  # (q, 2): x0, y0
        pi = slot[ci, j]
        rows = (ci[:, None] * side + o[:, 1, None] + ar) * side  # (q, S): row starts
        at = rows[:, :, None] + (o[:, 0, None] + ar)[:, None, :]  # (q, S, S)
        a = alpha[pi]
        flat[at] = flat[at] * (1 - a) + 255 * value[pi]
    image = canvas[:, :size, :size].round().clamp(0, 255).to(torch.uint8)
    return image, boxes, labels[src], src, kept


def compose(
    items: torch.Tensor, labels: torch.Tensor, n: int, size: int, seed: int, split: str
) -> Canvases:
    """``n`` canvases of ``size`` px from the Fashion-MNIST ``items`` (uint8 (M, 28, 28)).

    Deterministic in ``(seed, split)``; canvas ``i`` does not depend on ``n``.

    Example:
        >>> c = compose(torch.full((4, 28, 28), 200, dtype=torch.uint8), torch.arange(4),
        ...             n=3, size=128, seed=0, split="train")
        >>> c.images.shape, len(c.boxes)
        (torch.Size([3, 1, 128, 128]), 3)
    """
    images, boxes, labels_out, sources = [], [], [], []
    for c in range(-(-n // CHUNK)):
        m = min(CHUNK, n - c * CHUNK)
        rng = np.random.default_rng([seed, _SPLIT_ID[split], c])
        # a short last chunk draws as a full one, so its canvases match a larger count's
        img, box, lab, src, kept = _chunk(items, labels, CHUNK, size, rng, use=m)
        images.append(img[:m, None])
        per = kept[:m].sum(1).tolist()  # one mask and one split, not three per canvas
        boxes += [t.clone() for t in box[:m][kept[:m]].split(per)]
        labels_out += [t.clone() for t in lab[:m][kept[:m]].to(torch.int64).split(per)]
        sources += [t.clone() for t in src[:m][kept[:m]].to(torch.int64).split(per)]
    return Canvases(torch.cat(images), tuple(boxes), tuple(labels_out), tuple(sources))
