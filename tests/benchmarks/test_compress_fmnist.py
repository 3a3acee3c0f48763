"""The compression benchmark runs end to end on a tiny budget."""

import argparse
import json

import pytest

from benchmarks.compress_fmnist import find_model_file, main


@pytest.mark.slow
def test_quick_run_writes_the_table(tmp_path):
    out = tmp_path / "compress_fmnist.json"
    assert main(["--quick", "--out", str(out), "--bits", "6"]) == 0
    result = json.loads(out.read_text())
    assert result["baseline_fp32_bytes"] == 4 * 23_271_114
    names = [r["name"] for r in result["rows"]]
    assert names[0] == "alexnet_small fp32" and len(names) == 3
    row = result["rows"][-1]
    assert row["bytes"] < 200_000 and row["reduction"] > 400
    assert (tmp_path / "compress_fmnist_6bit.sqz").stat().st_size == row["bytes"]
    assert result["squeezenet1_0"]["weights"].startswith("random")


def test_accuracy_json_names_the_model_to_compress_and_the_baseline(tmp_path):
    model = tmp_path / "last.safetensors"
    model.write_bytes(b"")
    acc = tmp_path / "fmnist_accuracy_6ep.json"
    acc.write_text(
        json.dumps(
            {
                "models": {
                    "squeezenet_small": {"model_file": str(model), "test_accuracy": 0.92},
                    "alexnet_small": {"test_accuracy": 0.915},
                }
            }
        )
    )
    args = argparse.Namespace(accuracy_json=str(acc), model_file=None, quick=False)
    path, prior = find_model_file(args)
    assert path == str(model) and prior["alexnet_small"]["test_accuracy"] == 0.915
    model.unlink()  # a result whose model file is gone: train here instead
    assert find_model_file(args)[0] is None
