"""What every benchmark test does: run ``benchmarks/NAME.py --quick`` and read its JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import FMNIST_DIR

ROOT = Path(__file__).resolve().parents[2]

# the benchmarks that train on the real Fashion-MNIST files skip without them
needs_fmnist = pytest.mark.skipif(
    not Path(FMNIST_DIR).is_dir(), reason="needs dataset-fashion-mnist"
)


def run_quick(name: str, tmp_path: Path, *args: str, timeout: int | None = 600) -> dict:
    """``python benchmarks/<name>.py --quick --out TMP/<name>.json ARGS``; the JSON it wrote.

    A subprocess, as a user runs it: the script's own argument parsing and imports count.
    ``timeout=None`` for the ones that train, whose time depends on the host's load.
    """
    out = tmp_path / f"{name}.json"
    script = ROOT / "benchmarks" / f"{name}.py"
    cmd = [sys.executable, str(script), "--quick", "--out", str(out), *args]
    subprocess.run(cmd, check=True, cwd=ROOT, timeout=timeout)
    return json.loads(out.read_text())
