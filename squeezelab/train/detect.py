"""Detection as a task of the trainer: targets, SqueezeDet's loss, decoding, NMS, COCO mAP.

Follows Wu et al. 2016 (arXiv 1612.01051) and BichenWuUCB/squeezeDet (``nn_skeleton.py``):
each ground-truth box goes to its best-IoU anchor; the loss is the class cross-entropy of
those anchors / N_obj, the confidence regressed to the IoU of the decoded box (weight
75 / N_obj on them, 100 / (A - N_obj) on the rest), and 5 x the squared error of the deltas
/ N_obj. Boxes decode as cx = ax + dx*aw, w = aw*exp(dw). NMS (IoU 0.4, top 64) is plain
batched torch; mAP comes from pycocotools. :class:`DetectionData` is a ``Dataset`` whose
labels are row numbers into its :class:`~squeezelab.data.detection.DetectionSplit`, so
the loop's batching, DDP sharding and resume work on detection unchanged.
"""

from __future__ import annotations

import contextlib
import io
import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from squeezelab.data import Dataset, normalize
from squeezelab.models.detect import anchor_grid, head_layout, split_head

LOSS_CLASS, LOSS_CONF_POS, LOSS_CONF_NEG, LOSS_BBOX = 1.0, 75.0, 100.0, 5.0
NMS_IOU, TOP_N, MIN_SCORE = 0.4, 64, 0.005  # kitti_squeezeDet_config.py (PROB_THRESH 0.005)
EXP_MAX = 4.0  # deltas dw, dh are clamped here before exp (a box 55x its anchor at most)
ASSIGN_ELEMENTS = 2**21  # images assigned at once hold at most this many box-anchor IoUs


@dataclass
class DetectionData(Dataset):
    """A training view of a detection split: ``labels[i]`` is image i's row in ``split``."""

    split: object = None  # squeezelab.data.detection.DetectionSplit
    anchors: tuple[tuple[float, float], ...] = ()  # (w, h) px, from k-means on the boxes


def detection_data(split, name: str, anchors=()) -> DetectionData:
    """Wrap a ``DetectionSplit`` for the trainer; mean/std are the images' own.

    They come from each channel's pixel histogram (exact, in float64): no float copy of
    the split, which would be 4x its size (2 GB at 30,000 canvases of 128 px).
    """
    x = split.images
    values = torch.arange(256, dtype=torch.float64) / 255
    mean, std = [], []
    for c in range(x.shape[1]):
        hist = sum(
            torch.bincount(x[i : i + 512, c].reshape(-1).long(), minlength=256).double()
            for i in range(0, len(x), 512)
        ) + torch.zeros(256, dtype=torch.float64)
        n = max(1.0, float(hist.sum()))
        mu = float((hist * values).sum()) / n
        var = float((hist * (values - mu) ** 2).sum()) / max(1.0, n - 1)  # torch.std's Bessel
        mean.append(mu)
        std.append(max(math.sqrt(var), 1e-3))
    mean, std = tuple(mean), tuple(std)
    return DetectionData(
        images=split.images,
        labels=torch.arange(len(split)),
        classes=list(split.classes),
        mean=mean,
        std=std,
        name=name,
        split=split,
        anchors=tuple(anchors),
    )


def xyxy(b: torch.Tensor) -> torch.Tensor:
    """``cx, cy, w, h`` -> ``x1, y1, x2, y2``."""
    cx, cy, w, h = b.unbind(-1)
    return torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], -1)


def cxcywh(b: torch.Tensor) -> torch.Tensor:
    """``x1, y1, x2, y2`` -> ``cx, cy, w, h``."""
    x1, y1, x2, y2 = b.unbind(-1)
    return torch.stack([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1], -1)


def box_iou(a: torch.Tensor, b: torch.Tensor, pairwise: bool = True) -> torch.Tensor:
    """IoU of ``x1, y1, x2, y2`` boxes: ``(n, m)`` for every pair, or elementwise."""
    if pairwise:
        a, b = a[..., :, None, :], b[..., None, :, :]
    lt = torch.maximum(a[..., :2], b[..., :2])
    rb = torch.minimum(a[..., 2:], b[..., 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    area = lambda t: (t[..., 2:] - t[..., :2]).clamp(min=0).prod(-1)  # noqa: E731
    return inter / (area(a) + area(b) - inter).clamp(min=1e-9)


def encode(boxes: torch.Tensor, anchors: torch.Tensor) -> torch.Tensor:
    """Deltas of ``cx, cy, w, h`` boxes against their anchors (the inverse of :func:`decode`)."""
    return torch.stack(
        [
            (boxes[..., 0] - anchors[..., 0]) / anchors[..., 2],
            (boxes[..., 1] - anchors[..., 1]) / anchors[..., 3],
            torch.log(boxes[..., 2] / anchors[..., 2]),
            torch.log(boxes[..., 3] / anchors[..., 3]),
        ],
        -1,
    )


def decode(deltas: torch.Tensor, anchors: torch.Tensor) -> torch.Tensor:
    """``cx = ax + dx*aw``, ``cy = ay + dy*ah``, ``w = aw*exp(dw)``, ``h = ah*exp(dh)``.

    Example:
        >>> decode(torch.tensor([[0.5, 0.0, 0.0, math.log(2)]]), torch.tensor([[10.0, 10, 4, 4]]))
        tensor([[12., 10.,  4.,  8.]])
    """
    return torch.stack(
        [
            anchors[..., 0] + deltas[..., 0] * anchors[..., 2],
            anchors[..., 1] + deltas[..., 1] * anchors[..., 3],
            anchors[..., 2] * torch.exp(deltas[..., 2].clamp(max=EXP_MAX)),
            anchors[..., 3] * torch.exp(deltas[..., 3].clamp(max=EXP_MAX)),
        ],
        -1,
    )


@dataclass(frozen=True)
class Targets:
    """Each image's objects, padded to ``M``: anchor index (-1 = padding), class, deltas and
    the box (``cx, cy, w, h``) of the anchor each ground-truth box was assigned to."""

    anchor: torch.Tensor  # int64 (N, M)
    label: torch.Tensor  # int64 (N, M)
    deltas: torch.Tensor  # float32 (N, M, 4)
    boxes: torch.Tensor  # float32 (N, M, 4) cx, cy, w, h

    def rows(self, idx: torch.Tensor) -> Targets:
        return Targets(self.anchor[idx], self.label[idx], self.deltas[idx], self.boxes[idx])

    def to(self, device) -> Targets:
        return Targets(*(t.to(device) for t in (self.anchor, self.label, self.deltas, self.boxes)))


def _iou_planes(b: torch.Tensor, corners: torch.Tensor) -> torch.Tensor:
    """:func:`box_iou` of boxes ``(c, m, 4)`` with anchors ``(A, 4)`` as ``(c, m, A)``, one
    coordinate plane at a time (the same arithmetic, without 4-wide broadcasts: 10x faster)."""
    x1, y1, x2, y2 = (b[..., i, None] for i in range(4))
    ax1, ay1, ax2, ay2 = corners.unbind(-1)
    iw = (torch.minimum(x2, ax2) - torch.maximum(x1, ax1)).clamp_(min=0)
    ih = (torch.minimum(y2, ay2) - torch.maximum(y1, ay1)).clamp_(min=0)
    inter = iw.mul_(ih)
    area_b = (x2 - x1).clamp(min=0) * (y2 - y1).clamp(min=0)
    area_a = (ax2 - ax1).clamp(min=0) * (ay2 - ay1).clamp(min=0)
    return inter / (area_b + area_a - inter).clamp_(min=1e-9)


def assign(anchors: torch.Tensor, boxes: tuple, labels: tuple) -> Targets:
    """Each ground-truth box to its best-IoU anchor not yet taken (SqueezeDet's rule; a box
    overlapping no anchor takes the nearest by squared distance of ``cx, cy, w, h``).

    ``anchors``: ``(A, 4)`` ``cx, cy, w, h``; ``boxes`` per image ``(n_i, 4)`` ``x1, y1, x2, y2``.
    An image's boxes choose in their order; many images are assigned at once.
    """
    n, m = len(boxes), max([len(b) for b in boxes] + [1])
    out = Targets(
        torch.full((n, m), -1, dtype=torch.int64),
        torch.zeros((n, m), dtype=torch.int64),
        torch.zeros((n, m, 4)),
        torch.ones((n, m, 4)),
    )
    counts = torch.tensor([len(b) for b in boxes], dtype=torch.int64)
    corners = xyxy(anchors)
    chunk = max(1, min(256, ASSIGN_ELEMENTS // (m * len(anchors))))
    for s in range(0, n, chunk):
        e = min(n, s + chunk)
        mm = int(counts[s:e].max())
        if not mm:
            continue
        valid = torch.arange(mm) < counts[s:e, None]  # (c, mm): boxes are a prefix
        b = torch.zeros(e - s, mm, 4)
        b[valid] = torch.cat([x.float().reshape(-1, 4) for x in boxes[s:e]])
        score = _iou_planes(b, corners)  # (c, mm, A)
        lost = (score.amax(2) == 0) & valid  # boxes overlapping no anchor: rare
        if lost.any():  # they rank anchors by distance, below every IoU, offset by the
            # largest distance of any box of their image, as the box-by-box rule did
            im = lost.any(1).nonzero()[:, 0]
            far = -((cxcywh(b[im])[:, :, None, :] - anchors) ** 2).sum(-1)
            reach = far.abs().masked_fill(~valid[im, :, None], 0).amax((1, 2), keepdim=True)
            score[im] = torch.where(lost[im, :, None], far - reach - 1, score[im])
        taken = torch.zeros(e - s, len(anchors), dtype=torch.bool)
        pick = torch.zeros(e - s, mm, dtype=torch.int64)
        for j in range(mm):
            pick[:, j] = score[:, j].masked_fill(taken, -math.inf).argmax(1)
            live = valid[:, j]
            taken[live.nonzero()[:, 0], pick[live, j]] = True
        box = cxcywh(b)[valid]
        out.anchor[s:e, :mm][valid] = pick[valid]
        out.label[s:e, :mm][valid] = torch.cat([x.reshape(-1).long() for x in labels[s:e]])
        out.boxes[s:e, :mm][valid] = box
        out.deltas[s:e, :mm][valid] = encode(box, anchors[pick[valid]])
    return out


def squeezedet_loss(
    out: torch.Tensor, targets: Targets, anchors: torch.Tensor, num_classes: int, k: int
) -> torch.Tensor:
    """SqueezeDet's loss on a raw head map ``out`` for a batch of ``targets``.

    N_obj is the batch's object count; the confidence term is summed over each image's
    anchors and averaged over the batch, as ``nn_skeleton._add_loss_graph`` does.
    """
    logits, conf, deltas = split_head(out.float(), num_classes, k)
    valid = targets.anchor >= 0
    a = targets.anchor.clamp(min=0)
    n_obj = valid.sum().clamp(min=1)
    n_anchors = conf.shape[1]
    pick = lambda t: t.gather(1, a[..., None].expand(-1, -1, t.shape[-1]))  # noqa: E731
    ce = F.cross_entropy(pick(logits).transpose(1, 2), targets.label, reduction="none")
    class_loss = LOSS_CLASS * (ce * valid).sum() / n_obj
    d = pick(deltas)
    bbox_loss = LOSS_BBOX * (((d - targets.deltas) ** 2).sum(-1) * valid).sum() / n_obj
    with torch.no_grad():
        iou = box_iou(xyxy(decode(d, anchors[a])), xyxy(targets.boxes), pairwise=False)
        iou_map = torch.zeros_like(conf).scatter_(1, a, (iou * valid).to(conf.dtype))
        pos = torch.zeros_like(conf).scatter_(1, a, valid.to(conf.dtype))
    # SqueezeDet's A - N_obj mixes a per-image count with a batch one; at least 1 keeps a
    # large batch on a small grid from flipping the sign
    neg = (n_anchors - n_obj).clamp(min=1)
    weight = pos * LOSS_CONF_POS / n_obj + (1 - pos) * LOSS_CONF_NEG / neg
    conf_loss = ((torch.sigmoid(conf) - iou_map) ** 2 * weight).sum(1).mean()
    return class_loss + conf_loss + bbox_loss


def nms(boxes: torch.Tensor, scores: torch.Tensor, iou: float = NMS_IOU) -> torch.Tensor:
    """Greedy NMS over a batch: ``boxes`` ``(B, n, 4)`` ``x1, y1, x2, y2``, ``scores``
    ``(B, n)`` sorted descending; returns the kept mask ``(B, n)``. One step per rank,
    all images at once; class-aware NMS offsets each class's boxes apart first."""
    over = box_iou(boxes, boxes) > iou  # (B, n, n)
    keep = torch.ones(scores.shape, dtype=torch.bool, device=scores.device)
    for i in range(1, scores.shape[1]):
        keep[:, i] = ~(over[:, i, :i] & keep[:, :i]).any(1)
    return keep


def detect(
    out: torch.Tensor,
    anchors: torch.Tensor,
    num_classes: int,
    k: int,
    image: tuple[int, int],
    top_n: int = TOP_N,
    iou: float = NMS_IOU,
    min_score: float = MIN_SCORE,
) -> list[dict[str, torch.Tensor]]:
    """Raw head map -> per image ``{"boxes" (n, 4) x1, y1, x2, y2 px, "scores", "labels"}``.

    score = softmax(class) * sigmoid(confidence); the ``top_n`` best anchors go through
    class-aware NMS at ``iou`` (SqueezeDet's ``filter_prediction``).
    """
    logits, conf, deltas = split_head(out.float(), num_classes, k)
    prob = logits.softmax(-1) * torch.sigmoid(conf)[..., None]
    score, label = prob.max(-1)
    top = min(top_n, score.shape[1])
    score, order = score.topk(top, 1)
    label = label.gather(1, order)
    box = xyxy(decode(deltas.gather(1, order[..., None].expand(-1, -1, 4)), anchors[order]))
    h, w = image
    box = torch.stack(
        [
            box[..., 0].clamp(0, w),
            box[..., 1].clamp(0, h),
            box[..., 2].clamp(0, w),
            box[..., 3].clamp(0, h),
        ],
        -1,
    )
    shift = label[..., None].to(box.dtype) * (2 * max(h, w) + 1)  # classes never overlap
    keep = nms(box + shift, score, iou) & (score >= min_score)
    return [
        {"boxes": box[i][keep[i]], "scores": score[i][keep[i]], "labels": label[i][keep[i]]}
        for i in range(len(score))
    ]


@dataclass(frozen=True)
class DetectionScores:
    """COCO metrics of a detector on a split (fractions, as pycocotools reports them)."""

    map: float  # mAP@[.5:.95], COCO's primary metric
    map50: float  # mAP@0.5 (PASCAL VOC's)
    per_class: dict[str, float]  # AP@[.5:.95] per class name (-1: no ground truth)
    per_class50: dict[str, float]  # AP@0.5 per class name
    n: int  # images scored

    def to_dict(self) -> dict:
        return asdict(self)


def coco_map(split, predictions: list[dict[str, torch.Tensor]]) -> DetectionScores:
    """COCO evaluation (pycocotools) of per-image ``predictions`` against ``split``'s boxes."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    images, anns, dets = [], [], []
    h, w = split.images.shape[2:]
    for i, (img_id, b, lab) in enumerate(
        zip(split.image_ids, split.boxes, split.labels, strict=True)
    ):
        images.append({"id": int(img_id), "width": int(w), "height": int(h)})
        for box, c in zip(b.tolist(), lab.tolist(), strict=True):
            bw, bh = box[2] - box[0], box[3] - box[1]
            anns.append(
                {
                    "id": len(anns) + 1,
                    "image_id": int(img_id),
                    "category_id": int(c) + 1,
                    "bbox": [box[0], box[1], bw, bh],
                    "area": bw * bh,
                    "iscrowd": 0,
                }
            )
        p = predictions[i]
        for box, s, c in zip(
            p["boxes"].tolist(), p["scores"].tolist(), p["labels"].tolist(), strict=True
        ):
            dets.append(
                {
                    "image_id": int(img_id),
                    "category_id": int(c) + 1,
                    "bbox": [box[0], box[1], box[2] - box[0], box[3] - box[1]],
                    "score": float(s),
                }
            )
    cats = [{"id": i + 1, "name": n} for i, n in enumerate(split.classes)]
    names = list(split.classes)
    if not dets:
        zero = dict.fromkeys(names, 0.0)
        return DetectionScores(0.0, 0.0, zero, dict(zero), len(split))
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints its progress
        gt = COCO()
        gt.dataset = {"images": images, "annotations": anns, "categories": cats}
        gt.createIndex()
        ev = COCOeval(gt, gt.loadRes(dets), "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    prec = ev.eval["precision"][:, :, :, 0, -1]  # IoU x recall x class, all areas, 100 dets

    def ap(p):
        return float(p[p > -1].mean()) if (p > -1).any() else -1.0

    return DetectionScores(
        map=float(ev.stats[0]),
        map50=float(ev.stats[1]),
        per_class={n: ap(prec[:, :, c]) for c, n in enumerate(names)},
        per_class50={n: ap(prec[0, :, c]) for c, n in enumerate(names)},
        n=len(split),
    )


@torch.no_grad()
def predict_split(
    model: nn.Module,
    ds: DetectionData,
    anchors: torch.Tensor,
    batch_size: int = 128,
    device: torch.device | str = "cpu",
    dtype: torch.dtype | None = None,
    memory_format: torch.memory_format = torch.contiguous_format,
    targets: Targets | None = None,
):
    """Detections for every image of ``ds``; with ``targets`` also the mean loss."""
    device = torch.device(device)
    was = model.training
    model.eval()
    num_classes, k = head_layout(model)
    preds, loss = [], 0.0
    anc = anchors.to(device)
    for start in range(0, len(ds), batch_size):
        rows = torch.arange(start, min(start + batch_size, len(ds)))
        x = normalize(
            ds.images[start : start + batch_size].to(device), ds.mean, ds.std, memory_format
        )
        with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            out = model(x).float()
        if targets is not None:
            t = targets.rows(rows.to(targets.anchor.device))
            loss += float(squeezedet_loss(out, t, anc, num_classes, k)) * len(rows)
        preds += [
            {key: v.cpu() for key, v in p.items()}
            for p in detect(out, anc, num_classes, k, tuple(x.shape[2:]))
        ]
    model.train(was)
    return (preds, loss / max(1, len(ds))) if targets is not None else preds


class DetectionTask:
    """What the trainer asks of a task: a batch's loss, a training metric and validation.

    Built by :func:`make_task` once the model's grid is known; targets are assigned once.
    """

    def __init__(self, model: nn.Module, train: DetectionData, val: DetectionData | None, device):
        self.num_classes, self.k = head_layout(model)
        c, h, w = train.shape
        with torch.no_grad():
            was = model.training
            grid = model.eval()(torch.zeros(1, c, h, w, device=device)).shape[2:]
            model.train(was)
        self.image = (h, w)
        self.anchors = anchor_grid(train.anchors, tuple(grid), (h, w)).to(device)
        self.targets = assign(self.anchors.cpu(), train.split.boxes, train.split.labels).to(device)
        self.val = val
        if val is not None:
            rows = val.labels.cpu()  # the val view may be a subset of its split
            split = val.split
            self.val_targets = assign(self.anchors.cpu(), split.boxes, split.labels).rows(rows)
            if not torch.equal(rows, torch.arange(len(split))):
                keep = rows.tolist()
                split = type(split)(
                    split.images[rows],
                    tuple(split.boxes[i] for i in keep),
                    tuple(split.labels[i] for i in keep),
                    split.classes,
                    tuple(split.image_ids[i] for i in keep),
                )
            self.val_truth = split  # built once: validation copies no images per epoch

    def loss(self, out: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        return squeezedet_loss(out, self.targets.rows(rows), self.anchors, self.num_classes, self.k)

    def correct(self, out: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        """Images whose assigned anchors all have the right top class (a cheap train metric)."""
        t = self.targets.rows(rows)
        logits = split_head(out.detach().float(), self.num_classes, self.k)[0]
        a = t.anchor.clamp(min=0)
        hit = logits.gather(1, a[..., None].expand(-1, -1, self.num_classes)).argmax(-1) == t.label
        return (hit | (t.anchor < 0)).all(1).sum()

    def validate(self, model, batch_size, device, dtype, memory_format) -> tuple[float, float]:
        """``(mean loss, mAP@0.5)`` on the validation split (every rank computes it)."""
        assert self.val is not None
        preds, loss = predict_split(
            model,
            self.val,
            self.anchors,
            batch_size,
            device,
            dtype,
            memory_format,
            self.val_targets,
        )
        return loss, coco_map(self.val_truth, preds).map50


def make_task(model: nn.Module, train: Dataset, val: Dataset | None, device):
    """The trainer's task for ``train``: ``None`` (classification) or a DetectionTask."""
    if not isinstance(train, DetectionData):
        return None
    return DetectionTask(model, train, val if isinstance(val, DetectionData) else None, device)


def detections(forward, meta, images, batch_size: int = 64) -> list[dict[str, torch.Tensor]]:
    """Detections of uint8 ``images`` ``(N, C, H, W)`` by any ``forward``: a callable from
    normalised float32 numpy NCHW to the raw head map (a module's or an ONNX session's).

    Anchors come from ``meta`` (:func:`~squeezelab.models.detect.anchor_shapes`), K from
    the head's channels: ``K = channels / (num_classes + 5)``.
    """
    import numpy as np

    from squeezelab.models.detect import anchor_shapes

    images = np.asarray(images)
    mean = np.asarray(meta.mean, np.float32)[:, None, None]
    std = np.asarray(meta.std, np.float32)[:, None, None]
    h, w = images.shape[2:]
    c = meta.num_classes
    found, anchors = [], None
    for i in range(0, len(images), batch_size):
        x = np.ascontiguousarray((images[i : i + batch_size].astype(np.float32) / 255 - mean) / std)
        out = torch.as_tensor(np.asarray(forward(x)), dtype=torch.float32)
        k = out.shape[1] // (c + 5)
        if anchors is None:
            anchors = anchor_grid(anchor_shapes(meta, k), tuple(out.shape[2:]), (h, w))
        found += detect(out, anchors, c, k, (h, w))
    return found


def torch_forward(model: nn.Module, device: str | torch.device = "cpu"):
    """``forward`` for :func:`detections`: numpy in, numpy out, through ``model`` in eval."""
    model.to(device).eval()

    def run(x):
        with torch.inference_mode():
            return model(torch.from_numpy(x).to(device)).float().cpu().numpy()

    return run


def evaluate_detection(
    model, meta, split, batch_size: int = 64, device: str = "cpu"
) -> DetectionScores:
    """COCO mAP of a detector on a ``DetectionSplit``: ``model`` is a module (a
    ``load_model`` pair with ``meta``) or any ``forward`` callable :func:`detections` takes.

    Example:
        >>> model, meta = load_model("runs/det/best.safetensors")  # doctest: +SKIP
        >>> evaluate_detection(model, meta, load_detection("fashion-mnist-det", "test")).map50  # doctest: +SKIP
        0.83
    """
    forward = torch_forward(model, device) if isinstance(model, nn.Module) else model
    return coco_map(split, detections(forward, meta, split.images.numpy(), batch_size))


def is_detection_config(config) -> bool:
    """Whether a train config's ``data`` is a detection dataset (generated or COCO folder)."""
    from squeezelab.data.detection import is_detection

    return is_detection(config.data)


def load_detection_train(config) -> DetectionData:
    """``config.data``'s training split (``train_subset`` images if set), anchors unset."""
    from squeezelab.data.detection import load_detection

    split = load_detection(
        config.data,
        "train",
        data_dir=config.data_dir,
        size=config.input_size or 128,
        count=config.train_subset,
        seed=config.seed,
    )
    return detection_data(split, f"{config.data}:train")


def detection_splits(
    config, train: DetectionData, k: int
) -> tuple[DetectionData, DetectionData | None]:
    """Training split with ``k`` k-means anchors, and the dataset's own validation split of
    ``round(val_fraction * len(train))`` images (none at ``val_fraction=0``)."""
    from dataclasses import replace

    from squeezelab.data.detection import kmeans_anchors, load_detection

    if not train.anchors:
        shapes = kmeans_anchors(train.split.boxes, k, seed=config.seed)
        train = replace(train, anchors=tuple((float(w), float(h)) for w, h in shapes.tolist()))
    n_val = round(config.val_fraction * len(train))
    if not n_val:
        return train, None
    split = load_detection(
        config.data,
        "val",
        data_dir=config.data_dir,
        size=train.shape[2],
        count=n_val,
        seed=config.seed,
    )
    val = detection_data(split, f"{config.data}:val", train.anchors)
    val.mean, val.std = train.mean, train.std
    return train, val
