"""The compression benchmark runs end to end on a tiny budget."""

import json

import pytest

from benchmarks.compress_fmnist import main


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
