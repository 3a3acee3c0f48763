"""Files written before the issue-13 restructure still load, to the same weights and outputs.

The files in tests/golden/ were written by squeezelab at commit 922c477 (see its README).
"""

import json
import shutil
from pathlib import Path

import torch

from squeezelab.models import load_model

GOLDEN = Path(__file__).parent / "golden"
LOGITS = json.loads((GOLDEN / "tiny_922c477.json").read_text())


def _input() -> torch.Tensor:
    torch.manual_seed(LOGITS["input_seed"])
    return torch.randn(*LOGITS["input_shape"])


def test_an_old_model_file_loads_with_its_metadata_and_weights():
    model, meta = load_model(GOLDEN / "tiny_922c477.safetensors")
    assert meta.classes == ("a", "b", "c") and meta.mean == (0.25,) and meta.std == (0.5,)
    assert meta.input_shape == (1, 8, 8) and meta.extra["metrics"]["val_acc"] == 0.5
    with torch.no_grad():
        assert torch.equal(model(_input()), torch.tensor(LOGITS["model_logits"]))


def test_an_old_sqz_file_decodes_to_the_module_it_encoded():
    model, meta = load_model(GOLDEN / "tiny_922c477.sqz")
    assert meta.classes == ("a", "b", "c") and meta.spec.num_fire == 2
    with torch.no_grad():
        assert torch.equal(model(_input()), torch.tensor(LOGITS["sqz_logits"]))


def test_an_old_onnx_file_reads_its_metadata():
    from squeezelab.export.onnx import read_onnx_meta

    info = read_onnx_meta(GOLDEN / "tiny_922c477.onnx")
    assert info.meta.classes == ("a", "b", "c") and info.meta.input_shape == (1, 8, 8)


def test_an_old_study_reads_as_typed_results(tmp_path):
    from squeezelab.explore import load_study_results

    shutil.copytree(GOLDEN / "study_922c477", tmp_path / "study")
    res = load_study_results(tmp_path / "study")
    got = {t.number: (t.state, t.metrics["params"], t.metrics["accuracy"]) for t in res.trials}
    assert got == {0: ("trained", 13154.0, 0.55), 1: ("trained", 47210.0, 0.7)}
    assert [t.arch.spec.sr for t in res.trials] == [0.125, 0.5]
    assert list(res.pareto) == [1, 0]
