"""benchmarks/tflm_zoo.py --quick: one zoo member predicted, converted and measured in TFLM."""

import pytest

from tests.benchmarks.conftest import run_quick


@pytest.mark.slow
def test_tflm_zoo_quick(tmp_path):
    data = run_quick("tflm_zoo", tmp_path)
    assert set(data["host"]["cpu_flags"]) >= {"avx2", "avx512f", "avx512_vnni", "amx_int8"}
    assert data["failed"] == {}
    (row,) = data["results"]
    assert row["model"] == "squeezenet_small" and row["in_goal"] and row["skipped"] is None
    pred, meas = row["predicted"], row["measured"]
    assert pred["ops"] == meas["ops"] and meas["tflm_vs_reference_max_lsb"] == 0
    for key in ("arena", "tflite"):
        want = (pred[f"{key}_bytes"] - meas[f"{key}_bytes"]) / meas[f"{key}_bytes"]
        assert row["rel_error"][key] == pytest.approx(want, abs=1e-4)
        assert abs(want) <= 0.05  # the goal, for the member the quick run measures
    assert data["goals"]["arena_within_5pct"] and data["goals"]["tflite_within_5pct"]
