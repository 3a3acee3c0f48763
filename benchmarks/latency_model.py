"""How well does a calibrated roofline predict PyTorch eager latency on this host?

Claim: after ``calibrate`` on this machine, ``profile(...).latency_ms`` ranks the zoo and
SqueezeNetSpec variants spread over the design space by latency (Spearman >= 0.9) and
predicts each within 20% (median absolute error). Evidence: predicted vs measured ms per
model (batch 1, one thread; all models timed in interleaved rounds so that other
processes' load falls on all alike; "measured" is the median CPU time per call, wall
times beside it), written to ``benchmarks/results/latency_model.json``.

    .venv/bin/python benchmarks/latency_model.py [--quick] [--threads 1] [--out PATH]
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import time
from pathlib import Path

import torch

from squeezelab.analysis import calibrate, profile
from squeezelab.analysis.measure import percentile, torch_threads
from squeezelab.io import atomic_write_json
from squeezelab.models import SQUEEZENET1_0, SQUEEZENET_SMALL, list_models, load_model
from squeezelab.models.squeezenet import SqueezeNet

OUT = Path(__file__).parent / "results" / "latency_model.json"

# The design space of Iandola et al. 2016, section 5 and 6: micro and macro choices.
SPACE = {
    "sr": [0.125, 0.25, 0.5, 0.75],
    "pct_3x3": [0.25, 0.5, 0.75],
    "base_e": [64, 128, 192],
    "incr_e": [32, 64, 128],
    "bypass": ["none", "simple", "complex"],
    "pool_after": [(1, 4, 8), (1, 3, 5), (1, 2, 6)],
}


def variants(n: int, base, seed: int = 0) -> list[tuple[str, SqueezeNet]]:
    """``n`` distinct random SqueezeNetSpec variants of ``base`` (seeded)."""
    rng = random.Random(seed)
    out, seen = [], set()
    while len(out) < n:
        choice = {k: rng.choice(v) for k, v in SPACE.items()}
        spec = base.replace(**choice)
        if spec.short_name not in seen:
            seen.add(spec.short_name)
            tag = f"{spec.short_name}-{spec.bypass}-pool{''.join(map(str, spec.pool_after))}"
            out.append((tag, SqueezeNet(spec).eval()))
    return out


def models_to_time(quick: bool) -> list[tuple[str, torch.nn.Module, tuple[int, ...]]]:
    """``(name, module, input shape)``: the zoo (or squeezenet_small) and random variants."""
    if quick:
        model, meta = load_model("squeezenet_small")
        return [("squeezenet_small", model, meta.input_shape)] + [
            (n, m, meta.input_shape) for n, m in variants(3, SQUEEZENET_SMALL)
        ]
    zoo = []
    for name in list_models():
        model, meta = load_model(name)
        zoo.append((name, model, meta.input_shape))
    size = 224
    return zoo + [(n, m, (3, size, size)) for n, m in variants(24, SQUEEZENET1_0)]


def measure_interleaved(models, threads: int, rounds: int, per_round: int):
    """Wall and CPU seconds per call of every model, timed round-robin so that load drifts
    hit all models alike. At one thread the CPU time is the calling thread's, which
    leaves out the time other processes held the core."""
    inputs = [torch.randn(1, *shape) for _, _, shape in models]
    wall: list[list[float]] = [[] for _ in models]
    cpu: list[list[float]] = [[] for _ in models]
    cpu_clock = time.thread_time if threads == 1 else time.process_time
    with torch_threads(threads), torch.inference_mode():
        for (_, m, _), x in zip(models, inputs, strict=True):
            m(x)  # warm-up: allocator, oneDNN primitive caches
            m(x)
        for _ in range(rounds):
            for i, ((_, m, _), x) in enumerate(zip(models, inputs, strict=True)):
                for _ in range(per_round):
                    t0, c0 = time.perf_counter(), cpu_clock()
                    m(x)
                    cpu[i].append(cpu_clock() - c0)
                    wall[i].append(time.perf_counter() - t0)
    return wall, cpu


def _ranks(values: list[float]) -> list[float]:
    """Ranks from 1, ties sharing their average rank."""
    order = sorted(range(len(values)), key=values.__getitem__)
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def spearman(a: list[float], b: list[float]) -> float:
    """Spearman's rank correlation: Pearson's correlation of the ranks."""
    ra, rb = _ranks(a), _ranks(b)
    ma, mb = statistics.fmean(ra), statistics.fmean(rb)
    cov = sum((x - ma) * (y - mb) for x, y in zip(ra, rb, strict=True))
    var = sum((x - ma) ** 2 for x in ra) * sum((y - mb) ** 2 for y in rb)
    return cov / var**0.5 if var > 0 else 0.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="tiny run for CI (seconds)")
    ap.add_argument("--threads", type=int, default=1, help="intra-op threads (default 1)")
    ap.add_argument("--out", type=Path, default=OUT, help="JSON output path")
    args = ap.parse_args()
    t_start = time.time()
    load_start = os.getloadavg()
    hw = calibrate(threads=args.threads, quick=args.quick)
    models = models_to_time(args.quick)
    rounds, per_round = (2, 2) if args.quick else (7, 3)
    wall, cpu = measure_interleaved(models, args.threads, rounds, per_round)
    rows = []
    for (name, m, shape), w, c in zip(models, wall, cpu, strict=True):
        rows.append(
            {
                "name": name,
                "input": list(shape),
                "predicted_ms": round(profile(m, shape, hw).latency_ms, 4),
                "measured_ms": round(statistics.median(c) * 1e3, 4),
                "wall_median_ms": round(statistics.median(w) * 1e3, 4),
                "wall_min_ms": round(min(w) * 1e3, 4),
                "wall_p90_ms": round(percentile(w, 0.9) * 1e3, 4),
            }
        )

    def summary(key: str) -> dict:
        pred = [r["predicted_ms"] for r in rows]
        errors = [abs(r["predicted_ms"] - r[key]) / r[key] * 100 for r in rows]
        return {
            "spearman": round(spearman(pred, [r[key] for r in rows]), 4),
            "median_abs_pct_error": round(statistics.median(errors), 2),
        }

    result = {
        **summary("measured_ms"),
        "measured_is": "median CPU time per call of the calling thread (threads=1), i.e. "
        "latency with other processes' load left out; wall-clock figures beside it",
        "vs_wall_median": summary("wall_median_ms"),
        "vs_wall_min": summary("wall_min_ms"),
        "noise": {
            "median_wall_p90_over_median": round(
                statistics.median(r["wall_p90_ms"] / r["wall_median_ms"] for r in rows), 3
            ),
            "median_wall_median_over_cpu": round(
                statistics.median(r["wall_median_ms"] / r["measured_ms"] for r in rows), 3
            ),
            "loadavg_start": [round(v, 2) for v in load_start],
            "loadavg_end": [round(v, 2) for v in os.getloadavg()],
        },
        "models": rows,
        "setup": {
            "quick": args.quick,
            "threads": args.threads,
            "batch": 1,
            "timed_runs_per_model": rounds * per_round,
            "torch": torch.__version__,
            "machine": f"{platform.machine()} {os.cpu_count()} CPUs",
            "seconds": round(time.time() - t_start, 1),
        },
        "calibration": hw.to_dict(),
    }
    atomic_write_json(args.out, result)
    print(
        f"spearman {result['spearman']}  median |error| {result['median_abs_pct_error']}%  "
        f"({len(rows)} models, {result['setup']['seconds']} s) -> {args.out}"
    )


if __name__ == "__main__":
    main()
