"""Cheap stand-in trainers for the storage/worker tests, where training is not the point."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from squeezelab.train import EpochRecord


def epoch(n: int, val_acc: float) -> EpochRecord:
    """A trainer's record of epoch ``n`` (1-based) with only the validation accuracy real."""
    return EpochRecord(n, 1.0, val_acc, 1.0, val_acc, 0.1, 1000.0, 0.0)


def fake_train(candidate, train, run_dir: Path):
    """Two 'epochs' whose accuracy grows with the squeeze ratio; logs every call."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(run_dir.parent.parent / "calls.jsonl", "a") as f:
        f.write(
            json.dumps({"run_dir": str(run_dir), "spec": candidate.spec, "pid": os.getpid()}) + "\n"
        )
    sr = (candidate.spec or {}).get("sr", 0.5)
    for n in range(1, 3):
        time.sleep(float(train.get("fake_sleep_s", 0.0)))
        yield epoch(n, 0.5 + 0.4 * sr * n / 2)


def stuck_train(candidate, train, run_dir: Path):
    """Marks that it started, then hangs (a worker to be killed mid-trial)."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir.parent.parent / "stuck_started").write_text(str(run_dir))
    time.sleep(600)
    yield epoch(1, 0.0)
