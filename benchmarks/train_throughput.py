"""How much faster is squeezelab's trainer than a plain PyTorch loop on these CPUs?

Claim: on squeezenet_small + Fashion-MNIST our trainer (uint8 data in one tensor, batched
augmentation, channels_last, bf16 autocast where the CPU has native bf16) trains >= 2x the
images/s of a plain loop (DataLoader over a float TensorDataset, fp32, NCHW, eager) with
the same model, optimiser, schedule and batch, at equal accuracy after the same epochs.
Evidence: both run in this process in interleaved rounds (so other processes' load falls
on both alike); medians of images/s by wall clock and by CPU time, and test accuracy,
in ``benchmarks/results/train_throughput.json``.

    .venv/bin/python benchmarks/train_throughput.py [--quick] [--images 2048] [--rounds 3] [--threads 2]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from squeezelab.data import load_dataset, normalize, subset
from squeezelab.io import atomic_write_json
from squeezelab.train import TrainConfig, evaluate
from squeezelab.train.loop import amp_dtype, make_trainer
from squeezelab.train.run import build_run_model, load_splits
from squeezelab.train.schedule import lr_at, make_optimizer

OUT = Path(__file__).parent / "results" / "train_throughput.json"


def plain_epoch(model, opt, loader, config, epoch, steps) -> None:
    """The baseline: DataLoader batches, fp32, contiguous, eager, same schedule and loss."""
    model.train()
    for i, (x, y) in enumerate(loader):
        step = (epoch - 1) * steps + i
        for g in opt.param_groups:
            g["lr"] = lr_at(step, config.epochs * steps, config.lr, config.schedule)
        loss = F.cross_entropy(model(x), y, label_smoothing=config.label_smoothing)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()


def timed(fn) -> tuple[float, float]:
    w, c = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - w, time.process_time() - c


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="256 images, 1 round (CI)")
    p.add_argument("--images", type=int, default=2048, help="training images per epoch")
    p.add_argument("--rounds", type=int, default=3, help="interleaved epochs of each loop")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--threads", type=int, default=2, help="torch threads")
    p.add_argument("--out", default=str(OUT), help="JSON result path")
    args = p.parse_args(argv)
    if args.quick:
        args.images, args.rounds = 256, 1
    torch.set_num_threads(args.threads)
    from torch.utils.data import DataLoader, TensorDataset

    config = TrainConfig(
        model="squeezenet_small",
        data="fashion-mnist",
        recipe="fmnist-fast",
        epochs=args.rounds,
        batch_size=args.batch_size,
        train_subset=args.images,
        val_fraction=0.1,
        device="cpu",
    ).resolved()
    train, _ = load_splits(config)
    test = subset(load_dataset("fashion-mnist", "test"), 300 if args.quick else 2000)
    steps = len(train) // config.batch_size

    ours_model = build_run_model(config, train)
    trainer = make_trainer(ours_model, config, train, None)
    plain_model = build_run_model(config, train)  # same seed, same initial weights
    plain_opt = make_optimizer(plain_model, config)
    xs = normalize(train.images, train.mean, train.std)
    g = torch.Generator().manual_seed(0)
    loader = DataLoader(
        TensorDataset(xs, train.labels),
        batch_size=config.batch_size,
        shuffle=True,
        drop_last=True,
        generator=g,
    )

    rows = []
    for r in range(1, args.rounds + 1):
        pw, pc = timed(lambda r=r: plain_epoch(plain_model, plain_opt, loader, config, r, steps))
        ow, oc = timed(lambda r=r: trainer.run_epoch(r))
        n = steps * config.batch_size
        rows.append(
            {
                "round": r,
                "plain_wall_img_per_s": n / pw,
                "ours_wall_img_per_s": n / ow,
                "plain_cpu_img_per_s": n / pc,
                "ours_cpu_img_per_s": n / oc,
            }
        )
        print(rows[-1], flush=True)

    def med(key):
        return statistics.median(x[key] for x in rows)

    ours, plain = med("ours_wall_img_per_s"), med("plain_wall_img_per_s")
    ours_model.to(memory_format=torch.contiguous_format)
    result = {
        "benchmark": "train_throughput",
        "quick": args.quick,
        "model": "squeezenet_small",
        "data": "fashion-mnist",
        "images_per_epoch": steps * config.batch_size,
        "rounds": args.rounds,
        "batch_size": config.batch_size,
        "threads": args.threads,
        "ours": {
            "channels_last": config.channels_last,
            "autocast": str(amp_dtype(config.amp, torch.device("cpu"))),
            "augment": config.augment,
        },
        "cpu_native_bf16": bool(torch.ops.mkldnn._is_mkldnn_bf16_supported()),
        "host": {
            "machine": platform.machine(),
            "cpus": os.cpu_count(),
            "capability": torch.backends.cpu.get_cpu_capability(),
        },
        "ours_img_per_s": ours,
        "plain_img_per_s": plain,
        "ratio": ours / plain,
        "ratio_cpu_time": med("ours_cpu_img_per_s") / med("plain_cpu_img_per_s"),
        "ours_test_accuracy": evaluate(ours_model, test).top1,
        "plain_test_accuracy": evaluate(plain_model, test).top1,
        "rows": rows,
    }
    atomic_write_json(args.out, result)
    print(f"ours {ours:.0f} img/s vs plain {plain:.0f} img/s: {ours / plain:.2f}x -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
