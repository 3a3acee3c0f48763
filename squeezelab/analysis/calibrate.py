"""Calibrate a hardware profile on this machine for PyTorch eager inference.

Peak MAC/s from a large matmul and large 1x1 and 3x3 convolutions, memory bandwidth
from large copies, elementwise throughput from a cache-resident ReLU; then, per op
class, an efficiency and a fixed overhead fitted on the layers of two probe networks
timed in place (each layer sees a fresh input, as in a real forward pass), so the
roofline of :mod:`squeezelab.analysis.roofline` predicts this runtime (roofline:
Williams et al. 2009; per-op latency lookup as in Ma et al. 2018, arXiv 1807.11164).
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from pathlib import Path

import torch
from torch import nn

from squeezelab.analysis.costs import OP_CLASSES
from squeezelab.analysis.hardware import DTYPES, Hardware, load_hardware
from squeezelab.analysis.measure import percentile, time_call, torch_threads
from squeezelab.analysis.trace import trace

MAC_OPS = ("conv", "conv1x1", "dwconv", "gconv", "linear")
# An op class fitted at more than this multiple of the measured peak rate is one whose
# layers are all overhead: its compute slope is noise, so it is held at this bound.
MAX_EFFICIENCY = 4.0


class _Fn(nn.Module):
    """A one-op module so that functional layers (cat, shuffle, add) can be timed by hooks."""

    def __init__(self, fn) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x)


def _shuffle(x: torch.Tensor) -> torch.Tensor:
    b, c, h, w = x.shape
    return x.view(b, 2, c // 2, h, w).transpose(1, 2).reshape(b, c, h, w)


def _cat(x: torch.Tensor) -> torch.Tensor:
    return torch.cat([x, x], 1)


def _add(x: torch.Tensor) -> torch.Tensor:
    return x + x


def probe_net(width: int, stages: int = 5) -> nn.Sequential:
    """A generic CNN with every op class at every resolution (224 input, 112 ... 7).

    Per stage of ``c`` channels: 1x1 squeeze, 3x3 conv, concat, depthwise 3x3, grouped
    1x1, channel shuffle, add, BatchNorm, ReLU/ReLU6, then a 1x1 widening and a max-pool.
    """
    c = width
    layers: list[nn.Module] = [nn.Conv2d(3, c, 3, 2, 1), nn.BatchNorm2d(c), nn.ReLU(inplace=True)]
    for i in range(stages):
        layers += [
            nn.Conv2d(c, c // 4, 1),
            nn.ReLU(inplace=True),
            nn.Conv2d(c // 4, c // 2, 3, padding=1),
            nn.BatchNorm2d(c // 2),
            nn.ReLU(),
            _Fn(_cat),
            nn.Conv2d(c, c, 3, padding=1, groups=c),
            nn.BatchNorm2d(c),
            nn.ReLU6(inplace=True),
            nn.Conv2d(c, c, 1, groups=4),
            _Fn(_shuffle),
            _Fn(_add),
        ]
        if i < stages - 1:
            layers += [nn.Conv2d(c, 2 * c, 1), nn.MaxPool2d(3, 2, ceil_mode=True)]
            c *= 2
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, 1000)]
    return nn.Sequential(*layers).eval()


def _clock():
    """Thread CPU time at one thread (other processes' load left out), else wall time."""
    return time.thread_time if torch.get_num_threads() == 1 else time.perf_counter


def _seconds(fn, seconds: float) -> float:
    """Seconds per call: median thread CPU time at one thread, else the fastest wall time."""
    with torch.inference_mode():
        times = time_call(fn, 3, 5, seconds, _clock())
    return percentile(times, 0.5) if torch.get_num_threads() == 1 else min(times)


def _peak_macs_per_s(quick: bool, seconds: float) -> float:
    n = 512 if quick else 1024
    a, b = torch.randn(n, n), torch.randn(n, n)
    rates = [n**3 / _seconds(lambda: a @ b, seconds)]
    side = 28 if quick else 56
    for cin, k in ((256, 1), (128, 3)):
        conv, x = nn.Conv2d(cin, cin, k, padding=k // 2), torch.randn(1, cin, side, side)
        rates.append(side * side * cin * cin * k * k / _seconds(lambda: conv(x), seconds))  # noqa: B023
    return max(rates)


def _copy_bytes_per_s(quick: bool, seconds: float) -> float:
    n = (32 if quick else 128) * 2**20 // 4  # well beyond the last-level cache
    src, dst = torch.randn(n), torch.empty(n)
    return 2 * 4 * n / _seconds(lambda: dst.copy_(src), seconds)


def _elementwise_ops_per_s(seconds: float) -> float:
    x = torch.randn(2**20)  # 4 MB: cache-resident like a typical activation
    return x.numel() / _seconds(lambda: torch.relu(x), seconds)


def cache_bytes() -> int | None:
    """The largest CPU cache of cpu0 (the last level), from Linux sysfs; None if unknown."""
    sizes = []
    for f in Path("/sys/devices/system/cpu/cpu0/cache").glob("index*/size"):
        text = f.read_text().strip().upper()
        mult = {"K": 2**10, "M": 2**20, "G": 2**30}.get(text[-1:], 1)
        digits = text.rstrip("KMG")
        if digits.isdigit():
            sizes.append(int(digits) * mult)
    return max(sizes, default=None)


def _in_place_seconds(net: nn.Sequential, shape: tuple[int, ...], runs: int) -> tuple[dict, float]:
    """Median seconds of each top-level layer timed in place by hooks, and of the whole net."""
    clock = _clock()
    samples: dict[str, list[float]] = {}
    start: dict[str, float] = {}
    handles = []
    for name, m in net.named_children():
        handles.append(
            m.register_forward_pre_hook(lambda *_, n=name: start.__setitem__(n, clock()))
        )
        handles.append(
            m.register_forward_hook(
                lambda *_, n=name: samples.setdefault(n, []).append(clock() - start[n])
            )
        )
    x = torch.randn(1, *shape)
    with torch.inference_mode():
        try:
            time_call(lambda: net(x), 2, runs)
        finally:
            for h in handles:
                h.remove()
        total = statistics.median(time_call(lambda: net(x), 2, runs, clock=clock))
    return {n: statistics.median(v[2:]) for n, v in samples.items()}, total


def _fit(points: list[tuple[float, float, float]], byte_s: float) -> tuple[float, float, float]:
    """(efficiency, overhead s, weighted squared relative error) of
    ``measured = ideal / eff + bytes * byte_s + overhead`` over ``(ideal, bytes, measured)``."""
    import numpy as np

    x, z, y = (np.array(c, dtype=float) for c in zip(*points, strict=True))
    r = y - z * byte_s  # what compute and overhead must explain
    w = 1 / y**2
    sw, sx, sy = w.sum(), (w * x).sum(), (w * r).sum()
    sxx, sxy = (w * x * x).sum(), (w * x * r).sum()
    det = sw * sxx - sx * sx
    slope = (sw * sxy - sx * sy) / det if det > 1e-12 * sw * sxx else 0.0
    overhead = (sy - slope * sx) / sw
    if slope <= 0 or overhead < 0:  # keep both terms >= 0
        slope, overhead = (sxy / sxx, 0.0) if sxx > 0 and sxy > 0 else (0.0, max(sy / sw, 0.0))
    if 0 < slope < 1 / MAX_EFFICIENCY:
        slope = 1 / MAX_EFFICIENCY
        overhead = max((sy - slope * sx) / sw, 0.0)
    err = float((w * (slope * x + overhead - r) ** 2).sum())
    return (float(1 / slope) if slope > 0 else 1.0), float(overhead), err


def _fit_all(points: dict[str, list[tuple[float, float, float]]]):
    """Seconds per on-chip byte (shared by all op classes; 0 if it does not help) and each
    class's (efficiency, overhead), chosen by least relative error over a log grid."""
    best = None
    for byte_s in [0.0] + [10 ** (-k / 8) for k in range(64, 104)]:  # 1e-8 ... 1e-13 s/byte
        fits = {op: _fit(p, byte_s) for op, p in points.items()}
        err = sum(e for _, _, e in fits.values())
        if best is None or err < best[0]:
            best = (err, byte_s, fits)
    return best[1], {op: (e, o) for op, (e, o, _) in best[2].items()}


def calibrate(
    threads: int | None = None,
    quick: bool = False,
    name: str = "host",
    energy_from: str = "horowitz-45nm",
) -> Hardware:
    """Measure this machine's PyTorch eager runtime into a :class:`Hardware` profile.

    Args:
        threads: intra-op threads to calibrate for (None: the current setting).
        quick: smaller problems and fewer timed runs (seconds; for tests).
        name: the profile's name.
        energy_from: a profile whose energy figures are copied (energy is not measured).

    Example:
        >>> hw = calibrate(threads=1, quick=True)  # doctest: +SKIP
        >>> hw.runtime, hw.threads
        ('torch-eager', 1)
    """
    seconds, runs = (0.02, 5) if quick else (0.15, 15)
    energy = load_hardware(energy_from)
    with torch_threads(threads) as n, torch.no_grad():
        peak = _peak_macs_per_s(quick, seconds)
        bandwidth = _copy_bytes_per_s(quick, seconds)
        other = _elementwise_ops_per_s(seconds)
        points: dict[str, list[tuple[float, float, float]]] = {}
        residual = []
        for width in (16, 32) if quick else (32, 64, 96):
            net = probe_net(width, 4 if quick else 5)
            shape = (3, 112, 112) if quick else (3, 224, 224)
            measured, total = _in_place_seconds(net, shape, runs)
            nodes = trace(net, shape).nodes
            owners: dict[str, list] = {}
            for node in nodes:  # a functional node inside _Fn "7" is named "7.cat"
                owners.setdefault(node.name.split(".")[0], []).append(node)
            for owner, group in owners.items():
                main = max(
                    group, key=lambda nd: (nd.cost.op != "view", nd.cost.macs, nd.cost.other_ops)
                )
                ideal = sum(nd.cost.macs / peak + nd.cost.other_ops / other for nd in group)
                onchip = sum(4 * (nd.in_elems + nd.out_elems + nd.params) for nd in group)
                points.setdefault(main.cost.op, []).append((ideal, onchip, measured[owner]))
            residual.append((total - sum(measured.values()), len(nodes)))
        byte_s, fits = _fit_all(points)
    # Rescale so the best op class of each kind (MAC / elementwise) has efficiency 1:
    # the predictions stay the same, the peaks read as attainable rates.
    effs = {op: e for op, (e, _) in fits.items() if any(x > 0 for x, _, _ in points[op])}
    top = {
        kind: max(e for op, e in effs.items() if (op in MAC_OPS) == kind) for kind in (True, False)
    }
    peak, other = peak * top[True], other * top[False]
    # Python dispatch between layers (containers, forward code) is spread over all ops.
    extra = max(0.0, sum(r for r, _ in residual) / sum(k for _, k in residual))
    overhead = {op: fits[op][1] + extra if op in fits else extra for op in OP_CLASSES}

    def keep(table: dict) -> dict:
        return {dt: table[dt] for dt in DTYPES if dt in table}

    return dataclasses.replace(
        energy,
        name=name,
        runtime="torch-eager",
        description=f"calibrated PyTorch {torch.__version__} eager on this host, {n} thread(s); "
        f"energies from {energy_from}",
        threads=n,
        peak_macs_per_s={"fp32": float(f"{peak:.4g}")},
        peak_other_ops_per_s={"fp32": float(f"{other:.4g}")},
        dram_bytes_per_s=float(f"{bandwidth:.4g}"),
        onchip_bytes_per_s=float(f"{1 / byte_s:.4g}") if byte_s else None,
        onchip_buffer_bytes=cache_bytes(),
        sram_bytes=None,
        flash_bytes=None,
        mac_pj=keep(energy.mac_pj),
        op_pj=keep(energy.op_pj),
        efficiency={op: float(f"{e / top[op in MAC_OPS]:.4g}") for op, e in effs.items()},
        overhead_ms={op: round(s * 1e3, 5) for op, s in overhead.items()},
        source="",
    )
