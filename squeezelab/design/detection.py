"""The design stages for a detector (data: ``fashion-mnist-det`` or a COCO folder).

Explore and retrain are the classifier's stages: the trainer's detection task scores each
epoch as mAP@0.5 on the validation canvases, which is what trials are ranked by. Here are
the stages that read top-1 for a classifier; each choice reads validation canvases only,
and the test split is scored once, as COCO mAP@0.5 and mAP@[.5:.95]:

- compress: the ladder (fine-tuned with the detection loss where the budget allows),
  every rung scored by mAP@0.5 (``compress.ladder.map50``);
- export: ONNX fp32 and the fastest int8 form within the tolerance of the fp32
  validation mAP@0.5, the most accurate when none is (``quantize_int8`` with
  ``export.detection.map50_scorer``, head in float tried too);
- deploy: for TFLite Micro the int8 ``.tflite`` whose form scores best in LiteRT
  (``export.detection.choose_tflite_int8``), its arena and file measured by TFLM, and TFLM
  compared with LiteRT's reference kernels; other targets ship the ONNX int8 file. No
  firmware is generated for detectors yet (said in the run's messages);
- score: every file on every test canvas; the ``.tflite`` runs in LiteRT.
"""

from __future__ import annotations

import dataclasses

from squeezelab.design.context import RunContext
from squeezelab.design.records import CompressResult, DeployResult, ExportResult, ScoreResult
from squeezelab.errors import SqueezelabError

SCORE = "mAP@0.5"  # what a detector's "accuracy" figures are, in every line shown
TFLM_ARENA_IMAGES = 16  # canvases TFLM runs to measure the arena and compare kernels


def detection_split(ctx: RunContext, split: str, count: int | None = None):
    """``split`` of the run's detection data as a ``DetectionData`` (uint8 ``images``, and
    ``.split`` for COCO scoring), at the training canvases' side and normalisation."""
    from squeezelab.data.detection import load_detection
    from squeezelab.train.detect import detection_data

    c, train = ctx.config, ctx.train_split
    rows = load_detection(
        c.data, split, data_dir=c.data_dir, size=train.shape[2], count=count, seed=c.seed
    )
    ds = detection_data(rows, f"{c.data}:{split}", train.anchors)
    ds.mean, ds.std = train.mean, train.std
    return ds


def first(ds, n: int):
    """The first ``n`` canvases of a ``DetectionData`` as a ``DetectionSplit``."""
    return ds.split.head(n)


def compress(ctx: RunContext) -> CompressResult:
    """The compression ladder on a detector: rungs chosen by mAP@0.5 on validation."""
    from squeezelab.compress.ladder import (
        ladder_rungs,
        ladder_steps,
        map50,
    )
    from squeezelab.design.stages import (
        FINETUNE_IMAGES,
        _train_config,
        ladder_result,
        stage_deadline,
    )
    from squeezelab.models import load_model
    from squeezelab.models.detect import anchor_shapes, head_layout
    from squeezelab.train.detect import detection_data

    model, meta = load_model(ctx.result("retrain").model_file)
    final = ctx.space.final or {}
    train = ctx.train
    images = min(final.get("train_subset") or FINETUNE_IMAGES, FINETUNE_IMAGES, len(train))
    batch = final.get("batch_size") or ctx.space.train.get("batch_size") or 128
    # the model's anchors and normalisation: fine-tuning must not refit them. Cut to the
    # fine-tuning canvases here: fit would cut a longer split itself and refit mean/std
    anchors = anchor_shapes(meta, head_layout(model)[1])
    data = detection_data(first(train, images), train.name, tuple(anchors))
    data.mean, data.std = meta.mean, meta.std
    keep = ("recipe", "optimizer", "lr", "weight_decay", "grad_clip")
    finetune = _train_config(
        ctx,
        **{k: final[k] for k in keep if final.get(k) is not None},
        batch_size=min(int(batch), images),
        epochs=1,
        train_subset=images,
        schedule="cosine",
        val_fraction=0.0,  # the ladder scores the validation canvases itself
    )
    c = ctx.config
    steps = ladder_steps(
        model,
        meta,
        ctx.val.split,
        ladder_rungs(c.sparsity, c.bits),
        finetune=finetune,
        finetune_data=data,
        budget_s=max(0.0, stage_deadline(ctx, "compress") - _now()),
        img_per_s=ctx.result("explore").img_per_s,
        score=map50(meta),
        metric="map50",
    )
    return ladder_result(ctx, steps)


def _now() -> float:
    import time

    return time.monotonic()


def export(ctx: RunContext) -> ExportResult:
    """ONNX fp32 and the fastest int8 form within tolerance of fp32's mAP@0.5 on validation."""
    from squeezelab.design.stages import INT8_EVAL_IMAGES
    from squeezelab.export import export_onnx, quantize_int8
    from squeezelab.export.detection import map50_scorer
    from squeezelab.export.quantize import DETECTION_SETTINGS

    model, meta = ctx.sqz_model
    fp32, int8 = ctx.out / "model.onnx", ctx.out / "model.int8.onnx"
    ctx.emit({"stage": "export", "message": "exporting the decoded .sqz model to ONNX fp32"})
    onnx = export_onnx(model, meta, fp32)
    calib = ctx.train.images[: ctx.config.calib_size].numpy()
    val = first(ctx.val, INT8_EVAL_IMAGES)
    ctx.emit(
        {
            "stage": "export",
            "message": f"choosing the fastest int8 form by {SCORE} on {len(val)} validation "
            "canvases",
        }
    )
    q = quantize_int8(
        fp32,
        calib,
        int8,
        eval_data=val.images.numpy(),
        settings=DETECTION_SETTINGS,
        scorer=map50_scorer(meta, val),
        metric="map50",
    )
    return ExportResult(
        str(fp32), str(int8), fp32.stat().st_size, int8.stat().st_size, q.chosen, None, 0, onnx, q
    )


def deploy(ctx: RunContext) -> DeployResult:
    """The int8 file the target runs, checked on validation canvases (mAP@0.5 vs fp32)."""
    from squeezelab.design.stages import DEPLOY_EVAL_IMAGES, DEPLOY_TOLERANCE, _within_tolerance
    from squeezelab.export.detection import onnx_forward
    from squeezelab.train.detect import evaluate_detection

    hw, exp = ctx.hardware, ctx.result("export")
    model, meta = ctx.sqz_model
    val = first(ctx.val, DEPLOY_EVAL_IMAGES)
    fp32_val = evaluate_detection(model, meta, val).map50
    common = {
        "sram_bytes": hw.sram_bytes,
        "flash_bytes": hw.flash_bytes,
        "int8_accuracy": None,  # test figures: the score stage
        "fp32_accuracy": None,
        "eval_images": 0,
        "tolerance": DEPLOY_TOLERANCE,
        "val_fp32_accuracy": fp32_val,
        "val_images": len(val),
        "metric": "map50",
    }
    problems: list[str] = []
    if hw.tflm:
        try:
            return _deploy_tflm(ctx, model, meta, val, common)
        except SqueezelabError as e:  # a conversion or kernel the detector does not pass
            line = str(e).splitlines()[0] if str(e) else type(e).__name__
            problems.append(f"the TFLite Micro path is not yet available for this detector: {line}")
            ctx.emit({"stage": "deploy", "message": problems[-1]})
    elif tuple(hw.deploy) not in ((), ("onnxruntime",)):
        ctx.emit(
            {
                "stage": "deploy",
                "message": f"detector: shipping the ONNX int8 file (ONNX Runtime); "
                f"{', '.join(hw.deploy)} is not chosen among for detectors yet",
            }
        )
    ctx.emit({"stage": "deploy", "message": f"scoring ONNX int8 on {len(val)} validation canvases"})
    int8_val = evaluate_detection(onnx_forward(exp.onnx_int8), meta, val).map50
    if not _within_tolerance(int8_val, fp32_val):
        problems.append(_int8_problem("ONNX int8", int8_val, fp32_val, len(val)))
    none = dict.fromkeys(
        ["tflite", "c_source", "tflite_bytes", "predicted_tflite_bytes", "arena_bytes"]
        + ["arena_head_bytes", "arena_tail_bytes", "predicted_arena_bytes"]
        + ["tflm_vs_reference_max_lsb"]
    )
    return DeployResult(
        runtime="onnxruntime",
        ship=exp.onnx_int8,
        problems=problems,
        val_int8_accuracy=int8_val,
        **none,
        **common,
    )


def _int8_problem(what: str, int8: float, fp32: float, n: int) -> str:
    from squeezelab.design.stages import DEPLOY_TOLERANCE

    return (
        f"{what} {SCORE} {int8:.4f} is more than {100 * DEPLOY_TOLERANCE:g} points below fp32 "
        f"{fp32:.4f} on {n} validation canvases"
    )


def _deploy_tflm(ctx, model, meta, val, common) -> DeployResult:
    """TFLite Micro: the int8 .tflite (form chosen in LiteRT by mAP@0.5) and its C array;
    TFLM measures the arena and is compared with LiteRT's reference kernels."""
    from squeezelab.analysis import profile
    from squeezelab.design.stages import DEPLOY_CALIB_IMAGES, DEPLOY_TOLERANCE, _within_tolerance
    from squeezelab.export import check_tflite, write_c_array
    from squeezelab.export.detection import choose_tflite_int8

    hw = ctx.hardware
    path = ctx.out / "model.tflite"
    msg = f"writing int8 {path.name} for tflite-micro, its form chosen by LiteRT {SCORE} on "
    ctx.emit({"stage": "deploy", "message": msg + f"{len(val)} validation canvases"})
    calib = ctx.train.images[: min(ctx.config.calib_size, DEPLOY_CALIB_IMAGES)].numpy()
    tfl, choice = choose_tflite_int8(
        model, meta, path, calib, val, tolerance=DEPLOY_TOLERANCE, threads=hw.threads or 1
    )
    ctx.emit(
        {"stage": "deploy", "message": f"running it in TFLite Micro ({TFLM_ARENA_IMAGES} canvases)"}
    )
    check = check_tflite(path, val.images[:TFLM_ARENA_IMAGES].numpy())
    c_path, _ = write_c_array(path, ctx.out / "model", check.arena_bytes, tfl.to_dict())
    ctx.emit({"stage": "deploy", "message": "no firmware for detectors yet: the C array ships"})
    pred = profile(model, meta.input_shape, hardware=hw, weight_bits=8, activation_bits=8)
    int8_val = choice.best.val_map50
    problems = []
    if hw.sram_bytes and check.arena_bytes > hw.sram_bytes:
        problems.append(
            f"measured arena {check.arena_bytes:,} B exceeds the {hw.sram_bytes:,} B SRAM"
        )
    if hw.flash_bytes and check.flash_bytes > hw.flash_bytes:
        problems.append(f"file {check.flash_bytes:,} B exceeds the {hw.flash_bytes:,} B flash")
    if not _within_tolerance(int8_val, common["val_fp32_accuracy"]):
        problems.append(
            _int8_problem("LiteRT int8", int8_val, common["val_fp32_accuracy"], len(val))
        )
    return DeployResult(
        runtime="tflite-micro",
        ship=str(c_path),
        tflite=str(path),
        c_source=str(c_path),
        tflite_bytes=path.stat().st_size,
        predicted_tflite_bytes=pred.tflite_bytes,
        arena_bytes=check.arena_bytes,
        arena_head_bytes=check.arena_head_bytes,
        arena_tail_bytes=check.arena_tail_bytes,
        predicted_arena_bytes=pred.tflm_arena_bytes,
        tflm_vs_reference_max_lsb=check.tflm_vs_reference_max_lsb,
        problems=problems,
        val_int8_accuracy=int8_val,
        **common,
    )


def score(ctx: RunContext) -> ScoreResult:
    """Each file once on every test canvas: COCO mAP@0.5 and mAP@[.5:.95].

    The shipped ``.tflite`` of a TFLite Micro target runs in LiteRT (its optimised int8
    kernels), whose reference kernels TFLM matched in the deploy stage.
    """
    from squeezelab.export.detection import litert_forward, onnx_forward
    from squeezelab.models import load_model
    from squeezelab.train.detect import evaluate_detection

    test, dep, exp = ctx.test.split, ctx.result("deploy"), ctx.result("export")
    n = len(test)
    ctx.emit({"stage": "score", "message": f"scoring every file on the {n:,} test canvases"})
    fp32_model, meta = load_model(ctx.result("retrain").model_file)
    got = {
        "fp32": evaluate_detection(fp32_model, meta, test),
        "sqz": evaluate_detection(*ctx.sqz_model, test),
        "onnx_int8": evaluate_detection(onnx_forward(exp.onnx_int8), meta, test),
    }
    if dep.runtime == "tflite-micro":
        ctx.emit({"stage": "score", "message": f"running {dep.tflite} in LiteRT on them"})
        threads = ctx.hardware.threads or 1
        got["shipped"] = evaluate_detection(litert_forward(dep.tflite, threads), meta, test)
    else:
        got["shipped"] = got["onnx_int8"]
    shipped = got["shipped"]
    ctx.state.stages["export"] = dataclasses.replace(
        exp, int8_accuracy=got["onnx_int8"].map50, eval_images=n
    )
    ctx.state.stages["deploy"] = dataclasses.replace(
        dep, int8_accuracy=shipped.map50, fp32_accuracy=got["sqz"].map50, eval_images=n
    )
    return ScoreResult(
        images=n,
        fp32=got["fp32"].map50,
        sqz=got["sqz"].map50,
        onnx_int8=got["onnx_int8"].map50,
        shipped=shipped.map50,
        runtime=dep.runtime,
        shipped_images=n,
        metric="map50",
        map={k: v.map for k, v in got.items()},
        per_class=dict(shipped.per_class50),
    )
