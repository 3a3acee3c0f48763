"""benchmarks/time_to_accuracy.py --quick: both sides train, are costed and recorded."""

import pytest

from tests.benchmarks.conftest import needs_fmnist, run_quick


@pytest.mark.slow
@needs_fmnist
def test_time_to_accuracy_quick(tmp_path):
    data = run_quick("time_to_accuracy", tmp_path, timeout=None)
    assert data["complete"] and data["train_images"] == 2000 and data["test_images"] == 10_000
    assert set(data["host"]["cpu_flags"]) >= {"avx2", "avx512f", "amx_int8"}
    ours, plain = data["ours"], data["plain"]
    for side in (ours, plain):
        assert len(side["epochs"]) == 1 and 0 <= side["final_test_accuracy"] <= 1
        assert side["macs"] > 0 and side["peak_int8_activation_bytes"] > 0
    # the plain CNN as the issue describes it: 421,642 parameters; ours fewer, and fits
    assert plain["params"] == 421_642
    assert data["goals"]["fewer_params"] and data["goals"]["fits_cortex_m7"]
    assert ours["tflm_arena_bytes"] <= 524_288
