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
    ScoreResult,
    TargetCost,
)
from squeezelab.errors import InfeasibleError, SqueezelabError
from squeezelab.io import atomic_write_json

# The stages whose work scales with the time given (explore, retrain, compress) plan in
# the budget less a reserve for the fixed-work ones (export, deploy, score, benchmark,
# report): each must end by its share of that planned time, counted from the start of the
# run, so one that finishes early leaves its time to the next.
BUDGET_ENDS = {"explore": 0.25, "retrain": 0.85, "compress": 1.0}
RESERVE_SHARE = 0.2  # of the budget, at least:
# seconds the fixed-work stages took for small nets on two busy cores of these machines
# (make demo): a .tflite conversion, the firmware and TFLite Micro's scoring, LiteRT's
# runs, or ONNX alone
RESERVE_S = {"tflite-micro": 120.0, "litert": 90.0, "onnxruntime": 30.0}
FINETUNE_IMAGES = 5_000  # one epoch of fine-tuning after pruning and after sharing
MIN_RETRAIN_IMAGES = 2_000  # the final training sees at least this many images
# U8S8r (7-bit weights) beside U8S8: without VNNI, U8S8's VPMADDUBSW pairs saturate their
# int16 sums and cost points (docs/deployment.md); with VNNI U8S8 is exact and fastest
INT8_SETTINGS = ["U8S8/minmax", "U8S8r/minmax", "U8S8/entropy", "U8S8r/entropy", "S8S8/minmax"]
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
    if ctx.config.pick is not None:  # --pick: a front member of the finished study, no search
        return _explore_picked(ctx)
    from squeezelab.explore import run_study, train_candidate

    deadline = stage_deadline(ctx, "explore")

    def on_trial(p) -> None:
        step = p.step.to_dict() if p.step is not None else None  # a rung, multi-fidelity
        ctx.emit({"stage": "explore", "progress": p.to_dict(), "of": p.of, "step": step})
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
    return ExploreResult(
        best=BestTrial(best.number, best.arch, dict(best.metrics), best.run_dir),
        counts=ctx.study.counts.to_dict(),
        img_per_s=_design_speed(ctx, best),
    )


def front_members(study) -> list:
    """The trained trials on a study's Pareto front, in the front's order."""
    return [t for t in study.pareto_trials if t.state == "trained" and t.accuracy is not None]


def pick_trial(study, number: int, where: str, taken: int | None = None):
    """The trial ``--pick number`` finishes: trained, on the front, not ``taken`` already.

    Raises ConfigError naming the trial and the front members allowed instead.
    """
    from squeezelab.errors import ConfigError

    members = [t.number for t in front_members(study) if t.number != taken]
    allowed = f"allowed: a trained front member: {', '.join(map(str, members)) or 'none'}"
    trial = next((t for t in study.trials if t.number == number), None)
    if trial is None:
        last = max((t.number for t in study.trials), default=-1)
        raise ConfigError(
            f"pick={number}: the study in {where} has no trial {number} (trials 0..{last}); "
            + allowed
        )
    if trial.state != "trained" or trial.accuracy is None:
        raise ConfigError(f"pick={number}: trial {number} is {trial.state}, not trained; {allowed}")
    if number not in study.pareto:
        raise ConfigError(f"pick={number}: trial {number} is not on the Pareto front; {allowed}")
    if number == taken:
        raise ConfigError(
            f"pick={number}: trial {number} is the design the run in {where} finished already; "
            + allowed.replace("a trained", "another")
        )
    return trial


def _explore_picked(ctx: RunContext) -> ExploreResult:
    """The explore stage of a ``--pick`` run: the chosen front member, the study's speed."""
    t = pick_trial(ctx.study, ctx.config.pick, str(ctx.study_dir or ctx.out / "study"))
    return ExploreResult(
        best=BestTrial(t.number, t.arch, dict(t.metrics), t.run_dir),
        counts=ctx.study.counts.to_dict(),
        img_per_s=_design_speed(ctx, t),
    )


def planned_seconds(ctx: RunContext) -> float:
    """The budget less the fixed-work stages' reserve (:data:`RESERVE_S`), in seconds."""
    budget = ctx.config.budget_minutes * 60
    runtime = (tuple(ctx.hardware.deploy) or ("onnxruntime",))[0]
    return max(0.0, budget - max(RESERVE_SHARE * budget, RESERVE_S.get(runtime, 30.0)))


def stage_deadline(ctx: RunContext, stage: str) -> float:
    """The ``time.monotonic()`` by which ``stage`` should end (:data:`BUDGET_ENDS`)."""
    return ctx.started + BUDGET_ENDS[stage] * planned_seconds(ctx)


def _images_per_s(ctx: RunContext, trial) -> float | None:
    """Images per second a full training epoch of the retraining would run at.

    From the trial's ``metrics.jsonl``: its training speed and, separately, the seconds of
    its validation pass, which a full epoch pays once too (a trial's 5,000-image epoch
    pays it as well, so the epoch's own speed would undercount). Without one, the images
    it saw over its whole training time (start-up included: an underestimate).
    """
    from squeezelab.errors import SqueezelabError
    from squeezelab.train import read_metrics

    try:
        records = read_metrics(trial.run_dir) if trial.run_dir else []
    except SqueezelabError:
        records = []
    train = ctx.space.train
    per_epoch = min(int(train.get("train_subset") or len(ctx.train)), len(ctx.train))
    if records and all(r.seconds and r.img_per_s for r in records):
        speed = sum(r.img_per_s for r in records) / len(records)
        val_s = sum(max(0.0, r.seconds - per_epoch / r.img_per_s) for r in records) / len(records)
        final = ctx.space.final or {}
        size = min(int(final.get("train_subset") or len(ctx.train)), len(ctx.train))
        return size / (size / speed + val_s)
    seconds = trial.train_s
    if not seconds:
        return None
    epochs = len(trial.epoch_accuracy) or int(train.get("epochs") or 1)
    return epochs * per_epoch / seconds


def _design_speed(ctx: RunContext, best) -> float | None:
    """The chosen design's training speed; the study's slowest one if it has none."""
    own = _images_per_s(ctx, best)
    if own:
        return own
    speeds = [s for t in ctx.study.trials if t.state == "trained" if (s := _images_per_s(ctx, t))]
    return min(speeds) if speeds else None


# The retraining's speed is planned from the trial's, but a full-split epoch trained
# slower per image in make demo (497 against the trial's 787 images/s: batches gathered
# from the whole split, the progress events): plan for this share of it.
SPEED_MARGIN = 0.7


def retrain_budget(ctx: RunContext, img_per_s: float | None, seconds: float) -> RetrainBudget:
    """Whole epochs that fit ``seconds`` at the chosen design's measured speed.

    Up to the space's ``final`` epochs; when not even one epoch of the training split
    fits, one epoch on as many images as do (at least ``MIN_RETRAIN_IMAGES``).
    """
    space = ctx.space
    most = int((space.final or {}).get("epochs") or space.train.get("epochs") or 1)
    if not img_per_s:
        return RetrainBudget(most)
    size = min(int((space.final or {}).get("train_subset") or len(ctx.train)), len(ctx.train))
    images = max(0.0, seconds) * img_per_s * SPEED_MARGIN
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
        seconds = stage_deadline(ctx, "retrain") - time.monotonic()
        ctx.state.retrain_budget = retrain_budget(ctx, ctx.result("explore").img_per_s, seconds)
        ctx.save()
    budget = ctx.state.retrain_budget
    fields = {**(ctx.space.final or {}), "epochs": budget.epochs}
    if budget.train_subset is not None:
        fields["train_subset"] = budget.train_subset
    run = ctx.out / "final"
    config = _train_config(ctx, **fields)
    batch_size = config.resolved().batch_size

    def on_batch(epoch: int, batch: int, batches: int) -> None:  # a display's batch of E
        ev = {"epoch": epoch, "batch": batch, "batches": batches, "batch_size": batch_size}
        ctx.emit({"stage": "retrain", **ev, "epochs": budget.epochs})

    for rec in fit(config, run, resume=True, data=ctx.train_split, on_batch=on_batch):
        ctx.emit({"stage": "retrain", "record": rec, "epochs": budget.epochs})
    model_file = run / "best.safetensors"
    return RetrainResult(
        str(run), str(model_file), model_file.stat().st_size, budget.epochs, budget.train_subset
    )


def compress(ctx: RunContext) -> CompressResult:
    """Choose the compression setting on the validation split (the ladder), write the .sqz.

    The ladder's fine-tuning trains on ``ctx.train`` (the training split less the
    validation share), plans within the stage's share of the budget and, when it is
    spent, keeps to settings without fine-tuning. The test split is not read here: the
    score stage scores the chosen file on it.
    """
    if ctx.is_detection:  # dense rungs chosen by mAP@0.5 (design/detection.py)
        from squeezelab.design import detection

        return detection.compress(ctx)
    from squeezelab.compress.ladder import ladder_rungs, ladder_steps
    from squeezelab.models import load_model

    model, meta = load_model(ctx.result("retrain").model_file)
    final = ctx.space.final or {}
    images = min(final.get("train_subset") or FINETUNE_IMAGES, FINETUNE_IMAGES, len(ctx.train))
    batch = final.get("batch_size") or ctx.space.train.get("batch_size") or 128
    finetune = _train_config(
        ctx,
        recipe=final.get("recipe"),
        batch_size=min(int(batch), images),  # a small folder holds fewer images
        epochs=1,
        train_subset=images,
        lr=0.01,
        schedule="cosine",
        val_fraction=0.0,  # ctx.train holds no validation image: the ladder scores those
    )
    c = ctx.config
    steps = ladder_steps(
        model,
        meta,
        ctx.val,
        ladder_rungs(c.sparsity, c.bits),
        finetune=finetune,
        finetune_data=ctx.train,
        budget_s=max(0.0, stage_deadline(ctx, "compress") - time.monotonic()),
        img_per_s=ctx.result("explore").img_per_s,
    )
    return ladder_result(ctx, steps)


def ladder_result(ctx: RunContext, steps) -> CompressResult:
    """Run the ladder's ``steps`` (a classifier's or a detector's), each rung a progress
    line, and write the chosen ``.sqz``."""
    from squeezelab.compress import write_sqz
    from squeezelab.compress.ladder import LadderDone, RungStep

    for rec in steps:
        if isinstance(rec, LadderDone):
            chosen, ladder = rec.compressed, rec.ladder
        elif isinstance(rec, RungStep):
            ev = {"message": rec.line(), "rung": rec.index, "rungs": rec.total}
            ctx.emit({"stage": "compress", **ev})
        else:
            ctx.emit({"stage": "compress", "record": rec})
    ctx.emit({"stage": "compress", "message": ladder.line()})
    path = ctx.out / "model.sqz"
    size = write_sqz(path, chosen.data)
    accuracy = {"fp32": ladder.fp32_val_accuracy, "sqz": ladder.chosen.val_accuracy}
    return CompressResult(str(path), size, accuracy, chosen.accounting.to_dict(), ladder)


def export(ctx: RunContext) -> ExportResult:
    if ctx.is_detection:  # the int8 form chosen by mAP@0.5 (design/detection.py)
        from squeezelab.design import detection

        return detection.export(ctx)
    from squeezelab.export import export_onnx, quantize_int8

    model, meta = ctx.sqz_model
    fp32, int8 = ctx.out / "model.onnx", ctx.out / "model.int8.onnx"
    ctx.emit({"stage": "export", "message": "exporting the decoded .sqz model to ONNX fp32"})
    onnx = export_onnx(model, meta, fp32)
    calib = ctx.train.images[: ctx.config.calib_size].numpy()
    n_val = min(len(ctx.val), INT8_EVAL_IMAGES)
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
    # (the chosen file is scored on the test split by the score stage, after every choice)
    return ExportResult(
        str(fp32), str(int8), fp32.stat().st_size, int8.stat().st_size, q.chosen, None, 0, onnx, q
    )


def deploy(ctx: RunContext) -> DeployResult:
    """Write the file the target's runtime runs and check it in that runtime.

    TFLite Micro targets get an int8 ``model.tflite`` calibrated on training images and
    ``model.c``/``model.h`` (the array to flash, the measured arena as a define); TFLM's
    host interpreter measures the arena and runs validation images (the int8-vs-fp32
    check). Targets with LiteRT and ONNX Runtime
    (phones) get the int8 ``model.tflite`` too and ship whichever int8 file runs fastest
    at batch 1 on the profile's threads among those within tolerance of fp32 on the
    validation images. A target with ONNX Runtime alone ships the export stage's file.
    The test split is not read here: :func:`score` scores the shipped file on it.
    """
    if ctx.is_detection:  # checked by mAP@0.5 (design/detection.py)
        from squeezelab.design import detection

        return detection.deploy(ctx)
    hw, exp = ctx.hardware, ctx.result("export")
    runtimes = tuple(hw.deploy) or ("onnxruntime",)
    if runtimes == ("onnxruntime",):
        none = dict.fromkeys(
            ["tflite", "c_source", "tflite_bytes", "predicted_tflite_bytes", "arena_bytes"]
            + ["arena_head_bytes", "arena_tail_bytes", "predicted_arena_bytes", "fp32_accuracy"]
            + ["tflm_vs_reference_max_lsb", "int8_accuracy"]
        )
        return DeployResult(
            runtime="onnxruntime",
            ship=exp.onnx_int8,
            sram_bytes=hw.sram_bytes,
            flash_bytes=hw.flash_bytes,
            eval_images=0,
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
    n_val = min(len(ctx.val), DEPLOY_EVAL_IMAGES)
    val = ctx.val.images[:n_val].numpy(), ctx.val.labels[:n_val].numpy()
    pred = profile(model, meta.input_shape, hardware=hw, weight_bits=8, activation_bits=8)
    fp32_val = _top1(model, meta, *val)
    common = {
        "tflite": str(path),
        "tflite_bytes": path.stat().st_size,
        "predicted_tflite_bytes": pred.tflite_bytes,
        "predicted_arena_bytes": pred.tflm_arena_bytes,
        "sram_bytes": hw.sram_bytes,
        "flash_bytes": hw.flash_bytes,
        "fp32_accuracy": None,  # test figures: filled by the score stage
        "int8_accuracy": None,
        "eval_images": 0,
        "tolerance": DEPLOY_TOLERANCE,
        "val_fp32_accuracy": fp32_val,
        "val_images": n_val,
    }
    if hw.tflm:
        return _deploy_tflm(ctx, tfl, path, val, common)
    return _deploy_fastest(ctx, runtimes, path, exp.onnx_int8, val, common)


def _within_tolerance(int8: float, fp32: float) -> bool:
    """int8 top-1 loses at most DEPLOY_TOLERANCE of fp32's (the ladder's rule)."""
    from squeezelab.compress.ladder import within

    return within(int8, fp32, DEPLOY_TOLERANCE)


def _deploy_tflm(ctx, tfl, path, val, common) -> DeployResult:
    """TFLite Micro: the arena and the int8 check (validation images) measured."""
    from squeezelab.export import check_tflite, write_c_array

    hw = ctx.hardware
    ctx.emit(
        {
            "stage": "deploy",
            "message": f"running it in TFLite Micro on {len(val[0])} validation images",
        }
    )
    check = check_tflite(path, *val)
    int8_val = check.int8_top1
    c_path, _ = write_c_array(path, ctx.out / "model", check.arena_bytes, tfl.to_dict())
    problems = []
    firmware = _deploy_firmware(ctx, path, val[0], problems)
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
        tflm_vs_reference_max_lsb=check.tflm_vs_reference_max_lsb,
        firmware=firmware,
        problems=problems,
        **common,
    )


FIRMWARE_IMAGES = 100  # validation images the generated firmware runs on the host


def _deploy_firmware(ctx, path, images, problems: list[str]) -> dict | None:
    """A Cortex-M target: the generated int8 C, checked against TFLM on the host and run
    in QEMU; a link that does not fit or outputs that differ are problems."""
    from squeezelab.export.firmware_build import arm_target, check_firmware

    hw = ctx.hardware
    if arm_target(hw) is None:
        return None
    msg = f"writing the firmware (int8 C) and running it in QEMU ({arm_target(hw).machine})"
    ctx.emit({"stage": "deploy", "message": msg})
    try:
        chk = check_firmware(path, ctx.out / "firmware", images[:FIRMWARE_IMAGES], hw)
    except InfeasibleError as e:  # does not fit the target: the design is not shipped
        problems.append(str(e))
        return None
    except SqueezelabError as e:  # an op without a kernel, a toolchain failure: the
        # TFLM file still ships; say why there is no firmware
        ctx.emit({"stage": "deploy", "message": f"no firmware: {e}"})
        return None
    if chk.host_equal != chk.n_host:
        problems.append(
            f"firmware outputs differ from TFLite Micro's on {chk.n_host - chk.host_equal}"
            f"/{chk.n_host} images"
        )
    if chk.qemu_equal != chk.n_qemu:
        n = chk.n_qemu - chk.qemu_equal
        problems.append(f"firmware in QEMU differs from the host on {n}/{chk.n_qemu} images")
    return chk.to_dict()


def _deploy_fastest(ctx, runtimes, tflite, onnx_int8, val, common) -> DeployResult:
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

    model.eval()
    hits = 0
    with torch.no_grad():
        for i in range(0, len(images), 500):  # batches bound the activations' memory
            logits = model(torch.from_numpy(normalize(images[i : i + 500], meta)))
            hits += int((logits.argmax(1).numpy() == labels[i : i + 500]).sum())
    return hits / max(len(labels), 1)


# TFLite Micro's host interpreter runs its reference kernels at tens of images a second
# for the demo's designs (about 20 ms an image): the shipped .tflite is scored on this
# many test images there, every other file on all of them
TFLM_SCORE_IMAGES = 2_000


def score(ctx: RunContext) -> ScoreResult:
    """The final scoring: each file once on the test split, after every choice.

    Every choice before this stage (trial, epoch, compression setting, int8 form,
    runtime) read the validation split only. Every file is scored on the whole split
    but a TFLite Micro one (:data:`TFLM_SCORE_IMAGES`, beside the fp32 figure of the
    same images). The export and deploy records get their test figures here, so every
    page shows the one scoring.
    """
    if ctx.is_detection:  # COCO mAP on the test canvases (design/detection.py)
        from squeezelab.design import detection

        return detection.score(ctx)
    import dataclasses

    from squeezelab.export.quantize import onnx_predictions
    from squeezelab.export.scores import class_scores
    from squeezelab.models import load_model

    test, dep, exp = ctx.test, ctx.result("deploy"), ctx.result("export")
    images, labels = test.images.numpy(), test.labels.numpy()
    n = len(labels)
    m = min(n, TFLM_SCORE_IMAGES) if dep.runtime == "tflite-micro" else n
    ctx.emit({"stage": "score", "message": f"scoring every file on the {n:,} test images"})
    fp32_model, meta = load_model(ctx.result("retrain").model_file)
    fp32 = _top1(fp32_model, meta, images, labels)
    sqz = _top1(*ctx.sqz_model, images, labels)
    onnx_pred = onnx_predictions(exp.onnx_int8, images)
    onnx_int8 = float((onnx_pred == labels).mean())
    if m < n:
        ctx.emit({"stage": "score", "message": f"running {m:,} of them in TFLite Micro"})
    shipped = _shipped_predictions(ctx, dep, images[:m], labels[:m], onnx_pred)
    scores = class_scores(labels[:m], shipped, test.classes)
    sqz_same = sqz if m == n else _top1(*ctx.sqz_model, images[:m], labels[:m])
    ctx.state.stages["export"] = dataclasses.replace(exp, int8_accuracy=onnx_int8, eval_images=n)
    ctx.state.stages["deploy"] = dataclasses.replace(
        dep, int8_accuracy=scores.top1, fp32_accuracy=sqz_same, eval_images=m, **scores.to_dict()
    )
    return ScoreResult(n, fp32, sqz, onnx_int8, scores.top1, dep.runtime, m)


def _shipped_predictions(ctx, dep, images, labels, onnx_pred):
    """The shipped file's class per test image, in the runtime that runs it."""
    import numpy as np

    if dep.runtime == "tflite-micro":
        from squeezelab.export import check_tflite

        # TFLM alone: the deploy stage compared it with the reference kernels already
        return np.asarray(check_tflite(dep.tflite, images, labels, reference=False).predictions)
    if dep.runtime == "litert":
        from squeezelab.export.tflite import litert_predictions

        return litert_predictions(dep.tflite, images, ctx.hardware.threads or 1)
    return onnx_pred


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
    from squeezelab.design.ship import ship_card
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
        ship=ship_card(ctx.state, ctx.study, ctx.out),
    )
    return ReportResult(str(html), str(path))


STAGES = [
    ("explore", explore),
    ("retrain", retrain),
    ("compress", compress),
    ("export", export),
    ("deploy", deploy),
    ("score", score),
    ("benchmark", benchmark),
    ("report", report),
]
