"""Detector training speed on fashion-mnist-det: where an epoch's time goes, before and after.

Claim (issue 18): what is not the network (canvas generation, target assignment, the loss,
the data path, validation's decode + NMS + pycocotools) costs little next to the network's
forward and backward, so a training epoch runs at the network's speed. Evidence: for each
source tree (``--base DIR``, e.g. a ``git worktree`` of the commit before, and this one), in
a fresh process each, alternating: the seconds to generate the canvases, to set up the
trainer (anchors, target assignment), a real ``Trainer.run_epoch``'s training images/s and
validation seconds, and an instrumented pass that splits a step into data, forward, loss,
backward, optimiser and metric, and validation into forward, decode + NMS and COCO mAP.

    git worktree add --detach /tmp/h18c-base <commit>
    .venv/bin/python benchmarks/detect_speed.py --base /tmp/h18c-base [--count 1000]
    .venv/bin/python benchmarks/detect_speed.py --recipe-json '{"epochs": 12, ...}'  # a recipe
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
sys.path.insert(0, str(ROOT / "benchmarks"))

from deploy_targets import add_output_args, host, write_result  # noqa: E402


def _timed(fn, *args, **kw):
    t = time.perf_counter()
    out = fn(*args, **kw)
    return out, time.perf_counter() - t


def measure(args) -> dict:
    """One tree's figures, in this process (``squeezelab`` is whatever ``sys.path`` finds)."""
    import torch

    import squeezelab
    from squeezelab.data import augment, normalize
    from squeezelab.data.detection import load_detection
    from squeezelab.train import TrainConfig
    from squeezelab.train.config import augment_ops
    from squeezelab.train.detect import coco_map, detect, head_layout
    from squeezelab.train.loop import make_trainer
    from squeezelab.train.run import build_run_model, load_splits, load_training_split

    torch.set_num_threads(args.threads)
    row: dict = {"tree": str(Path(squeezelab.__file__).parent.parent), "threads": args.threads}
    _, row["generate_10k_s"] = _timed(
        load_detection, "fashion-mnist-det", "train", count=args.gen_count, seed=7
    )
    config = TrainConfig(
        model="squeezedet_small",
        recipe="squeezedet",
        data="fashion-mnist-det",
        train_subset=args.count,
        val_fraction=args.val / args.count,
        epochs=1,
        batch_size=args.batch_size,
        optimizer="adamw",
        lr=2e-3,
        amp="off",
        channels_last=bool(args.channels_last),
    ).resolved()
    full, row["load_train_s"] = _timed(load_training_split, config)
    (train, val), row["val_split_and_anchors_s"] = _timed(load_splits, config, full)
    model = build_run_model(config, train)
    trainer, row["setup_s"] = _timed(make_trainer, model, config, train, val)
    record = trainer.run_epoch(1)
    seen = trainer.steps_per_epoch * config.batch_size
    train_s = seen / record.img_per_s
    row.update(
        train_images=seen,
        train_img_per_s=round(record.img_per_s, 1),
        train_s=round(train_s, 2),
        validate_s=round(record.seconds - train_s, 2),
        epoch_s=round(record.seconds, 2),
        val_images=len(val),
    )
    # the same steps again, each phase timed apart (the CPU runs them in order anyway)
    task, opt, fwd = trainer.task, trainer.optimizer, trainer.forward
    g = torch.Generator().manual_seed(1)
    parts = dict.fromkeys(("data", "forward", "loss", "backward", "optimizer", "metric"), 0.0)
    steps = min(args.steps, trainer.steps_per_epoch)
    perm = torch.randperm(len(trainer.train), generator=g)
    fwd.train()
    for i in range(steps):
        t = time.perf_counter()
        idx = perm[i * config.batch_size : (i + 1) * config.batch_size]
        xb = augment(trainer.train.images[idx], augment_ops(config.augment), g)
        yb = trainer.train.labels[idx]
        x = normalize(xb, trainer.train.mean, trainer.train.std, trainer.memory_format)
        t1 = time.perf_counter()
        out = fwd(x)
        t2 = time.perf_counter()
        loss = trainer.loss(out, yb, xb)
        t3 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        t4 = time.perf_counter()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        opt.step()
        t5 = time.perf_counter()
        task.correct(out, yb)
        t6 = time.perf_counter()
        for k, dt in zip(parts, (t1 - t, t2 - t1, t3 - t2, t4 - t3, t5 - t4, t6 - t5), strict=True):
            parts[k] += dt
    total = sum(parts.values())
    row["step_split"] = {k: round(v / total, 4) for k, v in parts.items()}
    row["step_img_per_s"] = round(steps * config.batch_size / total, 1)
    # validation: network, decode + NMS, pycocotools
    num_classes, k = head_layout(model)
    model.eval()
    v = trainer.val
    t_net = t_dec = 0.0
    preds = []
    with torch.no_grad():
        for s in range(0, len(v), 128):
            x = normalize(v.images[s : s + 128], v.mean, v.std, trainer.memory_format)
            out, dt = _timed(model, x)
            t_net += dt
            found, dt = _timed(detect, out, task.anchors, num_classes, k, tuple(x.shape[2:]))
            t_dec += dt
            preds += found
    _, t_coco = _timed(coco_map, v.split, preds)
    row["validate_split_s"] = {
        "forward": round(t_net, 3),
        "decode_nms": round(t_dec, 3),
        "coco_map": round(t_coco, 3),
    }
    if args.ops:
        row["top_ops"] = top_ops(trainer, config, args)
    return row


def top_ops(trainer, config, args) -> list[dict]:
    """The few ATen ops that take most self CPU time over a few training steps."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    from squeezelab.data import normalize

    tr = trainer.train
    trainer.forward.train()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for i in range(3):
            idx = torch.arange(i * config.batch_size, (i + 1) * config.batch_size)
            x = normalize(tr.images[idx], tr.mean, tr.std, trainer.memory_format)
            out = trainer.forward(x)
            loss = trainer.loss(out, tr.labels[idx], tr.images[idx])
            trainer.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            trainer.optimizer.step()
    rows = sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)
    total = sum(e.self_cpu_time_total for e in rows) or 1
    return [
        {"op": e.key, "share": round(e.self_cpu_time_total / total, 4), "calls": e.count}
        for e in rows[: args.ops]
    ]


def recipe_run(args) -> int:
    """Train squeezedet_small with ``--recipe-json`` (resumable), then score the test split
    once; the run's per-epoch validation mAP and its test mAP go under ``recipe_run``."""
    import torch

    from squeezelab.data.detection import load_detection
    from squeezelab.models import load_model
    from squeezelab.train import TrainConfig, fit
    from squeezelab.train.detect import evaluate_detection

    torch.set_num_threads(args.threads)
    fields = json.loads(args.recipe_json)
    config = TrainConfig(model="squeezedet_small", data="fashion-mnist-det", **fields)
    run_dir = Path(args.run_dir)
    t0 = time.time()
    for rec in fit(config, run_dir, resume=True):
        print(
            f"epoch {rec.epoch}: val mAP@0.5 {rec.val_acc:.4f}, {rec.img_per_s:.0f} img/s, "
            f"{rec.seconds:.0f} s, {time.strftime('%H:%M:%S')}",
            flush=True,
        )
    history = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    model, meta = load_model(run_dir / "best.safetensors")
    test = load_detection("fashion-mnist-det", "test", count=args.test_count)
    scores = evaluate_detection(model, meta, test)
    out = json.loads(args.out.read_text()) if args.out.is_file() else {"benchmark": "detect_speed"}
    out["recipe_run"] = {
        "command": "benchmarks/detect_speed.py " + " ".join(sys.argv[1:]),
        "host": host(),
        "ran_beside_other_work": args.beside_other_work,
        "config": config.resolved().to_dict(),
        "val_map50_per_epoch": [round(r["val_acc"], 4) for r in history],
        "img_per_s_per_epoch": [round(r["img_per_s"], 1) for r in history],
        "train_seconds": round(sum(r["seconds"] for r in history), 1),
        "test_images": len(test),
        "test_map50": scores.map50,
        "test_map": scores.map,
        "test_per_class50": scores.per_class50,
    }
    print(f"test mAP@0.5 {scores.map50:.4f}, mAP@[.5:.95] {scores.map:.4f}", flush=True)
    return write_result(args.out, out, t0)


def child(root: str, args, extra: list[str]) -> dict:
    """Run :func:`measure` for the tree at ``root`` in a fresh interpreter."""
    env = dict(os.environ, PYTHONPATH=root, OMP_NUM_THREADS=str(args.threads))
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", *extra]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if done.returncode:
        raise SystemExit(f"{root}: child failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", help="source tree of the code before (a git worktree)")
    ap.add_argument("--count", type=int, default=1000, help="training canvases (128 px)")
    ap.add_argument("--val", type=int, default=50, help="validation canvases")
    ap.add_argument("--gen-count", type=int, default=10_000, help="canvases timed apart")
    ap.add_argument("--batch-size", type=int, default=64, help="training batch, images")
    ap.add_argument("--threads", type=int, default=2, help="torch threads")
    ap.add_argument("--steps", type=int, default=8, help="instrumented steps")
    ap.add_argument("--repeats", type=int, default=2, help="runs of each tree, alternating")
    ap.add_argument("--channels-last", type=int, default=1, help="1 NHWC, 0 NCHW")
    ap.add_argument("--both-layouts", action="store_true", help="this tree NCHW too")
    ap.add_argument("--ops", type=int, default=0, help="list the N costliest ATen ops")
    ap.add_argument("--recipe-json", help="TrainConfig fields (JSON) of a recipe run instead")
    ap.add_argument("--run-dir", default="/tmp/detect-recipe", help="the recipe run's directory")
    ap.add_argument("--test-count", type=int, default=2000, help="test canvases scored")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    add_output_args(ap, RESULTS / "detect_speed.json")
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(measure(args)), flush=True)
        return 0
    if args.recipe_json:
        return recipe_run(args)
    t0 = time.time()
    common = [
        f"--count={args.count}",
        f"--val={args.val}",
        f"--gen-count={args.gen_count}",
        f"--batch-size={args.batch_size}",
        f"--threads={args.threads}",
        f"--steps={args.steps}",
        f"--ops={args.ops}",
    ]
    trees = [("after", str(ROOT), ["--channels-last=1"])]
    if args.both_layouts:
        trees.append(("after_nchw", str(ROOT), ["--channels-last=0"]))
    if args.base:
        trees.insert(0, ("before", str(Path(args.base).resolve()), ["--channels-last=1"]))
    runs: dict[str, list] = {name: [] for name, _, _ in trees}
    for r in range(args.repeats):
        for name, root, extra in trees:
            runs[name].append(child(root, args, common + extra))
            print(f"{name} run {r + 1}: {runs[name][-1]['train_img_per_s']} img/s", flush=True)

    def best(name, key):
        return max(x[key] for x in runs[name]) if name in runs else None

    out = {
        "benchmark": "detect_speed",
        "claim": "a detector training epoch runs at the network's speed (issue 18)",
        "host": host(),
        "ran_beside_other_work": args.beside_other_work,
        "command": "benchmarks/detect_speed.py " + " ".join(argv or sys.argv[1:]),
        "setup": {
            "model": "squeezedet_small",
            "canvas": 128,
            "train_canvases": args.count,
            "val_canvases": args.val,
            "batch_size": args.batch_size,
            "threads": args.threads,
            "amp": "off",
        },
        "runs": runs,
        "best_train_img_per_s": {name: best(name, "train_img_per_s") for name in runs},
    }
    if args.out.is_file():  # a recipe run's section stays
        kept = json.loads(args.out.read_text()).get("recipe_run")
        if kept:
            out["recipe_run"] = kept
    if args.base:
        out["ratio_train_img_per_s"] = round(
            best("after", "train_img_per_s") / best("before", "train_img_per_s"), 3
        )
        out["ratio_epoch_s"] = round(
            min(x["epoch_s"] for x in runs["before"]) / min(x["epoch_s"] for x in runs["after"]), 3
        )
    return write_result(args.out, out, t0)


if __name__ == "__main__":
    raise SystemExit(main())
