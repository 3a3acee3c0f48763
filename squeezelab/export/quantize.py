"""Static int8 quantization (QDQ, per-channel weights) that searches ONNX Runtime's settings.

Follows the ONNX Runtime quantization guide (onnxruntime.ai/docs/performance/quantization):
calibrate on real images, try each activation/weight type pair and calibration method,
measure every candidate's latency and accuracy, keep the fastest within the tolerance.
The speed of a pair depends on the CPU's int8 instructions (VNNI or not), hence the search.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from squeezelab.errors import ConfigError
from squeezelab.export.onnx import INPUT_NAME, make_session, normalize, read_onnx_meta
from squeezelab.export.timing import time_interleaved

# Type pairs as ORT names them (activation first); "r" = reduce_range (7-bit weights), the
# guide's cure for U8S8 saturation in VPMADDUBSW on AVX2/AVX-512 CPUs without VNNI.
TYPE_PAIRS = ("U8S8", "U8S8r", "S8S8", "U8U8")
METHODS = ("minmax", "entropy", "percentile")
_TYPES = {"U8": "QUInt8", "S8": "QInt8"}


@dataclass(frozen=True)
class Candidate:
    """One quantization setting: an activation/weight type pair and a calibration method."""

    types: str  # one of TYPE_PAIRS
    method: str  # one of METHODS

    @property
    def name(self) -> str:
        return f"{self.types}/{self.method}"

    @classmethod
    def parse(cls, text: str) -> Candidate:
        """``"U8S8/minmax"`` -> Candidate; names the allowed values on error."""
        types, _, method = text.partition("/")
        if types not in TYPE_PAIRS or method not in METHODS:
            raise ConfigError(
                f"candidate {text!r} is invalid: allowed TYPES/METHOD with TYPES in "
                f"{', '.join(TYPE_PAIRS)} and METHOD in {', '.join(METHODS)}"
            )
        return cls(types, method)


ALL_CANDIDATES = tuple(Candidate(t, m) for m in METHODS for t in TYPE_PAIRS)


def _reader(x: np.ndarray, batch: int):
    """A CalibrationDataReader over float32 batches, with the ranges ORT's strided mode uses."""
    from onnxruntime.quantization import CalibrationDataReader

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = [x[i : i + batch] for i in range(0, len(x), batch)]
            self.set_range(0, len(self.batches))

        def __len__(self) -> int:
            return len(self.batches)

        def set_range(self, start_index: int, end_index: int) -> None:
            self._it = iter(self.batches[start_index:end_index])

        def get_next(self):
            b = next(self._it, None)
            return None if b is None else {INPUT_NAME: b}

    return Reader()


def _as_inputs(data, meta: dict[str, Any], shape: list[int]) -> np.ndarray:
    """uint8 images are normalised with the model's metadata; float32 is taken as normalised."""
    x = np.asarray(data)
    if x.ndim == 3 and shape[0] == 1:
        x = x[:, None]
    if x.ndim != 4 or list(x.shape[1:]) != list(shape) or len(x) == 0:
        raise ConfigError(
            f"calibration/eval data has shape {tuple(x.shape)}: allowed (N, {', '.join(map(str, shape))})"
        )
    return normalize(x, meta) if x.dtype == np.uint8 else x.astype(np.float32)


def _predict(session, x: np.ndarray, batch: int = 64) -> np.ndarray:
    return np.concatenate(
        [
            session.run(None, {INPUT_NAME: x[i : i + batch]})[0].argmax(1)
            for i in range(0, len(x), batch)
        ]
    )


def _score(pred: np.ndarray, labels: np.ndarray | None, ref: np.ndarray) -> float:
    """Top-1 accuracy with labels, else top-1 agreement with the fp32 model."""
    return float((pred == (ref if labels is None else labels)).mean())


def quantize_int8(
    onnx_path: str | os.PathLike,
    calibration_data,
    out_path: str | os.PathLike,
    labels=None,
    tolerance: float = 0.005,
    candidates=None,
    eval_data=None,
    threads: int = 1,
    per_channel: bool = True,
    preprocess: bool = True,
    calib_batch: int = 16,
    runs: int = 30,
) -> dict[str, Any]:
    """Quantize an exported ONNX model to int8 QDQ, keeping the fastest accurate setting.

    Every candidate is calibrated on ``calibration_data`` (one calibration per method,
    cached and shared by the type pairs), timed at batch 1 on ``threads`` threads, and
    scored on ``eval_data`` (default: the calibration data): top-1 accuracy against
    ``labels`` if given, else top-1 agreement with the fp32 model. The fastest candidate
    whose score is within ``tolerance`` of fp32 (accuracy points as a fraction; for
    agreement, ``1 - tolerance``) is written to ``out_path``; when none is, the most
    accurate one is, and ``within_tolerance`` is False.

    Args:
        onnx_path: an fp32 model written by :func:`squeezelab.export.export_onnx`.
        calibration_data: ``(N, C, H, W)`` images: uint8 (normalised with the model's
            metadata) or float32 (already normalised). ``(N, H, W)`` for one channel.
        out_path: where the int8 ``.onnx`` goes.
        labels: int class labels of ``eval_data`` (or of ``calibration_data``).
        tolerance: allowed drop of top-1 accuracy (or agreement), 0.005 = 0.5 points.
        candidates: ``Candidate``s or ``"U8S8/minmax"`` strings; default all of
            ``ALL_CANDIDATES``.
        eval_data: images to score on, same forms as ``calibration_data``.
        threads: intra-op threads for the latency measurement.
        per_channel: per-output-channel weight scales.
        preprocess: run ORT's ``quant_pre_process`` (shape inference, graph fusions) first.
        calib_batch: calibration batch size; ranges are merged batch by batch (bounded memory).
        runs: timed runs per candidate (after warm-up).

    Returns:
        A report: ``chosen`` (candidate name), ``within_tolerance``, ``metric``
        (``"top1"`` or ``"agreement"``), ``fp32`` and ``int8`` records (``latency_ms``,
        ``score``, ``bytes``), ``speedup``, and ``tried``: one record per candidate.

    Example:
        >>> rep = quantize_int8("s.onnx", images, "s.int8.onnx", candidates=["U8S8/minmax"])  # doctest: +SKIP
    """
    if not 0 <= tolerance < 1:
        raise ConfigError(f"tolerance={tolerance} is invalid: allowed 0 <= tolerance < 1")
    cands = [
        c if isinstance(c, Candidate) else Candidate.parse(c)
        for c in (candidates or ALL_CANDIDATES)
    ]
    meta = read_onnx_meta(onnx_path)
    shape = meta.get("parity", {}).get("input_shape") or [
        meta["in_chans"],
        meta["input_size"],
        meta["input_size"],
    ]
    calib = _as_inputs(calibration_data, meta, shape)
    x_eval = calib if eval_data is None else _as_inputs(eval_data, meta, shape)
    y = None if labels is None else np.asarray(labels).astype(np.int64).reshape(-1)
    if y is not None and len(y) != len(x_eval):
        raise ConfigError(f"labels has {len(y)} entries but the eval data has {len(x_eval)} images")
    one = x_eval[:1]
    fp32 = make_session(onnx_path, threads)
    ref = _predict(fp32, x_eval)
    fp32_score = _score(ref, y, ref)
    tried, sessions = [], {"fp32": fp32}
    with tempfile.TemporaryDirectory(prefix="squeezelab-quant-") as tmp:
        src = _preprocess(onnx_path, tmp) if preprocess else str(onnx_path)
        for i, cand in enumerate(cands):
            out = os.path.join(tmp, f"cand{i}.onnx")
            _quantize(src, out, cand, calib, calib_batch, per_channel, tmp)
            sessions[cand.name] = sess = make_session(out, threads)
            score = _score(_predict(sess, x_eval), y, ref)
            tried.append({
                "candidate": cand.name,
                **asdict(cand),
                "score": score,
                "score_drop": fp32_score - score,
                "within_tolerance": score >= fp32_score - tolerance - 1e-12,
                "bytes": os.path.getsize(out),
                "_path": out,
            })  # fmt: skip
        feeds = {INPUT_NAME: one}
        lat = time_interleaved(
            {k: (lambda s=s: s.run(None, feeds)) for k, s in sessions.items()},
            rounds=max(1, runs // 5),
        )
        for t in tried:
            t.update({k: lat[t["candidate"]][k] for k in ("median_ms", "p90_ms", "min_ms")})
            t["latency_ms"] = t.pop("median_ms")
        ok = [t for t in tried if t["within_tolerance"]]
        best = (
            min(ok, key=lambda t: t["latency_ms"])
            if ok
            else max(tried, key=lambda t: (t["score"], -t["latency_ms"]))
        )
        _finish(best["_path"], out_path, best, meta, tolerance, len(calib))
    fp32_rec = {
        "latency_ms": lat["fp32"]["median_ms"],
        "p90_ms": lat["fp32"]["p90_ms"],
        "min_ms": lat["fp32"]["min_ms"],
        "score": fp32_score,
        "bytes": Path(onnx_path).stat().st_size,
    }
    for t in tried:
        del t["_path"]
    return {
        "chosen": best["candidate"],
        "within_tolerance": bool(ok),
        "metric": "agreement" if y is None else "top1",
        "tolerance": tolerance,
        "threads": threads,
        "calibration_images": int(len(calib)),
        "eval_images": int(len(x_eval)),
        "preprocess": preprocess,
        "per_channel": per_channel,
        "fp32": fp32_rec,
        "int8": {k: best[k] for k in ("latency_ms", "p90_ms", "min_ms", "score", "bytes")},
        "speedup": fp32_rec["latency_ms"] / best["latency_ms"],
        "tried": tried,
        "path": str(out_path),
    }


def _finish(src: str, out_path, best: dict, meta: dict, tolerance: float, n_calib: int) -> None:
    """Copy the chosen candidate to ``out_path`` (atomically) with the metadata and choice."""
    import onnx

    from squeezelab.export.onnx import META_KEY, set_metadata
    from squeezelab.io import atomic_path

    proto = onnx.load(src)
    base = {k: v for k, v in meta.items() if k not in ("parity", "quantization")}
    quant = {
        "candidate": best["candidate"],
        "score": best["score"],
        "score_drop": best["score_drop"],
        "tolerance": tolerance,
        "calibration_images": n_calib,
    }
    entries = {META_KEY: base, f"{META_KEY}_quantization": quant}
    if "parity" in meta:
        entries[f"{META_KEY}_parity"] = meta["parity"]
    set_metadata(proto, entries)
    with atomic_path(out_path) as tmp:
        onnx.save(proto, str(tmp))


def _preprocess(onnx_path, tmp: str) -> str:
    """ORT's quant_pre_process: symbolic shape inference and graph fusions before calibration."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    out = os.path.join(tmp, "pre.onnx")
    quant_pre_process(str(onnx_path), out)
    return out


def _quantize(src, out, cand: Candidate, calib, calib_batch, per_channel, tmp) -> None:
    """One quantize_static call; the calibration of a method is cached for the other pairs.

    QDQ drops a ReLU after a convolution when the convolution's output is quantized
    (``QDQKeepRemovableActivations`` off): the uint8 range starting at 0 does the clipping.
    """
    import contextlib
    import io

    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    method = {
        "minmax": CalibrationMethod.MinMax,
        "entropy": CalibrationMethod.Entropy,
        "percentile": CalibrationMethod.Percentile,
    }[cand.method]
    act, wt = cand.types[:2], cand.types[2:4]
    with contextlib.redirect_stdout(io.StringIO()):  # the histogram calibrators print progress
        quantize_static(
            src,
            out,
            _reader(calib, calib_batch),
            calibration_cache_path=os.path.join(tmp, f"calib-{cand.method}.json"),
            quant_format=QuantFormat.QDQ,
            activation_type=getattr(QuantType, _TYPES[act]),
            weight_type=getattr(QuantType, _TYPES[wt]),
            calibrate_method=method,
            per_channel=per_channel,
            reduce_range=cand.types.endswith("r"),
            extra_options={"CalibStridedMinMax": 1},
        )
