"""benchmarks/deploy_targets.py --quick: one net converted, measured in TFLM, timed on 5 runtimes."""

import pytest

from tests.benchmarks.conftest import run_quick


@pytest.mark.slow
def test_deploy_targets_quick(tmp_path):
    data = run_quick("deploy_targets", tmp_path)
    assert set(data["host"]["cpu_flags"]) >= {"avx2", "avx512f", "avx512_vnni", "amx_int8"}
    assert data["failed"] == {}
    (row,) = data["results"]
    assert row["model"] == "squeezenet_small" and row["input"] == [1, 28, 28]
    assert row["tflite_int8_bytes"] == row["tflite_bytes"]["measured"] > 0
    assert row["tflite_int8_bytes"] < row["tflite_fp32_bytes"] / 2  # int8 weights
    arena = row["arena_bytes"]
    assert 0 < arena["measured_head"] < arena["measured"] and arena["predicted"] > 0
    assert row["tflm_vs_reference_max_lsb"] == 0
    assert row["accuracy"] is None  # untrained in quick mode: no accuracy claimed
    lat = row["latency_ms_1_thread"]
    assert set(lat) == {"torch_eager", "ort_fp32", "ort_int8", "litert_fp32", "litert_int8"}
    assert all(v > 0 for v in lat.values())
