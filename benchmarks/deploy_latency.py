"""Deployment latency: PyTorch eager vs our best fp32 and int8 paths vs the fp32 roofline bound.

Claim (issue 6): ONNX Runtime fp32 brings SqueezeNet 1.1 within 1.2x of the fp32 roofline
bound of the calibrated host, and the int8 QDQ form that quantize_int8 picks is >= 8x
faster than PyTorch eager fp32 on one thread. Batch 1, 1 and 2 threads, one process; every
backend gets the same input and is timed in interleaved rounds (ratios hold on a busy host).

    .venv/bin/python benchmarks/deploy_latency.py [--quick] [--out PATH]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

MODELS = [
    ("squeezenet1_1", 224),
    ("squeezenet1_0", 224),
    ("alexnet", 224),
    ("mobilenet_v2", 224),
    ("squeezenet_small", 28),
]
OUT = Path(__file__).resolve().parent / "results" / "deploy_latency.json"


def host() -> dict:
    flags = ""
    if os.path.exists("/proc/cpuinfo"):
        text = Path("/proc/cpuinfo").read_text()
        name = next(
            (ln.split(":", 1)[1].strip() for ln in text.splitlines() if "model name" in ln), ""
        )
        flags = next((ln for ln in text.splitlines() if ln.startswith("flags")), "")
    else:
        name = platform.processor()
    isa = [
        f for f in ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8") if f" {f}" in flags
    ]
    return {"cpu": name, "isa": isa, "cores": os.cpu_count(), "python": sys.version.split()[0]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--quick", action="store_true", help="squeezenet_small only, 1 thread, short timing"
    )
    ap.add_argument("--out", type=Path, default=OUT, help="JSON output path")
    args = ap.parse_args(argv)

    import numpy as np
    import onnxruntime
    import torch

    from squeezelab.analysis import calibrate
    from squeezelab.export import export_onnx, quantize_int8
    from squeezelab.export.bench import INT8_SETTINGS, benchmark
    from squeezelab.io import atomic_write_json
    from squeezelab.models import list_models, load_model

    models = [m for m in MODELS if m[0] in list_models()]
    threads = (1,) if args.quick else (1, 2)
    if args.quick:
        models = [("squeezenet_small", 28)]
    rounds = 1 if args.quick else 8
    hw = {t: calibrate(threads=t, quick=args.quick) for t in threads}
    results, searches = [], {}
    t0 = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        for name, side in models:
            model, meta = load_model(name)
            shape = (meta.in_chans, side, side)
            fp32 = os.path.join(tmp, f"{name}.onnx")
            int8 = os.path.join(tmp, f"{name}.int8.onnx")
            export_onnx(model, meta, fp32, input_shape=shape)
            calib = np.random.default_rng(0).integers(0, 256, (16, *shape), dtype=np.uint8)
            rep = quantize_int8(
                fp32,
                calib,
                int8,
                settings=list(INT8_SETTINGS),
                tolerance=0.05,
                runs=10 if args.quick else 30,
            )
            searches[name] = {
                k: rep.to_dict()[k] for k in ("chosen", "within_tolerance", "speedup", "tried")
            }
            for t in threads:
                rows = benchmark(
                    model,
                    meta,
                    input_shape=shape,
                    thread_counts=(t,),
                    rounds=rounds,
                    int8_path=int8,
                    roofline=hw[t],
                )
                by = {r.backend: r.to_dict() for r in rows}
                fp = [b for b in ("torch", "torch_channels_last", "ort_fp32")]
                best_fp = min(fp, key=lambda b: by[b]["median_ms"])
                eager = by["torch"]["median_ms"]
                roof = by["torch"]["roofline_ms"]
                results.append(
                    {
                        "model": name,
                        "input": list(shape),
                        "threads": t,
                        "eager_fp32_ms": eager,
                        "eager_channels_last_ms": by["torch_channels_last"]["median_ms"],
                        "ort_fp32_ms": by["ort_fp32"]["median_ms"],
                        "best_fp32_ms": by[best_fp]["median_ms"],
                        "best_fp32_backend": best_fp,
                        "best_int8_ms": by["ort_int8"]["median_ms"],
                        "int8_candidate": rep.chosen,
                        "roofline_fp32_ms": roof,
                        "best_fp32_vs_roofline": by[best_fp]["median_ms"] / roof,
                        "best_fp32_speedup_vs_eager": eager / by[best_fp]["median_ms"],
                        "int8_speedup_vs_eager": eager / by["ort_int8"]["median_ms"],
                        "p90_ms": {b: r["p90_ms"] for b, r in by.items()},
                    }
                )
                r = results[-1]
                print(
                    f"{name:18s} t={t} eager {eager:8.2f} ms  best fp32 {r['best_fp32_ms']:7.2f} "
                    f"({best_fp}, {r['best_fp32_vs_roofline']:.2f}x roofline {roof:.2f})  "
                    f"int8 {r['best_int8_ms']:7.2f} ({rep.chosen}, {r['int8_speedup_vs_eager']:.1f}x eager)",
                    flush=True,
                )
    sq = next((r for r in results if r["model"] == "squeezenet1_1" and r["threads"] == 1), None)
    out = {
        "benchmark": "deploy_latency",
        "quick": args.quick,
        "host": host(),
        "versions": {"torch": torch.__version__, "onnxruntime": onnxruntime.__version__},
        "roofline_profiles": {
            str(t): {"peak_macs_per_s": h.peak_macs_per_s, "dram_bytes_per_s": h.dram_bytes_per_s}
            for t, h in hw.items()
        },
        "results": results,
        "int8_search": searches,
        "goals": None
        if sq is None
        else {
            "squeezenet1_1_fp32_within_1.2x_roofline": sq["best_fp32_vs_roofline"] <= 1.2,
            "squeezenet1_1_int8_8x_eager_1_thread": sq["int8_speedup_vs_eager"] >= 8,
        },
        "seconds": round(time.time() - t0, 1),
    }
    atomic_write_json(args.out, out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
