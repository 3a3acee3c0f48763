"""Measured latency: PyTorch eager inference timed after warm-up, median and p90.

The runtime a calibrated profile names ("torch-eager"); the deployment issue adds ONNX
Runtime. Timings are wall-clock per batch with the thread count recorded, since both
drive the numbers (cf. the measurement protocol of Ma et al. 2018, arXiv 1807.11164).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import contextmanager

import torch
from torch import nn

from squeezelab.errors import ConfigError


@contextmanager
def torch_threads(threads: int | None):
    """Run the body with ``threads`` intra-op threads (None: leave as is), then restore."""
    before = torch.get_num_threads()
    if threads is not None:
        if not isinstance(threads, int) or isinstance(threads, bool) or threads < 1:
            raise ConfigError(f"threads={threads!r} is invalid: allowed an integer >= 1")
        torch.set_num_threads(threads)
    try:
        yield torch.get_num_threads()
    finally:
        torch.set_num_threads(before)


def time_call(
    fn: Callable[[], object],
    warmup: int = 3,
    runs: int = 20,
    min_seconds: float = 0.0,
    clock: Callable[[], float] = time.perf_counter,
) -> list[float]:
    """Seconds per call of ``fn`` on ``clock`` for ``runs`` calls (more while under ``min_seconds``).

    ``time.thread_time`` as the clock counts only the CPU time of the calling thread,
    which at one intra-op thread excludes the time other processes held the core.
    """
    for _ in range(warmup):
        fn()
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < runs or time.perf_counter() - start < min_seconds:
        t0 = clock()
        fn()
        times.append(clock() - t0)
    return times


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``values`` by linear interpolation."""
    s = sorted(values)
    pos = q * (len(s) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def measure_latency(
    model: nn.Module,
    input_shape: tuple[int, ...],
    batch: int = 1,
    threads: int | None = None,
    channels_last: bool = False,
    warmup: int = 5,
    runs: int = 30,
    min_seconds: float = 0.0,
) -> dict:
    """Time ``model`` on a random batch with PyTorch eager on CPU.

    The model is copied so its memory format and mode are left unchanged.

    Args:
        model: the module to time.
        input_shape: ``(C, H, W)`` without the batch.
        batch: images per call.
        threads: intra-op threads; None keeps ``torch.get_num_threads()``.
        channels_last: convert model and input to NHWC memory format.
        warmup: untimed calls first.
        runs: timed calls (at least).
        min_seconds: keep timing until this much wall time has passed.

    Returns:
        ``{"median_ms", "p90_ms", "min_ms", "cpu_median_ms", "threads", "runs", "batch",
        "channels_last"}``: wall-clock statistics, and the process CPU time per call
        (at one thread, the latency with other processes' load taken out).

    Example:
        >>> from squeezelab.models import create_model
        >>> r = measure_latency(create_model("squeezenet_small"), (1, 28, 28), runs=3)
        >>> sorted(r)[:3]
        ['batch', 'channels_last', 'median_ms']
    """
    import copy

    for name, v, low in (("batch", batch, 1), ("warmup", warmup, 0), ("runs", runs, 1)):
        if not isinstance(v, int) or isinstance(v, bool) or v < low:
            raise ConfigError(f"{name}={v!r} is invalid: allowed an integer >= {low}")
    m = copy.deepcopy(model).eval()
    x = torch.randn(batch, *input_shape)
    if channels_last and x.dim() == 4:
        m = m.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    wall, cpu = [], []

    def call() -> None:
        t0, c0 = time.perf_counter(), time.process_time()
        m(x)
        cpu.append(time.process_time() - c0)
        wall.append(time.perf_counter() - t0)

    with torch_threads(threads) as n, torch.inference_mode():
        time_call(call, warmup, runs, min_seconds)
    wall, cpu = wall[warmup:], cpu[warmup:]
    return {
        "median_ms": percentile(wall, 0.5) * 1e3,
        "p90_ms": percentile(wall, 0.9) * 1e3,
        "min_ms": min(wall) * 1e3,
        "cpu_median_ms": percentile(cpu, 0.5) * 1e3,
        "threads": n,
        "runs": len(wall),
        "batch": batch,
        "channels_last": channels_last,
    }
