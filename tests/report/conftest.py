"""A synthetic study in the JSON of ``StudyResults.to_dict()`` (``study show --json``).

20 trials of an SR x pct_3x3 sweep on a small Fashion-MNIST SqueezeNet: costs grow with
SR and pct_3x3, accuracy plateaus with SR as in the paper's Figure 3; four candidates
break the 1 MiB model_bytes limit (costed, never trained), trial 7 failed, two are still
running, and the two most accurate front members were retrained at full budget.
:func:`make_results` gives the JSON; the ``results`` fixture the StudyResults read from it.
"""

import math

import pytest

SRS = (0.125, 0.25, 0.5, 0.75, 1.0)
PCTS = (0.25, 0.5, 0.75, 1.0)
LIMIT_BYTES = 1 << 20
SPEC = {
    "base_e": 32,
    "incr_e": 32,
    "freq": 2,
    "num_fire": 8,
    "stem_channels": 64,
    "stem_kernel": 3,
    "stem_stride": 1,
    "pool_after": [1, 4, 8],
    "bypass": "none",
    "batchnorm": True,
    "dropout": 0.5,
    "num_classes": 10,
    "in_chans": 1,
    "input_size": 28,
}


def _trial(number: int, sr: float, pct: float, run_root) -> dict:
    params = int(30_000 + 260_000 * sr * (0.4 + pct))
    model_bytes = 4 * params
    macs = 45 * params + 1_200_000
    metrics = {
        "params": params,
        "macs": macs,
        "model_bytes": model_bytes,
        "energy_pj": 4.6 * macs + 640.0 * model_bytes / 4,
        "latency_ms": macs / 2.1e6,
        "peak_activation_bytes": int(110_000 + 90_000 * sr),
        "accuracy": None,
    }
    trial = {
        "number": number,
        "state": "infeasible",
        "params": {"sr": sr, "pct_3x3": pct},
        "spec": {**SPEC, "sr": sr, "pct_3x3": pct},
        "model": "squeezenet_small",
        "model_args": {},
        "metrics": metrics,
        "constraints": [model_bytes - LIMIT_BYTES],
        "feasible": model_bytes <= LIMIT_BYTES,
        "run_dir": None,
        "epoch_accuracy": [],
        "invalid": None,
        "retry_of": None,
        "screen_s": 0.004,
        "train_s": None,
        "final": None,
    }
    if not trial["feasible"]:
        return trial
    acc = (
        0.905 - 0.06 * math.exp(-5 * sr) - 0.01 * (pct - 0.5) ** 2 + 0.003 * ((number * 7) % 5 - 2)
    )
    metrics["accuracy"] = round(acc, 4)
    trial.update(
        state="trained",
        run_dir=str(run_root / "trials" / f"{number:05d}"),
        epoch_accuracy=[round(acc * (1 - 0.5 ** (e + 1)), 4) for e in range(5)],
        train_s=41.0,
    )
    return trial


def make_results(run_root) -> dict:
    grid = [(sr, pct) for sr in SRS for pct in PCTS]  # 20 points
    trials = [_trial(n, sr, pct, run_root) for n, (sr, pct) in enumerate(grid)]
    trials[7].update(state="failed", run_dir=None, epoch_accuracy=[0.42])
    trials[7]["metrics"]["accuracy"] = None
    for n in (13, 16):
        trials[n].update(state="running", feasible=False, run_dir=str(run_root / f"{n:05d}"))
    done = [t for t in trials if t["state"] == "trained"]

    def dominated(a):
        ma = a["metrics"]
        return any(
            b["metrics"]["accuracy"] >= ma["accuracy"]
            and b["metrics"]["model_bytes"] <= ma["model_bytes"]
            and (b["metrics"]["accuracy"], b["metrics"]["model_bytes"])
            != (ma["accuracy"], ma["model_bytes"])
            for b in done
        )

    front = sorted((t for t in done if not dominated(t)), key=lambda t: -t["metrics"]["accuracy"])
    for t in front[:2]:
        t["final"] = {
            "number": t["number"],
            "run_dir": str(run_root / "final" / f"{t['number']:05d}"),
            "accuracy": t["metrics"]["accuracy"] + 0.012,
            "epoch_accuracy": [0.8, 0.9, t["metrics"]["accuracy"] + 0.012],
        }
    states = ("trained", "infeasible", "invalid", "failed", "running", "waiting")
    counts = {s: sum(t["state"] == s for t in trials) for s in states}
    counts["total"] = len(trials)
    return {
        "study": "sr-pct-sweep",
        "storage": "postgresql://lab:s3cret@127.0.0.1:5433/studies",
        "objectives": [
            {"name": "accuracy", "metric": "accuracy", "direction": "maximize"},
            {"name": "model_bytes", "metric": "model_bytes", "direction": "minimize"},
        ],
        "constraints": [{"metric": "model_bytes", "max": LIMIT_BYTES}],
        "space": {
            "name": "sr-pct-sweep",
            "model": "squeezenet_small",
            "params": {"sr": list(SRS), "pct_3x3": list(PCTS), "bypass": "none"},
            "objectives": ["accuracy", "model_bytes"],
            "constraints": [{"metric": "model_bytes", "max": "1MiB"}],
            "search": {"sampler": "grid"},
            "train": {"data": "fashion-mnist", "epochs": 5, "train_subset": 10000, "seed": 0},
        },
        "trials": trials,
        "pareto": [t["number"] for t in front],
        "pareto_trials": front,
        "counts": counts,
        "screen": {
            "checked": 20,
            "feasible": 16,
            "invalid": 0,
            "seconds": 0.08,
            "enumerated": True,
            "candidates_per_s": 250.0,
            "best": {"model_bytes": 204_500},
            "best_values": {},
        },
    }


SUMMARY = {
    "title": "Design summary",
    "text": "From the search to the int8 file.",
    "rows": [
        {"stage": "searched", "model_bytes": 642_048, "accuracy": 0.909, "latency_ms": 3.93},
        {"stage": "int8", "model_bytes": 160_512, "accuracy": 0.905, "latency_ms": 1.2},
    ],
}


@pytest.fixture
def results(tmp_path):
    from squeezelab.explore import StudyResults

    return StudyResults.from_dict(make_results(tmp_path / "study"))


@pytest.fixture(scope="session")
def report(tmp_path_factory):
    """``(results, path)`` of one report rendered with a summary section, shared by modules."""
    from squeezelab.explore import StudyResults
    from squeezelab.report import render_report

    root = tmp_path_factory.mktemp("report")
    results = StudyResults.from_dict(make_results(root / "study"))
    return results, render_report(results, root / "out" / "report.html", extra_sections=[SUMMARY])
