import importlib.util
import json
from pathlib import Path

import pytest

from tests.benchmarks.conftest import needs_fmnist

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "explore_efficiency.py"


@pytest.mark.slow
@needs_fmnist
def test_quick_run_writes_the_keys(tmp_path):
    spec = importlib.util.spec_from_file_location("explore_efficiency", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    out = tmp_path / "r.json"
    mod.main(["--quick", "--out", str(out)])
    data = json.loads(out.read_text())
    for key in (
        "hypervolume_ours",
        "hypervolume_random",
        "trained_trials",
        "screen_candidates_per_s",
    ):
        assert key in data
    assert data["trained_trials"] == 2 and data["ours"]["trained_trials"] >= 2
    assert data["ours"]["trained_feasible"] == data["ours"]["trained_trials"]  # screened
    assert data["screen_candidates_per_s"] > 0 and data["hypervolume_ours"] >= 0
    mf = data["multi_fidelity"]
    assert mf["search_seconds_budget"] == 12.0 and "cpu_flags" in mf["host"]
    for arm in ("fixed", "multi_fidelity"):
        got = mf[arm]
        assert got["trained_trials"] >= 1 and 0.0 <= got["retrained_val_accuracy"] <= 1.0
        assert got["search_seconds"] >= 12.0  # stopped by the wall-time budget, not before
    assert mf["fixed"]["stopped_trials"] == 0 and mf["fixed"]["fidelity"] is None
    fid = mf["multi_fidelity"]["fidelity"]  # ASHA; the top rung sized to the share
    assert [fid[k] for k in ("min_epochs", "eta", "min_at_rung")] == [1, 3, 3]
    assert fid["max_epochs"] == mf["multi_fidelity"]["train"]["epochs"] >= 3
