"""Wall-clock timing of a call: warm-up, then the median and 90th percentile of timed runs.

The one timer every backend in :mod:`squeezelab.export.bench` shares, so their figures compare.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class Timing:
    """Figures of ``runs`` timed calls, in milliseconds."""

    median_ms: float
    p90_ms: float
    min_ms: float
    runs: int

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def time_call(fn: Callable[[], object], warmup: int = 5, runs: int = 30) -> Timing:
    """Time ``fn()``: ``warmup`` untimed calls, then ``runs`` timed ones.

    Example:
        >>> time_call(lambda: sum(range(1000)), warmup=1, runs=5).runs
        5
    """
    for _ in range(warmup):
        fn()
    times = np.empty(runs)
    for i in range(runs):
        t0 = time.perf_counter()
        fn()
        times[i] = time.perf_counter() - t0
    return _stats(times * 1e3)


def time_interleaved(
    fns: dict[str, Callable[[], object]], rounds: int = 6, per_round: int = 5, warmup: int = 3
) -> dict[str, Timing]:
    """Time several calls fairly on a busy host: rounds of ``per_round`` runs each, in turn.

    Load from other processes then falls on every call alike, so their ratios hold even
    when the absolute times drift. Each block starts with one untimed call (warm caches).
    """
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            fn()
            for _ in range(per_round):
                t0 = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - t0)
    return {k: _stats(np.asarray(v) * 1e3) for k, v in times.items()}


def _stats(ms: np.ndarray) -> Timing:
    return Timing(
        median_ms=float(np.median(ms)),
        p90_ms=float(np.percentile(ms, 90)),
        min_ms=float(ms.min()),
        runs=int(len(ms)),
    )
