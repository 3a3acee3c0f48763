"""The zoo under TFLite Micro: predicted arena and .tflite size against the measured ones.

Claim (issue 15, item 4): ``analysis.profile`` at 8 bits predicts the TFLM tensor arena and
the int8 ``.tflite`` size within 5% for every zoo member that fits in 2 MiB of arena. Each
member at its default input is predicted; those predicted to fit (``--all``: every one)
are converted to int8 with random calibration (untrained weights: the figures concern
memory and bytes, not accuracy), and the smallest arena TFLM's host interpreter runs them
in is found by bisection. Per member: predicted vs measured arena (with head and tail)
and file bytes, and the relative errors; a member that cannot be converted here says why.

    .venv/bin/python benchmarks/tflm_zoo.py [--quick] [--all] [--models A,B] [--out PATH]
"""

from __future__ import annotations

import argparse
import gc
import os
import tempfile
import time
from pathlib import Path

from deploy_targets import (  # the script's folder is on sys.path
    add_output_args,
    host,
    rel_change,
    versions,
    write_result,
)

OUT = Path(__file__).resolve().parent / "results" / "tflm_zoo.json"
ARENA_LIMIT = 2 << 20  # the goal covers members that fit in 2 MiB of arena
GOAL_REL = 0.05
N_CALIB = 4  # random calibration images: the ranges do not change the bytes
N_CHECK = 2  # inputs TFLM and the reference kernels run (the bisection uses the first)


def run_member(name: str, tmp: str, convert_all: bool) -> dict:
    """Predict one zoo member at its default input; convert and measure it if it fits."""
    import numpy as np
    import torch

    from squeezelab.analysis.tflm_plan import tflm_plan
    from squeezelab.export import check_tflite, export_tflite
    from squeezelab.export.tflite import read_tflite
    from squeezelab.models import load_model

    torch.manual_seed(0)
    model, meta = load_model(name)
    t0 = time.time()
    plan = tflm_plan(model, meta.input_shape)  # what profile() reports at 8 bits
    row = {
        "model": name,
        "input": list(meta.input_shape),
        "params": sum(p.numel() for p in model.parameters()),
        "trained": False,
        "predicted": {
            "arena_bytes": plan.arena_bytes,
            "arena_head_bytes": plan.arena_head_bytes,
            "arena_tail_bytes": plan.arena_tail_bytes,
            "tflite_bytes": plan.tflite_bytes,
            "ops": len(plan.ops),
            "tensors": plan.tensors,
            "unsupported": list(plan.unsupported),
        },
        "predict_s": round(time.time() - t0, 2),
        "in_goal": plan.arena_bytes <= ARENA_LIMIT,
        "measured": None,
        "rel_error": None,
        "skipped": None,
    }
    if not row["in_goal"] and not convert_all:
        row["skipped"] = f"predicted arena {plan.arena_bytes:,} B > 2 MiB: outside the goal"
        return row
    path = os.path.join(tmp, f"{name}.tflite")
    t0 = time.time()
    exp = export_tflite(model, meta, path, calib="random", n_calib=N_CALIB)
    convert_s = time.time() - t0
    del model
    gc.collect()
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (N_CHECK, *meta.input_shape), dtype=np.uint8)
    t0 = time.time()
    check = check_tflite(path, x)
    info = read_tflite(Path(path).read_bytes(), path)
    row["measured"] = {
        "arena_bytes": check.arena_bytes,
        "arena_head_bytes": check.arena_head_bytes,
        "arena_tail_bytes": check.arena_tail_bytes,
        "tflite_bytes": exp.tflite_bytes,
        "ops": info.n_operators,
        "tflm_vs_reference_max_lsb": check.tflm_vs_reference_max_lsb,
    }
    # the lowering's op kinds against the file's (a miss names what the model lacks)
    row["op_kinds"] = {
        "predicted_only": sorted(set(plan.ops) - set(info.ops)),
        "file_only": sorted(set(info.ops) - set(plan.ops)),
    }
    row["rel_error"] = {
        "arena": rel_change(plan.arena_bytes, check.arena_bytes),
        "arena_head": rel_change(plan.arena_head_bytes, check.arena_head_bytes),
        "arena_tail": rel_change(plan.arena_tail_bytes, check.arena_tail_bytes),
        "tflite": rel_change(plan.tflite_bytes, exp.tflite_bytes),
    }
    row["convert_s"] = round(convert_s, 1)
    row["check_s"] = round(time.time() - t0, 1)
    os.unlink(path)
    return row


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="squeezenet_small only")
    ap.add_argument("--all", action="store_true", help="convert members over 2 MiB too")
    ap.add_argument("--models", default="", help="comma-separated zoo names (default: all)")
    add_output_args(ap, OUT)
    args = ap.parse_args(argv)

    from squeezelab.models import list_models

    names = sorted(list_models())
    if args.quick:
        names = ["squeezenet_small"]
    elif args.models:
        names = [n.strip() for n in args.models.split(",") if n.strip()]
    results, failed = [], {}
    t0 = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            try:
                row = run_member(name, tmp, args.all)
            except Exception as e:  # a member that does not convert is reported, not fatal
                failed[name] = f"{e.__class__.__name__}: {str(e).splitlines()[0][:300]}"
                print(f"{name}: FAILED {failed[name]}", flush=True)
                continue
            results.append(row)
            p, m, r = row["predicted"], row["measured"], row["rel_error"]
            if m is None:
                print(f"{name:20s} {row['skipped']}", flush=True)
            else:
                print(
                    f"{name:20s} arena {p['arena_bytes']:>9,} / {m['arena_bytes']:>9,} B "
                    f"({r['arena']:+.2%})  file {p['tflite_bytes']:>10,} / "
                    f"{m['tflite_bytes']:>10,} B ({r['tflite']:+.2%})",
                    flush=True,
                )
    goal = [r for r in results if r["in_goal"]]
    out = {
        "benchmark": "tflm_zoo",
        "quick": args.quick,
        "ran_beside_other_work": args.beside_other_work,
        "host": host(),
        "versions": versions(),
        "arena_limit_bytes": ARENA_LIMIT,
        "calibration": f"random, {N_CALIB} images (untrained weights)",
        "results": results,
        "failed": failed,
        "goals": {
            "members_in_goal": [r["model"] for r in goal],
            "all_converted": all(r["measured"] for r in goal) and not failed,
            "arena_within_5pct": all(
                r["measured"] and abs(r["rel_error"]["arena"]) <= GOAL_REL for r in goal
            ),
            "tflite_within_5pct": all(
                r["measured"] and abs(r["rel_error"]["tflite"]) <= GOAL_REL for r in goal
            ),
        },
    }
    return write_result(args.out, out, t0)


if __name__ == "__main__":
    raise SystemExit(main())
