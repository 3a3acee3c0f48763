"""``squeezelab --help`` and building the parser stay light: no torch, onnx or optuna."""

import subprocess
import sys


def test_building_every_verbs_flags_imports_no_heavy_library():
    code = (
        "import sys; from squeezelab.cli import build_parser; build_parser(); "
        "print(sorted(m for m in ('torch', 'onnx', 'onnxruntime', 'optuna', 'matplotlib') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
