"""Detection task: target assignment, SqueezeDet's loss, decoding, NMS and COCO mAP."""

import math

import pytest
import torch

from squeezelab.data.detection import DetectionSplit
from squeezelab.train.detect import (
    assign,
    coco_map,
    decode,
    detect,
    encode,
    nms,
    squeezedet_loss,
)

ANCHORS = torch.tensor([[10.0, 10, 4, 4], [30.0, 30, 4, 4]])  # cx, cy, w, h
GT = torch.tensor([[9.0, 6, 13, 14]])  # x1, y1, x2, y2: cx 11, cy 10, w 4, h 8


def test_assign_best_iou_and_unique():
    t = assign(ANCHORS, (GT, torch.zeros(0, 4)), (torch.tensor([1]), torch.zeros(0)))
    assert t.anchor.tolist() == [[0], [-1]] and t.label[0, 0] == 1
    assert torch.allclose(t.deltas[0, 0], torch.tensor([0.25, 0.0, 0.0, math.log(2)]))
    # two boxes that both prefer anchor 0: the second takes the next best
    two = torch.tensor([[8.0, 8, 12, 12], [9.0, 9, 12, 12]])
    t = assign(ANCHORS, (two,), (torch.tensor([0, 1]),))
    assert sorted(t.anchor[0].tolist()) == [0, 1]


def test_loss_hand_built_case():
    """All-zero head, one object on anchor 0 (IoU 1/3 with it), C=2, A=2:
    class log 2 + conf 75*(1/2-1/3)^2 + 100*(1/2)^2 + bbox 5*(0.25^2 + log(2)^2)."""
    t = assign(ANCHORS, (GT,), (torch.tensor([1]),))
    out = torch.zeros(1, 1 * (2 + 5), 1, 2, requires_grad=True)  # K=1, grid 1x2
    loss = squeezedet_loss(out, t, ANCHORS, num_classes=2, k=1)
    expected = math.log(2) + 75 / 36 + 25 + 5 * (0.0625 + math.log(2) ** 2)
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    loss.backward()
    assert out.grad.abs().sum() > 0


def test_decode_inverts_encode():
    boxes = torch.tensor([[12.0, 10, 4, 8], [31.0, 28, 2, 6]])
    assert torch.allclose(decode(encode(boxes, ANCHORS), ANCHORS), boxes)
    d = torch.tensor([[0.5, -0.25, 0.0, math.log(2)]])
    assert decode(d, ANCHORS[:1]).tolist() == [[12.0, 9.0, 4.0, 8.0]]


def test_nms_hand_computed():
    boxes = torch.tensor(
        [
            [[0.0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30]],  # IoU(0, 1) = 81/119
            [[0.0, 0, 10, 10], [6, 0, 16, 10], [20, 20, 30, 30]],  # IoU(0, 1) = 40/160
        ]
    )
    scores = torch.tensor([[0.9, 0.8, 0.7], [0.9, 0.8, 0.7]])
    assert nms(boxes, scores, 0.4).tolist() == [[True, False, True], [True, True, True]]


def test_detect_decodes_the_confident_anchor():
    k, c = 1, 2
    out = torch.full((1, k * (c + 5), 1, 2), -10.0)
    out[0, 1, 0, 0] = 10.0  # class 1 of anchor 0
    out[0, c * k, 0, 0] = 10.0  # its confidence
    out[0, c * k + k :, 0, 0] = torch.tensor([0.5, 0.0, 0.0, math.log(2)])
    (found,) = detect(out, ANCHORS, c, k, (40, 40), min_score=0.5)
    assert found["labels"].tolist() == [1]
    assert torch.allclose(found["boxes"], torch.tensor([[10.0, 6, 14, 14]]))


def _split(boxes):
    return DetectionSplit(
        torch.zeros(len(boxes), 1, 64, 64, dtype=torch.uint8),
        tuple(torch.tensor(b, dtype=torch.float32) for b in boxes),
        tuple(torch.arange(len(b)) % 2 for b in boxes),
        ("a", "b"),
        tuple(range(1, len(boxes) + 1)),
    )


def test_coco_map_perfect_and_shifted():
    boxes = [[[4.0, 4, 20, 24], [30, 30, 50, 44]], [[10.0, 8, 40, 40]], [[2.0, 40, 22, 60]]]
    split = _split(boxes)

    def preds(shift):
        return [
            {
                "boxes": split.boxes[i] + torch.tensor([shift, 0, shift, 0]),
                "scores": torch.full((len(b),), 0.9),
                "labels": split.labels[i],
            }
            for i, b in enumerate(boxes)
        ]

    perfect = coco_map(split, preds(0.0))
    assert perfect.map == pytest.approx(1.0) and perfect.map50 == pytest.approx(1.0)
    assert perfect.per_class == {"a": pytest.approx(1.0), "b": pytest.approx(1.0)}
    shifted = coco_map(split, preds(4.0))
    assert shifted.map < 0.9 and shifted.map50 == pytest.approx(1.0)
    far = coco_map(split, preds(12.0))
    assert far.map50 < shifted.map50


def _assign_one_by_one(anchors, boxes, labels):
    """The per-image, per-box reference of :func:`assign` (its first, loop-only form)."""
    from squeezelab.train.detect import box_iou, cxcywh, xyxy

    n, m = len(boxes), max([len(b) for b in boxes] + [1])
    anchor = torch.full((n, m), -1, dtype=torch.int64)
    label = torch.zeros((n, m), dtype=torch.int64)
    deltas, out_boxes = torch.zeros((n, m, 4)), torch.ones((n, m, 4))
    corners = xyxy(anchors)
    for i, (b, lab) in enumerate(zip(boxes, labels, strict=True)):
        if not len(b):
            continue
        score = box_iou(b, corners)
        far = -((cxcywh(b)[:, None, :] - anchors[None]) ** 2).sum(-1)
        score = torch.where(score.amax(1, keepdim=True) > 0, score, far - far.abs().max() - 1)
        taken = torch.zeros(len(anchors), dtype=torch.bool)
        for j in range(len(b)):
            a = int(score[j].masked_fill(taken, -math.inf).argmax())
            taken[a] = True
            anchor[i, j], label[i, j] = a, int(lab[j])
            out_boxes[i, j] = cxcywh(b[j])
            deltas[i, j] = encode(out_boxes[i, j], anchors[a])
    return anchor, label, deltas, out_boxes


def test_batched_assign_matches_one_by_one(monkeypatch):
    """Crowded images (boxes competing for one anchor), boxes touching no anchor, images
    without boxes, and chunks smaller than the split: the same anchors as box by box."""
    import squeezelab.train.detect as det
    from squeezelab.models.detect import anchor_grid

    g = torch.Generator().manual_seed(0)
    anchors = anchor_grid([[6.0, 6.0], [12.0, 5.0], [3.0, 9.0]], (4, 4), (64, 64))
    boxes, labels = [], []
    for i in range(23):
        n = int(torch.randint(0, 9, (1,), generator=g))
        xy = torch.rand(n, 2, generator=g) * 56
        wh = 1 + torch.rand(n, 2, generator=g) * torch.tensor([20.0, 3.0])[i % 2]
        if i % 5 == 1:  # a pile of near-identical boxes: later ones take second choices
            xy = xy[:1].expand(n, 2) + torch.rand(n, 2, generator=g)
        boxes.append(torch.cat([xy, xy + wh], 1))
        labels.append(torch.randint(0, 4, (n,), generator=g))
    boxes[3] = torch.tensor([[0.0, 0, 1, 1], [63, 63, 64, 64]])  # between anchors: no IoU
    labels[3] = torch.tensor([2, 3])
    monkeypatch.setattr(det, "ASSIGN_ELEMENTS", 5 * 8 * len(anchors))  # chunks of 5 images
    got = assign(anchors, tuple(boxes), tuple(labels))
    want = _assign_one_by_one(anchors, boxes, labels)
    assert torch.equal(got.anchor, want[0]) and torch.equal(got.label, want[1])
    assert torch.equal(got.boxes, want[3])
    assert torch.allclose(got.deltas, want[2], rtol=1e-6, atol=1e-6)  # vector vs scalar log
    assert (got.anchor[3, :2] >= 0).all() and (want[0] >= 0).sum() == sum(len(b) for b in boxes)


def test_detection_data_mean_std_from_histogram():
    """The pixel-histogram mean/std equal a float pass over the images (as torch.std)."""
    from squeezelab.train.detect import detection_data

    g = torch.Generator().manual_seed(1)
    images = torch.randint(0, 256, (5, 2, 9, 7), generator=g, dtype=torch.uint8)
    split = DetectionSplit(
        images, (torch.zeros(0, 4),) * 5, (torch.zeros(0),) * 5, ("a",), (1,) * 5
    )
    ds = detection_data(split, "t")
    x = images.float() / 255
    assert ds.mean == pytest.approx(x.mean([0, 2, 3]).tolist(), rel=1e-6)
    assert ds.std == pytest.approx(x.std([0, 2, 3]).tolist(), rel=1e-5)
