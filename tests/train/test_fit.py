import json

import pytest
import torch

from squeezelab.data import load_dataset
from squeezelab.errors import ConfigError, FormatError
from squeezelab.models import load_model
from squeezelab.train import evaluate, finetune, fit, read_metrics
from tests.train.conftest import tiny_config

# the layout of metrics.jsonl and `train --json` lines, in the order --json prints them
KEYS = ["epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "img_per_s", "seconds"]


def test_fit_writes_run_dir_and_learns(tmp_path):
    records = list(fit(tiny_config(epochs=3, train_subset=384), tmp_path))
    assert [r.epoch for r in records] == [1, 2, 3] and list(records[0].to_dict()) == KEYS
    files = {p.name for p in tmp_path.iterdir()}
    assert {
        "config.json",
        "metrics.jsonl",
        "last.safetensors",
        "best.safetensors",
        "resume.safetensors",
    } <= files
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(x) for x in lines] == [r.to_dict() for r in records]
    assert read_metrics(tmp_path) == records
    assert json.loads((tmp_path / "config.json").read_text())["optimizer"] == "sgd"
    assert records[-1].train_loss < records[0].train_loss and records[-1].val_acc > 0.15
    _, meta = load_model(tmp_path / "last.safetensors")
    assert meta.normalization == {"mean": [0.5], "std": [0.3]}
    assert meta.input_size == 28 and len(meta.classes) == 10 and meta.spec.base_e == 8
    assert meta.extra["metrics"] == records[-1].to_dict()


def test_model_file_round_trip(tmp_path):
    list(fit(tiny_config(epochs=1), tmp_path))
    model, meta = load_model(tmp_path / "last.safetensors")
    test = load_dataset("synthetic", "test")
    scores = evaluate(model, test)
    again, _ = load_model(tmp_path / "last.safetensors")
    x = torch.randn(3, 1, 28, 28)
    with torch.no_grad():
        assert torch.equal(model(x), again(x))
    assert set(scores.to_dict()) >= {"top1", "top5", "loss", "per_class", "confusion"}
    assert sum(map(sum, scores.confusion)) == len(test) == scores.n
    assert 0 <= scores.top1 <= scores.top5 and set(scores.per_class) == set(test.classes)


def test_model_file_with_pickle_payload_is_rejected_not_executed(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            import os

            return (os.system, (f"touch {marker}",))

    import pickle

    path = tmp_path / "evil.safetensors"
    path.write_bytes(pickle.dumps({"state_dict": Evil()}))
    with pytest.raises(FormatError):
        load_model(path)
    assert not marker.exists()


def test_finetune_calls_on_step_and_keeps_model_in_place():
    from squeezelab.models.spec import SqueezeNetSpec
    from squeezelab.models.squeezenet import SqueezeNet
    from tests.train.conftest import TINY_SPEC

    model = SqueezeNet(SqueezeNetSpec.from_dict(TINY_SPEC))
    calls = []
    records = list(finetune(model, tiny_config(epochs=1, train_subset=96), on_step=calls.append))
    assert len(records) == 1 and len(calls) == 3 and calls[0] is model
    assert not model.training and model.features[0].weight.is_contiguous()


def test_distillation_from_teacher_file(tmp_path):
    list(fit(tiny_config(epochs=1), tmp_path / "teacher"))
    records = list(
        fit(
            tiny_config(
                epochs=1,
                teacher=str(tmp_path / "teacher" / "last.safetensors"),
                optimizer="adamw",
                lr=2e-3,
                schedule="cosine",
            ),
            tmp_path / "s",
        )
    )
    assert records[0].train_loss > 0


def test_batch_larger_than_data_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="batch_size=512 is invalid"):
        list(fit(tiny_config(batch_size=512, train_subset=100), tmp_path))


def test_bf16_autocast_and_contiguous_layout_train(tmp_path):
    import math

    for kw in ({"amp": "bf16"}, {"amp": "off", "channels_last": False}):
        rec = list(fit(tiny_config(epochs=1, train_subset=96, **kw), tmp_path / kw["amp"]))[0]
        assert math.isfinite(rec.train_loss) and rec.val_acc is not None


def test_model_args_of_other_families_reach_the_builder_and_the_model_file(tmp_path):
    cfg = tiny_config(
        model="mobilenet_v1", spec=None, model_args={"width_mult": 0.25}, epochs=1, train_subset=64
    )
    list(fit(cfg, tmp_path / "run"))
    model, meta = load_model(tmp_path / "run" / "last.safetensors")
    assert meta.model_args == {"width_mult": 0.25}
    assert meta.extra["params"] == sum(p.numel() for p in model.parameters())
