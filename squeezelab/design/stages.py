"""The stages of a design run, in order: each is ``fn(ctx) -> Record``.

explore (Optuna study under the hardware's limits) -> retrain the best feasible design ->
compress it to ``.sqz`` (Han et al. 2016) -> export fp32 and int8 ONNX from the decoded
file -> deploy: write the file the target's runtime runs (int8 ``.tflite`` + C array for
TFLite Micro) and check it there -> time them here and predict them on the device -> the
HTML report.
"""

from __future__ import annotations

import functools
import math
import time

from squeezelab.design.context import RunContext
from squeezelab.design.records import (
    BenchmarkResult,
    BestTrial,
    CompressResult,
    DeployResult,
    ExploreResult,
    ExportResult,
    ReportResult,
    RetrainBudget,
    RetrainResult,
    RuntimeChoice,
    TargetCost,
)
from squeezelab.errors import InfeasibleError
from squeezelab.io import atomic_write_json

# Share of the wall-clock budget each stage may plan for (the rest: compress .. report).
EXPLORE_SHARE, RETRAIN_SHARE = 0.40, 0.35
FINETUNE_IMAGES = 5_000  # one epoch of fine-tuning after pruning and after sharing
MIN_RETRAIN_IMAGES = 2_000  # the final training sees at least this many images
INT8_SETTINGS = ["U8S8/minmax", "U8S8/entropy", "S8S8/minmax"]
INT8_EVAL_IMAGES = 2_000
# The deploy check: TFLM's host interpreter runs about 1,000 small-net images a second;
# 300 validation images keep the int8-vs-fp32 check (paired, on the same images) to
# seconds and about a point, and 300 test images, scored once, give the reported figure.
# int8 may lose at most DEPLOY_TOLERANCE of top-1.
DEPLOY_EVAL_IMAGES = 300
DEPLOY_CALIB_IMAGES = 256  # PT2E calibration runs batch 1: more images, more seconds
DEPLOY_TOLERANCE = 0.02


class _OutOfTime(Exception):
    pass


def explore(ctx: RunContext) -> ExploreResult:
    from squeezelab.explore import run_study, train_candidate

    deadline = time.monotonic() + EXPLORE_SHARE * ctx.config.budget_minutes * 60

    def on_trial(p) -> None:
        ctx.emit({"stage": "explore", "progress": p.to_dict()})
        if time.monotonic() > deadline and p.trained >= 1:
            raise _OutOfTime

    try:
        train = functools.partial(train_candidate, data=ctx.train_split)  # read once
        run_study(ctx.space, ctx.out / "study", train_fn=train, on_trial=on_trial)
    except _OutOfTime:
        ctx.emit({"stage": "explore", "message": "explore budget spent; keeping what is trained"})
    front = [t for t in ctx.study.pareto_trials if t.accuracy is not None]
    if not front:
        raise InfeasibleError(
            f"no trained design meets the limits of {ctx.config.hardware!r}; "
            "see `squeezelab study show` on the study for the screened candidates"
        )
    best = max(front, key=lambda t: (t.accuracy, -t.metrics["model_bytes"]))
    speeds = [_images_per_s(ctx, t) for t in ctx.study.trials if t.state == "trained"]
    speeds = [s for s in speeds if s]
    return ExploreResult(
        best=BestTrial(best.number, best.arch, dict(best.metrics), best.run_dir),
        counts=ctx.study.counts.to_dict(),
        img_per_s=max(speeds) if speeds else None,
    )


def _images_per_s(ctx: RunContext, trial) -> float | None:
    """Training images per second a trial measured: the images it saw over its seconds."""
    seconds = trial.train_s
    if not seconds:
        return None
    train = ctx.space.train
    per_epoch = min(int(train.get("train_subset") or len(ctx.train)), len(ctx.train))
    return int(train.get("epochs") or 1) * per_epoch / seconds


def retrain_budget(ctx: RunContext, img_per_s: float | None) -> RetrainBudget:
    """Whole epochs that fit the retraining share of the budget at the trials' speed.

    Up to the space's ``final`` epochs; when not even one epoch of the training split
    fits, one epoch on as many images as do (at least ``MIN_RETRAIN_IMAGES``).
    """
    space = ctx.space
    most = int((space.final or {}).get("epochs") or space.train.get("epochs") or 1)
    if not img_per_s:
        return RetrainBudget(most)
    size = min(int((space.final or {}).get("train_subset") or len(ctx.train)), len(ctx.train))
    images = RETRAIN_SHARE * ctx.config.budget_minutes * 60 * img_per_s
    if images >= size:
        return RetrainBudget(min(most, math.floor(images / size)))
    return RetrainBudget(1, max(MIN_RETRAIN_IMAGES, int(images)))


def _train_config(ctx: RunContext, **fields):
    from squeezelab.train import TrainConfig

    arch, c = ctx.result("explore").best.arch, ctx.config
    if arch.model_args:
        fields["model_args"] = dict(arch.model_args)
    spec = arch.spec.to_dict() if arch.spec is not None else None
    return TrainConfig(
        model=arch.name, spec=spec, data=c.data, data_dir=c.data_dir, seed=c.seed, **fields
    )


def retrain(ctx: RunContext) -> RetrainResult:
    from squeezelab.train import fit

    if ctx.state.retrain_budget is None:  # planned once, so a resumed fit sees the same config
        ctx.state.retrain_budget = retrain_budget(ctx, ctx.result("explore").img_per_s)
        ctx.save()
    budget = ctx.state.retrain_budget
    fields = {**(ctx.space.final or {}), "epochs": budget.epochs}
    if budget.train_subset is not None:
        fields["train_subset"] = budget.train_subset
    run = ctx.out / "final"
    for rec in fit(_train_config(ctx, **fields), run, resume=True, data=ctx.train_split):
        ctx.emit({"stage": "retrain", "record": rec, "epochs": budget.epochs})
    model_file = run / "best.safetensors"
    return RetrainResult(
        str(run), str(model_file), model_file.stat().st_size, budget.epochs, budget.train_subset
    )


def compress(ctx: RunContext) -> CompressResult:
    from squeezelab.compress import DoneStep, compress_steps, write_sqz
    from squeezelab.models import load_model

    model, meta = load_model(ctx.result("retrain").model_file)
    subset = (ctx.space.final or {}).get("train_subset") or FINETUNE_IMAGES
    finetune = _train_config(
        ctx, epochs=1, train_subset=min(subset, FINETUNE_IMAGES), lr=0.01, schedule="cosine"
    )
    result = None
    steps = compress_steps(
        model,
        meta,
        ctx.config.sparsity,
        ctx.config.bits,
        finetune=finetune,
        finetune_data=ctx.train_split,
        eval_dataset=ctx.test,
    )
    for rec in steps:
        if isinstance(rec, DoneStep):
            result = rec.result
        else:
            ctx.emit({"stage": "compress", "record": rec})
    path = ctx.out / "model.sqz"
    size = write_sqz(path, result.data)
    return CompressResult(
        str(path), size, dict(result.header.get("accuracy") or {}), result.accounting.to_dict()
    )


def export(ctx: RunContext) -> ExportResult:
    from squeezelab.export import export_onnx, quantize_int8
    from squeezelab.export.quantize import score_onnx

    model, meta = ctx.sqz_model
    fp32, int8 = ctx.out / "model.onnx", ctx.out / "model.int8.onnx"
    ctx.emit({"stage": "export", "message": "exporting the decoded .sqz model to ONNX fp32"})
    onnx = export_onnx(model, meta, fp32)
    calib = ctx.train.images[: ctx.config.calib_size].numpy()
    n_val, n = min(len(ctx.val), INT8_EVAL_IMAGES), min(len(ctx.test), INT8_EVAL_IMAGES)
    ctx.emit({"stage": "export", "message": "choosing the fastest accurate int8 form"})
    # chosen on the validation split (DESIGN.md: choices never see the test split) ...
    q = quantize_int8(
        fp32,
        calib,
        int8,
        labels=ctx.val.labels[:n_val].numpy(),
        eval_data=ctx.val.images[:n_val].numpy(),
        settings=INT8_SETTINGS,
    )
    # ... and the chosen file scored once on the test split, for the report
    top1 = score_onnx(int8, ctx.test.images[:n].numpy(), ctx.test.labels[:n].numpy())
    return ExportResult(
        str(fp32), str(int8), fp32.stat().st_size, int8.stat().st_size, q.chosen, top1, n, onnx, q
    )


def deploy(ctx: RunContext) -> DeployResult:
    """Write the file the target's runtime runs and check it in that runtime.

    TFLite Micro targets get an int8 ``model.tflite`` calibrated on training images and
    ``model.c``/``model.h`` (the array to flash, the measured arena as a define); TFLM's
    host interpreter measures the arena and runs validation images (the int8-vs-fp32
    check) and test images (the figure reported). Targets with LiteRT and ONNX Runtime
    (phones) get the int8 ``model.tflite`` too and ship whichever int8 file runs fastest
    at batch 1 on the profile's threads among those within tolerance of fp32 on the
    validation images. A target with ONNX Runtime alone ships the export stage's file.
    """
    hw, exp = ctx.hardware, ctx.result("export")
    runtimes = tuple(hw.deploy) or ("onnxruntime",)
    if runtimes == ("onnxruntime",):
        none = dict.fromkeys(
            ["tflite", "c_source", "tflite_bytes", "predicted_tflite_bytes", "arena_bytes"]
            + ["arena_head_bytes", "arena_tail_bytes", "predicted_arena_bytes", "fp32_accuracy"]
            + ["tflm_vs_reference_max_lsb"]
        )
        return DeployResult(
            runtime="onnxruntime",
            ship=exp.onnx_int8,
            sram_bytes=hw.sram_bytes,
            flash_bytes=hw.flash_bytes,
            int8_accuracy=exp.int8_accuracy,
            eval_images=exp.eval_images,
            tolerance=DEPLOY_TOLERANCE,
            **none,
        )
    from squeezelab.analysis import profile
    from squeezelab.export import export_tflite

    model, meta = ctx.sqz_model
    path = ctx.out / "model.tflite"
    ctx.emit({"stage": "deploy", "message": f"writing int8 {path.name} for {runtimes[0]}"})
    calib = ctx.train.images[: min(ctx.config.calib_size, DEPLOY_CALIB_IMAGES)].numpy()
    tfl = export_tflite(model, meta, path, calib=calib, n_calib=len(calib))
    n_val, n = min(len(ctx.val), DEPLOY_EVAL_IMAGES), min(len(ctx.test), DEPLOY_EVAL_IMAGES)
    val = ctx.val.images[:n_val].numpy(), ctx.val.labels[:n_val].numpy()
    test = ctx.test.images[:n].numpy(), ctx.test.labels[:n].numpy()
    pred = profile(model, meta.input_shape, hardware=hw, weight_bits=8, activation_bits=8)
    fp32_val = _top1(model, meta, *val)
    common = {
        "tflite": str(path),
        "tflite_bytes": path.stat().st_size,
        "predicted_tflite_bytes": pred.tflite_bytes,
        "predicted_arena_bytes": pred.tflm_arena_bytes,
        "sram_bytes": hw.sram_bytes,
        "flash_bytes": hw.flash_bytes,
        "fp32_accuracy": _top1(model, meta, *test),
        "eval_images": n,
        "tolerance": DEPLOY_TOLERANCE,
        "val_fp32_accuracy": fp32_val,
        "val_images": n_val,
    }
    if hw.tflm:
        return _deploy_tflm(ctx, tfl, path, val, test, common)
    return _deploy_fastest(ctx, runtimes, path, exp.onnx_int8, val, test, common)


def _within_tolerance(int8: float, fp32: float) -> bool:
    """int8 top-1 loses at most DEPLOY_TOLERANCE of fp32's (rounding slack for equal counts)."""
    return int8 >= fp32 - DEPLOY_TOLERANCE - 1e-12


def _deploy_tflm(ctx, tfl, path, val, test, common) -> DeployResult:
    """TFLite Micro: the arena and the int8 check (validation) measured, test scored once."""
    import numpy as np

    from squeezelab.export import check_tflite, write_c_array

    hw = ctx.hardware
    ctx.emit(
        {
            "stage": "deploy",
            "message": f"running it in TFLite Micro on {len(val[0])} "
            f"validation and {len(test[0])} test images",
        }
    )
    # one run of both splits: the arena is bisected once; each split scored on its own
    check = check_tflite(path, np.concatenate([val[0], test[0]]), np.concatenate([val[1], test[1]]))
    hits = np.asarray(check.predictions) == np.concatenate([val[1], test[1]])
    int8_val, int8_test = float(hits[: len(val[1])].mean()), float(hits[len(val[1]) :].mean())
    c_path, _ = write_c_array(path, ctx.out / "model", check.arena_bytes, tfl.to_dict())
    problems = []
    if hw.sram_bytes and check.arena_bytes > hw.sram_bytes:
        problems.append(
            f"measured arena {check.arena_bytes:,} B exceeds the {hw.sram_bytes:,} B SRAM"
        )
    if hw.flash_bytes and check.flash_bytes > hw.flash_bytes:
        problems.append(f"file {check.flash_bytes:,} B exceeds the {hw.flash_bytes:,} B flash")
    fp32_val = common["val_fp32_accuracy"]
    if not _within_tolerance(int8_val, fp32_val):
        problems.append(
            f"int8 top-1 {int8_val:.2%} is more than {DEPLOY_TOLERANCE:.0%} below "
            f"fp32 {fp32_val:.2%} on the validation images"
        )
    return DeployResult(
        runtime="tflite-micro",
        ship=str(c_path),
        c_source=str(c_path),
        arena_bytes=check.arena_bytes,
        arena_head_bytes=check.arena_head_bytes,
        arena_tail_bytes=check.arena_tail_bytes,
        int8_accuracy=int8_test,
        tflm_vs_reference_max_lsb=check.tflm_vs_reference_max_lsb,
        problems=problems,
        **common,
    )


def _deploy_fastest(ctx, runtimes, tflite, onnx_int8, val, test, common) -> DeployResult:
    """LiteRT and/or ONNX Runtime: the fastest int8 file within tolerance on validation."""
    from squeezelab.export.bench import time_files
    from squeezelab.export.quantize import score_onnx
    from squeezelab.export.tflite import litert_top1

    hw, (_, meta) = ctx.hardware, ctx.sqz_model
    threads = hw.threads or 1
    files = {"litert": str(tflite), "onnxruntime": str(onnx_int8)}
    backend = {"litert": "litert_int8", "onnxruntime": "ort_int8"}
    names = [r for r in runtimes if r in files]

    def top1(runtime, images, labels) -> float:
        if runtime == "litert":
            return litert_top1(files[runtime], images, labels, threads)
        return score_onnx(files[runtime], images, labels, threads)

    ctx.emit(
        {
            "stage": "deploy",
            "message": f"timing {', '.join(names)} int8 at batch 1, "
            f"{threads} thread(s); scoring {len(val[0])} validation images",
        }
    )
    ms = time_files({backend[r]: files[r] for r in names}, meta, threads=threads)
    fp32_val = common["val_fp32_accuracy"]
    choices = []
    for r in names:
        acc = top1(r, *val)
        ok = _within_tolerance(acc, fp32_val)
        choices.append(RuntimeChoice(r, files[r], ms[backend[r]], acc, ok))
    ok = [c for c in choices if c.within_tolerance]
    best = (
        min(ok, key=lambda c: c.latency_ms)
        if ok
        else max(choices, key=lambda c: (c.int8_val_accuracy, -c.latency_ms))
    )
    problems = []
    if not ok:
        problems.append(
            f"no int8 runtime is within {DEPLOY_TOLERANCE:.0%} of fp32 {fp32_val:.2%} on the "
            f"validation images (best: {best.runtime} {best.int8_val_accuracy:.2%})"
        )
    if hw.flash_bytes and common["tflite_bytes"] > hw.flash_bytes and best.runtime == "litert":
        problems.append(f"file {common['tflite_bytes']:,} B exceeds the {hw.flash_bytes:,} B flash")
    return DeployResult(
        runtime=best.runtime,
        ship=best.file,
        c_source=None,
        arena_bytes=None,
        arena_head_bytes=None,
        arena_tail_bytes=None,
        int8_accuracy=top1(best.runtime, *test),  # the one test score, after the choice
        tflm_vs_reference_max_lsb=None,
        runtimes=[c.to_dict() for c in choices],
        threads=threads,
        problems=problems,
        **common,
    )


def _top1(model, meta, images, labels) -> float:
    """Top-1 of the fp32 module on uint8 ``images``, normalised as its metadata says."""
    import torch

    from squeezelab.export import normalize

    with torch.no_grad():
        logits = model.eval()(torch.from_numpy(normalize(images, meta)))
    return float((logits.argmax(1).numpy() == labels).mean())


def benchmark(ctx: RunContext) -> BenchmarkResult:
    from squeezelab.analysis import profile
    from squeezelab.export import benchmark as run_benchmark

    model, meta = ctx.sqz_model
    ctx.emit({"stage": "benchmark", "message": "timing torch, ONNX Runtime fp32 and int8"})
    rows = run_benchmark(
        model, meta, thread_counts=(1,), int8_path=ctx.result("export").onnx_int8, roofline=None
    )
    p = profile(model, meta.input_shape, hardware=ctx.hardware, weight_bits=8, activation_bits=8)
    target = TargetCost(
        p.params, p.macs, p.model_bytes, p.energy_pj, p.latency_ms, p.peak_activation_bytes
    )
    latency = {r.backend: r.median_ms for r in rows if r.threads == 1}
    return BenchmarkResult(latency, target, [r.to_dict() for r in rows])


def report(ctx: RunContext) -> ReportResult:
    from squeezelab.design.summary import summarize
    from squeezelab.report import render_report

    summary = summarize(ctx.state)
    path = ctx.out / "summary.json"
    atomic_write_json(path, summary.to_dict())
    html = render_report(
        ctx.study,
        ctx.out / "report.html",
        title="squeezelab design",
        extra_sections=[summary.section(), summary.deploy_section()],
    )
    return ReportResult(str(html), str(path))


STAGES = [
    ("explore", explore),
    ("retrain", retrain),
    ("compress", compress),
    ("export", export),
    ("deploy", deploy),
    ("benchmark", benchmark),
    ("report", report),
]
