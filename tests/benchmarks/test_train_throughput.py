import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import FMNIST_DIR

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.skipif(not Path(FMNIST_DIR).is_dir(), reason="needs dataset-fashion-mnist")
def test_train_throughput_quick(tmp_path):
    out = tmp_path / "tp.json"
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "train_throughput.py"),
            "--quick",
            "--threads",
            "1",
            "--out",
            str(out),
        ],
        check=True,
        cwd=ROOT,
    )
    result = json.loads(out.read_text())
    assert result["ours_img_per_s"] > 0 and result["plain_img_per_s"] > 0
    assert result["ratio"] == pytest.approx(result["ours_img_per_s"] / result["plain_img_per_s"])
