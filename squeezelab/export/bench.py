"""Batch-1 latency of one model across runtimes, against the analysis' roofline bound.

Backends: PyTorch eager (NCHW and channels_last), ONNX Runtime fp32, ONNX Runtime int8
(QDQ, the setting :func:`squeezelab.export.quantize_int8` finds fastest). All take the
same input and are timed in interleaved rounds, so their ratios hold on a busy host.
"""

from __future__ import annotations

import copy
import functools
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from squeezelab.errors import ConfigError
from squeezelab.export.onnx import INPUT_NAME, export_onnx, make_session, sample_inputs
from squeezelab.export.timing import time_interleaved

BACKENDS = ("torch", "torch_channels_last", "ort_fp32", "ort_int8")
# int8 settings tried when benchmarking: the type pairs with MinMax (the calibration
# method moves accuracy, not speed).
INT8_CANDIDATES = ("U8S8/minmax", "U8S8r/minmax", "S8S8/minmax", "U8U8/minmax")


@functools.cache
def host_hardware(threads: int):
    """This host calibrated by squeezelab.analysis for ``threads`` threads (cached per process)."""
    from squeezelab.analysis import calibrate

    return calibrate(threads=threads)


def roofline_ms(model, input_shape, hardware) -> float | None:
    """fp32 roofline bound: per layer max(MACs at peak, DRAM bytes at bandwidth), summed.

    The bound drops the profile's fitted efficiencies and per-op overheads (those predict
    PyTorch eager, not what the hardware allows). None without a module or a profile.
    """
    if model is None or hardware is None:
        return None
    import dataclasses

    from squeezelab.analysis import profile

    bound = dataclasses.replace(hardware, efficiency={}, overhead_ms={})
    return float(profile(model, tuple(input_shape), hardware=bound).latency_ms)


def _hardware(roofline, threads: int):
    if roofline is None:
        return None
    if roofline == "host":
        return host_hardware(threads)
    if isinstance(roofline, str):
        from squeezelab.analysis import load_hardware

        return load_hardware(roofline)
    return roofline


def _resolve(model_or_path):
    """-> (module or None, meta, onnx path or None, is_int8)."""
    import torch

    from squeezelab.fileio import load_any_model, zoo_meta

    if isinstance(model_or_path, torch.nn.Module):
        spec = getattr(model_or_path, "spec", None)
        meta = {"model": type(model_or_path).__name__}
        if spec is not None:
            meta.update(
                in_chans=spec.in_chans, input_size=spec.input_size, num_classes=spec.num_classes
            )
        return model_or_path.eval(), meta, None, False
    if Path(model_or_path).suffix == ".onnx":
        from squeezelab.export.onnx import read_onnx_meta

        meta = read_onnx_meta(model_or_path)
        return None, meta, str(model_or_path), "quantization" in meta
    model, meta = load_any_model(model_or_path)
    if "model" not in meta:
        meta = zoo_meta(str(model_or_path), model)
    return model, meta, None, False


def benchmark(
    model_or_path,
    input_shape: tuple[int, int, int] | None = None,
    backends=BACKENDS,
    threads=(1, 2),
    rounds: int = 6,
    per_round: int = 5,
    int8_path: str | os.PathLike | None = None,
    calibration_data=None,
    int8_candidates=INT8_CANDIDATES,
    roofline="host",
) -> list[dict[str, Any]]:
    """Median and p90 batch-1 latency per backend and thread count.

    Args:
        model_or_path: a module, a zoo name, a model file, a ``.sqz`` file or an ``.onnx``
            file (then only the ONNX Runtime backend that fits it runs).
        input_shape: ``(C, H, W)``; default: the model's own input.
        backends: any of ``BACKENDS``.
        threads: intra-op thread counts to run each backend with.
        rounds, per_round: timed runs = ``rounds * per_round``, interleaved across backends.
        int8_path: an int8 ONNX file to time for ``ort_int8``; else the model is quantized
            here with ``calibration_data`` (default: 16 random images, fine for speed only)
            over ``int8_candidates``.
        roofline: the profile giving the fp32 bound: ``"host"`` calibrates this machine
            per thread count with :func:`squeezelab.analysis.calibrate` (about 20 s each,
            cached), a profile name or ``Hardware`` is used as is, None skips the bound.

    Returns:
        One record per backend and thread count: ``model``, ``backend``, ``threads``,
        ``input_shape``, ``median_ms``, ``p90_ms``, ``min_ms``, ``runs``,
        ``speedup_vs_torch`` (eager NCHW at the same thread count), ``roofline_ms`` (fp32
        bound, see ``roofline``; None for an ``.onnx`` input or ``roofline=None``) and
        ``ratio_to_roofline``; ``ort_int8`` adds ``int8_candidate``.

    Example:
        >>> rows = benchmark("squeezenet_small", threads=(1,), backends=("torch", "ort_fp32"),
        ...                  roofline=None)
        >>> sorted(r["backend"] for r in rows)
        ['ort_fp32', 'torch']
    """
    import torch

    unknown = [b for b in backends if b not in BACKENDS]
    if unknown or not backends:
        raise ConfigError(f"backends={list(backends)} is invalid: allowed {', '.join(BACKENDS)}")
    if not threads or min(threads) < 1:
        raise ConfigError(f"threads={list(threads)} is invalid: allowed integers >= 1")
    model, meta, onnx_path, is_int8 = _resolve(model_or_path)
    if input_shape is None:
        if "in_chans" not in meta or "input_size" not in meta:
            raise ConfigError("input_shape is required for a model without stored input size")
        input_shape = (meta["in_chans"], meta["input_size"], meta["input_size"])
    input_shape = tuple(int(d) for d in input_shape)
    x = sample_inputs(meta, input_shape, n=1, seed=0)
    skipped = []
    if model is None:
        keep = "ort_int8" if is_int8 else "ort_fp32"
        skipped = [b for b in backends if b != keep]
        backends = [b for b in backends if b == keep]
    rows = []
    old_threads = torch.get_num_threads()
    with tempfile.TemporaryDirectory(prefix="squeezelab-bench-") as tmp:
        paths, int8_choice = {}, None
        if "ort_fp32" in backends or "ort_int8" in backends:
            fp32 = onnx_path if onnx_path and not is_int8 else os.path.join(tmp, "fp32.onnx")
            if onnx_path is None:
                export_onnx(model, input_shape, fp32, meta=meta)
            paths["ort_fp32"] = fp32
            if "ort_int8" in backends:
                paths["ort_int8"], int8_choice = _int8(
                    onnx_path if is_int8 else int8_path,
                    fp32,
                    calibration_data,
                    int8_candidates,
                    tmp,
                    input_shape,
                    meta,
                )
        xt = torch.from_numpy(x)
        try:
            for t in threads:
                roof = (
                    None
                    if model is None
                    else roofline_ms(model, input_shape, _hardware(roofline, t))
                )
                torch.set_num_threads(t)
                fns = _callables(backends, model, xt, x, paths, t)
                for name, stats in time_interleaved(
                    fns, rounds=rounds, per_round=per_round
                ).items():
                    rows.append({
                        "model": meta.get("model"),
                        "backend": name,
                        "threads": t,
                        "batch": 1,
                        "input_shape": list(input_shape),
                        **stats,
                        "roofline_ms": roof,
                        "ratio_to_roofline": None if roof is None else stats["median_ms"] / roof,
                        **({"int8_candidate": int8_choice} if name == "ort_int8" else {}),
                    })  # fmt: skip
        finally:
            torch.set_num_threads(old_threads)
    for row in rows:
        base = next(
            (r for r in rows if r["backend"] == "torch" and r["threads"] == row["threads"]), None
        )
        row["speedup_vs_torch"] = None if base is None else base["median_ms"] / row["median_ms"]
        if skipped:
            row["skipped"] = skipped
    return rows


def _int8(given, fp32_path, calibration_data, candidates, tmp, input_shape, meta):
    """-> (int8 ONNX path, chosen candidate name or None when a file was given)."""
    if given is not None:
        return str(given), None
    from squeezelab.export.quantize import quantize_int8

    calib = calibration_data
    if calib is None:
        calib = np.random.default_rng(1).integers(0, 256, (16, *input_shape), dtype=np.uint8)
    out = os.path.join(tmp, "int8.onnx")
    report = quantize_int8(fp32_path, calib, out, candidates=list(candidates), tolerance=0.05)
    return out, report["chosen"]


def _callables(backends, model, xt, x, paths, threads):
    import torch

    fns = {}
    for name in backends:
        if name == "torch":
            fns[name] = functools.partial(_torch_run, model, xt)
        elif name == "torch_channels_last":
            cl = copy.deepcopy(model).to(memory_format=torch.channels_last)
            fns[name] = functools.partial(
                _torch_run, cl, xt.contiguous(memory_format=torch.channels_last)
            )
        else:
            sess = make_session(paths[name], threads)
            fns[name] = functools.partial(sess.run, None, {INPUT_NAME: x})
    return fns


def _torch_run(model, x):
    import torch

    with torch.inference_mode():
        return model(x)
