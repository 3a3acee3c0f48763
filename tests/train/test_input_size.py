"""``train --input-size``: a mixed-size ImageFolder is trained at the size asked for, and the
model file records it, so ``evaluate`` (and predict/export, which read the meta) use it too."""

import json

import numpy as np
import yaml

from squeezelab.cli import main
from squeezelab.models import load_model
from squeezelab.train import TrainConfig
from tests.train.conftest import TINY_SPEC


def _mixed_tree(root):
    """``root/{train,test}/{cat,dog}``: grayscale PNGs of 12x10 and 40x30 pixels."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for split, n in (("train", 4), ("test", 2)):
        for c in ("cat", "dog"):
            (root / split / c).mkdir(parents=True)
            for i in range(n):
                w, h = (12, 10) if i % 2 else (40, 30)
                pixels = rng.integers(0, 256, (h, w)).astype(np.uint8)
                Image.fromarray(pixels, "L").save(root / split / c / f"{i}.png")
    return root


def test_train_input_size_reaches_the_model_file_and_evaluate(tmp_path, capsys):
    data = _mixed_tree(tmp_path / "pets")
    spec = tmp_path / "tiny.yaml"
    spec.write_text(yaml.safe_dump(TINY_SPEC))
    run = tmp_path / "run"
    argv = ["train", str(spec), "--data", str(data), "--input-size", "20", "--epochs", "1"]
    argv += ["--batch-size", "4", "--device", "cpu", "-o", str(run), "--json"]
    assert main(argv) == 0
    assert json.loads((run / "config.json").read_text())["input_size"] == 20
    _, meta = load_model(str(run / "best.safetensors"))
    assert meta.input_size == 20 and meta.input_shape == (1, 20, 20)  # not 10, the median
    capsys.readouterr()
    assert main(["evaluate", str(run / "best.safetensors"), "--json"]) == 0  # data recorded
    assert json.loads(capsys.readouterr().out)["n"] == 4


def test_old_run_config_without_input_size_still_loads():
    saved = TrainConfig(data="synthetic").to_dict()
    del saved["input_size"]  # a config.json written before the field existed
    assert TrainConfig.from_dict(saved).resolved().input_size is None
