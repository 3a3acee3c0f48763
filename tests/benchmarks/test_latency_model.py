"""benchmarks/latency_model.py --quick runs end to end and writes the agreed keys."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_latency_model_quick(tmp_path):
    out = tmp_path / "latency_model.json"
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "latency_model.py"),
            "--quick",
            "--out",
            str(out),
        ],
        check=True,
        cwd=ROOT,
        timeout=600,
    )
    d = json.loads(out.read_text())
    assert {"spearman", "median_abs_pct_error", "models"} <= set(d)
    assert len(d["models"]) == 4
    for m in d["models"]:
        assert m["predicted_ms"] > 0 and m["measured_ms"] > 0 and m["name"]
