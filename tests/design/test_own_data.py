"""`squeezelab design` on a user's own ImageFolder: costed at its geometry, re-checked at
the end against the target, and the wall-clock budget kept."""

import json
from pathlib import Path

import numpy as np
import pytest

from squeezelab.cli import main

SPACE = """
name: own-data
model: squeezenet_small
params:
  base_e: [8, 16]
  incr_e: 8
  sr: 0.25
  stem_channels: 8
  pool_after: [1, 3, 5]
costing: {hardware: cortex-m7, weight_bits: 8, activation_bits: 8}
objectives: [accuracy, model_bytes]
search: {sampler: grid, trials: 2}
train: {epochs: 1, batch_size: 16}
final: {epochs: 1, batch_size: 16}
"""


def image_folder(root: Path, side: int = 64, per_class=(12, 4)) -> Path:
    """``root/{train,test}/CLASS/*.png``: 4 classes of RGB ``side`` x ``side`` images."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for split, n in zip(("train", "test"), per_class, strict=True):
        for c in range(4):
            d = root / split / f"class{c}"
            d.mkdir(parents=True)
            for i in range(n):
                px = rng.integers(0, 64, (side, side, 3), dtype=np.uint8)
                px[..., c % 3] += np.uint8(60 * (c + 1) // 2)  # a colour cast per class
                Image.fromarray(px).save(d / f"{i}.png")
    return root


def small_sram_profile(path: Path, sram: int) -> Path:
    """The Cortex-M7 profile with ``sram`` bytes of SRAM."""
    from squeezelab.io.packaged import load_packaged_yaml

    data, _ = load_packaged_yaml("profiles", "cortex-m7", "hardware profile")
    data.update(name="small-m7", sram_bytes=sram, onchip_buffer_bytes=sram)
    import yaml

    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.slow
def test_own_folder_is_costed_at_its_geometry_and_rechecked(tmp_path, capsys, monkeypatch):
    """3x64x64 images, 4 classes: every candidate is costed at (3, 64, 64) with 4 outputs.

    The screen is made to under-report the arena by 10x (a costing bug): the delivered
    design then passes the search but must fail the final check in TFLite Micro, and
    the run says NOT SHIPPED instead of calling it feasible.
    """
    import squeezelab.analysis as analysis

    folder = image_folder(tmp_path / "imgs")
    space = tmp_path / "space.yaml"
    space.write_text(SPACE)
    hw = small_sram_profile(tmp_path / "small-m7.yaml", 30_000)
    real, shapes = analysis.profile, []

    def under_reporting(model, input_shape=None, *a, **k):
        import dataclasses

        p = real(model, input_shape, *a, **k)
        shapes.append((tuple(input_shape), model(__import__("torch").zeros(1, *input_shape)).shape))
        if p.tflm_arena_bytes is None:
            return p
        return dataclasses.replace(p, tflm_arena_bytes=p.tflm_arena_bytes // 10)

    monkeypatch.setattr(analysis, "profile", under_reporting)
    from squeezelab.design import STAGES
    from tests.design.test_design import guard_test_split

    ran = guard_test_split(monkeypatch)  # no choosing stage, explore included, reads test
    out = tmp_path / "out"
    args = ["design", "--data", str(folder), "--space", str(space), "--hardware", str(hw)]
    assert main([*args, "--budget-minutes", "30", "-o", str(out), "--json"]) == 0
    assert ran == [name for name, _ in STAGES]  # the guard watched every stage
    summary = json.loads(capsys.readouterr().out)
    assert shapes and all(s == (3, 64, 64) and tuple(o) == (1, 4) for s, o in shapes)
    from squeezelab.explore import load_study_results

    trials = [t for t in load_study_results(out / "study").trials if t.arch is not None]
    assert trials and all(t.arch.input_shape == (3, 64, 64) for t in trials)
    assert all(t.arch.num_classes == 4 for t in trials)
    # the study saw a fitting arena; TFLite Micro measured the real one, above the SRAM
    dep = summary["deploy"]
    assert dep["arena_bytes"] > 30_000 and summary["shipped"] is False
    assert any("exceeds the 30,000 B SRAM" in p for p in dep["problems"])
    assert summary["target_peak_activation_bytes"] >= 3 * 64 * 64  # the int8 input alone


@pytest.mark.slow
def test_budget_is_kept_within_15_percent(tmp_path, capsys):
    """A 1.5-minute budget on a small folder: the stages end within 15% of it.

    An ONNX Runtime target (no .tflite conversion): at this budget a conversion alone
    would take most of it.
    """
    folder = image_folder(tmp_path / "imgs", side=32, per_class=(150, 20))
    space = tmp_path / "space.yaml"
    space.write_text(
        SPACE.replace("trials: 2", "trials: 12")
        .replace("base_e: [8, 16]", "base_e: [8, 16, 24, 32]")
        .replace("final: {epochs: 1", "final: {epochs: 50")
    )
    out = tmp_path / "out"
    budget = 1.5
    args = ["design", "--data", str(folder), "--space", str(space), "-o", str(out)]
    args += ["--hardware", "horowitz-45nm"]
    assert main([*args, "--budget-minutes", str(budget), "--json"]) == 0
    state = json.loads((out / "design.json").read_text())
    seconds = sum(s["seconds"] for s in state["stages"].values())
    assert seconds <= 1.15 * budget * 60, {
        k: round(s["seconds"]) for k, s in state["stages"].items()
    }
    # the time was spent, not left: the stages that plan used their shares
    assert seconds >= 0.5 * budget * 60
