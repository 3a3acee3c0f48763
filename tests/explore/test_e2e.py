"""End to end on SQLite with the real trainer (tiny budget), killed and resumed."""

import os
import signal
import subprocess
import sys
import time

import pytest
import yaml

from squeezelab.explore import load_study_results
from tests.conftest import FMNIST_DIR

pytestmark = pytest.mark.slow

SPACE = {
    "name": "e2e",
    "model": "squeezenet_small",
    "params": {"sr": [0.125, 0.5], "base_e": 16, "incr_e": 16, "stem_channels": 16},
    "objectives": [
        "accuracy",
        "model_bytes",
        {"metric": "model_bytes", "compression": {"bits": 6}},
    ],
    "constraints": [{"metric": "params", "max": "1MB"}],
    "search": {"sampler": "grid"},
    "train": {
        "data": "fashion-mnist",
        "epochs": 1,
        "train_subset": 256,
        "batch_size": 64,
        "val_fraction": 0.01,
        "amp": "off",
    },
}


@pytest.mark.skipif(not os.path.isdir(FMNIST_DIR), reason="needs dataset-fashion-mnist")
def test_sqlite_study_killed_then_resumed(tmp_path):
    space = tmp_path / "space.yaml"
    space.write_text(yaml.safe_dump(SPACE))
    out = tmp_path / "study"
    cmd = [
        sys.executable,
        "-m",
        "squeezelab",
        "explore",
        str(space),
        "-o",
        str(out),
        "--heartbeat-s",
        "1",
        "--grace-s",
        "3",
    ]
    first = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 400
    # kill once the first trial is trained and the second is training
    while time.time() < deadline and first.poll() is None:
        if (out / "trials/00000/best.safetensors").exists() and (out / "trials/00001").exists():
            break
        time.sleep(0.2)
    assert first.poll() is None, first.stderr.read().decode()[-2000:]
    first.send_signal(signal.SIGKILL)
    first.wait()
    mid = load_study_results(str(out))
    assert mid.counts.trained == 1 and mid.counts.running == 1
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    res = load_study_results(str(out))
    c = res.counts
    assert (c.trained, c.failed, c.running, c.waiting) == (2, 1, 0, 0)
    trained = [t for t in res.trials if t.state == "trained"]
    assert sorted(t.params["sr"] for t in trained) == [0.125, 0.5]
    retried = [t for t in trained if t.retry_of is not None]
    assert len(retried) == 1 and retried[0].params["sr"] == 0.5
    for t in trained:
        assert len(t.epoch_accuracy) == 1 and 0 <= t.metrics["accuracy"] <= 1
        assert (out / "trials" / f"{t.number:05d}" / "best.safetensors").is_file()
        assert t.metrics["params"] > 0 and t.metrics["peak_activation_bytes"] > 0
        # the .sqz of the trained weights: a real file, smaller than the fp32 weights
        assert 0 < t.metrics["model_bytes[sqz-s0.67-6bit]"] < t.metrics["model_bytes"]
    assert res.pareto and set(res.pareto) <= {t.number for t in trained}
