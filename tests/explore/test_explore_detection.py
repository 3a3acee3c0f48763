"""explore with detectors: mAP@0.5 on the validation canvases as the score, every
candidate costed at the data's geometry, and one-line errors when task and data differ."""

import math
from pathlib import Path

import pytest

from squeezelab.cli import main
from squeezelab.errors import ConfigError
from squeezelab.explore import ExploreConfig, explore, load_space, space_from_dict
from squeezelab.explore.tasks import check_data

FMNIST = Path("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz")
needs_fmnist = pytest.mark.skipif(
    not FMNIST.is_file(), reason="fashion-mnist-det is made from Debian's dataset-fashion-mnist"
)

# 64x64 canvases, 48 per trial: two one-epoch trials take seconds
TINY = """
name: tiny-det
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
train: {data: fashion-mnist-det, input_size: 64, epochs: 1, train_subset: 48, batch_size: 16,
        val_fraction: 0.5, recipe: squeezedet, optimizer: adamw, lr: 0.002}
"""


def test_a_detector_space_scores_by_map50():
    space = space_from_dict({"model": "squeezedet_small", "params": {"sr": [0.25, 0.5]}})
    assert space.task == "detection" and space.score_key == "map50"
    assert [o.key for o in space.objectives] == ["map50"]  # the default objective
    assert load_space("design-det-small").score_key == "map50"
    assert load_space("design-small").score_key == "accuracy"
    assert space_from_dict({"model": "mobiledet_small"}).task == "detection"
    assert space_from_dict({"model": "squeezenet_small", "params": {"head": "convdet"}}).task == (
        "detection"
    )


@pytest.mark.parametrize(
    "raw, words",
    [
        ({"model": "squeezedet_small", "objectives": ["accuracy"]}, "objectives[0].metric"),
        ({"model": "squeezenet_small", "objectives": ["map50"]}, "objectives[0].metric"),
        ({"model": "squeezedet_small", "constraints": [{"metric": "map50", "max": 1}]}, "min"),
        ({"params": {"model": ["squeezedet_small", "squeezenet_small"]}}, "mixes"),
    ],
)
def test_a_score_of_the_other_task_is_one_line(raw, words):
    with pytest.raises(ConfigError) as e:
        space_from_dict(raw)
    assert words in str(e.value) and "\n" not in str(e.value)


def test_data_of_the_other_task_is_refused():
    with pytest.raises(ConfigError, match="design-det-small") as e:
        check_data(load_space("design-small"), "fashion-mnist-det")
    assert "detection dataset" in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(ConfigError, match="classification dataset"):
        check_data(load_space("design-det-small"), "fashion-mnist")


def test_explore_cli_refuses_detection_data_for_a_classifier_preset(tmp_path, capsys):
    code = main(["explore", "mcu-256k", "--data", "fashion-mnist-det", "-o", str(tmp_path / "s")])
    err = capsys.readouterr().err
    assert code == 2 and "detection dataset" in err and "Traceback" not in err


@needs_fmnist
def test_explore_ranks_detectors_by_validation_map_at_their_geometry(tmp_path):
    from squeezelab.analysis import profile
    from squeezelab.data.detection import load_detection
    from squeezelab.models import build_model, load_model
    from squeezelab.train import read_metrics
    from squeezelab.train.detect import evaluate_detection

    path = tmp_path / "tiny-det.yaml"
    path.write_text(TINY)
    res = explore(str(path), tmp_path / "study", ExploreConfig())
    trained = [t for t in res.trials if t.state == "trained"]
    assert len(trained) == 2 and res.counts.trained == 2
    assert [o.key for o in res.objectives] == ["map50", "model_bytes"]
    val = load_detection("fashion-mnist-det", "val", size=64, count=24)  # 0.5 x 48 canvases
    for t in trained:
        # costed at the canvases' geometry: 1x64x64, K * (C + 1 + 4) = 3 * 15 head outputs
        assert t.arch.task == "detection" and t.arch.input_shape == (1, 64, 64)
        assert t.arch.num_classes == 10 and t.arch.spec.head_anchors == 3
        model = build_model(t.arch)
        cost = profile(model, (1, 64, 64), hardware="cortex-m7", weight_bits=8, activation_bits=8)
        assert t.metrics["macs"] == cost.macs and t.metrics["model_bytes"] == cost.model_bytes
        assert model.convdet.out_channels == 45
        # the score is mAP@0.5 on the validation canvases, as the trainer measured it
        assert "accuracy" not in t.metrics and t.accuracy == t.metrics["map50"]
        curve = [r.val_acc for r in read_metrics(t.run_dir)]
        assert t.metrics["map50"] == max(curve) == max(t.epoch_accuracy)
        best, meta = load_model(Path(t.run_dir) / "best.safetensors")
        again = evaluate_detection(best, meta, val).map50
        assert math.isclose(again, t.metrics["map50"], abs_tol=0.01)
    # the front is ranked by map50 first (the study's objectives), best first
    front = res.pareto_trials
    assert front and front[0].metrics["map50"] == max(t.metrics["map50"] for t in front)
