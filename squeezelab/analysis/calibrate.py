"""Calibrate a hardware profile on this machine for PyTorch eager inference.

Peak MAC/s from a large matmul and large 1x1 and 3x3 convolutions, memory bandwidth
from large copies, elementwise throughput from a cache-resident ReLU, then a fixed
overhead and an efficiency per op class fitted on a small set of measured layers, so
the roofline of :mod:`squeezelab.analysis.roofline` predicts this runtime (cf. the
roofline fitting of Williams et al. 2009 and the per-op lookup of Ma et al. 2018).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch
from torch import nn

from squeezelab.analysis.hardware import DTYPES, Hardware, load_hardware
from squeezelab.analysis.measure import percentile, time_call, torch_threads
from squeezelab.analysis.trace import trace


class _Fn(nn.Module):
    """A one-op module for the functional layers (cat, channel shuffle, add)."""

    def __init__(self, fn) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x)


def _shuffle(x: torch.Tensor) -> torch.Tensor:
    b, c, h, w = x.shape
    return x.view(b, 2, c // 2, h, w).transpose(1, 2).reshape(b, c, h, w)


def _conv(cin: int, cout: int, k: int = 1, stride: int = 1, groups: int = 1) -> nn.Module:
    return nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups)


# Representative layers per op class, (module, input (C, H, W)): channel counts and sides
# of small CNNs (stems, squeeze/expand, depthwise, classifier), not of any one zoo member.
def _layer_set(quick: bool) -> dict[str, list[tuple[nn.Module, tuple[int, ...]]]]:
    s = 2 if quick else 1  # quick: half the sides
    layers = {
        "conv": [(_conv(3, 64, 3, 2), (3, 224 // s, 224 // s)), (_conv(3, 96, 7, 2), (3, 224 // s, 224 // s)),
                 (_conv(16, 64, 3), (16, 56 // s, 56 // s)), (_conv(32, 128, 3), (32, 28 // s, 28 // s)),
                 (_conv(64, 256, 3), (64, 14, 14)), (_conv(48, 192, 3), (48, 27 // s, 27 // s))],
        "conv1x1": [(_conv(96, 16), (96, 56 // s, 56 // s)), (_conv(16, 64), (16, 56 // s, 56 // s)),
                    (_conv(256, 32), (256, 28 // s, 28 // s)), (_conv(32, 128), (32, 28 // s, 28 // s)),
                    (_conv(384, 64), (384, 14, 14)), (_conv(64, 256), (64, 14, 14)),
                    (_conv(512, 1000), (512, 13, 13)), (_conv(160, 960), (160, 7, 7))],
        "dwconv": [(_conv(32, 32, 3, 1, 32), (32, 112 // s, 112 // s)), (_conv(144, 144, 3, 2, 144), (144, 56 // s, 56 // s)),
                   (_conv(192, 192, 3, 1, 192), (192, 28 // s, 28 // s)), (_conv(576, 576, 3, 1, 576), (576, 14, 14))],
        "gconv": [(_conv(64, 64, 3, 1, 4), (64, 28, 28)), (_conv(240, 240, 1, 1, 3), (240, 14, 14))],
        "linear": [(nn.Linear(1024, 1000), (1024,)), (nn.Linear(1280, 1000), (1280,)), (nn.Linear(4096, 1024), (4096,))],
        "elementwise": [(nn.ReLU(inplace=True), (96, 112 // s, 112 // s)), (nn.ReLU6(), (128, 28, 28)),
                        (nn.BatchNorm2d(64).eval(), (64, 56 // s, 56 // s)), (_Fn(lambda x: x + x), (128, 27, 27))],
        "pool": [(nn.MaxPool2d(3, 2, ceil_mode=True), (96, 112 // s, 112 // s)), (nn.MaxPool2d(3, 2), (256, 27, 27)),
                 (nn.AdaptiveAvgPool2d(1), (1000, 13, 13)), (_Fn(lambda x: x.mean((2, 3))), (1024, 7, 7))],
        "concat": [(_Fn(lambda x: torch.cat([x, x], 1)), (64, 56 // s, 56 // s)), (_Fn(lambda x: torch.cat([x, x], 1)), (256, 13, 13))],
        "copy": [(_Fn(_shuffle), (232, 14, 14)), (_Fn(_shuffle), (116, 28, 28))],
    }  # fmt: skip
    return layers


_TINY = {
    "conv": (_conv(1, 1, 3), (1, 4, 4)),
    "conv1x1": (_conv(1, 1), (1, 4, 4)),
    "dwconv": (_conv(2, 2, 3, 1, 2), (2, 4, 4)),
    "gconv": (_conv(4, 4, 3, 1, 2), (4, 4, 4)),
    "linear": (nn.Linear(4, 4), (4,)),
    "elementwise": (nn.ReLU(), (4, 2, 2)),
    "pool": (nn.MaxPool2d(2), (1, 4, 4)),
    "concat": (_Fn(lambda x: torch.cat([x, x], 1)), (1, 2, 2)),
    "copy": (_Fn(_shuffle), (2, 2, 2)),
    "view": (nn.Flatten(), (1, 2, 2)),
}


def _seconds(fn, seconds: float) -> float:
    with torch.inference_mode():
        return percentile(time_call(fn, warmup=3, runs=5, min_seconds=seconds), 0.5)


def _layer_seconds(module: nn.Module, shape: tuple[int, ...], seconds: float) -> float:
    x = torch.randn(1, *shape)
    module.eval()
    return _seconds(lambda: module(x), seconds)


def _peak_macs_per_s(quick: bool, seconds: float) -> float:
    n = 512 if quick else 1024
    a, b = torch.randn(n, n), torch.randn(n, n)
    rates = [n**3 / _seconds(lambda: a @ b, seconds)]
    side = 28 if quick else 56
    for cin, k in ((256, 1), (128, 3)):
        conv = _conv(cin, cin, k)
        macs = side * side * cin * cin * k * k
        rates.append(macs / _layer_seconds(conv, (cin, side, side), seconds))
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


def _ideal_seconds(module: nn.Module, shape: tuple[int, ...], peak: float, other: float) -> float:
    """Seconds at 100% efficiency: MACs at peak MAC/s plus elementwise ops at peak ops/s."""
    nodes = trace(module, shape).nodes
    return sum(n.cost.macs for n in nodes) / peak + sum(n.cost.other_ops for n in nodes) / other


def calibrate(threads: int | None = None, quick: bool = False, name: str = "host",
              energy_from: str = "horowitz-45nm") -> Hardware:  # fmt: skip
    """Measure this machine's PyTorch eager runtime into a :class:`Hardware` profile.

    Args:
        threads: intra-op threads to calibrate for (None: the current setting).
        quick: smaller problems and shorter timings (a few seconds; for tests).
        name: the profile's name.
        energy_from: a profile whose energy figures are copied (energy is not measured).

    Example:
        >>> hw = calibrate(threads=1, quick=True)  # doctest: +SKIP
        >>> hw.runtime, hw.threads
        ('torch-eager', 1)
    """
    seconds = 0.02 if quick else 0.15
    energy = load_hardware(energy_from)
    with torch_threads(threads) as n, torch.no_grad():
        peak = _peak_macs_per_s(quick, seconds)
        bandwidth = _copy_bytes_per_s(quick, seconds)
        other = _elementwise_ops_per_s(seconds)
        overhead = {op: _layer_seconds(m, shape, seconds) for op, (m, shape) in _TINY.items()}
        efficiency = {}
        for op, layers in _layer_set(quick).items():
            ideal = measured = 0.0
            for module, shape in layers:
                ideal += _ideal_seconds(module, shape, peak, other)
                measured += max(_layer_seconds(module, shape, seconds) - overhead[op], 1e-7)
            efficiency[op] = round(ideal / measured, 4)

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
        onchip_buffer_bytes=cache_bytes(),
        sram_bytes=None,
        flash_bytes=None,
        mac_pj=keep(energy.mac_pj),
        op_pj=keep(energy.op_pj),
        efficiency=efficiency,
        overhead_ms={op: round(s * 1e3, 5) for op, s in overhead.items()},
        source="",
    )
