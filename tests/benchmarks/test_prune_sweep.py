"""benchmarks/prune_sweep.py --quick: the sweep writes what docs/reproduction.md quotes, and resumes."""

import subprocess
import sys
from pathlib import Path

import pytest

from tests.benchmarks.conftest import ROOT, run_quick


@pytest.mark.slow
def test_quick_sweep_writes_the_table_and_a_rerun_skips_what_is_done(tmp_path):
    data = run_quick("prune_sweep", tmp_path, "--bits", "6", timeout=None)
    assert data["complete"] and data["reused"] == []
    assert data["baseline"]["fp32_bytes"] == 4 * 23_271_114
    base = data["base"]
    assert 0 <= base["val_accuracy"] <= 1 and 0 <= base["test_accuracy"] <= 1
    rows = data["rows"]
    assert [r["sparsity"] for r in rows] == [0.33, 0.67]
    for r in rows:
        assert (
            len(r["finetune_epochs"]) == 1 and r["finetune_epochs"][0]["val_accuracy"] is not None
        )
        probe = r["probe_6bit"]
        # the probe's file really holds the pruned weights: its recorded sparsity and bytes
        assert abs(probe["sparsity"] - r["sparsity"]) < 0.02
        assert Path(probe["sqz_file"]).stat().st_size == probe["bytes"]
        assert probe["reduction"] == pytest.approx(data["baseline"]["fp32_bytes"] / probe["bytes"])
        assert r["within_tolerance"] == (r["val_loss_points"] <= 0.5)
    assert rows[1]["probe_6bit"]["bytes"] < rows[0]["probe_6bit"]["bytes"]  # sparser is smaller
    assert data["chosen_sparsity"] in (None, 0.33, 0.67)
    (shared,) = data["shared"]
    assert shared["bits"] == 6 and shared["centroid_epochs"] == 1
    assert (tmp_path / Path(shared["sqz_file"]).name).stat().st_size == shared["bytes"]
    more = data["more_finetune"]
    assert more["extra_epochs"] == 1 and len(more["finetune_epochs"]) == 1
    assert data["paper_67"]["verdict"] in ("held", "not held", "not resolved")
    assert (tmp_path / "prune_sweep.png").stat().st_size > 0

    # a rerun with the same settings trains nothing again and reports the same figures
    again = run_quick("prune_sweep", tmp_path, "--bits", "6", timeout=None)
    assert again["reused"][0].startswith("base") and {"s33", "s67"} <= set(again["reused"])
    assert [r["val_accuracy"] for r in again["rows"]] == [r["val_accuracy"] for r in rows]
    assert again["shared"][0]["bytes"] == shared["bytes"]


def test_levels_must_rise():
    script = ROOT / "benchmarks" / "prune_sweep.py"
    cmd = [sys.executable, str(script), "--levels", "0.67,0.5"]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "--levels" in done.stderr and "rising" in done.stderr
