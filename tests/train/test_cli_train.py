import json

import yaml

from squeezelab.cli import main
from tests.train.conftest import TINY_SPEC, train_argv


def test_train_then_evaluate_then_resume(tmp_path, capsys):
    spec = tmp_path / "tiny.yaml"
    spec.write_text(yaml.safe_dump(TINY_SPEC))
    run = tmp_path / "run"
    argv = train_argv(spec, run, "--lr", "0.05", subset=96)
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
    # the old spellings (--model, --out) still work for one release, with a warning each
    assert (
        main(
            [
                "train",
                "--model",
                "squeezenet_small",
                "--data",
                "synthetic",
                "--epochs",
                "1",
                "--batch-size",
                "64",
                "--train-subset",
                "64",
                "--out",
                str(run),
            ]
        )
        == 0
    )
    captured = capsys.readouterr()
    assert "epoch 1/1" in captured.out and "run directory" in captured.out
    assert captured.err.count("is deprecated") == 2
    assert main(["train", "squeezenet_small", "--data", "nope", "-o", str(tmp_path / "r2")]) == 2
    assert "unknown dataset (or directory) 'nope'" in capsys.readouterr().err
    assert (
        main(
            [
                "train",
                "squeezenet_small",
                "--data",
                "synthetic",
                "--lr",
                "-1",
                "-o",
                str(tmp_path / "x"),
            ]
        )
        == 2
    )
    assert "lr=-1.0 is invalid: allowed a number > 0" in capsys.readouterr().err
    assert main(["evaluate", str(tmp_path / "missing.safetensors"), "--data", "synthetic"]) == 2


def test_train_config_takes_a_spec_object():
    from squeezelab.models import SQUEEZENET_SMALL
    from squeezelab.train import TrainConfig

    config = TrainConfig(spec=SQUEEZENET_SMALL)
    assert config.spec == SQUEEZENET_SMALL.to_dict()
    assert TrainConfig.from_dict(config.to_dict()) == config


def test_train_refuses_a_trained_file_with_one_line(tmp_path, capsys):
    from squeezelab.models import load_model, save_model

    model, meta = load_model("squeezenet_small")
    path = tmp_path / "m.safetensors"
    save_model(path, model, meta)
    assert main(["train", str(path), "--data", "synthetic", "-o", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "train starts from scratch" in err
