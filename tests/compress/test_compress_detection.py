"""``compress DET --data``: fine-tuned with the detection loss, scored as mAP@0.5 (issue 18).

A narrow 64 px squeezedet_small and a COCO folder of a few generated canvases keep the
fine-tuning to seconds.
"""

import json
from pathlib import Path

import pytest
import torch

from squeezelab.cli import main

FMNIST = Path("/usr/share/datasets/fashion-mnist")
pytestmark = pytest.mark.skipif(
    not FMNIST.is_dir(), reason="needs Debian's dataset-fashion-mnist (fashion-mnist-det)"
)
SIZE = 64


@pytest.fixture(scope="module")
def det(tmp_path_factory):
    """(model file, COCO folder with train/val, module, meta) of a small 64 px detector."""
    from squeezelab.data import write_coco
    from squeezelab.data.detection import kmeans_anchors, load_detection
    from squeezelab.models import ModelMeta, build_model, save_model
    from squeezelab.models.detect import SQUEEZEDET_SMALL

    tmp = tmp_path_factory.mktemp("det")
    train = load_detection("fashion-mnist-det", "train", size=SIZE, count=24)
    write_coco(train, tmp / "data" / "train")
    write_coco(load_detection("fashion-mnist-det", "val", size=SIZE, count=8), tmp / "data" / "val")
    x = train.images.float() / 255
    spec = SQUEEZEDET_SMALL.replace(input_size=SIZE, base_e=32, incr_e=16, stem_channels=16)
    meta = ModelMeta(
        "squeezedet_small",
        num_classes=10,
        in_chans=1,
        input_size=SIZE,
        spec=spec,
        task="detection",
        classes=tuple(train.classes),
        mean=(float(x.mean()),),
        std=(float(x.std()),),
        anchors=tuple(tuple(map(float, a)) for a in kmeans_anchors(train.boxes, 9).tolist()),
    )
    torch.manual_seed(0)
    model = build_model(meta).eval()
    save_model(tmp / "det.safetensors", model, meta)
    return tmp / "det.safetensors", tmp / "data", model, meta


def _json(capsys):
    return json.loads(capsys.readouterr().out)


@pytest.mark.slow
def test_compress_detector_with_data_finetunes_and_reports_map(det, tmp_path, capsys):
    """Pruning + sharing with one fine-tuning epoch each; every stage scored as mAP@0.5;
    the .sqz decodes to the module that was scored (the round trip keeps mAP exactly)."""
    from squeezelab.data.detection import load_detection
    from squeezelab.models import load_model
    from squeezelab.train.detect import evaluate_detection

    path, data, model, meta = det
    sqz = tmp_path / "d.sqz"
    argv = ["compress", str(path), "-o", str(sqz), "--data", str(data), "--sparsity", "0.5"]
    argv += ["--bits", "6", "--finetune-epochs", "1", "--batch-size", "8", "--json"]
    assert main(argv) == 0
    out = _json(capsys)
    assert out["metric"] == "map50"
    scores = out["val_scores"]
    assert set(scores) == {"dense", "pruned", "shared", "coded"}
    assert all(0 <= v <= 1 for v in scores.values())
    val = load_detection(str(data), "val", size=SIZE)
    assert scores["dense"] == pytest.approx(evaluate_detection(model, meta, val).map50)
    from squeezelab.io.sqzfile import read_sqz_header

    header = read_sqz_header(sqz)  # the file says what its scores are
    assert header["metric"] == "map50" and header["accuracy"] == scores
    m2, meta2 = load_model(sqz)
    assert meta2.task == "detection" and meta2.anchors == meta.anchors
    assert evaluate_detection(m2, meta2, val).map50 == pytest.approx(scores["coded"], abs=1e-9)
    # fine-tuning moved the head's bias (built at zero: the detection loss ran), pruning
    # left zeros in its weight
    params = dict(m2.named_parameters())
    assert params["convdet.bias"].abs().max() > 0
    assert (params["convdet.weight"] == 0).float().mean() > 0.3


@pytest.mark.slow
def test_compress_detector_ladder_chooses_by_map(det, tmp_path, capsys):
    """--ladder on a detector: the rungs are scored as validation mAP@0.5, within tolerance."""
    path, data, _, _ = det
    argv = ["compress", str(path), "-o", str(tmp_path / "l.sqz"), "--data", str(data)]
    argv += ["--ladder", "--sparsity", "0", "--tolerance", "0.5"]
    assert main([*argv, "--json"]) == 0
    lad = _json(capsys)["ladder"]
    assert lad["metric"] == "map50" and lad["val_images"] == 8
    chosen = [r for r in lad["rungs"] if r["chosen"]]
    assert len(chosen) == 1 and chosen[0]["val_accuracy"] >= lad["fp32_val_accuracy"] - 0.5
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "val mAP@0.5" in text and "validation mAP@0.5" in text


def test_ladder_lines_name_the_metric():
    from squeezelab.compress.ladder import LadderResult, RungResult, RungStep

    r = RungResult(0.0, 8, False, 1234, 0.4567, True, "chosen: within 0.5 points (-0.10)")
    lad = LadderResult(0.4577, 0.005, 8, True, (r,), metric="map50")
    assert "validation mAP@0.5 0.4567 (fp32 0.4577, 8 images)" in lad.line()
    assert "validation mAP@0.5 0.4567" in RungStep(1, 1, r, "map50").line()
    assert "validation top-1 45.67%" in RungStep(1, 1, r).line()
    assert LadderResult.from_dict(lad.to_dict()) == lad
