"""benchmarks/latency_model.py --quick runs end to end and writes the agreed keys."""

import pytest

from tests.benchmarks.conftest import run_quick


@pytest.mark.slow
def test_latency_model_quick(tmp_path):
    d = run_quick("latency_model", tmp_path)
    assert {"spearman", "median_abs_pct_error", "models"} <= set(d)
    assert len(d["models"]) == 4
    for m in d["models"]:
        assert m["predicted_ms"] > 0 and m["measured_ms"] > 0 and m["name"]
