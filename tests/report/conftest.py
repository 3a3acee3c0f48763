"""A synthetic study-results dict in the shape of squeezelab.explore.load_study_results.

20 trials of an SR x pct_3x3 sweep on a small Fashion-MNIST SqueezeNet: costs grow with
SR and pct_3x3, accuracy plateaus with SR as in the paper's Figure 3; four candidates
break the 1 MiB model_bytes limit (costed, never trained), trial 7 failed, and two are
still running.
"""

import math

import pytest

SRS = (0.125, 0.25, 0.5, 0.75, 1.0)
PCTS = (0.25, 0.5, 0.75, 0.99)
LIMIT_BYTES = 1 << 20


def _trial(number: int, sr: float, pct: float, run_root) -> dict:
    params = int(30_000 + 260_000 * sr * (0.4 + pct))
    model_bytes = 4 * params
    macs = 45 * params + 1_200_000
    metrics = {
        "params": params,
        "model_bytes": model_bytes,
        "macs": macs,
        "energy_pj": 4.6 * macs + 640.0 * model_bytes / 4,
        "latency_ms": macs / 2.1e6,
        "peak_activation_bytes": int(110_000 + 90_000 * sr),
    }
    trial = {
        "number": number,
        "params": {"sr": sr, "pct_3x3": pct, "bypass": "none"},
        "spec": {
            "base_e": 32,
            "incr_e": 32,
            "freq": 2,
            "pct_3x3": pct,
            "sr": sr,
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
        },  # fmt: skip
        "metrics": metrics,
        "feasible": model_bytes <= LIMIT_BYTES,
        "run_dir": None,
        "epoch_accuracy": [],
    }
    if not trial["feasible"]:
        trial["state"] = "COMPLETE"
        return trial
    acc = (
        0.905 - 0.06 * math.exp(-5 * sr) - 0.01 * (pct - 0.5) ** 2 + 0.003 * ((number * 7) % 5 - 2)
    )
    metrics["accuracy"] = round(acc, 4)
    trial["state"] = "COMPLETE"
    trial["run_dir"] = str(run_root / f"trial-{number:04d}")
    trial["epoch_accuracy"] = [round(acc * (1 - 0.5 ** (e + 1)), 4) for e in range(5)]
    return trial


def make_results(run_root, pareto_as_numbers: bool = False) -> dict:
    grid = [(sr, pct) for sr in SRS for pct in PCTS]  # 20 points
    trials = [_trial(n, sr, pct, run_root) for n, (sr, pct) in enumerate(grid)]
    trials[7].update(state="FAIL", metrics={}, feasible=True, epoch_accuracy=[])
    for n in (18, 19):
        trials[n].update(state="RUNNING", epoch_accuracy=trials[n]["epoch_accuracy"][:2])
        trials[n]["metrics"].pop("accuracy", None)
    done = [
        t
        for t in trials
        if t["state"] == "COMPLETE" and t["feasible"] and "accuracy" in t["metrics"]
    ]

    def dominated(a):
        return any(
            b["metrics"]["accuracy"] >= a["metrics"]["accuracy"]
            and b["metrics"]["model_bytes"] <= a["metrics"]["model_bytes"]
            and (b["metrics"]["accuracy"], -b["metrics"]["model_bytes"])
            != (a["metrics"]["accuracy"], -a["metrics"]["model_bytes"])
            for b in done
        )

    pareto = [t for t in done if not dominated(t)]
    counts = {
        "trained": len(done),
        "infeasible": sum(not t["feasible"] for t in trials),
        "failed": 1,
        "running": 2,
        "total": len(trials),
    }
    return {
        "study": "sr-pct-sweep",
        "storage": "postgresql://lab:s3cret@127.0.0.1:5433/studies",
        "objectives": [
            {"name": "accuracy", "direction": "maximize"},
            {"name": "model_bytes", "direction": "minimize"},
        ],
        "constraints": [{"metric": "model_bytes", "max": LIMIT_BYTES}],
        "space": {
            "sr": {"choices": list(SRS)},
            "pct_3x3": {"choices": list(PCTS)},
            "bypass": "none",
        },  # fmt: skip
        "trials": trials,
        "pareto": [t["number"] for t in pareto] if pareto_as_numbers else pareto,
        "counts": counts,
    }


@pytest.fixture
def results(tmp_path):
    return make_results(tmp_path / "runs")
