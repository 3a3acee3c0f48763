"""The stages of a design run, in order: each is ``fn(ctx) -> StageResult``.

explore (Optuna study under the hardware's limits) -> retrain the best feasible design ->
compress it to ``.sqz`` (Han et al. 2016) -> export fp32 and int8 ONNX from the decoded
file -> time them here and predict them on the device -> the HTML report.
"""

from __future__ import annotations

import math
import time

from squeezelab.design.context import RunContext
from squeezelab.design.records import (
    BenchmarkResult,
    BestTrial,
    CompressResult,
    ExploreResult,
    ExportResult,
    ReportResult,
    RetrainBudget,
    RetrainResult,
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


class _OutOfTime(Exception):
    pass


def explore(ctx: RunContext) -> ExploreResult:
    from squeezelab.explore import run_study

    deadline = time.monotonic() + EXPLORE_SHARE * ctx.config.budget_minutes * 60

    def on_trial(p) -> None:
        ctx.emit({"stage": "explore", "progress": p.to_dict()})
        if time.monotonic() > deadline and p.trained >= 1:
            raise _OutOfTime

    try:
        run_study(ctx.space, ctx.out / "study", on_trial=on_trial)
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
    for rec in fit(_train_config(ctx, **fields), run, resume=True):
        ctx.emit({"stage": "retrain", "record": rec, "epochs": budget.epochs})
    model_file = run / "best.safetensors"
    return RetrainResult(
        str(run), str(model_file), model_file.stat().st_size, budget.epochs, budget.train_subset
    )


def compress(ctx: RunContext) -> CompressResult:
    from squeezelab.compress import compress_steps, write_sqz
    from squeezelab.models import load_model

    model, meta = load_model(ctx.result("retrain").model_file)
    subset = (ctx.space.final or {}).get("train_subset") or FINETUNE_IMAGES
    finetune = _train_config(
        ctx, epochs=1, train_subset=min(subset, FINETUNE_IMAGES), lr=0.01, schedule="cosine"
    )
    result = None
    for rec in compress_steps(
        model, meta, ctx.config.sparsity, ctx.config.bits, finetune=finetune, eval_dataset=ctx.test
    ):
        if rec["stage"] == "done":
            result = rec["result"]
        else:
            ctx.emit({"stage": "compress", "record": rec})
    path = ctx.out / "model.sqz"
    size = write_sqz(path, result.data)
    return CompressResult(
        str(path), size, dict(result.header.get("accuracy") or {}), result.accounting.to_dict()
    )


def export(ctx: RunContext) -> ExportResult:
    from squeezelab.export import export_onnx, quantize_int8

    model, meta = ctx.sqz_model
    fp32, int8 = ctx.out / "model.onnx", ctx.out / "model.int8.onnx"
    ctx.emit({"stage": "export", "message": "exporting the decoded .sqz model to ONNX fp32"})
    onnx = export_onnx(model, meta, fp32)
    calib = ctx.train.images[: ctx.config.calib_size].numpy()
    n = min(len(ctx.test), INT8_EVAL_IMAGES)
    ctx.emit({"stage": "export", "message": "choosing the fastest accurate int8 form"})
    q = quantize_int8(
        fp32,
        calib,
        int8,
        labels=ctx.test.labels[:n].numpy(),
        eval_data=ctx.test.images[:n].numpy(),
        settings=INT8_SETTINGS,
    )
    top1 = q.int8.score if q.metric == "top1" else None
    return ExportResult(
        str(fp32), str(int8), fp32.stat().st_size, int8.stat().st_size, q.chosen, top1, n, onnx, q
    )


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
        extra_sections=[summary.section()],
    )
    return ReportResult(str(html), str(path))


STAGES = [
    ("explore", explore),
    ("retrain", retrain),
    ("compress", compress),
    ("export", export),
    ("benchmark", benchmark),
    ("report", report),
]
