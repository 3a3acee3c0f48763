"""Table 2's pruned row with its due: at what sparsity squeezenet_small keeps its accuracy.

Claim (Han et al. 2016, as quoted by Iandola et al. 2016, Table 2): Deep Compression prunes
SqueezeNet to 33% of its weights (67% sparsity) and shares them at 6 bits with no loss
of accuracy. Evidence here: squeezenet_small (the time-to-accuracy design) trained once
with ``fmnist-tta`` on 54,000 Fashion-MNIST images (6,000 held out for validation), then
iterative magnitude pruning through rising sparsities, each round fine-tuned on the
54,000 (or ``--finetune-subset`` of them, class-balanced); per level the validation accuracy (every epoch: the recovery) and the bytes of a
6-bit ``.sqz`` probe; the highest level within ``--tolerance`` of the dense model's
validation accuracy chosen; the first level past it fine-tuned again (does more
fine-tuning move the answer?); the chosen level shared at 8/6/4 bits with centroid
fine-tuning. The test split is scored once per artefact, at the end, to report.

    .venv/bin/python benchmarks/prune_sweep.py [--quick] [--out PATH] [--beside-other-work]

Resumable: the base run (``fit``'s run directory), each pruned level and each shared file
are saved under ``--runs``; a rerun with the same settings skips what is done.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import sys
import time
from pathlib import Path

from deploy_targets import add_output_args, host, versions, write_result
from time_to_accuracy import DESIGN

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "benchmarks" / "results" / "prune_sweep.json"
LEVELS = "0.33,0.5,0.6,0.67,0.75,0.8"
PAPER_SPARSITY = 0.67  # the SqueezeNet paper's "33% of the weights kept"


def parse(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="synthetic data, one epoch each (CI)")
    p.add_argument("--levels", default=LEVELS, help="sparsities pruned to in turn, rising")
    # the budgets: (flag, type, default, help), one row each
    for flag, kind, default, text in (
        ("--base-epochs", int, None, "epochs of the base model (default: fmnist-tta's)"),
        ("--finetune-epochs", int, 2, "fine-tuning epochs per pruning round"),
        ("--finetune-subset", int, None, "fine-tune on N class-balanced images (default: 54,000)"),
        ("--more-epochs", int, 2, "extra fine-tuning epochs at the first level past the answer"),
        ("--finetune-lr", float, 0.01, "fine-tuning peak lr (cosine, no warm-up)"),
        ("--centroid-epochs", int, 1, "centroid fine-tuning epochs per shared width"),
        (
            "--tolerance",
            float,
            0.005,
            "allowed validation top-1 loss, a fraction (0.005 = 0.5 pts)",
        ),
    ):
        p.add_argument(flag, type=kind, default=default, help=text)
    p.add_argument("--bits", default="8,6,4", help="index widths of the chosen level's files")
    p.add_argument("--threads", type=int, default=2, help="torch threads")
    p.add_argument("--runs", default=None, help="resume directory (default out/prune_sweep)")
    add_output_args(p, OUT)
    args = p.parse_args(argv)
    if args.quick:
        args.base_epochs, args.finetune_epochs, args.more_epochs = 1, 1, 1
        args.levels = "0.33,0.67" if args.levels == LEVELS else args.levels
    try:
        args.levels = [float(s) for s in args.levels.split(",")]
        args.bits = [int(b) for b in args.bits.split(",")]
    except ValueError as e:
        p.error(f"--levels / --bits: {e}; allowed comma lists of numbers")
    if args.levels != sorted(set(args.levels)) or not all(0 < s < 1 for s in args.levels):
        p.error(f"--levels {args.levels}: allowed rising fractions in (0, 1)")
    if not all(2 <= b <= 8 for b in args.bits):
        p.error(f"--bits {args.bits}: allowed index widths 2..8")
    runs = args.runs or (Path(args.out).parent / "prune_sweep_runs" if args.quick else None)
    args.runs = Path(runs or ROOT / "out" / "prune_sweep")
    return args


class Pace:
    """Training images done against the plan: the ETA line after every epoch."""

    def __init__(self, planned_images: int, epoch_images: dict[str, int]):
        self.planned, self.per_epoch = planned_images, epoch_images
        self.done, self.seconds = 0, 0.0

    def epoch(self, what: str, rec) -> str:
        images = self.per_epoch["base" if what == "base" else "tune"]
        self.done, self.seconds = self.done + images, self.seconds + rec.seconds
        rate = self.done / self.seconds if self.seconds else 0.0
        eta = (self.planned - self.done) / rate / 60 if rate else float("nan")
        val = "" if rec.val_acc is None else f"  val {rec.val_acc:.2%}"
        return (
            f"{time.strftime('%H:%M:%S')} {what} epoch {rec.epoch}: loss {rec.train_loss:.3f}"
            f"{val}  {rec.img_per_s:,.0f} img/s  planned training left ~{max(0, eta):.0f} min"
        )

    def skip(self, images: int) -> None:
        self.planned -= images  # done by an earlier run: not part of this one's ETA


def log(text: str) -> None:
    print(text, flush=True)


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def _read(path: Path, key: dict) -> dict | None:
    """A saved stage's record if it was made with ``key`` (the settings it depends on)."""
    if not path.is_file():
        return None
    info = json.loads(path.read_text())
    return info if info.get("key") == key else None


def _epochs(records) -> list[dict]:
    return [
        {
            "epoch": r.epoch,
            "train_loss": round(r.train_loss, 4),
            "val_accuracy": r.val_acc,
            "img_per_s": round(r.img_per_s),
        }
        for r in records
    ]


def prune_level(model, sparsity, config, data, pace: Pace, what: str) -> list:
    """Prune ``model`` in place to ``sparsity`` (one round) and fine-tune it; the epochs."""
    from squeezelab.compress import FinetuneStep
    from squeezelab.compress.prune import prune_iterative

    records = []
    for step in prune_iterative(model, sparsity, steps=1, finetune_config=config, data=data):
        if isinstance(step, FinetuneStep):
            records.append(step.record)
            log(pace.epoch(what, step.record))
    return records


def pruned_stage(start, sparsity, config, tag: str, key: dict, ctx: dict):
    """``start`` pruned to ``sparsity`` and fine-tuned by ``config`` (a copy), saved as ``tag``.

    The saved one is returned instead when it was made with ``key``. Returns ``(model,
    info, path)``; ``info["finetune_epochs"]`` holds the epochs' records.
    """
    from squeezelab.io import atomic_write_json
    from squeezelab.models import load_model, save_model

    path, rec_path = ctx["runs"] / f"{tag}.safetensors", ctx["runs"] / f"{tag}.json"
    info = _read(rec_path, key)
    if info is not None and path.is_file():
        ctx["pace"].skip(config.epochs * ctx["pace"].per_epoch["tune"])
        ctx["reused"].append(tag)
        return load_model(path)[0], info, path
    model = copy.deepcopy(start)
    records = prune_level(model, sparsity, config, ctx["data"], ctx["pace"], tag)
    save_model(path, model, ctx["meta"].replace(extra={"pruned_to": sparsity}))
    info = {"key": key, "finetune_epochs": _epochs(records)}
    atomic_write_json(rec_path, info)
    return model, info, path


def probe(model, meta, bits: int, path: Path, val, baseline: int, **kwargs) -> dict:
    """``model`` (already pruned) shared at ``bits`` into a ``.sqz`` file; bytes, val top-1."""
    from squeezelab.compress import compress_model, write_sqz
    from squeezelab.models import load_model
    from squeezelab.train import evaluate

    c = compress_model(model, meta, None, bits, fp16_plain=True, **kwargs)
    size = write_sqz(path, c.data)
    acc = evaluate(load_model(path)[0], val).top1  # the decoded file, not the module
    a = c.accounting
    return {
        "bits": bits,
        "sparsity": c.header["compression"]["sparsity"],
        "centroid_epochs": kwargs["finetune"].epochs if kwargs.get("finetune") else 0,
        "bytes": size,
        "reduction": baseline / size,
        "val_accuracy": acc,
        "stream_overhead": a.stream_bytes / a.stream_entropy_bytes - 1,
        "sqz_file": _rel(path),
    }


def verdict(rows: list[dict], more: dict | None, tol: float, se_points: float) -> dict:
    """Held / not held / not resolved for "no accuracy lost at 67%", with what decides it.

    A 67% level outside the tolerance is "not held" only when the extra fine-tuning at the
    first failing level neither brought that level within it nor gained more than one
    standard error of the validation accuracy (``se_points``): otherwise it was still
    recovering, and the budget, not the sparsity, may be what failed.
    """
    row = next((r for r in rows if r["sparsity"] == PAPER_SPARSITY), None)
    if row is None:
        return {"verdict": "not resolved", "why": "67% is not among the levels"}
    loss = row["val_loss_points"]
    out = {"val_loss_points": loss}
    if loss <= 100 * tol:
        return {"verdict": "held", **out, "why": f"within {100 * tol:.1f} points"}
    if more is None or more["sparsity"] > PAPER_SPARSITY:
        return {"verdict": "not resolved", **out, "why": "no extra fine-tuning at or below 67%"}
    gain = 100 * (more["val_accuracy_after"] - more["val_accuracy_before"])
    out["more_gain_points"] = gain
    at = f"{more['extra_epochs']} more epoch(s) at {more['sparsity']:.0%}"
    if more["passes_after"]:
        return {"verdict": "not resolved", **out, "why": f"{at} brought it within the tolerance"}
    if gain > se_points:
        why = f"{at} still gained {gain:.2f} points (> one standard error, {se_points:.2f})"
        return {"verdict": "not resolved", **out, "why": why}
    why = f"{at} gained {gain:+.2f} points (<= one standard error, {se_points:.2f})"
    return {"verdict": "not held", **out, "why": why}


def main(argv=None) -> int:
    args = parse(argv)
    import torch

    from squeezelab.compress.accounting import reference_fp32_bytes
    from squeezelab.data import load_dataset, split_train_val
    from squeezelab.io import atomic_write_json
    from squeezelab.models import load_model, model_info
    from squeezelab.train import TrainConfig, evaluate, fit, load_training_split

    torch.set_num_threads(args.threads)
    t0 = time.time()
    data = "synthetic" if args.quick else "fashion-mnist"
    spec = model_info("squeezenet_small").spec.replace(**DESIGN)
    base_cfg = TrainConfig(spec=spec, data=data, recipe="fmnist-tta", epochs=args.base_epochs)
    base_epochs = base_cfg.resolved().epochs
    finetune = TrainConfig(
        spec=spec,
        data=data,
        recipe="fmnist-tta",
        epochs=args.finetune_epochs,
        lr=args.finetune_lr,
        schedule="cosine",
        warmup_epochs=0.0,
        train_subset=args.finetune_subset,
    )
    full = load_training_split(base_cfg)  # read once; every stage carves the same val split
    train, val = split_train_val(full, base_cfg.val_fraction, seed=0)
    test = load_dataset(data, "test")
    n, m = len(train), min(args.finetune_subset or len(train), len(train))
    tuning = len(args.levels) * args.finetune_epochs + args.more_epochs
    tuning += len(args.bits) * args.centroid_epochs
    planned = base_epochs * n + tuning * m
    pace = Pace(planned, {"base": n, "tune": m})
    log(
        f"plan: {base_epochs} base epochs of {n:,} training images, {tuning} fine-tuning "
        f"epochs of {m:,} ({planned:,} images; ~{planned / 1000 / 60:.0f} min at 1,000 "
        f"img/s, the quiet 2-thread pace), validation on {len(val):,}, test on {len(test):,}"
    )
    args.runs.mkdir(parents=True, exist_ok=True)
    baseline = reference_fp32_bytes("alexnet_small")
    out = Path(args.out)
    settings = {
        "data": data,
        "design": DESIGN,
        "base_recipe": "fmnist-tta",
        "base_epochs": base_epochs,
        "levels": args.levels,
        "finetune": {
            "epochs_per_round": args.finetune_epochs,
            "images_per_epoch": m,
            "lr": args.finetune_lr,
            "schedule": "cosine, no warm-up, restarted each round",
            "seeds": "round i (1-based) seed i, the extra fine-tuning len(levels) + 1",
            "recipe": "fmnist-tta (SGD nesterov, batch 128, label smoothing 0.1, flips)",
        },
        "more_epochs": args.more_epochs,
        "centroid_epochs": args.centroid_epochs,
        "bits": args.bits,
        "tolerance": args.tolerance,
        "threads": args.threads,
        "runs": _rel(args.runs),
    }
    # what every saved stage depends on besides its own place in the chain
    depends = {"data": data, "design": DESIGN, "base_epochs": base_epochs, **settings["finetune"]}
    result = {
        "benchmark": "prune_sweep",
        "claim": "Deep Compression prunes SqueezeNet to 67% sparsity with no accuracy lost "
        f"(here: within {100 * args.tolerance:.1f} validation points)",
        "complete": False,
        "quick": args.quick,
        "settings": settings,
        "baseline": {"model": "alexnet_small", "fp32_bytes": baseline},
        "reused": [],
        "host": host(),
        "versions": versions(("torch",)),
        "ran_beside_other_work": args.beside_other_work,
        "command": " ".join(
            ["benchmarks/prune_sweep.py", *(sys.argv[1:] if argv is None else argv)]
        ),
    }

    def save() -> None:
        write_result(out, result, t0)

    # 1. the base: fit's own resumable run directory
    base_dir = args.runs / "base"
    done_before = 0
    if (base_dir / "metrics.jsonl").is_file():
        done_before = len((base_dir / "metrics.jsonl").read_text().splitlines())
    pace.skip(min(done_before, base_epochs) * n)
    for rec in fit(base_cfg, base_dir, resume=True, data=full):
        log(pace.epoch("base", rec))
    if done_before:
        result["reused"].append(f"base ({done_before} epochs)")
    base_file = base_dir / "last.safetensors"
    model, meta = load_model(base_file)
    base_val = evaluate(model, val).top1
    fp32_bytes = 4 * sum(p.numel() for p in model.parameters())
    result["base"] = {
        "model_file": _rel(base_file),
        "params": fp32_bytes // 4,
        "fp32_bytes": fp32_bytes,
        "reduction": baseline / fp32_bytes,
        "val_accuracy": base_val,
        "epochs": [
            json.loads(line) for line in (base_dir / "metrics.jsonl").read_text().splitlines()
        ],
    }
    log(f"base: val {base_val:.2%}, {fp32_bytes:,} fp32 bytes")
    save()

    # 2. iterative pruning, level after level; each level continues from the previous one
    ctx = {"runs": args.runs, "pace": pace, "reused": result["reused"], "data": full, "meta": meta}
    rows, models, chain = [], {}, []
    current = model
    for s in args.levels:
        chain.append(s)
        tag = f"s{round(100 * s)}"
        key = {"chain": list(chain), **depends}
        # each round its own seed: another subset (with --finetune-subset) and data order
        config = TrainConfig(**{**finetune.to_dict(), "seed": len(chain)})
        current, info, path = pruned_stage(current, s, config, tag, key, ctx)
        models[s] = current
        acc = evaluate(current, val).top1
        row = {
            "sparsity": s,
            "val_accuracy": acc,
            "val_loss_points": 100 * (base_val - acc),
            "within_tolerance": base_val - acc <= args.tolerance,
            "finetune_epochs": info["finetune_epochs"],
            "model_file": _rel(path),
            "probe_6bit": probe(current, meta, 6, args.runs / f"{tag}_6bit.sqz", val, baseline),
        }
        rows.append(row)
        result["rows"] = rows
        log(
            f"{s:.0%}: val {acc:.2%} ({row['val_loss_points']:+.2f} pts), 6-bit probe "
            f"{row['probe_6bit']['bytes']:,} bytes, val {row['probe_6bit']['val_accuracy']:.2%}"
        )
        save()

    # 3. the answer: the level before the first that loses more than the tolerance
    first_fail = next((r for r in rows if not r["within_tolerance"]), None)
    passing = rows[: rows.index(first_fail)] if first_fail else rows
    chosen = passing[-1]["sparsity"] if passing else None
    result["chosen_sparsity"] = chosen
    result["first_failing_sparsity"] = first_fail and first_fail["sparsity"]

    # 4. more fine-tuning where the answer is decided: the first failing level (or the
    # chosen one when all pass); if it passes after more epochs, the answer was starved
    target = first_fail["sparsity"] if first_fail else chosen
    more = None
    if target is not None and args.more_epochs > 0:
        tag = f"s{round(100 * target)}_more"
        key = {
            "chain": chain[: args.levels.index(target) + 1],
            "more": args.more_epochs,
            **depends,
        }
        config = TrainConfig(
            **{**finetune.to_dict(), "epochs": args.more_epochs, "seed": len(args.levels) + 1}
        )
        extra, info, path = pruned_stage(models[target], target, config, tag, key, ctx)
        acc = evaluate(extra, val).top1
        before = next(r for r in rows if r["sparsity"] == target)["val_accuracy"]
        passes = base_val - acc <= args.tolerance
        more = {
            "sparsity": target,
            "extra_epochs": args.more_epochs,
            "val_accuracy_before": before,
            "val_accuracy_after": acc,
            "val_loss_points_after": 100 * (base_val - acc),
            "passes_after": passes,
            "answer_changes": passes != (target == chosen),
            "finetune_epochs": info["finetune_epochs"],
            "model_file": _rel(path),
        }
        models["more"] = extra
        log(f"more at {target:.0%}: val {before:.2%} -> {acc:.2%}, passes {passes}")
    result["more_finetune"] = more
    save()

    # 5. the chosen level's files at each width, centroids fine-tuned
    share_at = chosen if chosen is not None else args.levels[0]
    centroids = TrainConfig(**{**finetune.to_dict(), "epochs": args.centroid_epochs})
    shared = []
    for bits in args.bits:
        tag = f"s{round(100 * share_at)}_{bits}bit"
        sqz = out.parent / f"{out.stem}_{tag}.sqz"
        rec_path = args.runs / f"{tag}.json"
        key = {
            "chain": chain[: args.levels.index(share_at) + 1],
            "bits": bits,
            "centroid_epochs": args.centroid_epochs,
            "sqz": _rel(sqz),
            **depends,
        }
        info = _read(rec_path, key)
        if info is not None and sqz.is_file() and sqz.stat().st_size == info["row"]["bytes"]:
            row = info["row"]
            pace.skip(args.centroid_epochs * m)
            result["reused"].append(tag)
        else:
            row = probe(
                models[share_at],
                meta,
                bits,
                sqz,
                val,
                baseline,
                finetune=centroids,
                finetune_data=full,
            )
            atomic_write_json(rec_path, {"key": key, "row": row})
        row["val_loss_points"] = 100 * (base_val - row["val_accuracy"])
        shared.append(row)
        log(
            f"{share_at:.0%} {bits}-bit: {row['bytes']:,} bytes ({row['reduction']:,.0f}x), "
            f"val {row['val_accuracy']:.2%}"
        )
    result["shared"] = shared
    save()

    # 6. the test split, once per artefact, to report (nothing above was chosen by it)
    base_test = evaluate(model, test).top1
    result["base"]["test_accuracy"] = base_test
    for row in rows:
        row["test_accuracy"] = evaluate(models[row["sparsity"]], test).top1
        row["test_loss_points"] = 100 * (base_test - row["test_accuracy"])
        p = row["probe_6bit"]
        p["test_accuracy"] = evaluate(load_model(ROOT / p["sqz_file"])[0], test).top1
    if more is not None:
        more["test_accuracy_after"] = evaluate(models["more"], test).top1
    for row in shared:
        row["test_accuracy"] = evaluate(load_model(ROOT / row["sqz_file"])[0], test).top1
        row["test_loss_points"] = 100 * (base_test - row["test_accuracy"])
    # one accuracy's binomial standard error, in points: the resolution of these figures
    result["standard_error_points"] = {
        name: round(100 * math.sqrt(base * (1 - base) / len(ds)), 2)
        for name, base, ds in (("val", base_val, val), ("test", base_test, test))
    }
    result["paper_67"] = verdict(rows, more, args.tolerance, result["standard_error_points"]["val"])
    result["complete"] = True
    save()
    log(f"at {PAPER_SPARSITY:.0%}: {result['paper_67']['verdict']} ({result['paper_67']['why']})")
    plot(result, out.with_suffix(".png"))
    return 0


def plot(result: dict, path: Path) -> None:
    """Validation and test accuracy against sparsity, the 6-bit file's bytes on a second axis."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from squeezelab.io import atomic_path

    rows, base = result["rows"], result["base"]
    x = [0.0] + [100 * r["sparsity"] for r in rows]
    fig, ax = plt.subplots(figsize=(6.4, 4))
    for split, style in (("val", "o-"), ("test", "s--")):
        y = [100 * base[f"{split}_accuracy"]] + [100 * r[f"{split}_accuracy"] for r in rows]
        ax.plot(x, y, style, label=f"{split} top-1 (fp32, pruned)")
    tol = 100 * (base["val_accuracy"] - result["settings"]["tolerance"])
    ax.axhline(tol, color="grey", lw=0.8, ls=":", label="dense val - tolerance")
    ax.set_xlabel("sparsity (% of conv/linear weights removed)")
    ax.set_ylabel("top-1 (%)")
    ax2 = ax.twinx()
    ax2.plot(x[1:], [r["probe_6bit"]["bytes"] / 1000 for r in rows], "^:", color="tab:green")
    ax2.set_ylabel("6-bit .sqz file (kB)", color="tab:green")
    ax.legend(loc="lower left", fontsize=8)
    ax.set_title("squeezenet_small: iterative magnitude pruning")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    print(f"wrote {path}", flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
