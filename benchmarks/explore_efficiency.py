"""Analytic screening + NSGA-II against plain random search, at equal trained trials;
multi-fidelity search against fixed-budget trials, at equal wall time.

Claim (squeezelab issue 7): costing every candidate before training (milliseconds, no
data) and spending training only on candidates that fit the device finds a larger
hypervolume of (accuracy, model_bytes) than random search that trains whatever it
draws, for the same number of trained trials, on a Fashion-MNIST subset. Also reports
how many candidates per second the analytic screen costs.

Claim (issue 14, point 2): in the same wall time, a multi-fidelity search (ASHA: many
candidates trained one epoch of 5,000 images, a trial promoted from a rung only once
``eta`` trials reached it and it is in their top third, paused ones resumed from their
checkpoints; explore/fidelity.py) chooses a better design than today's fixed-budget
trials (every trial one epoch of 5,000 images, as the design-small preset): the
validation accuracy of each arm's chosen design after the same retraining. Both arms
maximise accuracy under an int8 flash limit (TPE, the single-objective design job). The
fixed arm runs first; its measured seconds per trial (one epoch) size the multi arm's
top rung to the share (``fidelity.affordable_epochs``: one full bracket must fit).

    .venv/bin/python benchmarks/explore_efficiency.py [--quick] [--part all|screen|fidelity]
        [--out PATH] [--share-s S] [--seed N] [--partial PATH] [--beside-other-work]

``--part fidelity`` adds the multi-fidelity figures to an existing JSON, keeping the rest
(``--seed`` other than 0: under ``multi_fidelity_seed<N>``). ``--partial PATH`` keeps each
finished arm there, so a killed run resumes after it. Figures: the JSON's
``multi_fidelity`` and docs/explore.md. Measured (540 s share, seed 0, load 9-12): the
claim does NOT hold at this budget (fixed 78.7% vs multi-fidelity 53.2% after retraining).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from squeezelab.explore import costs as _costs
from squeezelab.explore import hypervolume, load_study_results, run_study, space_from_dict
from squeezelab.explore.screen import screen_space
from squeezelab.io import atomic_write_json

sys.path.insert(0, str(Path(__file__).resolve().parent))
from deploy_targets import host  # noqa: E402

LIMIT_BYTES = 60_000  # int8 flash budget: about half of this space does not fit
# the design-small preset's recipe (TrainConfig defaults: one-cycle SGD), pinned here
RECIPE = {
    "data": "fashion-mnist",
    "optimizer": "sgd",
    "lr": 0.1,
    "schedule": "onecycle",
    "batch_size": 128,
    "weight_decay": 5e-4,
    "label_smoothing": 0.1,
    "val_fraction": 0.05,
    "seed": 0,
}
# fixed budget: today's design-small trials; multi-fidelity: the same epoch, rungs at
# 1, 3, ... up to what the share affords (train.epochs set from the fixed arm's speed)
FIXED = {"epochs": 1, "train_subset": 5000}
MULTI = {"train_subset": 5000}
FIDELITY = {"min_epochs": 1, "eta": 3}  # min_at_rung: eta (the default)
RETRAIN = {"epochs": 2, "train_subset": 15000}  # the same for both arms' chosen design


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


class _OutOfTime(Exception):
    pass


def fidelity_arm(
    name: str, train: dict, fidelity, seconds: float, retrain: dict, data, root: Path, seed: int
) -> dict:
    """One arm: search for ``seconds`` (stopped within the epoch after), then retrain the
    chosen design (best validation accuracy) with ``retrain``."""
    from squeezelab.explore import train_candidate
    from squeezelab.explore.fidelity import continuations
    from squeezelab.explore.space import Candidate
    from squeezelab.explore.study import open_study

    raw = make_space(1000, "tpe", {**RECIPE, **train}, seed)
    raw["name"] = f"mf-{name}"
    raw["objectives"] = ["accuracy"]
    if fidelity:
        raw["search"]["fidelity"] = fidelity
    space = space_from_dict(raw)
    out = root / space.name
    t0 = time.perf_counter()
    deadline = t0 + seconds

    def on_trial(p) -> None:
        if time.perf_counter() > deadline and p.trained >= 1:
            raise _OutOfTime

    fn = functools.partial(train_candidate, data=data)
    with contextlib.suppress(_OutOfTime):  # the budget is spent: keep what is trained
        run_study(space, out, train_fn=fn, on_trial=on_trial)
    search_s = time.perf_counter() - t0
    load_end = os.getloadavg()[0]
    res = load_study_results(out)
    trained = [t for t in res.trials if t.state == "trained"]
    best = res.pareto_trials[0]
    epochs = sorted(len(t.epoch_accuracy) for t in trained)
    # every epoch trained once: a promoted trial resumes, its origin is its duplicate
    images = sum(epochs) * train["train_subset"]
    t1 = time.perf_counter()
    recs = list(train_candidate(Candidate(best.arch), {**RECIPE, **retrain}, out / "retrain", data))
    return {
        "search_seconds": round(search_s, 1),
        "trained_trials": len(trained),
        "stopped_trials": res.counts.stopped,
        "promotions": len(continuations(open_study(None, None, None, out)[0].get_trials())),
        "trials_at_full_budget": sum(1 for t in trained if not t.stopped),
        "trained_epochs_per_trial": {str(e): epochs.count(e) for e in sorted(set(epochs))},
        "search_images": images,
        "seconds_per_epoch": round(search_s / max(1, sum(epochs)), 2),
        "load_average_after_search": round(load_end, 2),
        "chosen_trial": best.number,
        "chosen_params": dict(best.params),
        "chosen_search_val_accuracy": best.accuracy,
        "chosen_search_epochs": len(best.epoch_accuracy),
        "chosen_model_bytes": best.metrics.get("model_bytes"),
        "retrained_val_accuracy": recs[-1].val_acc,
        "retrain_seconds": round(time.perf_counter() - t1, 1),
        "train": {**train, "epochs": space.train["epochs"]},
        "fidelity": space.fidelity.to_dict() if space.fidelity else None,
    }


def _cached_arm(partial: Path | None, key: str, run) -> dict:
    """``run()``'s result, kept in ``partial`` under ``key`` (a killed run resumes after it)."""
    done = json.loads(partial.read_text()) if partial and partial.is_file() else {}
    if key in done:
        print(f"{key}: reused from {partial}")
        return done[key]
    got = run()
    if partial:
        atomic_write_json(partial, {**done, key: got})
    return got


def fidelity_part(quick: bool, seconds: float | None, seed: int, partial: Path | None) -> dict:
    """Multi-fidelity against fixed-budget trials at equal search wall time."""
    from squeezelab.explore.fidelity import affordable_epochs
    from squeezelab.train import TrainConfig, load_training_split

    seconds = seconds or (12.0 if quick else 600.0)
    data = load_training_split(TrainConfig(data="fashion-mnist"))
    root = Path(tempfile.mkdtemp(prefix="sqz-fidelity-bench-"))
    retrain = {"epochs": 1, "train_subset": 500} if quick else RETRAIN
    fixed_train = {"epochs": 1, "train_subset": 500} if quick else FIXED
    multi_train = {"train_subset": 300} if quick else MULTI
    tag = f"s{seconds:g}-seed{seed}-{'quick' if quick else 'full'}"
    try:
        fixed = _cached_arm(
            partial,
            f"fixed-{tag}",
            lambda: fidelity_arm("fixed", fixed_train, None, seconds, retrain, data, root, seed),
        )
        # the share in epochs of the multi arm, from the fixed arm's seconds per epoch
        share_epochs = seconds / fixed["seconds_per_epoch"]
        top = affordable_epochs(FIDELITY["min_epochs"], FIDELITY["eta"], share_epochs)
        multi_train = {**multi_train, "epochs": top}
        multi = _cached_arm(
            partial,
            f"multi-{tag}",
            lambda: fidelity_arm(
                "multi", multi_train, FIDELITY, seconds, retrain, data, root, seed
            ),
        )
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return {
        "search_seconds_budget": seconds,
        "seed": seed,
        "share_epochs": round(share_epochs, 1),
        "top_rung_rule": "largest min_epochs*eta**s whose full bracket fits the share in "
        "epochs (share / the fixed arm's seconds per epoch)",
        "retrain": retrain,
        "recipe": RECIPE,
        "limit_model_bytes": LIMIT_BYTES,
        "fixed": fixed,
        "multi_fidelity": multi,
        "retrained_val_accuracy_fixed": fixed["retrained_val_accuracy"],
        "retrained_val_accuracy_multi_fidelity": multi["retrained_val_accuracy"],
        "quick": quick,
    }


def screen_part(args, trials: int) -> dict:
    """Analytic screening + NSGA-II against random search at equal trained trials."""
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
    print(
        f"hypervolume ours {ours['hypervolume']:.1f} vs random {rand['hypervolume']:.1f} "
        f"({trials} trained trials each; random trained {rand['trained_feasible']} feasible); "
        f"screen {screen.candidates_per_s:.1f} candidates/s"
    )
    return {
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


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="tiny budget, proves the script runs")
    ap.add_argument("--out", default="benchmarks/results/explore_efficiency.json")
    ap.add_argument("--trials", type=int, help="trained trials per arm (default 4; quick 2)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--part",
        choices=("all", "screen", "fidelity"),
        default="all",
        help="which comparison to run; the others' figures are kept from --out",
    )
    ap.add_argument("--share-s", type=float, help="search seconds per arm (default 600)")
    ap.add_argument("--partial", type=Path, help="keep finished arms here (resumable)")
    ap.add_argument(
        "--threads", type=int, help="torch CPU threads (1 beside other work: no OpenMP spinning)"
    )
    ap.add_argument(
        "--beside-other-work",
        action="store_true",
        help="record that other jobs shared the CPUs during the run",
    )
    args = ap.parse_args(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    trials = args.trials or (2 if args.quick else 4)
    out = Path(args.out)
    result = json.loads(out.read_text()) if args.part != "all" and out.is_file() else {}
    if args.part in ("all", "screen"):
        result |= screen_part(args, trials)
    if args.part in ("all", "fidelity"):
        mf = fidelity_part(args.quick, args.share_s, args.seed, args.partial)
        mf["ran_beside_other_work"] = args.beside_other_work
        mf["threads"] = args.threads
        mf["load_average_at_end"] = os.getloadavg()[0]
        mf["host"] = host()
        result["multi_fidelity" if args.seed == 0 else f"multi_fidelity_seed{args.seed}"] = mf
        f, m = mf["fixed"], mf["multi_fidelity"]
        print(
            f"retrained val accuracy: multi-fidelity {m['retrained_val_accuracy']:.4f} "
            f"(trial {m['chosen_trial']}, {m['trained_trials']} trials, {m['search_seconds']} s) "
            f"vs fixed budget {f['retrained_val_accuracy']:.4f} (trial {f['chosen_trial']}, "
            f"{f['trained_trials']} trials, {f['search_seconds']} s)"
        )
    atomic_write_json(out, result)
    return result


if __name__ == "__main__":
    main()
