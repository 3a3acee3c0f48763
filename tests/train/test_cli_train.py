import json

import yaml

from squeezelab.cli import main
from tests.train.conftest import TINY_SPEC


def test_train_then_evaluate_then_resume(tmp_path, capsys):
    spec = tmp_path / "tiny.yaml"
    spec.write_text(yaml.safe_dump(TINY_SPEC))
    run = tmp_path / "run"
    argv = ["train", "--model", str(spec), "--data", "synthetic", "--epochs", "1",
            "--batch-size", "32", "--train-subset", "96", "--lr", "0.05", "--out", str(run),
            "--json"]  # fmt: skip
    assert main(argv) == 0
    record = json.loads(capsys.readouterr().out.splitlines()[0])
    assert record["epoch"] == 1
    config = json.loads((run / "config.json").read_text())
    assert config["spec"]["base_e"] == 8 and config["batch_size"] == 32

    assert main(["evaluate", str(run / "best.safetensors"), "--data", "synthetic", "--json"]) == 0
    scores = json.loads(capsys.readouterr().out)
    assert scores["n"] == 300 and len(scores["confusion"]) == 10 and 0 <= scores["top1"] <= 1

    assert main(["train", "--resume", str(run), "--json"]) == 0  # finished: nothing to do
    assert capsys.readouterr().out == ""


def test_progress_output_and_errors(tmp_path, capsys):
    run = tmp_path / "r"
    assert main(["train", "--model", "squeezenet_small", "--data", "synthetic", "--epochs", "1",
                 "--batch-size", "64", "--train-subset", "64", "--out", str(run)]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "epoch 1/1" in out and "run directory" in out
    assert main(["train", "--model", "squeezenet_small", "--data", "nope", "--out", str(run)]) == 2
    assert "unknown dataset (or directory) 'nope'" in capsys.readouterr().err
    assert main(["train", "--model", "squeezenet_small", "--data", "synthetic", "--lr", "-1",
                 "--out", str(tmp_path / "x")]) == 2  # fmt: skip
    assert "lr=-1.0 is invalid: allowed a number > 0" in capsys.readouterr().err
    assert main(["evaluate", str(tmp_path / "missing.safetensors"), "--data", "synthetic"]) == 2
