import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import FMNIST_DIR

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.skipif(not Path(FMNIST_DIR).is_dir(), reason="needs dataset-fashion-mnist")
def test_fmnist_accuracy_quick(tmp_path):
    out = tmp_path / "acc.json"
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "fmnist_accuracy.py"),
            "--quick",
            "--runs",
            str(tmp_path / "runs"),
            "--out",
            str(out),
        ],
        check=True,
        cwd=ROOT,
    )
    result = json.loads(out.read_text())
    for name in ("squeezenet_small", "alexnet_small"):
        m = result["models"][name]
        assert 0 <= m["test_accuracy"] <= 1 and m["epochs"] == 1 and Path(m["model_file"]).is_file()
    assert result["models"]["squeezenet_small"]["params"] == 187_370
    assert result["param_ratio"] > 50
    assert result["goal_met"] is False  # 256 images, one epoch: far below 93%
