"""benchmarks/train_throughput.py --quick: our loop against a plain one, one thread."""

import pytest

from tests.benchmarks.conftest import needs_fmnist, run_quick


@pytest.mark.slow
@needs_fmnist
def test_train_throughput_quick(tmp_path):
    result = run_quick("train_throughput", tmp_path, "--threads", "1", timeout=None)
    assert result["ours_img_per_s"] > 0 and result["plain_img_per_s"] > 0
    assert result["ratio"] == pytest.approx(result["ours_img_per_s"] / result["plain_img_per_s"])
