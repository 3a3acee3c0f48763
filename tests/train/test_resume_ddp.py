"""Crash safety and DDP: real processes, a real SIGKILL, a real two-rank gloo group."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from squeezelab.train import fit
from squeezelab.train.run import build_run_model, load_splits
from tests.train.conftest import TINY_SPEC, tiny_config, train_argv

CHILD = str(Path(__file__).with_name("_fit_child.py"))
ROOT = str(Path(__file__).resolve().parents[2])
ENV = {**os.environ, "PYTHONPATH": ROOT, "OMP_NUM_THREADS": "1"}


def child(config, out, *extra):
    return [sys.executable, CHILD, json.dumps(config.to_dict()), str(out), *extra]


def weights(path):
    return load_file(str(path))


@pytest.mark.slow
def test_sigkill_after_epoch_1_then_resume_equals_uninterrupted(tmp_path):
    config = tiny_config(epochs=2, train_subset=384)
    list(fit(config, tmp_path / "ref"))  # uninterrupted, in this process (one thread too)

    run = tmp_path / "killed"
    proc = subprocess.Popen(child(config, run), env=ENV, stdout=subprocess.PIPE, text=True)
    first = json.loads(proc.stdout.readline())
    proc.send_signal(signal.SIGKILL)  # epoch 1 is on disk; epoch 2 is under way
    proc.wait()
    assert first["epoch"] == 1 and proc.returncode == -signal.SIGKILL
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 1

    assert [r.epoch for r in fit(config, run, resume=True)] == [2]
    ref, resumed = weights(tmp_path / "ref" / "last.safetensors"), weights(run / "last.safetensors")
    assert ref.keys() == resumed.keys()
    assert all(torch.equal(ref[k], resumed[k]) for k in ref)
    ref_metrics = (tmp_path / "ref" / "metrics.jsonl").read_text().splitlines()
    run_metrics = (run / "metrics.jsonl").read_text().splitlines()
    drop = ("img_per_s", "seconds")
    strip = [{k: v for k, v in json.loads(x).items() if k not in drop} for x in ref_metrics]
    assert strip == [{k: v for k, v in json.loads(x).items() if k not in drop} for x in run_metrics]


@pytest.mark.slow
def test_two_gloo_processes_match_one_process_with_the_same_global_batch(tmp_path):
    """``torchrun --nproc_per_node 2 -m squeezelab train ...`` vs ``fit`` in one process."""
    import yaml

    spec = {**TINY_SPEC, "batchnorm": False, "dropout": 0.0}  # per-rank BN statistics differ
    config = tiny_config(
        spec=spec, epochs=1, batch_size=32, train_subset=256, amp="off", schedule="constant"
    )
    list(fit(config, tmp_path / "one"))
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        "-m",
        "squeezelab",
        *train_argv(tmp_path / "spec.yaml", tmp_path / "two", subset=256),
        *("--lr", "0.05", "--schedule", "constant", "--amp", "off", "--device", "cpu"),
    ]
    out = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.count('"epoch": 1') == 1  # only rank 0 prints
    one = weights(tmp_path / "one" / "last.safetensors")
    two = weights(tmp_path / "two" / "last.safetensors")
    resolved = config.resolved()
    init = build_run_model(resolved, load_splits(resolved)[0]).state_dict()
    moved = max((one[k] - init[k]).abs().max().item() for k in one)
    gap = max((one[k] - two[k]).abs().max().item() for k in one)
    assert moved > 1e-3 and gap < 1e-4, (moved, gap)  # trained, and the same within rounding
    rec_one = json.loads((tmp_path / "one" / "metrics.jsonl").read_text())
    rec_two = json.loads((tmp_path / "two" / "metrics.jsonl").read_text())
    assert rec_two["train_loss"] == pytest.approx(rec_one["train_loss"], rel=1e-5)
    assert rec_two["val_acc"] == rec_one["val_acc"]
