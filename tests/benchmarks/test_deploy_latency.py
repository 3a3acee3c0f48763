"""benchmarks/deploy_latency.py --quick: squeezenet_small, 1 thread, eager vs best fp32/int8."""

import pytest

from tests.benchmarks.conftest import run_quick


@pytest.mark.slow
def test_deploy_latency_quick(tmp_path):
    data = run_quick("deploy_latency", tmp_path)
    (row,) = data["results"]
    assert row["model"] == "squeezenet_small" and row["threads"] == 1
    for key in ("eager_fp32_ms", "best_fp32_ms", "best_int8_ms", "roofline_fp32_ms"):
        assert row[key] > 0
    assert row["best_fp32_ms"] <= row["eager_fp32_ms"]
