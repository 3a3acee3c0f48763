"""``squeezelab export MODEL -o model.onnx [--int8 ...]``: ONNX export, optionally int8 too."""

from __future__ import annotations

import sys
from pathlib import Path

from squeezelab.cli._common import console, parse_input_shape, print_json
from squeezelab.cli._flags import (
    add_data,
    add_hardware,
    add_json,
    add_model,
    add_output,
    add_threads,
    deprecated_alias,
    fraction,
    int_range,
    positive_int,
)


def register(sub) -> None:
    p = sub.add_parser(
        "export",
        help="export a model to ONNX (fp32, optionally int8)",
        description="Export a model (zoo name, spec file, model file or .sqz file) to ONNX, "
        "checking parity with PyTorch; with --int8 also write the fastest int8 QDQ form "
        "within the tolerance.",
    )
    add_model(p)
    add_output(
        p,
        "the file to write: the fp32 .onnx, the .tflite, (--format c) the stem of "
        "STEM.tflite, STEM.c and STEM.h, or (--format firmware) the folder for model.tflite, "
        "model.c, model.h and the kernels",
        required=True,
    )
    p.add_argument(
        "--format",
        choices=("onnx", "tflite", "c", "firmware"),
        default="onnx",
        help="onnx (ONNX Runtime), tflite (int8 for LiteRT / TFLite Micro), c (the "
        ".tflite as a C array with the measured arena), or firmware (int8 C99 without an "
        "interpreter, checked against TFLite Micro; on a Cortex-M --hardware also built "
        "and run in QEMU) (default: onnx)",
    )
    add_hardware(
        p,
        default=None,
        help="firmware: the target profile (name or YAML); a Cortex-M one (cortex-m7) "
        "links against its flash and SRAM and runs in QEMU",
    )
    p.add_argument("--fp32", action="store_true", help="tflite / c: a float32 file instead of int8")
    p.add_argument(
        "--calib",
        choices=("random",),
        help="tflite / c: calibrate int8 on random inputs instead of --data (a runnable "
        "demo file; its accuracy means nothing)",
    )
    p.add_argument("--input", help="input CxHxW, e.g. 3x224x224 (default: the model's own)")
    p.add_argument("--opset", type=int_range(13), default=17, help="ONNX opset (>= 13; default 17)")
    p.add_argument("--static-batch", action="store_true", help="fix the batch dimension to 1")
    p.add_argument("--int8", action="store_true", help="also write an int8 QDQ model")
    p.add_argument("--int8-output", help="int8 file (default: OUTPUT with .int8.onnx)")
    add_data(
        p,
        help="dataset (name or folder) for int8 calibration (train split), the choice "
        "(validation share of train) and one score of the choice (test split); without it "
        "int8 calibrates on random inputs: fine for latency, not accuracy",
    )
    deprecated_alias(p, "--calib-data", "--data", dest="data")
    p.add_argument(
        "--calib-size", type=positive_int, default=512, help="calibration images (default 512)"
    )
    p.add_argument(
        "--eval-size",
        type=positive_int,
        default=1000,
        help="validation images scoring each int8 setting, and test images scoring the "
        "chosen one (default 1000)",
    )
    p.add_argument(
        "--tolerance",
        type=fraction,
        default=0.005,
        help="allowed top-1 drop (a detector: mAP@0.5 on validation canvases) as a fraction "
        "(default 0.005 = 0.5 points)",
    )
    p.add_argument(
        "--settings",
        help="comma list of int8 settings TYPES/METHOD[/fp32-head] to try, e.g. "
        "U8S8/minmax,S8S8/entropy (default: all; a detector's also with its head in float); "
        "a .tflite detector's forms OBSERVER/WEIGHTS, e.g. histogram/per-channel,"
        "minmax/per-channel (default: all four; --format firmware: the two int8-head ones)",
    )
    deprecated_alias(p, "--candidates", "--settings", dest="settings")
    add_threads(p, default=1)
    add_json(p, "the export report")
    p.set_defaults(func=run_export)


def _calibration(args, shape):
    """-> (calibration images, validation images, their labels, note, (test x, y) or None)."""
    import numpy as np

    from squeezelab.errors import ConfigError

    if args.calib_size < 1:
        raise ConfigError(f"--calib-size={args.calib_size} is invalid: allowed >= 1")
    if not args.data:
        rng = np.random.default_rng(0)
        x = rng.integers(0, 256, (min(args.calib_size, 64), *shape), dtype=np.uint8)
        note = (
            f"int8: no --data, calibrating on {len(x)} random inputs: "
            "the latency is representative, the accuracy is not"
        )
        return x, None, None, note, None
    from squeezelab.data import load_dataset, split_train_val, subset
    from squeezelab.train import TrainConfig

    train = load_dataset(args.data, split="train", data_dir=args.data_dir)
    test = load_dataset(args.data, split="test", data_dir=args.data_dir)
    # the setting is chosen on validation images (DESIGN.md: no choice sees the test split)
    train, val = split_train_val(train, TrainConfig.val_fraction, seed=0)
    train, val = subset(train, args.calib_size, seed=0), subset(val, args.eval_size, seed=0)
    test = subset(test, args.eval_size, seed=0)
    if tuple(train.images.shape[1:]) != tuple(shape):
        raise ConfigError(
            f"--data={args.data!r} has images {tuple(train.images.shape[1:])} but the "
            f"model takes {tuple(shape)}: allowed a dataset of the model's input shape"
        )
    note = (
        f"int8: calibrating on {len(train)} {args.data} train images, choosing on "
        f"{len(val)} validation images, scoring the choice on {len(test)} test images"
    )
    held_out = (test.images.numpy(), test.labels.numpy())
    return train.images.numpy(), val.images.numpy(), val.labels.numpy(), note, held_out


def _detection_splits(args, shape):
    """A detector's canvases: (train for calibration, val for the choice, test held out)."""
    from squeezelab.data.detection import load_detection
    from squeezelab.errors import ConfigError

    if args.calib_size < 1:
        raise ConfigError(f"--calib-size={args.calib_size} is invalid: allowed >= 1")

    def part(split, n):
        return load_detection(args.data, split, data_dir=args.data_dir, size=shape[2], count=n)

    calib, val = part("train", args.calib_size), part("val", args.eval_size)
    test = part("test", args.eval_size)
    if tuple(calib.images.shape[1:]) != tuple(shape):
        raise ConfigError(
            f"--data={args.data!r} has canvases {tuple(calib.images.shape[1:])} but the "
            f"model takes {tuple(shape)}: allowed a dataset of the model's input shape"
        )
    note = (
        f"int8: calibrating on {len(calib)} {args.data} train canvases, choosing on "
        f"{len(val)} validation canvases by mAP@0.5, scoring the choice on {len(test)} test "
        "canvases"
    )
    return calib, val, test, note


def run_export(args) -> int:
    from squeezelab.export import export_onnx, quantize_int8
    from squeezelab.models import load_model

    if args.format != "onnx":
        return _run_tflite(args)
    model, meta = load_model(args.model)
    shape = parse_input_shape(args.input) if args.input else meta.input_shape
    fp32 = export_onnx(
        model,
        meta,
        args.output,
        opset=args.opset,
        dynamic_batch=not args.static_batch,
        input_shape=shape,
    )
    report = {"fp32": fp32.to_dict()}
    int8 = None
    if args.int8:
        out8 = args.int8_output or str(Path(args.output).with_suffix("")) + ".int8.onnx"
        settings, scorer = args.settings.split(",") if args.settings else None, None
        if meta.task == "detection" and args.data:
            from squeezelab.export.detection import map50_scorer
            from squeezelab.export.quantize import DETECTION_SETTINGS

            c, val, held_out, note = _detection_splits(args, shape)
            calib, x_eval, y = c.images.numpy(), val.images.numpy(), None
            scorer, settings = map50_scorer(meta, val), settings or DETECTION_SETTINGS
        else:
            calib, x_eval, y, note, held_out = _calibration(args, shape)
        print(note, file=sys.stderr)
        from squeezelab.cli._progress import count, open_display

        def on_setting(k: int, n: int, name: str) -> None:  # the int8 candidates
            doing = "timing the candidates" if name == "timing" else f"calibrating {name}"
            show.update("int8", what=f"{count('step', k, n)}: {doing}", done=k - 1, total=n)

        with open_display(json=args.json) as show:
            int8 = quantize_int8(
                args.output,
                calib,
                out8,
                labels=y,
                eval_data=x_eval,
                tolerance=args.tolerance,
                settings=settings,
                threads=args.threads,
                on_setting=on_setting,
                scorer=scorer,
            )
        report["int8"] = {**int8.to_dict(), "calibration": "dataset" if args.data else "random"}
        if scorer is not None:  # the test split, scored once after the choice on val
            from squeezelab.export.detection import detection_scores, onnx_forward

            maps = {}
            for key, path in (("fp32", args.output), ("int8", out8)):
                got = detection_scores(onnx_forward(path, args.threads), meta, held_out)
                maps |= {f"{key}_{k}": v for k, v in got.items()}
            report["int8"]["test"] = {"images": len(held_out), **maps}
        elif held_out is not None:  # the test split, scored once after the choice
            from squeezelab.export.quantize import score_onnx

            report["int8"]["test"] = {
                "images": len(held_out[1]),
                "fp32_top1": score_onnx(args.output, *held_out, threads=args.threads),
                "int8_top1": score_onnx(out8, *held_out, threads=args.threads),
            }
    if args.json:
        print_json(report)
        return 0
    render(fp32, int8)
    if int8 is not None and "fp32_map" in report["int8"].get("test", {}):
        t = report["int8"]["test"]
        console().print(
            f"test split ({t['images']} canvases): mAP@0.5 fp32 {t['fp32_map50']:.4f}, int8 "
            f"{t['int8_map50']:.4f}; mAP@[.5:.95] fp32 {t['fp32_map']:.4f}, int8 {t['int8_map']:.4f}"
        )
    elif int8 is not None and "test" in report["int8"]:
        t = report["int8"]["test"]
        console().print(
            f"test split ({t['images']} images, scored once after the choice on validation): "
            f"top-1 fp32 {t['fp32_top1']:.4f}, int8 {t['int8_top1']:.4f}"
        )
    return 0


def _run_tflite(args) -> int:
    """``--format tflite`` / ``c``: the .tflite (and its C array with the measured arena)."""
    from squeezelab.errors import ConfigError
    from squeezelab.export.tflite import export_tflite, require_deploy
    from squeezelab.models import load_model

    require_deploy("litert_torch")  # before loading anything: name the extra first
    if args.input:
        raise ConfigError("--input: not allowed with --format tflite/c (the model's own is used)")
    if args.fp32 and args.calib:
        raise ConfigError("--calib: not allowed with --fp32 (a float file is not calibrated)")
    if args.int8:
        raise ConfigError("--int8: ONNX only; .tflite files are int8 unless --fp32")
    model, meta = load_model(args.model)
    det = meta.task == "detection"
    calib = None
    if not args.fp32 and args.data and det:
        return _run_tflite_detector(args, model, meta)
    if not args.fp32:
        if args.data:
            from squeezelab.data import load_dataset, subset

            train = load_dataset(args.data, split="train", data_dir=args.data_dir)
            calib = subset(train, args.calib_size, seed=0).images.numpy()
        elif args.calib:
            calib = args.calib
    out = Path(args.output)
    path = out.with_suffix(".tflite") if args.format == "c" else out
    if args.format == "firmware":
        if args.fp32:
            raise ConfigError("--fp32: not allowed with --format firmware (int8 only)")
        out.mkdir(parents=True, exist_ok=True)
        path = out / "model.tflite"
    exp = export_tflite(model, meta, path, int8=not args.fp32, calib=calib, n_calib=args.calib_size)
    report = {"tflite": exp.to_dict()}
    return _finish_tflite(args, exp, report, meta, path, out)


def _finish_tflite(args, exp, report: dict, meta, path: Path, out: Path) -> int:
    """The ``.tflite``'s C array (``--format c``) or firmware, then the report printed."""
    if args.format == "c":
        from squeezelab.export import check_tflite, write_c_array

        chk = check_tflite(path)
        stem = out.with_suffix("") if out.suffix in (".c", ".h", ".tflite") else out
        c_path, h_path = write_c_array(path, stem, chk.arena_bytes, exp.to_dict())
        report["check"] = chk.to_dict()
        report["c"], report["h"] = str(c_path), str(h_path)
    if args.format == "firmware":
        report["firmware"] = _firmware(args, path, out, meta)
    if args.json:
        print_json(report)
        return 0
    _print_tflite(args, exp, report, meta, path, out)
    return 0


def _print_tflite(args, exp, report, meta, path, out) -> None:
    con = console()
    kind = f"int8, calibrated on {exp.calibration}" if exp.int8 else "float32"
    con.print(f"tflite: {exp.path} ({exp.tflite_bytes} bytes, {kind})")
    con.print(f"ops: {', '.join(exp.ops)} (all in TFLite Micro's builtin kernels)")
    layout = "x".join(map(str, exp.input_shape))
    con.print(
        f"input {layout} NHWC: x = (pixel/255 - mean) / std with mean {list(exp.mean)}, "
        f"std {list(exp.std)}"
        + (f"; q = round(x / {exp.input_scale:.6g}) {exp.input_zero_point:+d}" if exp.int8 else "")
    )
    if meta.task == "detection":
        from squeezelab.export.detection import tflite_output_shape

        shape = "x".join(map(str, tflite_output_shape(path)))
        scale = (
            f"value = {exp.output_scale:.6g} * (q {-exp.output_zero_point:+d}); "
            if exp.int8 and exp.output_scale  # a /fp32-head form's output is float32
            else "float32 values; "
        )
        con.print(
            f"output: the raw ConvDet head map {shape} (channels as docs/detection.md, "
            f"'The head'); {scale}decode with the anchors in the file's metadata"
        )
    elif exp.int8:
        con.print(f"output: logit = {exp.output_scale:.6g} * (q {-exp.output_zero_point:+d})")
    if args.format == "c":
        con.print(
            f"c: {report['c']} and {report['h']}\narena: {report['check']['arena_bytes']} "
            "bytes (measured in TFLite Micro)"
        )
    if args.format == "firmware":
        from squeezelab.export.firmware_build import FirmwareCheck

        fw = FirmwareCheck.from_dict(report["firmware"])
        con.print(f"firmware: {out}/model.c, model.h\n{fw.summary()}")
    choice = report.get("int8_choice")
    if choice:
        tried = ", ".join(f"{t['form']} {t['val_map50']:.4f}" for t in choice["tried"])
        con.print(
            f"int8 form: {choice['chosen']}, chosen by validation mAP@0.5 on "
            f"{choice['val_images']} canvases (fp32 {choice['fp32_val_map50']:.4f}; {tried})"
        )
        t = report["test"]
        con.print(
            f"test split ({t['images']} canvases, scored once after the choice): mAP@0.5 fp32 "
            f"{t['fp32_map50']:.4f}, int8 (LiteRT) {t['int8_map50']:.4f}; mAP@[.5:.95] fp32 "
            f"{t['fp32_map']:.4f}, int8 {t['int8_map']:.4f}"
        )


def _run_tflite_detector(args, model, meta) -> int:
    """``--format tflite/c/firmware --data`` for a detector: the int8 form chosen on
    validation canvases by LiteRT mAP@0.5, the test split scored once after."""
    from squeezelab.cli._progress import count, open_display
    from squeezelab.export.detection import (
        TFLITE_FORMS,
        choose_tflite_int8,
        detection_scores,
        litert_forward,
    )
    from squeezelab.train.detect import torch_forward

    calib, val, test, note = _detection_splits(args, meta.input_shape)
    print(note.replace("int8:", "int8 (.tflite):"), file=sys.stderr)
    out = Path(args.output)
    path = out.with_suffix(".tflite") if args.format == "c" else out
    if args.format == "firmware":
        out.mkdir(parents=True, exist_ok=True)
        path = out / "model.tflite"
    forms = args.settings.split(",") if args.settings else TFLITE_FORMS
    if args.format == "firmware":  # the C kernels are int8 only
        from squeezelab.errors import ConfigError

        if args.settings and any(f.endswith("/fp32-head") for f in forms):
            raise ConfigError(
                f"--settings={args.settings!r}: --format firmware runs int8 kernels only; "
                "allowed forms without /fp32-head, e.g. histogram/per-channel"
            )
        forms = [f for f in forms if not f.endswith("/fp32-head")]

    with open_display(json=args.json) as show:

        def on_form(k: int, n: int, form: str) -> None:
            show.update("int8", what=f"{count('form', k, n)}: {form}", done=k - 1, total=n)

        exp, choice = choose_tflite_int8(
            model,
            meta,
            path,
            calib.images.numpy(),
            val,
            forms,
            args.tolerance,
            args.threads,
            on_form,
        )
    report = {"tflite": exp.to_dict(), "int8_choice": choice.to_dict()}
    maps = {}
    for key, fwd in (("fp32", torch_forward(model)), ("int8", litert_forward(path, args.threads))):
        maps |= {f"{key}_{k}": v for k, v in detection_scores(fwd, meta, test).items()}
    report["test"] = {"images": len(test), **maps}
    return _finish_tflite(args, exp, report, meta, path, out)


def _firmware(args, path, out, meta) -> dict:
    """``--format firmware``: write and check the C (test images with --data, else random)."""
    import numpy as np

    from squeezelab.export.firmware_build import check_firmware

    if args.data and meta.task == "detection":
        from squeezelab.data.detection import load_detection

        n = min(args.eval_size, 100)
        size = meta.input_shape[2]
        images = load_detection(args.data, "test", data_dir=args.data_dir, size=size, count=n)
        images = images.images.numpy()
    elif args.data:
        from squeezelab.data import load_dataset, subset

        test = load_dataset(args.data, split="test", data_dir=args.data_dir)
        images = subset(test, min(args.eval_size, 100), seed=0).images.numpy()
    else:
        images = np.random.default_rng(0).integers(0, 256, (16, *meta.input_shape), np.uint8)
    hw = None
    if args.hardware:
        from squeezelab.analysis.hardware import load_hardware

        hw = load_hardware(args.hardware)
    return check_firmware(path, out, images, hw).to_dict()


def render(f, q) -> None:
    """The fp32 export line and, with int8, the settings tried (fits 80 columns)."""
    from squeezelab.analysis.units import format_bytes
    from squeezelab.cli._common import plain_table, print_table, text

    con = console()
    con.print(
        f"fp32: {text(f.path)} ({format_bytes(f.onnx_bytes)}), parity max abs diff "
        f"{f.parity.max_abs_diff:.2e} on {f.parity.n_inputs} inputs "
        f"(tolerance {f.parity.tolerance:g})"
    )
    if q is None:
        return
    table = plain_table()
    for col in ("setting", "median ms", "p90 ms", q.metric, "drop", "ok"):
        table.add_column(col, justify="left" if col == "setting" else "right", no_wrap=True)
    fp = q.fp32
    table.add_row("fp32", f"{fp.latency_ms:,.3f}", f"{fp.p90_ms:,.3f}", f"{fp.score:.4f}", "", "")
    for t in q.tried:
        table.add_row(
            text(t.setting) + ("*" if t.setting == q.chosen else ""),
            f"{t.latency_ms:,.3f}",
            f"{t.p90_ms:,.3f}",
            f"{t.score:.4f}",
            f"{t.score_drop * 100:+.2f} pt",
            "yes" if t.within_tolerance else "no",
        )
    title = f"int8 settings ({q.metric}, {q.threads} thread(s), batch 1; *: chosen)"
    print_table(con, table, title)
    status = "within" if q.within_tolerance else "NOT within (kept the most accurate)"
    con.print(
        f"int8: {text(q.path)} ({format_bytes(q.int8.bytes)}), chose {q.chosen}, "
        f"{q.speedup:.2f}x faster than ORT fp32, {status} the tolerance of "
        f"{q.tolerance * 100:g} points"
    )
