"""Detectors: SqueezeDet as published, the ConvDet layout, anchors, spec and metadata."""

import pytest
import torch

from squeezelab.errors import FormatError, SpecError
from squeezelab.models import ModelMeta, SqueezeNetSpec, build_model, create_model, load_model
from squeezelab.models.detect import (
    KITTI_ANCHORS,
    SQUEEZEDET,
    anchor_grid,
    anchor_shapes,
    head_layout,
    split_head,
)


def test_squeezedet_as_published():
    """BichenWuUCB/squeezeDet, KITTI: 2,082,120 params, 76x22 grid, 9 x (3 + 1 + 4) = 72."""
    model, meta = load_model("squeezedet")
    assert sum(p.numel() for p in model.parameters()) == 2_082_120
    assert meta.input_shape == (3, 375, 1242) and meta.task == "detection"
    skeleton = build_model(meta, skeleton=True)  # shapes only: no 4.8 GMAC pass
    out = skeleton(torch.empty(1, *meta.input_shape, device="meta"))
    assert tuple(out.shape) == (1, 72, 22, 76)
    assert head_layout(model) == (3, 9)
    assert anchor_shapes(meta, 9) == KITTI_ANCHORS
    assert len(anchor_grid(KITTI_ANCHORS, (22, 76), (375, 1242))) == 15_048
    # fire10 / fire11: squeeze 96, expand 384 + 384
    fires = [m for m in model.features if type(m).__name__ == "Fire"]
    assert len(fires) == 10
    assert [(f.squeeze.out_channels, f.expand1x1.out_channels) for f in fires[-2:]] == [
        (96, 384),
        (96, 384),
    ]


def test_small_detectors_fit_the_budget():
    for name in ("squeezedet_small", "mobiledet_small"):
        model, meta = load_model(name)
        assert sum(p.numel() for p in model.parameters()) <= 500_000
        out = model(torch.zeros(2, *meta.input_shape))
        c, k = head_layout(model)
        assert out.shape[:2] == (2, k * (c + 5)) and out.shape[2] >= 15


def test_head_layout_order():
    """Channels: K*C class logits, then K confidences, then K*4 deltas; anchors innermost."""
    k, c, h, w = 2, 3, 1, 2
    out = torch.arange(k * (c + 5) * h * w, dtype=torch.float32).reshape(1, -1, h, w)
    logits, conf, deltas = split_head(out, c, k)
    assert logits.shape == (1, h * w * k, c) and conf.shape == (1, 4) and deltas.shape == (1, 4, 4)
    # anchor 1 of cell (0, 1): logits channels 3..5, confidence channel 7, deltas 12..15
    a = (0 * w + 1) * k + 1
    per = h * w
    assert logits[0, a].tolist() == [(3 + i) * per + 1 for i in range(3)]
    assert conf[0, a].item() == 7 * per + 1
    assert deltas[0, a].tolist() == [(12 + i) * per + 1 for i in range(4)]
    with pytest.raises(ValueError, match="channels"):
        split_head(out, 4, k)


def test_anchor_grid_centres():
    g = anchor_grid([[4.0, 6.0], [8.0, 8.0]], (2, 3), (30, 40))
    assert g.shape == (12, 4)
    assert g[0].tolist() == [10.0, 10.0, 4.0, 6.0]  # cell (0, 0), anchor 0
    assert g[11].tolist() == [30.0, 20.0, 8.0, 8.0]  # cell (1, 2), anchor 1


def test_spec_round_trip_and_checks():
    for text in (SQUEEZEDET.to_json(), SQUEEZEDET.to_yaml()):
        back = (
            SqueezeNetSpec.from_json(text)
            if text.startswith("{")
            else SqueezeNetSpec.from_yaml(text)
        )
        assert back == SQUEEZEDET and back.extra_fire == (768, 768)
    assert isinstance(create_model(SQUEEZEDET.replace(input_height=None)), torch.nn.Module)
    with pytest.raises(SpecError, match="head"):
        SQUEEZEDET.replace(head="yolo")
    with pytest.raises(SpecError, match="extra_fire"):
        SQUEEZEDET.replace(extra_fire=(0,))
    with pytest.raises(SpecError, match="head_anchors"):
        SQUEEZEDET.replace(head_anchors=0)


def test_meta_round_trip_and_hostile_fields():
    _, meta = load_model("squeezedet_small")
    meta = meta.replace(anchors=((10.0, 12.0),) * 9)
    back = ModelMeta.from_dict(meta.to_dict())
    assert back.anchors == meta.anchors and back.task == "detection" and back.spec == meta.spec
    _, big = load_model("squeezedet")
    assert ModelMeta.from_dict(big.to_dict()).input_shape == (3, 375, 1242)
    d = meta.to_dict()
    for key, value, match in (
        ("anchors", [[1.0]], "anchors"),
        ("anchors", [[1.0, -2.0]], "anchors"),
        ("input_height", 0, "input_height"),
        ("task", "classification", "does not fit"),
    ):
        with pytest.raises(FormatError, match=match):
            ModelMeta.from_dict({**d, key: value})
    with pytest.raises(FormatError, match="anchor shapes"):
        anchor_shapes(meta.replace(anchors=((1.0, 1.0),)), 9)
