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
