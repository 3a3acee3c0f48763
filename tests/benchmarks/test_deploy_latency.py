import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_deploy_latency_quick(tmp_path):
    out = tmp_path / "deploy_latency.json"
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "deploy_latency.py"),
            "--quick",
            "--out",
            str(out),
        ],
        check=True,
        cwd=ROOT,
        timeout=600,
    )
    data = json.loads(out.read_text())
    (row,) = data["results"]
    assert row["model"] == "squeezenet_small" and row["threads"] == 1
    for key in ("eager_fp32_ms", "best_fp32_ms", "best_int8_ms", "roofline_fp32_ms"):
        assert row[key] > 0
    assert row["best_fp32_ms"] <= row["eager_fp32_ms"]
