"""The main job end to end: explore, retrain, compress, export, benchmark, report.

One call runs the workflow of the SqueezeNet paper on a user's data and device:
search the metaparameters under the target's flash and SRAM limits, retrain the best
feasible design, compress it (Han et al. 2016), export fp32 and int8 ONNX, time them
and write one HTML report. Every stage records its result in ``OUT/design.json``, so an
interrupted run resumes at the first unfinished stage.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from squeezelab.errors import ConfigError, InfeasibleError
from squeezelab.io import atomic_write_json

STAGES = ("explore", "retrain", "compress", "export", "benchmark", "report")
# Share of the wall-clock budget each stage may plan for (the rest: compress .. report).
EXPLORE_SHARE, RETRAIN_SHARE = 0.40, 0.35
STATE_FILE = "design.json"
FINETUNE_IMAGES = 5_000  # one epoch of fine-tuning after pruning and after sharing
MIN_RETRAIN_IMAGES = 2_000  # the final training sees at least this many images


@dataclass
class DesignConfig:
    data: str = "fashion-mnist"  # dataset name or directory
    data_dir: str | None = None  # where to look for a named dataset first
    target: str = "cortex-m7"  # hardware profile: its flash and SRAM constrain the search
    budget_minutes: float = 10.0  # wall-clock budget the stages plan for (approximate)
    space: str = "design-small"  # search-space preset name or YAML file
    trials: int | None = None  # trained trials at most (default: the space's)
    sparsity: float = 0.67  # fraction of conv/linear weights pruned (paper: 0.67)
    bits: int = 6  # codebook index bits (paper: 6 for SqueezeNet)
    calib_size: int = 512  # training images that calibrate int8
    seed: int = 0  # search, training and calibration

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


Event = Callable[[dict[str, Any]], None]


def _space(config: DesignConfig):
    """The searched space with the data set, the target and its memory limits applied."""
    from squeezelab.analysis import load_hardware
    from squeezelab.explore import load_space, space_from_dict

    hw = load_hardware(config.target)
    raw = load_space(config.space).to_dict()
    raw["costing"] = {**(raw.get("costing") or {}), "hardware": config.target}
    limits = {"model_bytes": hw.flash_bytes, "peak_activation_bytes": hw.sram_bytes}
    own = [c for c in raw.get("constraints") or [] if c.get("metric") not in limits]
    raw["constraints"] = own + [{"metric": m, "max": v} for m, v in limits.items() if v]
    raw["train"] = {**(raw.get("train") or {}), "data": config.data, "data_dir": config.data_dir,
                    "seed": config.seed}  # fmt: skip
    if config.trials is not None:
        raw["search"] = {**(raw.get("search") or {}), "trials": config.trials}
    return space_from_dict(raw, raw.get("name", "design"))


class _OutOfTime(Exception):
    pass


def _explore(config: DesignConfig, out: Path, on_event: Event) -> dict[str, Any]:
    from squeezelab.explore import load_study_results, run_study

    space = _space(config)
    deadline = time.monotonic() + EXPLORE_SHARE * config.budget_minutes * 60

    def on_trial(p) -> None:
        on_event({"stage": "explore", "progress": p.to_dict()})
        if time.monotonic() > deadline and p.trained >= 1:
            raise _OutOfTime

    try:
        run_study(space, out / "study", on_trial=on_trial)
    except _OutOfTime:
        on_event({"stage": "explore", "message": "explore budget spent; keeping what is trained"})
    res = load_study_results(str(out / "study"))
    front = [t for t in res["pareto_trials"] if t["metrics"].get("accuracy") is not None]
    if not front:
        raise InfeasibleError(
            f"no trained design meets the limits of {config.target!r}; "
            "see `squeezelab study show` on the study for the screened candidates"
        )
    best = max(front, key=lambda t: (t["metrics"]["accuracy"], -t["metrics"]["model_bytes"]))
    trained = [t for t in res["trials"] if t["state"] == "trained" and t.get("train_s")]
    per_image_s = [t["train_s"] / _images_seen(space.train) for t in trained]
    return {
        "best": {k: best[k] for k in ("number", "model", "spec", "metrics", "run_dir")},
        "counts": res["counts"],
        "train_s_per_image": min(per_image_s) if per_image_s else None,
    }


def _images_seen(train: dict[str, Any]) -> int:
    return int(train.get("epochs") or 1) * int(train.get("train_subset") or 54_000)


def _retrain_budget(config: DesignConfig, explore: dict[str, Any], train_size: int) -> dict:
    """Epochs (and a subset when one epoch does not fit) of the final training.

    Whole epochs fit its share of the budget at the speed the trials measured, up to the
    space's ``final`` epochs; when not even one does, one epoch on as many images as fit.
    """
    space = _space(config)
    most = int((space.final or {}).get("epochs") or space.train.get("epochs") or 1)
    per_image = explore.get("train_s_per_image")
    if not per_image:
        return {"epochs": most}
    images = RETRAIN_SHARE * config.budget_minutes * 60 / per_image
    if images >= train_size:
        return {"epochs": min(most, math.floor(images / train_size))}
    return {"epochs": 1, "train_subset": max(MIN_RETRAIN_IMAGES, int(images))}


def _train_config(config: DesignConfig, best: dict[str, Any], **fields):
    from squeezelab.train import TrainConfig

    return TrainConfig(model=best["model"], spec=best["spec"], data=config.data,
                       data_dir=config.data_dir, seed=config.seed, **fields)  # fmt: skip


def _retrain(config: DesignConfig, out: Path, state: dict, on_event: Event) -> dict[str, Any]:
    from squeezelab.data import load_dataset
    from squeezelab.train import fit

    explore = state["stages"]["explore"]
    train_size = len(load_dataset(config.data, "train", config.data_dir))
    budget = state.setdefault("retrain_budget", _retrain_budget(config, explore, train_size))
    _save(out, state)
    run = out / "final"
    fields = {**(_space(config).final or {}), **budget}
    for rec in fit(_train_config(config, explore["best"], **fields), run, resume=True):
        on_event({"stage": "retrain", "record": rec, "epochs": fields["epochs"]})
    return {"run_dir": str(run), "model_file": str(run / "best.safetensors"), **budget}


def _test_set(config: DesignConfig):
    from squeezelab.data import load_dataset

    return load_dataset(config.data, "test", config.data_dir)


def _compress(config: DesignConfig, out: Path, state: dict, on_event: Event) -> dict[str, Any]:
    from squeezelab.compress import compress_steps, write_sqz
    from squeezelab.fileio import load_model_file

    model, meta = load_model_file(state["stages"]["retrain"]["model_file"])
    best = state["stages"]["explore"]["best"]
    subset = (_space(config).final or {}).get("train_subset") or FINETUNE_IMAGES
    finetune = _train_config(config, best, epochs=1, train_subset=min(subset, FINETUNE_IMAGES),
                             lr=0.01, schedule="cosine")  # fmt: skip
    result = None
    for rec in compress_steps(model, meta, config.sparsity, config.bits, finetune=finetune,
                              eval_dataset=_test_set(config)):  # fmt: skip
        if rec["stage"] == "done":
            result = rec["result"]
        else:
            on_event({"stage": "compress", "record": rec})
    path = out / "model.sqz"
    write_sqz(path, result.data)
    return {"sqz_file": str(path), "bytes": len(result.data),
            "accuracy": result.header.get("accuracy", {}),
            "accounting": result.accounting.to_dict()}  # fmt: skip


def _export(config: DesignConfig, out: Path, state: dict, on_event: Event) -> dict[str, Any]:
    from squeezelab.compress import load_any_model
    from squeezelab.data import load_dataset
    from squeezelab.export import export_onnx, quantize_int8

    model, meta = load_any_model(state["stages"]["compress"]["sqz_file"])
    shape = (meta["in_chans"], meta["input_size"], meta["input_size"])
    test = _test_set(config)
    fp32, int8 = out / "model.onnx", out / "model.int8.onnx"
    on_event({"stage": "export", "message": "exporting the decoded .sqz model to ONNX fp32"})
    parity = export_onnx(model, shape, fp32, meta=meta)
    train = load_dataset(config.data, "train", config.data_dir)
    calib = train.images[: config.calib_size].numpy()
    n_eval = min(len(test), 2000)
    on_event({"stage": "export", "message": "choosing the fastest accurate int8 form"})
    report = quantize_int8(fp32, calib, int8, labels=test.labels[:n_eval].numpy(),
                           eval_data=test.images[:n_eval].numpy(),
                           candidates=["U8S8/minmax", "U8S8/entropy", "S8S8/minmax"])  # fmt: skip
    return {"onnx_fp32": str(fp32), "onnx_int8": str(int8), "parity": parity,
            "int8": report, "eval_images": n_eval}  # fmt: skip


def _benchmark(config: DesignConfig, out: Path, state: dict, on_event: Event) -> dict[str, Any]:
    from squeezelab.analysis import profile
    from squeezelab.compress import load_any_model
    from squeezelab.export import benchmark

    model, meta = load_any_model(state["stages"]["compress"]["sqz_file"])
    shape = (meta["in_chans"], meta["input_size"], meta["input_size"])
    on_event({"stage": "benchmark", "message": "timing torch, ONNX Runtime fp32 and int8"})
    rows = benchmark(model, shape, threads=(1,), int8_path=state["stages"]["export"]["onnx_int8"],
                     roofline=None)  # fmt: skip
    target = profile(model, shape, hardware=config.target, weight_bits=8, activation_bits=8)
    return {"latency": rows, "target": {k: getattr(target, k) for k in
            ("params", "macs", "model_bytes", "energy_pj", "latency_ms", "peak_activation_bytes")}}  # fmt: skip


def baseline_fp32_bytes(num_classes: int, in_chans: int) -> int:
    """fp32 bytes of the AlexNet-style baseline for the same task (the 50x reference)."""
    from squeezelab.models import create_model

    model = create_model("alexnet_small", num_classes=num_classes, in_chans=in_chans)
    return 4 * sum(p.numel() for p in model.parameters())


def summarize(state: dict[str, Any]) -> dict[str, Any]:
    """The summary table of a finished run: one row per artefact, plus headline figures."""
    st = state["stages"]
    meta_path = Path(st["retrain"]["model_file"])
    from squeezelab.fileio import read_model_meta

    meta = read_model_meta(meta_path)
    base = baseline_fp32_bytes(meta["num_classes"], meta["in_chans"])
    lat = {(r["backend"], r["threads"]): r["median_ms"] for r in st["benchmark"]["latency"]}
    acc = st["compress"]["accuracy"]
    int8 = st["export"]["int8"]
    rows = [
        {"artefact": "fp32 model file (safetensors)", "bytes": meta_path.stat().st_size,
         "test_accuracy": acc.get("dense"), "latency_ms": lat.get(("torch_channels_last", 1))},
        {"artefact": f".sqz ({state['config']['sparsity']:.0%} pruned, "
                     f"{state['config']['bits']}-bit, entropy-coded)",
         "bytes": st["compress"]["bytes"], "test_accuracy": acc.get("coded"), "latency_ms": None},
        {"artefact": "ONNX fp32 (from the .sqz)", "bytes": Path(st["export"]["onnx_fp32"]).stat().st_size,
         "test_accuracy": acc.get("coded"), "latency_ms": lat.get(("ort_fp32", 1))},
        {"artefact": f"ONNX int8 ({int8['chosen']}; accuracy on {st['export']['eval_images']:,} test images)", "bytes": Path(st["export"]["onnx_int8"]).stat().st_size,
         "test_accuracy": int8["int8"]["score"] if int8.get("metric") == "top1" else None,
         "latency_ms": lat.get(("ort_int8", 1))},
    ]  # fmt: skip
    for r in rows:
        r["reduction_vs_alexnet_small"] = base / r["bytes"]
    target = st["benchmark"]["target"]
    return {
        "model": st["explore"]["best"]["model"],
        "spec": st["explore"]["best"]["spec"],
        "params": target["params"],
        "baseline_fp32_bytes": base,
        "target": state["config"]["target"],
        "target_energy_pj": target["energy_pj"],
        "target_latency_ms": target["latency_ms"],
        "target_peak_activation_bytes": target["peak_activation_bytes"],
        "rows": rows,
        "trials": st["explore"]["counts"],
        "retrain_epochs": st["retrain"]["epochs"],
        "retrain_images": st["retrain"].get("train_subset"),
    }


def _report(config: DesignConfig, out: Path, state: dict, on_event: Event) -> dict[str, Any]:
    from squeezelab.explore import load_study_results
    from squeezelab.report import render_report

    summary = summarize(state)
    atomic_write_json(out / "summary.json", summary)
    text = (f"Best feasible design {summary['model']} ({summary['params']:,} params) on "
            f"{summary['target']}: predicted {summary['target_latency_ms']:.2f} ms and "
            f"{summary['target_energy_pj'] / 1e6:.2f} uJ per image at int8; the AlexNet-style "
            f"baseline's fp32 weights take {summary['baseline_fp32_bytes']:,} bytes.")  # fmt: skip
    path = render_report(load_study_results(str(out / "study")), out / "report.html",
                         title="squeezelab design",
                         extra_sections=[{"title": "Summary", "rows": summary["rows"], "text": text}])  # fmt: skip
    return {"report": str(path), "summary": str(out / "summary.json")}


RUNNERS = {"retrain": _retrain, "compress": _compress, "export": _export,
           "benchmark": _benchmark, "report": _report}  # fmt: skip


def _save(out: Path, state: dict[str, Any]) -> None:
    atomic_write_json(out / STATE_FILE, state)


def _load_state(config: DesignConfig, out: Path) -> dict[str, Any]:
    path = out / STATE_FILE
    if not path.is_file():
        return {"config": config.to_dict(), "stages": {}}
    state = json.loads(path.read_text())
    saved = {k: v for k, v in state["config"].items() if k != "budget_minutes"}
    now = {k: v for k, v in config.to_dict().items() if k != "budget_minutes"}
    if saved != now:
        diff = sorted(k for k in now if saved.get(k) != now[k])
        raise ConfigError(
            f"{out} holds a design run with other settings ({', '.join(diff)}); "
            "allowed: the same settings to resume it, or a new output directory"
        )
    return state


def design(config: DesignConfig, out_dir, on_event: Event | None = None) -> dict[str, Any]:
    """Run (or resume) the whole design workflow into ``out_dir``; returns the summary.

    Example:
        >>> summary = design(DesignConfig(budget_minutes=10), "out")  # doctest: +SKIP
        >>> summary["rows"][1]["bytes"]  # the .sqz file  # doctest: +SKIP
    """
    from squeezelab.analysis import load_hardware

    load_hardware(config.target)  # an unknown target fails before anything runs
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    state = _load_state(config, out)
    emit = on_event or (lambda event: None)
    for stage in STAGES:
        if stage in state["stages"]:
            emit({"stage": stage, "message": "done earlier; resuming after it"})
            continue
        emit({"stage": stage, "message": "started"})
        t0 = time.monotonic()
        if stage == "explore":
            result = _explore(config, out, emit)
        else:
            result = RUNNERS[stage](config, out, state, emit)
        result["seconds"] = time.monotonic() - t0
        state["stages"][stage] = result
        _save(out, state)
        emit({"stage": stage, "message": f"finished in {result['seconds']:.0f} s"})
    return summarize(state)
