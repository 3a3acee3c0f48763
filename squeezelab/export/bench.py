"""Batch-1 latency of one model across runtimes, against the analysis' roofline bound.

Backends: PyTorch eager (NCHW and channels_last), ONNX Runtime fp32, ONNX Runtime int8
(QDQ, the setting :func:`squeezelab.export.quantize_int8` finds fastest), and on request
LiteRT fp32 / int8 (the ``.tflite`` of :func:`squeezelab.export.export_tflite`, XNNPACK
delegate: LiteRT's default; needs the deploy extra). All take the same input and are timed
in interleaved rounds, so their ratios hold on a busy host.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from squeezelab.errors import ConfigError, FormatError
from squeezelab.export.onnx import (
    INPUT_NAME,
    export_onnx,
    make_session,
    read_onnx_meta,
    sample_inputs,
)
from squeezelab.export.timing import time_interleaved
from squeezelab.models import ModelMeta

BACKENDS = ("torch", "torch_channels_last", "ort_fp32", "ort_int8")  # the default set
LITERT_BACKENDS = ("litert_fp32", "litert_int8")  # on request: converting takes ~10 s each
ALL_BACKENDS = BACKENDS + LITERT_BACKENDS
# int8 settings tried when benchmarking: the type pairs with MinMax (the calibration
# method moves accuracy, not speed).
INT8_SETTINGS = ("U8S8/minmax", "U8S8r/minmax", "S8S8/minmax", "U8U8/minmax")


@dataclass(frozen=True)
class BenchRow:
    """Batch-1 latency of one model on one backend at one thread count."""

    model: str
    backend: str  # one of ALL_BACKENDS
    threads: int  # intra-op threads
    input_shape: tuple[int, int, int]
    median_ms: float
    p90_ms: float
    min_ms: float
    runs: int
    roofline_ms: float | None  # fp32 roofline bound; None without a module or a profile
    ratio_to_roofline: float | None
    speedup_vs_torch: float | None = None  # eager NCHW at the same thread count / this
    int8_setting: str | None = None  # the int8 setting timed (ort_int8, when chosen here)
    skipped: tuple[str, ...] = ()  # backends an .onnx input cannot run
    batch: int = 1

    def to_dict(self) -> dict[str, Any]:
        """Flat JSON; ``int8_candidate`` only for ort_int8, ``skipped`` only when any."""
        d = {k: getattr(self, k) for k in _ROW_KEYS}
        d["input_shape"] = list(self.input_shape)
        if self.backend == "ort_int8":
            d["int8_candidate"] = self.int8_setting
        if self.skipped:
            d["skipped"] = list(self.skipped)
        return d

    @classmethod
    def from_dict(cls, d: Any) -> BenchRow:
        try:
            return cls(
                **{k: d[k] for k in _ROW_KEYS if k != "input_shape"},
                input_shape=tuple(d["input_shape"]),
                int8_setting=d.get("int8_candidate"),
                skipped=tuple(d.get("skipped", ())),
            )
        except (KeyError, TypeError) as e:
            raise FormatError(f"benchmark row: malformed ({e.__class__.__name__}: {e})") from e


_ROW_KEYS = (
    "model",
    "backend",
    "threads",
    "batch",
    "input_shape",
    "median_ms",
    "p90_ms",
    "min_ms",
    "runs",
    "roofline_ms",
    "ratio_to_roofline",
    "speedup_vs_torch",
)


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


def _resolve(model, meta: ModelMeta | None):
    """-> (module or None, meta, OnnxInfo of an .onnx input or None)."""
    import torch

    if isinstance(model, torch.nn.Module):
        if meta is None:
            spec = getattr(model, "spec", None)
            if spec is None:
                raise ConfigError(
                    "meta is required to benchmark a module: pass load_model's ModelMeta"
                )
            meta = ModelMeta.for_spec(spec)
        return model.eval(), meta, None
    if Path(model).suffix == ".onnx":
        info = read_onnx_meta(model)
        return None, info.meta, info
    from squeezelab.models import load_model

    module, meta = load_model(model)
    return module, meta, None


def benchmark(
    model,
    meta: ModelMeta | None = None,
    input_shape: tuple[int, int, int] | None = None,
    backends=BACKENDS,
    thread_counts=(1, 2),
    rounds: int = 6,
    per_round: int = 5,
    int8_path: str | os.PathLike | None = None,
    calibration_data=None,
    int8_settings=INT8_SETTINGS,
    roofline="host",
    on_phase: Callable[[str], None] | None = None,
) -> list[BenchRow]:
    """Median and p90 batch-1 latency per backend and thread count.

    Args:
        model: a module (with its ``meta``), anything :func:`squeezelab.models.load_model`
            takes, or an ``.onnx`` file (then only the ONNX Runtime backend that fits it runs).
        meta: the module's :class:`~squeezelab.models.ModelMeta` (only with a module;
            optional for a SqueezeNet, whose spec says it).
        input_shape: ``(C, H, W)``; default: the model's own input.
        backends: any of ``ALL_BACKENDS`` (default ``BACKENDS``; the LiteRT ones convert
            the module to ``.tflite`` first, int8 calibrated on ``calibration_data``).
        thread_counts: intra-op thread counts to run each backend with.
        rounds, per_round: timed runs = ``rounds * per_round``, interleaved across backends.
        int8_path: an int8 ONNX file to time for ``ort_int8``; else the model is quantized
            here with ``calibration_data`` (default: 16 random images, fine for speed only)
            over ``int8_settings``.
        roofline: the profile giving the fp32 bound: ``"host"`` calibrates this machine
            per thread count with :func:`squeezelab.analysis.calibrate` (about 20 s each,
            cached), a profile name or ``Hardware`` is used as is, None skips the bound.
        on_phase: progress, ``on_phase(text)`` as each phase starts ("exporting ONNX",
            "timing at 2 threads", ...).

    Returns:
        One :class:`BenchRow` per backend and thread count.

    Example:
        >>> rows = benchmark("squeezenet_small", thread_counts=(1,),
        ...                  backends=("torch", "ort_fp32"), roofline=None)
        >>> sorted(r.backend for r in rows)
        ['ort_fp32', 'torch']
    """
    import torch

    unknown = [b for b in backends if b not in ALL_BACKENDS]
    if unknown or not backends:
        raise ConfigError(
            f"backends={list(backends)} is invalid: allowed {', '.join(ALL_BACKENDS)}"
        )
    thread_counts = tuple(thread_counts)
    if not thread_counts or min(thread_counts) < 1:
        raise ConfigError(f"thread_counts={list(thread_counts)} is invalid: allowed integers >= 1")
    module, meta, onnx_info = _resolve(model, meta)
    if input_shape is None:
        input_shape = meta.input_shape if onnx_info is None else onnx_info.input_shape
    input_shape = tuple(int(d) for d in input_shape)
    x = sample_inputs(meta, n=1, seed=0, input_shape=input_shape)
    skipped: tuple[str, ...] = ()
    if onnx_info is not None:
        keep = "ort_int8" if onnx_info.is_int8 else "ort_fp32"
        skipped = tuple(b for b in backends if b != keep)
        backends = [b for b in backends if b == keep]
    rows = []
    old_threads = torch.get_num_threads()
    phase = on_phase or (lambda text: None)
    with tempfile.TemporaryDirectory(prefix="squeezelab-bench-") as tmp:
        paths, int8_choice = {}, None
        if "ort_fp32" in backends or "ort_int8" in backends:
            if onnx_info is not None and not onnx_info.is_int8:
                fp32 = str(model)
            else:
                fp32 = os.path.join(tmp, "fp32.onnx")
            if onnx_info is None:
                phase("exporting ONNX")
                export_onnx(module, meta, fp32, input_shape=input_shape)
            paths["ort_fp32"] = fp32
            if "ort_int8" in backends:
                given = str(model) if onnx_info is not None else int8_path
                phase("quantizing int8" if given is None else "reading the int8 file")
                paths["ort_int8"], int8_choice = _int8(
                    given, fp32, calibration_data, int8_settings, tmp, input_shape
                )
        for name in [b for b in backends if b in LITERT_BACKENDS]:
            phase(f"converting {name}")
            paths[name] = _tflite(module, meta, name, input_shape, calibration_data, tmp)
        xt = torch.from_numpy(x)
        try:
            for t in thread_counts:
                phase(f"timing at {t} thread(s)")
                roof = (
                    None
                    if module is None
                    else roofline_ms(module, input_shape, _hardware(roofline, t))
                )
                torch.set_num_threads(t)
                fns = _callables(backends, module, xt, x, paths, t)
                for name, stats in time_interleaved(
                    fns, rounds=rounds, per_round=per_round
                ).items():
                    rows.append(
                        BenchRow(
                            model=meta.name,
                            backend=name,
                            threads=t,
                            input_shape=input_shape,
                            median_ms=stats.median_ms,
                            p90_ms=stats.p90_ms,
                            min_ms=stats.min_ms,
                            runs=stats.runs,
                            roofline_ms=roof,
                            ratio_to_roofline=None if roof is None else stats.median_ms / roof,
                            int8_setting=int8_choice if name == "ort_int8" else None,
                            skipped=skipped,
                        )
                    )
        finally:
            torch.set_num_threads(old_threads)
    base = {r.threads: r.median_ms for r in rows if r.backend == "torch"}
    return [
        dataclasses.replace(
            r, speedup_vs_torch=base[r.threads] / r.median_ms if r.threads in base else None
        )
        for r in rows
    ]


def time_files(
    files: dict[str, str | os.PathLike],
    meta: ModelMeta,
    threads: int = 1,
    rounds: int = 6,
    per_round: int = 5,
) -> dict[str, float]:
    """Median batch-1 ms of written files, timed interleaved: ``{backend: path}`` in.

    Backends: ``ort_fp32`` / ``ort_int8`` (an ``.onnx``), ``litert_fp32`` / ``litert_int8``
    (a ``.tflite``, XNNPACK). The files are timed as they are (no conversion here), so
    the design's deploy stage compares the very files it may ship.
    """
    unknown = [b for b in files if b not in ALL_BACKENDS or b.startswith("torch")]
    if unknown or not files:
        raise ConfigError(
            f"files for {unknown or 'no backend'}: allowed ort_fp32, ort_int8, "
            "litert_fp32, litert_int8"
        )
    x = sample_inputs(meta, n=1, seed=0)
    paths = {b: str(p) for b, p in files.items()}
    fns = _callables(list(paths), None, None, x, paths, threads)
    stats = time_interleaved(fns, rounds=rounds, per_round=per_round)
    return {name: st.median_ms for name, st in stats.items()}


def _int8(given, fp32_path, calibration_data, settings, tmp, input_shape):
    """-> (int8 ONNX path, chosen setting name or None when a file was given)."""
    if given is not None:
        return str(given), None
    from squeezelab.export.quantize import quantize_int8

    calib = calibration_data
    if calib is None:
        calib = np.random.default_rng(1).integers(0, 256, (16, *input_shape), dtype=np.uint8)
    out = os.path.join(tmp, "int8.onnx")
    result = quantize_int8(fp32_path, calib, out, settings=list(settings), tolerance=0.05)
    return out, result.chosen


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
        elif name in LITERT_BACKENDS:
            fns[name] = _litert_invoke(paths[name], x, threads)
        else:
            sess = make_session(paths[name], threads)
            fns[name] = functools.partial(sess.run, None, {INPUT_NAME: x})
    return fns


def _tflite(module, meta, backend, input_shape, calibration_data, tmp) -> str:
    """Convert ``module`` to the ``.tflite`` a LiteRT backend times; -> its path."""
    from squeezelab.export.tflite import export_tflite

    c, h, w = input_shape
    if c != meta.in_chans or h != w:
        raise ConfigError(
            f"{backend}: input {c}x{h}x{w} is invalid: allowed a square input with the "
            f"model's {meta.in_chans} channel(s)"
        )
    meta = dataclasses.replace(meta, input_size=h)
    path = os.path.join(tmp, f"{backend}.tflite")
    int8 = backend == "litert_int8"
    calib = calibration_data
    if int8 and calib is None:  # random images time as well as real ones
        calib = np.random.default_rng(1).integers(0, 256, (16, *input_shape), dtype=np.uint8)
    export_tflite(module, meta, path, int8=int8, calib=calib if int8 else None, n_calib=16)
    return path


def _litert_invoke(path: str, x: np.ndarray, threads: int):
    """LiteRT's interpreter (XNNPACK, ``threads`` threads) holding ``x``; -> its ``invoke``."""
    from squeezelab.export.tflite import require_deploy

    lite = require_deploy("ai_edge_litert.interpreter")
    it = lite.Interpreter(model_path=path, num_threads=threads)
    it.allocate_tensors()
    d = it.get_input_details()[0]
    nhwc = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    if d["dtype"] == np.int8:  # x is normalised already: quantise with the file's parameters
        scale, zero = d["quantization"]
        nhwc = np.clip(np.round(nhwc / scale) + zero, -128, 127).astype(np.int8)
    it.set_tensor(d["index"], nhwc)
    return it.invoke


def _torch_run(model, x):
    import torch

    with torch.inference_mode():
        return model(x)
