"""`squeezelab design` end to end on a tiny budget, and resumed after a SIGKILL."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from squeezelab.cli import main
from squeezelab.design import STAGES

FMNIST = Path("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz")
# Debian's dataset-fashion-mnist where installed, else the generated digits (same shape)
DATA = "fashion-mnist" if FMNIST.is_file() else "synthetic"

TINY_SPACE = """
name: tiny-design
model: squeezenet_small
params:
  base_e: [8, 16]
  incr_e: 8
  sr: 0.25
  stem_channels: 8
costing: {hardware: cortex-m7, weight_bits: 8, activation_bits: 8}
objectives: [accuracy, model_bytes]
search: {sampler: grid, trials: 2}
train: {epochs: 1, train_subset: 300, batch_size: 64}
final: {epochs: 1, train_subset: 600, batch_size: 64}
"""


def _args(space: Path, out: Path) -> list[str]:
    return [
        "design",
        "--data",
        DATA,
        "--space",
        str(space),
        "--budget-minutes",
        "30",
        "-o",
        str(out),
    ]


def _check_artefacts(out: Path) -> dict:
    from squeezelab.explore import load_study_results
    from squeezelab.export import read_onnx_meta
    from squeezelab.models import load_model

    assert load_study_results(out / "study").counts.trained >= 1
    load_model(out / "final" / "best.safetensors")
    load_model(out / "model.sqz")
    for name in ("model.onnx", "model.int8.onnx"):
        assert read_onnx_meta(out / name).meta.name == "squeezenet_small"
    html = (out / "report.html").read_text()
    assert "Summary" in html and "<img" in html and "Deployment" in html
    summary = json.loads((out / "summary.json").read_text())
    # the cortex-m7 runs TFLite Micro: the design ships an int8 .tflite and its C array,
    # run in TFLM, its measured arena compared with the SRAM
    from squeezelab.export.tflite import read_tflite

    dep = summary["deploy"]
    assert dep["runtime"] == "tflite-micro" and dep["ship"] == str(out / "model.c")
    assert read_tflite((out / "model.tflite").read_bytes()).input_dtype == "int8"
    assert dep["tflite_bytes"] == (out / "model.tflite").stat().st_size
    header = (out / "model.h").read_text()
    assert str(dep["arena_bytes"]) in header
    assert 0 < dep["arena_head_bytes"] < dep["arena_bytes"] and dep["sram_bytes"] == 524288
    assert dep["tflm_vs_reference_max_lsb"] == 0
    assert dep["predicted_arena_bytes"] > 0 and dep["predicted_tflite_bytes"] > 0
    fits = dep["arena_bytes"] <= dep["sram_bytes"] and dep["tflite_bytes"] <= dep["flash_bytes"]
    assert summary["shipped"] == (fits and not dep["problems"])
    # the final scoring: every file on the whole test split
    # (TFLite Micro's host interpreter: the first TFLM_SCORE_IMAGES of them)
    from squeezelab.design.stages import TFLM_SCORE_IMAGES

    assert 0 <= dep["int8_accuracy"] <= 1
    assert dep["eval_images"] == min(TFLM_SCORE_IMAGES, _test_images())
    return summary


def _test_images() -> int:
    from squeezelab.data import load_dataset

    return len(load_dataset(DATA, "test"))


CHOOSING = ("explore", "retrain", "compress", "export", "deploy")


def guard_test_split(monkeypatch) -> list[str]:
    """Make any read of the test split during a choosing stage raise; returns the stages run.

    Choices (trial, epoch, compression setting, int8 form, runtime) see validation only.
    """
    import squeezelab.design.run as run
    from squeezelab.design.context import RunContext

    current: list[str] = []

    def wrap(name, fn):
        def stage(ctx):
            current.append(name)
            return fn(ctx)

        return stage

    monkeypatch.setattr(run, "STAGES", [(n, wrap(n, f)) for n, f in run.STAGES])
    real = RunContext.test.func

    def test(self):
        if current and current[-1] in CHOOSING:
            raise AssertionError(f"the {current[-1]} stage read the test split")
        return real(self)

    monkeypatch.setattr(RunContext, "test", property(test))
    import squeezelab.data.names as names

    load = names.load_dataset

    def guarded(name, split="train", *a, **k):
        if split == "test" and current and current[-1] in CHOOSING:
            raise AssertionError(f"the {current[-1]} stage loaded the test split")
        return load(name, split, *a, **k)

    for module_name, module in list(sys.modules.items()):  # wherever it was imported by name
        if module_name.startswith("squeezelab") and getattr(module, "load_dataset", None) is load:
            monkeypatch.setattr(module, "load_dataset", guarded)
    return current


def test_the_guard_fails_a_choosing_stage_that_reads_the_test_split(monkeypatch):
    """The guard above can fail: a choosing stage touching ``ctx.test`` or loading the test
    split by name raises; the report stages may."""
    import squeezelab.data.names as names
    import squeezelab.design.run as run
    from squeezelab.design.context import RunContext

    def peeks(ctx):
        return ctx.test

    def loads(ctx):
        return names.load_dataset("fashion-mnist", "test")

    monkeypatch.setattr(names, "load_dataset", lambda *a, **k: "read")  # no real read
    monkeypatch.setattr(run, "STAGES", [("explore", peeks), ("deploy", loads), ("score", loads)])
    guard_test_split(monkeypatch)
    ctx = RunContext.__new__(RunContext)
    (_, explore), (_, deploy), (_, score) = run.STAGES
    with pytest.raises(AssertionError, match="the explore stage read the test split"):
        explore(ctx)
    with pytest.raises(AssertionError, match="the deploy stage loaded the test split"):
        deploy(ctx)
    assert score(ctx) == "read"


def _killed_after_explore(space: Path, out: Path) -> None:
    """Start the design run as a user does and SIGKILL its process group once the explore
    stage is recorded in design.json."""
    cmd = [sys.executable, "-m", "squeezelab", *_args(space, out)]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    state = out / "design.json"
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and proc.poll() is None:  # kill once explore is recorded
        if state.is_file() and "explore" in json.loads(state.read_text())["stages"]:
            break
        time.sleep(0.2)
    assert proc.poll() is None, "the run ended before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done = json.loads(state.read_text())["stages"]
    assert "explore" in done and "report" not in done


@pytest.mark.slow
def test_design_end_to_end_resumed_after_sigkill(tmp_path, capsys, monkeypatch):
    """A run SIGKILLed once explore is recorded resumes after it and finishes every stage.

    The resumed run is in-process, watched: no choosing stage reads the test split, and
    retraining, fine-tuning, calibration and the tests share one read of each split
    (``tests/design/test_own_data.py`` watches a run whose explore stage is in-process too).
    """
    from tests.train.loads import count_loads

    space = tmp_path / "tiny.yaml"
    space.write_text(TINY_SPACE)
    out = tmp_path / "out"
    _killed_after_explore(space, out)
    loads = count_loads(monkeypatch)
    ran = guard_test_split(monkeypatch)
    assert main([*_args(space, out), "--json"]) == 0
    assert ran == [name for name, _ in STAGES if name != "explore"]  # resumed after explore
    assert loads == {(DATA, "train"): 1, (DATA, "test"): 1}
    summary = json.loads(capsys.readouterr().out)
    assert summary == _check_artefacts(out)
    rows = {r["artefact"].split(" (")[0]: r for r in summary["rows"]}
    assert rows[".sqz"]["bytes"] < rows["fp32 model file"]["bytes"] / 2
    assert all(r["reduction_vs_alexnet_small"] > 50 for r in summary["rows"])
    assert summary["target_latency_ms"] > 0 and summary["target_energy_pj"] > 0
    # a second run finds every stage done and only re-renders nothing
    assert main(_args(space, out)) == 0
    shown = capsys.readouterr().out
    assert "explore: done earlier" in shown and "report: done earlier" in shown
    # the line that says which file to flash, or why the design is not shipped
    if summary["shipped"]:
        assert "Ship " in shown and "model.c" in shown
    else:
        assert "NOT SHIPPED" in shown and summary["deploy"]["problems"]
    # every stage result round-trips through design.json
    from squeezelab.design import read_state
    from squeezelab.design.records import DesignState

    state = read_state(out / "design.json")
    assert sorted(n for n, _ in STAGES) == sorted(state.stages)
    again = DesignState(state.config, state.stages, state.retrain_budget).to_dict()
    assert again == json.loads((out / "design.json").read_text())


def _state(config: dict) -> str:
    from squeezelab.design import DesignConfig
    from squeezelab.design.records import DesignState

    return json.dumps(DesignState({**DesignConfig().to_dict(), **config}).to_dict())


def test_resume_from_another_working_folder_is_refused_in_one_line(tmp_path, capsys):
    """A run's files are recorded relative to the folder it started in: resume from there."""
    from squeezelab.design import DesignConfig
    from squeezelab.design.records import DesignState, ReportResult

    out = tmp_path / "out"
    out.mkdir()
    state = DesignState(
        DesignConfig().to_dict(),
        {"report": ReportResult("out/report.html", "out/summary.json")},
        started_in=str(tmp_path / "elsewhere"),
    )
    (out / "design.json").write_text(json.dumps(state.to_dict()))
    assert main(["design", "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "started in" in err and "elsewhere" in err, err


def test_design_other_settings_in_same_dir_exit_2(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "design.json").write_text(_state({"hardware": "phone-cpu"}))
    assert main(["design", "-o", str(out)]) == 2
    assert "holds a design run with other settings (hardware)" in capsys.readouterr().err


def test_a_space_left_out_and_its_default_named_are_the_same_settings():
    """Runs recorded ``space: design-small`` before a space left out was recorded as None;
    they resume without --space, and a detection run's recorded design-small (the default
    it swapped for design-det-small) too. --pick's command names no default space."""
    from squeezelab.design import DesignConfig
    from squeezelab.design.records import DesignState
    from squeezelab.design.run import changed_settings
    from squeezelab.design.ship import pick_command

    def diff(recorded: dict, **now) -> list[str]:
        state = DesignState({**DesignConfig().to_dict(), **recorded})
        return changed_settings(state, DesignConfig(**now), set())

    assert diff({"space": "design-small"}) == []
    assert diff({"space": "design-small"}, space="design-small") == []
    assert diff({"space": "mcu-256k"}) == ["space"]
    det = {"data": "fashion-mnist-det"}
    assert diff({**det, "space": "design-small"}, **det) == []
    assert diff({**det, "space": None}, **det, space="design-det-small") == []
    old = {**DesignConfig(**det).to_dict(), "space": "design-small"}
    assert "--space" not in pick_command(old, "out")
    assert "--space mcu-256k" in pick_command({**old, "data": "x", "space": "mcu-256k"}, "o")


OLD_STATE = {  # what squeezelab wrote before the stages had typed results
    "config": {"data": "fashion-mnist", "data_dir": None, "target": "cortex-m7", "seed": 0},
    "stages": {"explore": {"best": {"number": 0, "model": "squeezenet_small"}}},
}


@pytest.mark.parametrize(
    "text",
    [
        json.dumps(OLD_STATE),
        "{not json",
        json.dumps([1]),
        _state({})[:-40] + "}",
        json.dumps({**json.loads(_state({})), "stages": {"explore": {"best": 3}}}),
    ],
    ids=["old-format", "not-json", "not-object", "truncated", "damaged-stage"],
)
def test_unreadable_state_is_one_line_exit_2(tmp_path, capsys, text):
    out = tmp_path / "out"
    out.mkdir()
    (out / "design.json").write_text(text)
    assert main(["design", "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert "design.json" in err and "new output folder" in err and "--restart" in err


def test_flags_come_from_design_config():
    import argparse
    import dataclasses

    from squeezelab.cli import cmd_design
    from squeezelab.design import DesignConfig

    parser = argparse.ArgumentParser()
    cmd_design.register(parser.add_subparsers())
    args = parser.parse_args(["design", "-o", "x"])
    for f in dataclasses.fields(DesignConfig):
        assert getattr(args, f.name) == f.default, f.name
    args = parser.parse_args(["design", "--output", "x", "--target", "phone-cpu", "--bits", "4"])
    assert (args.hardware, args.bits, args.output) == ("phone-cpu", 4, "x")


def test_design_unknown_hardware_exit_2(tmp_path, capsys):
    assert main(["design", "--hardware", "cortex-m9", "-o", str(tmp_path / "o")]) == 2
    assert "cortex-m9" in capsys.readouterr().err


def test_retrain_budget_uses_the_measured_speed_and_the_real_split_size():
    from types import SimpleNamespace as NS

    from squeezelab.design.stages import SPEED_MARGIN, retrain_budget

    def ctx(n_train, final):
        space = NS(train={"epochs": 1}, final=final)
        return NS(space=space, train=range(n_train), config=NS(budget_minutes=10))

    seconds = 200.0
    speed = 3500 / seconds / SPEED_MARGIN  # 3,500 images fit in the seconds left
    # 3.5 epochs of 1,000 images fit: 3 whole epochs (the space allows 5)
    assert retrain_budget(ctx(1000, {"epochs": 5}), speed, seconds).epochs == 3
    # the same speed on a 10x larger split: one epoch on the images that fit
    b = retrain_budget(ctx(10_000, {"epochs": 5}), speed, seconds)
    assert (b.epochs, b.train_subset) == (1, 3500)
    assert retrain_budget(ctx(1000, {"epochs": 5}), None, seconds).epochs == 5  # nothing measured
    # a stage that starts after its deadline still trains its minimum
    late = retrain_budget(ctx(10_000, {"epochs": 5}), speed, -30.0)
    assert (late.epochs, late.train_subset) == (1, 2000)


@pytest.mark.slow
def test_deploy_over_sram_is_infeasible_not_shipped(tmp_path):
    """A measured arena above the target's SRAM fails the check; the summary says so."""
    import dataclasses
    from types import SimpleNamespace as NS

    from squeezelab.analysis import load_hardware
    from squeezelab.data import Dataset
    from squeezelab.data.readers import synthetic
    from squeezelab.design.records import DeployResult
    from squeezelab.design.stages import deploy
    from squeezelab.design.summary import DesignResult
    from squeezelab.models import load_model

    hw = dataclasses.replace(load_hardware("cortex-m7"), sram_bytes=20_000)

    def data(n, seed):
        return Dataset(*synthetic(n, seed=seed), list("0123456789"), (0.5,), (0.3,), "synthetic")

    ctx = NS(
        hardware=hw,
        is_detection=False,
        out=tmp_path,
        config=NS(calib_size=8),
        train=data(8, 0),
        val=data(40, 2),
        test=data(40, 1),
        sqz_model=load_model("squeezenet_small"),
        result=lambda name: None,
        emit=lambda ev: None,
    )
    res = deploy(ctx)
    assert res.arena_bytes > 20_000 and not res.shipped
    assert any("exceeds the 20,000 B SRAM" in p for p in res.problems)
    assert (tmp_path / "model.tflite").is_file() and (tmp_path / "model.c").is_file()
    assert DeployResult.from_dict(json.loads(json.dumps(res.to_dict()))) == res
    result = DesignResult(
        "squeezenet_small", None, 1, 1, "cortex-m7", 1.0, 1.0, 1, (), {}, 1, None, res, False
    )
    assert result.ship_line().startswith("NOT SHIPPED: infeasible on cortex-m7")
    section = result.deploy_section()
    assert "not shipped" in section["title"]
    arena = next(r for r in section["rows"] if r["figure"].startswith("tensor arena"))
    assert arena["check"] == "FAILED" and arena["limit"] == 20_000


def _phone_ctx(tmp_path):
    """A deploy-stage context for phone-cpu: synthetic splits, the zoo net, its int8 ONNX."""
    from types import SimpleNamespace as NS

    from squeezelab.analysis import load_hardware
    from squeezelab.data import Dataset
    from squeezelab.data.readers import synthetic
    from squeezelab.export import export_onnx, quantize_int8
    from squeezelab.models import load_model

    def data(n, seed):
        return Dataset(*synthetic(n, seed=seed), list("0123456789"), (0.5,), (0.3,), "synthetic")

    model, meta = load_model("squeezenet_small")
    train = data(16, 0)
    export_onnx(model, meta, tmp_path / "model.onnx")
    onnx8 = tmp_path / "model.int8.onnx"
    images = train.images.numpy()
    quantize_int8(tmp_path / "model.onnx", images, onnx8, settings=["U8S8/minmax"], runs=5)
    return NS(
        hardware=load_hardware("phone-cpu"),
        is_detection=False,
        out=tmp_path,
        config=NS(calib_size=16),
        train=train,
        val=data(60, 2),
        test=data(40, 1),
        sqz_model=(model, meta),
        result=lambda name: NS(onnx_int8=str(onnx8), int8_accuracy=None, eval_images=0),
        emit=lambda ev: None,
    )


@pytest.mark.slow
def test_phone_deploy_ships_the_fastest_runtime_within_tolerance(tmp_path, monkeypatch):
    """phone-cpu deploys with LiteRT and ONNX Runtime: both int8 files are timed at the
    profile's 4 threads and scored on validation images; the fastest one within tolerance
    of fp32 ships, and the summary names it with both latencies and accuracies."""
    from squeezelab.design import stages
    from squeezelab.design.records import DeployResult
    from squeezelab.design.summary import DesignResult

    ctx = _phone_ctx(tmp_path)
    res = stages.deploy(ctx)
    # the test figures are the score stage's: deploy reads validation images only
    assert res.threads == 4 and res.val_images == 60 and res.eval_images == 0
    by = {r["runtime"]: r for r in res.runtimes}
    assert set(by) == {"litert", "onnxruntime"}
    assert by["litert"]["file"] == str(tmp_path / "model.tflite")
    assert by["onnxruntime"]["file"] == ctx.result("export").onnx_int8
    assert all(r["latency_ms"] > 0 and 0 <= r["int8_val_accuracy"] <= 1 for r in by.values())
    ok = [r for r in res.runtimes if r["within_tolerance"]]
    if ok:  # the rule: the fastest among those within tolerance
        assert res.runtime == min(ok, key=lambda r: r["latency_ms"])["runtime"] and res.shipped
    else:
        assert not res.shipped and "validation" in res.problems[0]
    assert res.ship == by[res.runtime]["file"] and res.arena_bytes is None
    assert res.int8_accuracy is None and res.fp32_accuracy is None
    assert DeployResult.from_dict(json.loads(json.dumps(res.to_dict()))) == res
    result = DesignResult(
        "squeezenet_small", None, 1, 1, "phone-cpu", 1.0, 1.0, 1, (), {}, 1, None, res, True
    )
    line = result.ship_line()
    for r in by.values():
        assert f"{r['runtime']} {r['latency_ms']:.3f} ms" in line
        assert f"{r['int8_val_accuracy']:.2%}" in line
    assert "validation images at 4 thread(s)" in line
    rows = [r["figure"] for r in result.deploy_section()["rows"]]
    assert sum("(shipped)" in f for f in rows) == 2  # its latency and accuracy rows

    # the slower runtime wins when the faster one's int8 accuracy is out of tolerance
    fast, slow = sorted(by, key=lambda r: by[r]["latency_ms"])
    monkeypatch.setattr(
        "squeezelab.export.tflite.litert_top1",
        lambda *a, **k: 0.0 if fast == "litert" else 1.0,
    )
    monkeypatch.setattr(
        "squeezelab.export.quantize.score_onnx",
        lambda *a, **k: 0.0 if fast == "onnxruntime" else 1.0,
    )
    monkeypatch.setattr(stages, "_top1", lambda *a: 0.5)  # fp32
    res = stages.deploy(ctx)
    assert res.runtime == slow and res.shipped
    assert not {r["runtime"]: r for r in res.runtimes}[fast]["within_tolerance"]
