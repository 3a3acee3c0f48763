"""`squeezelab compress` with --data: fine-tunes by default, warns when a step loses accuracy,
and --ladder chooses the setting as design does."""

import json
from types import SimpleNamespace

import pytest

import squeezelab.train
from squeezelab.cli import build_parser, main
from squeezelab.compress.prune import prunable
from squeezelab.models import ModelMeta, save_model
from squeezelab.models.squeezenet import SqueezeNet
from squeezelab.train import EpochRecord
from tests.compress.test_ladder import SPEC


@pytest.fixture
def fakes(monkeypatch):
    """Fine-tuning that only counts its calls; a top-1 read off the module's sparsity."""
    calls = []

    def finetune(model, config, on_step=None, data=None):
        calls.append(config)
        yield EpochRecord(1, 1.0, 0.5, None, None, 0.01, 1000.0, 0.1)

    def evaluate(model, dataset, **kw):
        weights = list(prunable(model).values())
        zeros = sum(int((w == 0).sum()) for w in weights) / sum(w.numel() for w in weights)
        return SimpleNamespace(top1=0.49 if zeros < 0.1 else 0.099)

    monkeypatch.setattr(squeezelab.train, "finetune", finetune)
    monkeypatch.setattr(squeezelab.train, "evaluate", evaluate)
    return calls


def _model(tmp_path):
    path = tmp_path / "m.safetensors"
    save_model(path, SqueezeNet(SPEC), ModelMeta.for_spec(SPEC, "squeezenet_small"))
    return str(path)


def test_help_shows_the_finetuning_default():
    p = build_parser()
    sub = next(a for a in p._subparsers._actions if a.choices and "compress" in a.choices)
    text = sub.choices["compress"].format_help()
    assert "default 1 with --data, 0 without" in " ".join(text.split())


def test_data_finetunes_by_default_and_a_losing_step_prints_one_line(tmp_path, capsys, fakes):
    out = tmp_path / "m.sqz"
    argv = ["compress", _model(tmp_path), "-o", str(out), "--data", "synthetic"]
    assert main(argv) == 0
    assert len(fakes) == 2 and all(c.epochs == 1 for c in fakes)  # after pruning, of centroids
    assert all(c.val_fraction == 0 for c in fakes)  # trains on the rest, not on validation
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if " lost " in ln]
    assert len(lines) == 1  # (a plain console may prefix the time)
    assert lines[0].endswith(
        "pruning 67% lost 39.10 points of validation accuracy (49.0% -> 9.9%); allowed 0.5; "
        "try --sparsity 0.5 or more --finetune-epochs; or --ladder to choose a setting that "
        "keeps it"
    )
    assert out.exists()


def test_ladder_replaces_the_losing_setting(tmp_path, capsys, fakes):
    out = tmp_path / "m.sqz"
    argv = ["compress", _model(tmp_path), "-o", str(out), "--data", "synthetic", "--ladder"]
    assert main([*argv, "--json"]) == 0
    ladder = json.loads(capsys.readouterr().out)["ladder"]
    chosen = [r for r in ladder["rungs"] if r["chosen"]]
    assert len(chosen) == 1 and chosen[0]["sparsity"] == 0 and ladder["within_tolerance"]
    lost = [r for r in ladder["rungs"] if r["why"].startswith("lost 39.10 points")]
    assert lost and all(r["sparsity"] > 0 for r in lost)
    assert main(argv) == 0
    assert "compression ladder" in capsys.readouterr().out


def test_ladder_needs_data(tmp_path, capsys):
    out = str(tmp_path / "m.sqz")
    assert main(["compress", _model(tmp_path), "-o", out, "--ladder"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--ladder needs --data" in err
