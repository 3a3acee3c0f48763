"""Every command of README.md's "CLI tour" runs as written (issue 17 item 4).

The commands are read from the ```sh blocks under "## CLI tour" and run in-process
through ``squeezelab.cli.main`` from a folder holding tiny stand-ins for what
``make demo`` leaves in ``out/demo/`` (a trained model file, its ``.sqz``, its ONNX
export, a study), so the README's paths are used unchanged. Each verb gets tiny-budget
flags appended (argparse keeps the last value), and ``fashion-mnist`` becomes the
generated ``synthetic`` set of the same shape: the point is that the README cannot drift
from the CLI, not the accuracy. A flag the CLI drops fails here too (exit 2).
"""

from __future__ import annotations

import re
import shlex
import shutil
from pathlib import Path

import pytest

from squeezelab.cli import build_parser, main

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"

# appended per verb (``verb`` or ``verb action``); every flag must exist on that verb
TINY = {
    "calibrate": ["--quick"],
    "measure": ["--runs", "1", "--warmup", "0", "--threads", "1"],
    "train": ["--epochs", "1", "--train-subset", "64", "--batch-size", "32", "--device", "cpu"],
    "bench": ["--thread-counts", "1", "--rounds", "1", "--roofline", "none"],
    "export": ["--calib-size", "16", "--eval-size", "16"],
    "check": ["--eval-size", "16"],
    "explore": ["--trials", "1", "--epochs", "1", "--train-subset", "128", "--data", "synthetic"],
    # design's default space trains 32-64-wide networks for a minute even on 1 trial: a
    # 1-trial stand-in space keeps the command's flags checked in seconds (every stage
    # still runs; tests/design/test_design.py checks their outputs)
    "design": ["--trials", "1", "--budget-minutes", "0.5", "--space", "tiny-space.yaml"],
}
# Needs a PostgreSQL server at the URL as written: parsed (flags and values), not run.
# tests/explore/test_workers.py runs explore on a real server.
PARSE_ONLY = re.compile(r"--storage postgresql://")
# A spec for the stand-in models: ~4k parameters, the 1x28x28 / 10-class data shape
TINY_SPEC = """\
base_e: 8
incr_e: 8
num_fire: 2
stem_channels: 4
stem_kernel: 3
stem_stride: 1
pool_after: [1]
num_classes: 10
in_chans: 1
input_size: 28
"""
DESIGN_SPACE = """\
name: tiny-design
model: squeezenet_small
params: {base_e: 8, incr_e: 8, sr: 0.25, stem_channels: 8}
objectives: [accuracy, model_bytes]
search: {sampler: grid, trials: 1}
train: {epochs: 1, train_subset: 128, batch_size: 64}
final: {epochs: 1, train_subset: 128, batch_size: 64}
"""
TINY_SPACE = {
    "name": "demo-standin",
    "model": "squeezenet_small",
    "params": {"sr": [0.125, 0.25, 0.5], "base_e": 16, "incr_e": 16},
    "objectives": ["accuracy", "model_bytes"],
    "search": {"sampler": "grid"},
    "train": {"epochs": 1},
}


def tour_commands(text: str) -> list[str]:
    """The ``squeezelab`` lines of the ```sh blocks between "## CLI tour" and the next "## "."""
    section = text.split("\n## CLI tour\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"^```sh\n(.*?)^```$", section, flags=re.S | re.M)
    lines = [line.strip() for block in blocks for line in block.splitlines()]
    return [line for line in lines if line.startswith("squeezelab ")]


def _argv(line: str) -> list[str]:
    argv = shlex.split(line, comments=True)[1:]
    verb = argv[0]
    argv = ["synthetic" if a == "fashion-mnist" else a for a in argv]
    return argv + TINY.get(verb, [])


def _run(argv: list[str]) -> None:
    assert main(argv) == 0, f"setup failed: squeezelab {' '.join(argv)}"


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """A folder whose ``out/demo`` has what ``make demo`` writes, tiny, and the tour image."""
    from squeezelab.explore import run_study, space_from_dict
    from tests.explore.fakes import fake_train

    root = tmp_path_factory.mktemp("tour")
    out = root / "out" / "demo"
    out.mkdir(parents=True)
    spec = root / "tiny.yaml"
    spec.write_text(TINY_SPEC)
    (root / "tiny-space.yaml").write_text(DESIGN_SPACE)
    train = ["train", str(spec), "--data", "synthetic", "-o", str(out / "final")]
    _run(train + TINY["train"])
    _run(["compress", str(out / "final" / "best.safetensors"), "-o", str(out / "model.sqz")])
    _run(["export", str(out / "model.sqz"), "-o", str(out / "model.onnx"), "--int8"])
    run_study(space_from_dict(TINY_SPACE), out / "study", train_fn=fake_train)
    (root / "docs" / "img").mkdir(parents=True)
    shutil.copy(ROOT / "docs" / "img" / "shirt.png", root / "docs" / "img" / "shirt.png")
    return root


def test_tour_is_found_and_covers_the_verbs():
    lines = tour_commands(README.read_text())
    verbs = {shlex.split(line)[1] for line in lines}
    assert {"train", "compress", "export", "predict", "explore", "design", "report"} <= verbs
    # the demo's outputs are what the tour uses, and the example image is shipped
    assert any("out/demo/" in line for line in lines)
    for line in lines:
        for arg in shlex.split(line, comments=True):
            if arg.endswith(".png"):
                assert (ROOT / arg).is_file(), f"{arg} named in the tour is not in the repo"
            assert "..." not in arg, f"placeholder in the tour: {line}"


def test_every_tour_command_runs(demo, monkeypatch, capsys):
    import torch

    torch.set_num_threads(1)
    monkeypatch.chdir(demo)
    failed = []
    for line in tour_commands(README.read_text()):
        argv = _argv(line)
        try:
            if PARSE_ONLY.search(line):
                build_parser().parse_args(argv)
                code = 0
            else:
                code = main(argv)
        except SystemExit as e:  # argparse refused a flag or value: exit 2
            code = e.code
        err = capsys.readouterr().err
        if code != 0:
            failed.append(f"exit {code}: squeezelab {' '.join(argv)}\n{err.strip()[-500:]}")
    assert not failed, "\n\n".join(failed)
