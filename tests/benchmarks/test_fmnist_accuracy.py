"""benchmarks/fmnist_accuracy.py --quick: both nets trained one epoch on 256 images."""

from pathlib import Path

import pytest

from tests.benchmarks.conftest import needs_fmnist, run_quick


@pytest.mark.slow
@needs_fmnist
def test_fmnist_accuracy_quick(tmp_path):
    result = run_quick("fmnist_accuracy", tmp_path, "--runs", str(tmp_path / "runs"), timeout=None)
    for name in ("squeezenet_small", "alexnet_small"):
        m = result["models"][name]
        assert 0 <= m["test_accuracy"] <= 1 and m["epochs"] == 1 and Path(m["model_file"]).is_file()
    assert result["models"]["squeezenet_small"]["params"] == 187_370
    assert result["param_ratio"] > 50
    assert result["goal_met"] is False  # 256 images, one epoch: far below 93%
