"""Does the small SqueezeNet reach AlexNet-level accuracy on Fashion-MNIST?

Claim (after SqueezeNet, Iandola et al. 2016): ``squeezenet_small`` (187k params) comes
within 0.5 points of ``alexnet_small`` (23.3M params, 124x more) on the Fashion-MNIST test
set when both train with the same recipe and epoch budget, and reaches >= 93% there (15
epochs of ``adamw-cosine``; 92.96% at 10). Evidence: per model params,
test_accuracy (0-1, the last epoch's model on the 10k test images), epochs, seconds and
the model file, written to ``benchmarks/results/fmnist_accuracy.json``.

    .venv/bin/python benchmarks/fmnist_accuracy.py [--quick] [--epochs 15] [--recipe adamw-cosine] [--train-subset N]
        [--jobs 2] [--resume] [--out PATH]
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "benchmarks" / "results" / "fmnist_accuracy.json"
MODELS = ("squeezenet_small", "alexnet_small")


def run_model(name: str, args: argparse.Namespace) -> dict:
    """Train ``name`` into its run directory and score its last model on the test split."""
    import torch

    from squeezelab.data import load_dataset, subset
    from squeezelab.models import load_model
    from squeezelab.train import TrainConfig, evaluate, fit, read_metrics

    torch.set_num_threads(args.threads)
    config = TrainConfig(
        model=name,
        data="fashion-mnist",
        recipe=args.recipe,
        epochs=args.epochs,
        val_fraction=0.0,  # train on all 60k; the test split is scored once at the end
        train_subset=args.train_subset,
        seed=args.seed,
    )
    run_dir = Path(args.runs) / name
    for rec in fit(config, run_dir, resume=args.resume):
        print(
            f"{name} epoch {rec.epoch}/{args.epochs}: train_acc {rec.train_acc:.4f} "
            f"{rec.img_per_s:.0f} img/s",
            flush=True,
        )
    # every finished epoch, those before a resume too; seconds are their sum
    records = read_metrics(run_dir)
    seconds = sum(r.seconds for r in records)
    model, meta = load_model(run_dir / "last.safetensors")
    test = load_dataset("fashion-mnist", "test")
    if args.quick:
        test = subset(test, 300)
    scores = evaluate(model, test)
    return {
        "params": meta.extra["params"],
        "test_accuracy": scores.top1,
        "test_top5": scores.top5,
        "per_class": scores.per_class,
        "epochs": len(records),
        "seconds": seconds,
        "img_per_s": [r.img_per_s for r in records],
        "train_acc": records[-1].train_acc,
        "model_file": str(run_dir / "last.safetensors"),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="512 training images, 1 epoch (CI)")
    p.add_argument("--epochs", type=int, default=15, help="epoch budget of every model")
    # AdamW: SGD at one-cycle lr 0.1 (fmnist-fast) leaves alexnet_small, without BatchNorm,
    # at chance; AdamW + warm-up trains both models
    p.add_argument("--recipe", default="adamw-cosine", help="training recipe of every model")
    p.add_argument("--train-subset", type=int, help="train on N class-balanced images (all: omit)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resume", action="store_true", help="continue the run dirs of a killed run")
    p.add_argument("--jobs", type=int, default=2, help="models trained at once (processes)")
    p.add_argument("--threads", type=int, default=1, help="torch threads per process")
    p.add_argument("--runs", default=str(ROOT / "out" / "fmnist_accuracy"), help="run dirs")
    p.add_argument("--out", default=str(OUT), help="JSON result path")
    args = p.parse_args(argv)
    if args.quick:
        args.epochs, args.train_subset = 1, 256
    from squeezelab.io import atomic_write_json

    t0 = time.perf_counter()
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        results = dict(zip(MODELS, pool.map(run_model, MODELS, [args] * len(MODELS)), strict=True))
    sq, alex = results["squeezenet_small"], results["alexnet_small"]
    summary = {
        "benchmark": "fmnist_accuracy",
        "quick": args.quick,
        "recipe": args.recipe,
        "epochs": args.epochs,
        "train_subset": args.train_subset,
        "seed": args.seed,
        "threads": args.threads,
        "jobs": args.jobs,
        "resumed": args.resume,  # then threads, jobs and wall_seconds are this invocation's
        "host": {"machine": platform.machine(), "cpus": os.cpu_count()},
        "models": results,
        "accuracy_gap_points": 100 * (alex["test_accuracy"] - sq["test_accuracy"]),
        "param_ratio": alex["params"] / sq["params"],
        "goal_met": sq["test_accuracy"] >= 0.93
        and alex["test_accuracy"] - sq["test_accuracy"] <= 0.005
        and alex["params"] >= 50 * sq["params"],
        "wall_seconds": time.perf_counter() - t0,
    }
    atomic_write_json(args.out, summary)
    print(
        f"squeezenet_small {sq['test_accuracy']:.4f} ({sq['params']:,} params) vs "
        f"alexnet_small {alex['test_accuracy']:.4f} ({alex['params']:,} params); "
        f"gap {summary['accuracy_gap_points']:.2f} points -> {args.out}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
