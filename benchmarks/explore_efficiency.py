"""Analytic screening + NSGA-II against plain random search, at equal trained trials.

Claim (squeezelab issue 7): costing every candidate before training (milliseconds, no
data) and spending training only on candidates that fit the device finds a larger
hypervolume of (accuracy, model_bytes) than random search that trains whatever it
draws, for the same number of trained trials, on a Fashion-MNIST subset. Also reports
how many candidates per second the analytic screen costs.

    .venv/bin/python benchmarks/explore_efficiency.py [--quick] [--out PATH]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from squeezelab.explore import costs as _costs
from squeezelab.explore import hypervolume, load_study_results, run_study, space_from_dict
from squeezelab.explore.screen import screen_space
from squeezelab.io import atomic_write_json

LIMIT_BYTES = 60_000  # int8 flash budget: about half of this space does not fit


def make_space(trials: int, sampler: str, train: dict, seed: int) -> dict:
    return {
        "name": f"efficiency-{sampler}",
        "model": "squeezenet_small",
        "params": {
            "base_e": {"low": 16, "high": 64, "step": 16},
            "incr_e": {"low": 0, "high": 64, "step": 16},
            "sr": [0.125, 0.25, 0.5, 0.75],
            "pct_3x3": [0.25, 0.5, 0.75],
            "stem_channels": [16, 32],
        },
        "objectives": ["accuracy", "model_bytes"],
        "constraints": [{"metric": "model_bytes", "max": LIMIT_BYTES}],
        "costing": {"weight_bits": 8},
        "search": {
            "sampler": sampler,
            "trials": trials,
            "population": max(4, trials // 2),
            "seed": seed,
        },
        "train": train,
    }


def run_arm(sampler: str, screen: bool, trials: int, train: dict, seed: int, root: Path) -> dict:
    space = space_from_dict(make_space(trials, sampler, train, seed))
    out = root / space.name
    t0 = time.perf_counter()
    run_study(space, out, screen=screen)
    seconds = time.perf_counter() - t0
    res = load_study_results(out)
    trained = [t for t in res.trials if t.state == "trained"]
    front = [[t.metrics["accuracy"], t.metrics["model_bytes"]] for t in trained if t.feasible]
    hv = hypervolume(front, ["maximize", "minimize"], [0.0, LIMIT_BYTES])
    return {
        "hypervolume": hv,
        "trained_trials": len(trained),
        "trained_feasible": len(front),
        "screened_infeasible": res.counts.infeasible,
        "seconds": seconds,
        "train_seconds": sum(t.train_s or 0 for t in trained),
        "points": front,
    }


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="tiny budget, proves the script runs")
    ap.add_argument("--out", default="benchmarks/results/explore_efficiency.json")
    ap.add_argument("--trials", type=int, help="trained trials per arm (default 4; quick 2)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    trials = args.trials or (2 if args.quick else 4)
    # AdamW at batch 32: enough optimizer steps to rank candidates on a small CPU budget
    train = {
        "data": "fashion-mnist",
        "optimizer": "adamw",
        "lr": 3e-3,
        "schedule": "cosine",
        "warmup_epochs": 0.0,
        "weight_decay": 0.05,
        "batch_size": 32,
        "seed": 0,
    }
    train |= (
        {"epochs": 1, "train_subset": 128, "val_fraction": 0.01}
        if args.quick
        else {"epochs": 1, "train_subset": 1500, "val_fraction": 0.02}
    )
    root = Path(tempfile.mkdtemp(prefix="sqz-explore-bench-"))
    try:
        ours = run_arm("nsga2", True, trials, train, args.seed, root)
        rand = run_arm("random", False, trials, train, args.seed, root)
        _costs._MEMO.clear()  # time the screen on fresh candidates
        probe = space_from_dict(make_space(trials, "random", train, args.seed + 1))
        screen = screen_space(probe, samples=4 if args.quick else 32, seed=args.seed + 1)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    result = {
        "hypervolume_ours": ours["hypervolume"],
        "hypervolume_random": rand["hypervolume"],
        "trained_trials": trials,
        "screen_candidates_per_s": screen.candidates_per_s,
        "ours": ours,
        "random": rand,
        "limit_model_bytes": LIMIT_BYTES,
        "reference_point": [0.0, LIMIT_BYTES],
        "train": train,
        "quick": args.quick,
    }
    atomic_write_json(args.out, result)
    print(
        f"hypervolume ours {ours['hypervolume']:.1f} vs random {rand['hypervolume']:.1f} "
        f"({trials} trained trials each; random trained {rand['trained_feasible']} feasible); "
        f"screen {screen.candidates_per_s:.1f} candidates/s"
    )
    return result


if __name__ == "__main__":
    main()
