"""A detector through the toolkit: train one epoch -> evaluate -> compress -> export -> predict."""

import json
from pathlib import Path

import pytest

from squeezelab.cli import main

FMNIST = Path("/usr/share/datasets/fashion-mnist")
pytestmark = pytest.mark.skipif(
    not FMNIST.is_dir(), reason="needs Debian's dataset-fashion-mnist (fashion-mnist-det)"
)


def _json(capsys):
    return json.loads(capsys.readouterr().out)


@pytest.mark.slow
def test_train_evaluate_compress_export_predict(tmp_path, capsys):
    run = tmp_path / "run"
    argv = ["train", "squeezedet_small", "--data", "fashion-mnist-det", "--recipe", "squeezedet"]
    argv += ["--epochs", "1", "--batch-size", "16", "--train-subset", "48"]
    argv += ["--val-fraction", "0.2", "--input-size", "64", "-o", str(run), "--json"]
    assert main(argv) == 0
    capsys.readouterr()
    best = run / "best.safetensors"
    # resume of a finished run: nothing to do, same files
    assert main(["train", "--resume", str(run), "--json"]) == 0
    capsys.readouterr()

    ev = ["--data", "fashion-mnist-det", "--count", "24", "--json"]
    assert main(["evaluate", str(best), *ev]) == 0
    fp32 = _json(capsys)
    assert fp32["n"] == 24 and 0 <= fp32["map"] <= fp32["map50"] <= 1
    assert set(fp32["per_class"]) >= {"Trouser", "Bag"}

    sqz = tmp_path / "det.sqz"
    assert main(["compress", str(best), "-o", str(sqz), "--sparsity", "0", "--bits", "8"]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(sqz), *ev]) == 0
    packed = _json(capsys)
    assert packed["map50"] == pytest.approx(fp32["map50"], abs=0.02)

    onnx = tmp_path / "det.onnx"
    argv = ["export", str(best), "-o", str(onnx), "--int8", "--data", "fashion-mnist-det"]
    argv += ["--calib-size", "8", "--eval-size", "8", "--settings", "U8S8/minmax", "--json"]
    assert main(argv) == 0
    report = _json(capsys)
    assert report["fp32"]["max_abs_diff"] <= 1e-3
    test = report["int8"]["test"]
    assert test["images"] == 8 and 0 <= test["int8_map50"] <= 1

    from squeezelab.data.detection import load_detection

    image = load_detection("fashion-mnist-det", "test", size=64, count=1).images[0, 0].numpy()
    from PIL import Image

    Image.fromarray(image).save(tmp_path / "canvas.png")
    png = tmp_path / "boxes.png"
    argv = ["predict", str(onnx), str(tmp_path / "canvas.png"), "--min-score", "0"]
    assert main([*argv, "-o", str(png), "--json"]) == 0
    (rec,) = _json(capsys)
    assert rec["detections"] and len(rec["detections"][0]["box"]) == 4
    assert Image.open(png).size == (64, 64)


def test_classifier_on_detection_data_is_refused(tmp_path, capsys):
    argv = ["train", "squeezenet_small", "--data", "fashion-mnist-det", "--train-subset", "16"]
    assert main([*argv, "--epochs", "1", "-o", str(tmp_path / "r")]) == 2
    assert "is a classifier" in capsys.readouterr().err
