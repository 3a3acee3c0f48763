"""`squeezelab design` on detection data: detectors searched and shipped by mAP@0.5."""

import json
import math
from pathlib import Path

import pytest

from squeezelab.cli import main

FMNIST = Path("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz")
pytestmark = pytest.mark.skipif(
    not FMNIST.is_file(), reason="fashion-mnist-det is made from Debian's dataset-fashion-mnist"
)

TINY = """
name: tiny-det-design
model: squeezedet_small
params:
  base_e: [8, 16]
  incr_e: 8
  sr: 0.25
  stem_channels: 8
  head_anchors: 3
costing: {hardware: cortex-m7, weight_bits: 8, activation_bits: 8}
objectives: [map50, model_bytes]
search: {sampler: grid, trials: 2}
train: {input_size: 64, epochs: 1, train_subset: 48, batch_size: 16, recipe: squeezedet,
        optimizer: adamw, lr: 0.002}
final: {epochs: 1, train_subset: 96, batch_size: 16, recipe: squeezedet, optimizer: adamw,
        lr: 0.002}
"""


@pytest.fixture(scope="module")
def coco(tmp_path_factory) -> Path:
    """A COCO folder of 64x64 fashion-mnist-det canvases: 96 train, 24 val, 24 test."""
    from squeezelab.data.detection import load_detection, write_coco

    root = tmp_path_factory.mktemp("det") / "det"
    for split, n in (("train", 96), ("val", 24), ("test", 24)):
        write_coco(load_detection("fashion-mnist-det", split, size=64, count=n), root / split)
    return root


def _space(tmp_path: Path) -> Path:
    path = tmp_path / "tiny-det.yaml"
    path.write_text(TINY)
    return path


def test_the_default_space_follows_the_data(tmp_path):
    from squeezelab.design import DesignConfig
    from squeezelab.design.context import RunContext
    from squeezelab.design.records import DesignState

    def space_of(data: str) -> str:
        config = DesignConfig(data=data)
        ctx = RunContext(config, tmp_path, DesignState(config.to_dict()), lambda ev: None)
        return ctx._raw_space["name"]

    assert space_of("fashion-mnist-det") == "design-det-small"
    assert space_of("fashion-mnist") == "design-small"


@pytest.mark.parametrize("space", ["mcu-256k", "design-small"])
def test_a_classifier_space_on_detection_data_is_one_line(tmp_path, coco, capsys, space):
    """A space given is searched as named: the classifier default, typed, is refused too
    (only a space left out follows the data)."""
    out = tmp_path / "out"
    code = main(["design", "--data", str(coco), "--space", space, "-o", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and "detection dataset" in err and "design-det-small" in err
    assert "Traceback" not in err


def _run(tmp_path, coco, hardware: str, capsys) -> tuple[Path, dict]:
    out = tmp_path / "out"
    args = ["design", "--data", str(coco), "--space", str(_space(tmp_path))]
    args += ["--hardware", hardware, "--budget-minutes", "30", "-o", str(out), "--json"]
    assert main(args) == 0
    return out, json.loads(capsys.readouterr().out)


def _check_scores(out: Path, summary: dict, coco: Path) -> None:
    """The report and summary speak mAP; the test figures are COCO mAP of each file."""
    from squeezelab.data.detection import load_detection
    from squeezelab.design.records import read_state
    from squeezelab.export.detection import onnx_forward
    from squeezelab.models import load_model
    from squeezelab.train.detect import evaluate_detection

    assert summary["metric"] == "mAP@0.5" and set(summary["test_map"]) >= {"fp32", "sqz"}
    state = read_state(out / "design.json")
    score = state.stages["score"]
    assert score.metric == "map50" and score.images == 24
    test = load_detection(str(coco), "test", size=64)
    model, meta = load_model(out / "final" / "best.safetensors")
    assert meta.task == "detection" and meta.input_shape == (1, 64, 64)
    assert math.isclose(score.fp32, evaluate_detection(model, meta, test).map50, abs_tol=1e-9)
    got = evaluate_detection(onnx_forward(out / "model.int8.onnx"), meta, test)
    assert math.isclose(score.onnx_int8, got.map50, abs_tol=1e-9)
    assert math.isclose(score.map["onnx_int8"], got.map, abs_tol=1e-9)
    rows = {r["artefact"].split(" (")[0]: r["test_accuracy"] for r in summary["rows"]}
    assert rows["fp32 model file"] == score.fp32
    # choices read validation canvases: the ladder and the int8 form by mAP@0.5
    assert state.stages["compress"].ladder.metric == "map50"
    assert state.stages["export"].int8.metric == "map50"
    html = (out / "report.html").read_text()
    assert "mAP@0.5" in html and "top-1" not in html and "confusion matrix" not in html


@pytest.mark.slow  # about 130 s on two busy cores: 15 int8 forms, the ladder, the benchmark
def test_design_ships_a_detector_by_map(tmp_path, coco, capsys):
    out, summary = _run(tmp_path, coco, "horowitz-45nm", capsys)  # ONNX Runtime only
    dep = summary["deploy"]
    assert dep["runtime"] == "onnxruntime" and dep["ship"] == str(out / "model.int8.onnx")
    assert Path(dep["ship"]).is_file() and dep["metric"] == "map50"
    assert dep["val_int8_accuracy"] is not None and dep["val_images"] == 10  # 0.1 x 96
    _check_scores(out, summary, coco)
    assert summary["shipped"] == (not dep["problems"])


@pytest.mark.slow
def test_design_ships_a_detector_to_tflite_micro(tmp_path, coco, capsys):
    out, summary = _run(tmp_path, coco, "cortex-m7", capsys)
    dep = summary["deploy"]
    assert dep["runtime"] == "tflite-micro", dep["problems"]
    assert dep["ship"] == str(out / "model.c") and (out / "model.tflite").is_file()
    assert 0 < dep["arena_bytes"] <= dep["sram_bytes"] and dep["tflite_bytes"] > 0
    assert str(dep["arena_bytes"]) in (out / "model.h").read_text()
    _check_scores(out, summary, coco)


def test_summary_writes_map_as_a_fraction_and_top1_in_percent():
    from types import SimpleNamespace

    from squeezelab.design.summary import DesignResult

    assert DesignResult.figure(SimpleNamespace(metric="mAP@0.5"), 0.3764) == "0.376"
    assert DesignResult.figure(SimpleNamespace(metric="top-1"), 0.8773) == "87.73%"
