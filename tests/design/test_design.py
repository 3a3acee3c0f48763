"""`squeezelab design` end to end on a tiny budget, and resumed after a SIGKILL."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from squeezelab.cli import main

FMNIST = Path("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not FMNIST.is_file(), reason="needs Debian's dataset-fashion-mnist"),
]

TINY_SPACE = """
name: tiny-design
model: squeezenet_small
params:
  base_e: [8, 16]
  incr_e: 8
  sr: 0.25
  stem_channels: 8
costing: {hardware: cortex-m7, weight_bits: 8, activation_bits: 8}
objectives: [accuracy, model_bytes]
search: {sampler: grid, trials: 2}
train: {epochs: 1, train_subset: 300, batch_size: 64}
final: {epochs: 1, train_subset: 600, batch_size: 64}
"""


def _args(space: Path, out: Path) -> list[str]:
    return ["design", "--space", str(space), "--budget-minutes", "30", "-o", str(out)]


def _check_artefacts(out: Path) -> dict:
    from squeezelab.compress import load_sqz
    from squeezelab.explore import load_study_results
    from squeezelab.export import read_onnx_meta
    from squeezelab.fileio import load_model_file

    assert load_study_results(str(out / "study"))["counts"]["trained"] >= 1
    load_model_file(out / "final" / "best.safetensors")
    load_sqz(out / "model.sqz")
    for name in ("model.onnx", "model.int8.onnx"):
        assert read_onnx_meta(out / name)["model"] == "squeezenet_small"
    html = (out / "report.html").read_text()
    assert "Summary" in html and "<img" in html
    return json.loads((out / "summary.json").read_text())


def test_design_end_to_end(tmp_path, capsys):
    space = tmp_path / "tiny.yaml"
    space.write_text(TINY_SPACE)
    out = tmp_path / "out"
    assert main([*_args(space, out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary == _check_artefacts(out)
    rows = {r["artefact"].split(" (")[0]: r for r in summary["rows"]}
    assert rows[".sqz"]["bytes"] < rows["fp32 model file"]["bytes"] / 2
    assert all(r["reduction_vs_alexnet_small"] > 50 for r in summary["rows"])
    assert summary["target_latency_ms"] > 0 and summary["target_energy_pj"] > 0
    # a second run finds every stage done and only re-renders nothing
    assert main(_args(space, out)) == 0
    assert "done earlier" in capsys.readouterr().out


def test_design_resumes_after_sigkill(tmp_path):
    space = tmp_path / "tiny.yaml"
    space.write_text(TINY_SPACE)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "squeezelab", *_args(space, out)]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    state = out / "design.json"
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and proc.poll() is None:  # kill once explore is recorded
        if state.is_file() and "explore" in json.loads(state.read_text())["stages"]:
            break
        time.sleep(0.2)
    assert proc.poll() is None, "the run ended before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done = json.loads(state.read_text())["stages"]
    assert "explore" in done and "report" not in done
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "explore: done earlier" in result.stdout
    _check_artefacts(out)


def test_design_other_settings_in_same_dir_exit_2(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "design.json").write_text(json.dumps({"config": {"target": "phone-cpu"}, "stages": {}}))
    assert main(["design", "-o", str(out)]) == 2
    assert "holds a design run with other settings" in capsys.readouterr().err


def test_design_unknown_target_exit_2(tmp_path, capsys):
    assert main(["design", "--target", "cortex-m9", "-o", str(tmp_path / "o")]) == 2
    assert "cortex-m9" in capsys.readouterr().err
