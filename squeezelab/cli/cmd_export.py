"""``squeezelab export MODEL -o model.onnx [--int8 ...]``: ONNX export, optionally int8 too."""

from __future__ import annotations

import sys
from pathlib import Path

from squeezelab.cli._common import console, parse_input_shape, print_json


def register(sub) -> None:
    p = sub.add_parser(
        "export",
        help="export a model to ONNX (fp32, optionally int8)",
        description="Export a zoo model, model file or .sqz file to ONNX, checking parity with "
        "PyTorch; with --int8 also write the fastest int8 QDQ form within the tolerance.",
    )
    p.add_argument("model", help="a zoo name, a .safetensors model file or a .sqz file")
    p.add_argument("-o", "--output", required=True, help="the fp32 .onnx file to write")
    p.add_argument("--input", help="input CxHxW, e.g. 3x224x224 (default: the model's own)")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset (>= 13; default 17)")
    p.add_argument("--static-batch", action="store_true", help="fix the batch dimension to 1")
    p.add_argument("--int8", action="store_true", help="also write an int8 QDQ model")
    p.add_argument("--int8-output", help="int8 file (default: OUTPUT with .int8.onnx)")
    p.add_argument(
        "--calib-data",
        help="dataset name or directory for calibration (train split) and scoring (test split); "
        "without it int8 calibrates on random inputs: fine for latency, not for accuracy",
    )
    p.add_argument("--calib-size", type=int, default=512, help="calibration images (default 512)")
    p.add_argument(
        "--eval-size",
        type=int,
        default=1000,
        help="test images scoring each candidate (default 1000)",
    )
    p.add_argument(
        "--tolerance",
        type=float,
        default=0.005,
        help="allowed top-1 drop as a fraction (default 0.005 = 0.5 points)",
    )
    p.add_argument(
        "--candidates", help="comma list of TYPES/METHOD to try, e.g. U8S8/minmax,S8S8/entropy"
    )
    p.add_argument("--threads", type=int, default=1, help="threads for timing candidates")
    p.add_argument("--json", action="store_true", help="print the export report as JSON")
    p.set_defaults(func=run_export)


def _calibration(args, meta, shape):
    """-> (calibration images, eval images, eval labels, note)."""
    import numpy as np

    from squeezelab.errors import ConfigError

    if args.calib_size < 1:
        raise ConfigError(f"--calib-size={args.calib_size} is invalid: allowed >= 1")
    if not args.calib_data:
        rng = np.random.default_rng(0)
        x = rng.integers(0, 256, (min(args.calib_size, 64), *shape), dtype=np.uint8)
        return (
            x,
            None,
            None,
            (
                f"int8: no --calib-data, calibrating on {len(x)} random inputs: "
                "the latency is representative, the accuracy is not"
            ),
        )
    from squeezelab.data import load_dataset, subset

    train = subset(load_dataset(args.calib_data, split="train"), args.calib_size, seed=0)
    test = subset(load_dataset(args.calib_data, split="test"), args.eval_size, seed=0)
    if tuple(train.images.shape[1:]) != tuple(shape):
        raise ConfigError(
            f"--calib-data={args.calib_data!r} has images {tuple(train.images.shape[1:])} but the "
            f"model takes {tuple(shape)}: allowed a dataset of the model's input shape"
        )
    note = f"int8: calibrating on {len(train)} {args.calib_data} train images, scoring on {len(test)} test images"
    return train.images.numpy(), test.images.numpy(), test.labels.numpy(), note


def run_export(args) -> int:
    from squeezelab.export import export_onnx, quantize_int8
    from squeezelab.fileio import load_any_model

    model, meta = load_any_model(args.model)
    shape = (
        parse_input_shape(args.input)
        if args.input
        else (meta["in_chans"], meta["input_size"], meta["input_size"])
    )
    report = {
        "fp32": export_onnx(
            model,
            shape,
            args.output,
            opset=args.opset,
            dynamic_batch=not args.static_batch,
            meta=meta,
        )
    }
    if args.int8:
        out8 = args.int8_output or str(Path(args.output).with_suffix("")) + ".int8.onnx"
        calib, x_eval, y, note = _calibration(args, meta, shape)
        print(note, file=sys.stderr)
        cands = args.candidates.split(",") if args.candidates else None
        report["int8"] = quantize_int8(
            args.output,
            calib,
            out8,
            labels=y,
            eval_data=x_eval,
            tolerance=args.tolerance,
            candidates=cands,
            threads=args.threads,
        )
        report["int8"]["calibration"] = "dataset" if args.calib_data else "random"
    if args.json:
        print_json(report)
        return 0
    _render(report)
    return 0


def _render(report) -> None:
    from rich.table import Table

    con = console()
    f = report["fp32"]
    con.print(
        f"fp32: {f['path']} ({f['onnx_bytes'] / 1e6:.2f} MB), parity max abs diff "
        f"{f['max_abs_diff']:.2e} on {f['n_inputs']} inputs (tolerance {f['tolerance']:g})"
    )
    q = report.get("int8")
    if not q:
        return
    table = Table(title=f"int8 candidates ({q['metric']}, {q['threads']} thread(s), batch 1)")
    for col in ("candidate", "median ms", "p90 ms", q["metric"], "drop", "ok"):
        table.add_column(col, justify="left" if col == "candidate" else "right")
    table.add_row(
        "fp32", f"{q['fp32']['latency_ms']:.3f}", f"{q['fp32']['p90_ms']:.3f}",
        f"{q['fp32']['score']:.4f}", "", "",
    )  # fmt: skip
    for t in q["tried"]:
        mark = "*" if t["candidate"] == q["chosen"] else ""
        table.add_row(
            t["candidate"] + mark, f"{t['latency_ms']:.3f}", f"{t['p90_ms']:.3f}",
            f"{t['score']:.4f}", f"{t['score_drop'] * 100:+.2f} pt", "yes" if t["within_tolerance"] else "no",
        )  # fmt: skip
    con.print(table)
    status = "within" if q["within_tolerance"] else "NOT within (kept the most accurate)"
    con.print(
        f"int8: {q['path']} ({q['int8']['bytes'] / 1e6:.2f} MB), chose {q['chosen']}, "
        f"{q['speedup']:.2f}x faster than ORT fp32, {status} the tolerance of "
        f"{q['tolerance'] * 100:g} points"
    )
