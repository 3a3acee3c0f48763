"""Every verb that takes a model x every kind of reference (issue 13 item 1).

A reference is a zoo name, a spec YAML, a spec JSON, a ``.safetensors`` model file or a
``.sqz`` file; all go through ``squeezelab.models.load_model``. Each cell either works
(exit 0) or refuses with exactly one stderr line and exit 2, and says why below.
Budgets are tiny: the whole matrix runs in well under a minute of CPU.
"""

import json

import pytest
import torch

from squeezelab.cli import main
from squeezelab.compress import compress_model, write_sqz
from squeezelab.models import load_model, save_model
from tests.conftest import TINY_SPEC

REFS = ("zoo", "yaml", "json", "safetensors", "sqz")
# a ~4k-parameter SqueezeNet sized for the `synthetic` dataset (1x28x28, 10 classes)
TINY = TINY_SPEC.replace(num_classes=10, input_size=28)

WORKS = dict.fromkeys(REFS, None)
# verb -> ref -> None (works) or why it refuses
EXPECT = {
    "profile": WORKS,
    "advise": WORKS,
    "measure": WORKS,
    # evaluating an untrained zoo model or spec is allowed (a chance-level baseline)
    "evaluate": WORKS,
    "compress": WORKS,  # a zoo name or spec compresses its untrained weights
    # train starts from scratch; a trained file is refused rather than silently reinitialised
    "train": {**WORKS, "safetensors": "trained model file", "sqz": "trained model file"},
    "export": WORKS,
    "bench": WORKS,
    "predict": WORKS,
    # inspect reads a .sqz header without decoding; nothing else has one
    "inspect": {**dict.fromkeys(REFS[:4], "allowed a .sqz file"), "sqz": None},
    # decompress decodes a .sqz; anything else has nothing to decode
    "decompress": {**dict.fromkeys(REFS[:4], "allowed a .sqz file"), "sqz": None},
    "spec": WORKS,  # every reference to a SqueezeNet has a spec
}


@pytest.fixture(scope="module")
def refs(tmp_path_factory):
    d = tmp_path_factory.mktemp("refs")
    (d / "tiny.yaml").write_text(TINY.to_yaml())
    (d / "tiny.json").write_text(json.dumps({"name": "tiny", **TINY.to_dict()}))
    torch.manual_seed(0)
    model, meta = load_model(TINY)
    save_model(d / "tiny.safetensors", model, meta)
    write_sqz(d / "tiny.sqz", compress_model(model, meta, bits=4).data)
    from PIL import Image

    Image.new("L", (28, 28), 128).save(d / "img.png")
    return {
        "zoo": "squeezenet_small",
        "yaml": str(d / "tiny.yaml"),
        "json": str(d / "tiny.json"),
        "safetensors": str(d / "tiny.safetensors"),
        "sqz": str(d / "tiny.sqz"),
        "dir": d,
    }


def _argv(verb, ref, d):
    out = d / f"{verb}-out"
    return {
        "profile": ["profile", ref, "--json"],
        "advise": ["advise", ref, "--top", "1", "--json"],
        "measure": ["measure", ref, "--runs", "1", "--warmup", "0", "--threads", "1", "--json"],
        "evaluate": ["evaluate", ref, "--data", "synthetic", "--json"],
        "compress": ["compress", ref, "-o", str(out.with_suffix(".sqz")), "--json"],
        "train": [
            "train",
            ref,
            "--data",
            "synthetic",
            "--epochs",
            "1",
            "--train-subset",
            "64",
            "--batch-size",
            "32",
            "--device",
            "cpu",
            "-o",
            str(out),
            "--json",
        ],
        "export": ["export", ref, "-o", str(out.with_suffix(".onnx")), "--json"],
        "bench": [
            "bench",
            ref,
            "--backends",
            "torch",
            "--thread-counts",
            "1",
            "--rounds",
            "1",
            "--roofline",
            "none",
            "--json",
        ],
        "predict": ["predict", ref, str(d.parent / "img.png"), "--json"],
        "inspect": ["inspect", ref, "--json"],
        "decompress": ["decompress", ref, "-o", str(out.with_suffix(".safetensors"))],
        "spec": ["spec", ref, "--json"],
    }[verb]


CELLS = [(verb, ref) for verb in EXPECT for ref in REFS]


@pytest.mark.parametrize(("verb", "ref"), CELLS, ids=[f"{v}-{r}" for v, r in CELLS])
def test_verb_takes_reference(verb, ref, refs, capsys, tmp_path):
    torch.set_num_threads(1)
    work = tmp_path / "work"
    work.mkdir()
    (tmp_path / "img.png").write_bytes((refs["dir"] / "img.png").read_bytes())
    code = main(_argv(verb, refs[ref], work))
    captured = capsys.readouterr()
    why = EXPECT[verb][ref]
    if why is None:
        assert code == 0, f"{verb} {ref}: exit {code}: {captured.err}"
        assert "Traceback" not in captured.err
    else:
        lines = captured.err.strip().splitlines()
        assert code == 2 and len(lines) == 1, f"{verb} {ref}: exit {code}: {captured.err}"
        assert why in lines[0]


def test_spec_json_output_is_a_spec_file(tmp_path, capsys):
    assert main(["spec", "squeezenet1_1", "--json"]) == 0
    path = tmp_path / "s.json"
    path.write_text(capsys.readouterr().out)
    assert main(["profile", str(path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["params"] == 1_235_496


def test_train_names_a_spec_file_model_as_load_model_does(refs, tmp_path, capsys):
    assert main(_argv("train", refs["json"], tmp_path)) == 0
    run = tmp_path / "train-out"
    config = json.loads((run / "config.json").read_text())
    assert config["model"] == "tiny" and config["spec"]["base_e"] == 8
    _, meta = load_model(run / "best.safetensors")
    assert meta.name == "tiny"
