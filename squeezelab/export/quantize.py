"""Static int8 quantization (QDQ, per-channel weights) that searches ONNX Runtime's settings.

Follows the ONNX Runtime quantization guide (onnxruntime.ai/docs/performance/quantization):
calibrate on real images, try each activation/weight type pair and calibration method,
measure every setting's latency and accuracy, keep the fastest within the tolerance.
The speed of a pair depends on the CPU's int8 instructions (VNNI or not), hence the search.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from squeezelab.errors import ConfigError
from squeezelab.export.onnx import (
    INPUT_NAME,
    OnnxInfo,
    Quantization,
    make_session,
    metadata_entries,
    normalize,
    read_onnx_meta,
    set_metadata,
)
from squeezelab.export.timing import time_interleaved
from squeezelab.models import ModelMeta

# Type pairs as ORT names them (activation first); "r" = reduce_range (7-bit weights), the
# guide's cure for U8S8 saturation in VPMADDUBSW on AVX2/AVX-512 CPUs without VNNI.
TYPE_PAIRS = ("U8S8", "U8S8r", "S8S8", "U8U8")
METHODS = ("minmax", "entropy", "percentile")
_TYPES = {"U8": "QUInt8", "S8": "QInt8"}


@dataclass(frozen=True)
class Int8Setting:
    """One quantization setting: an activation/weight type pair and a calibration method."""

    types: str  # one of TYPE_PAIRS
    method: str  # one of METHODS
    # the node making the graph's output left in float: a detector's ConvDet map mixes
    # class logits, confidences and box deltas, whose ranges one int8 scale serves badly
    float_head: bool = False

    @property
    def name(self) -> str:
        return f"{self.types}/{self.method}" + (f"/{FLOAT_HEAD}" if self.float_head else "")

    @classmethod
    def parse(cls, text: str) -> Int8Setting:
        """``"U8S8/minmax"`` (or ``".../fp32-head"``) -> Int8Setting; names the allowed values."""
        types, _, rest = text.partition("/")
        method, _, head = rest.partition("/")
        if types not in TYPE_PAIRS or method not in METHODS or head not in ("", FLOAT_HEAD):
            raise ConfigError(
                f"int8 setting {text!r} is invalid: allowed TYPES/METHOD[/{FLOAT_HEAD}] with "
                f"TYPES in {', '.join(TYPE_PAIRS)} and METHOD in {', '.join(METHODS)}"
            )
        return cls(types, method, head == FLOAT_HEAD)


FLOAT_HEAD = "fp32-head"
ALL_SETTINGS = tuple(Int8Setting(t, m) for m in METHODS for t in TYPE_PAIRS)
# a detector's default: every setting with the head in int8, then with it in float
DETECTION_SETTINGS = ALL_SETTINGS + tuple(
    Int8Setting(t, m, True) for m in METHODS for t in TYPE_PAIRS if t != "U8U8"
)


@dataclass(frozen=True)
class Int8Score:
    """One setting tried: its accuracy on the eval data, size and batch-1 latency."""

    setting: str  # "TYPES/METHOD" (JSON key: "candidate")
    types: str
    method: str
    score: float  # top-1 accuracy, or top-1 agreement with fp32 without labels
    score_drop: float  # fp32 score minus this score
    within_tolerance: bool
    bytes: int
    latency_ms: float  # median at batch 1
    p90_ms: float
    min_ms: float

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        return {"candidate": d.pop("setting"), **d}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Int8Score:
        return cls(setting=d["candidate"], **{k: d[k] for k in _fields(cls) if k != "setting"})


@dataclass(frozen=True)
class OnnxFigures:
    """Batch-1 latency, score and size of one ONNX model (fp32 or the chosen int8)."""

    latency_ms: float  # median
    p90_ms: float
    min_ms: float
    score: float
    bytes: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> OnnxFigures:
        return cls(**{k: d[k] for k in _fields(cls)})


@dataclass(frozen=True)
class Int8Result:
    """What :func:`quantize_int8` found and wrote."""

    chosen: str  # the setting written to ``path``
    within_tolerance: bool  # False: no setting was, the most accurate one was kept
    metric: str  # "top1" (with labels) or "agreement" (with the fp32 model)
    tolerance: float
    threads: int
    calibration_images: int
    eval_images: int
    preprocess: bool
    per_channel: bool
    fp32: OnnxFigures
    int8: OnnxFigures
    speedup: float  # fp32 latency / int8 latency
    tried: tuple[Int8Score, ...]
    path: str

    def to_dict(self) -> dict[str, Any]:
        d = {k: getattr(self, k) for k in _fields(type(self))}
        d.update(
            fp32=self.fp32.to_dict(),
            int8=self.int8.to_dict(),
            tried=[t.to_dict() for t in self.tried],
        )
        return d

    @classmethod
    def from_dict(cls, d: Any, where: str = "int8 result") -> Int8Result:
        from squeezelab.errors import FormatError

        try:
            plain = {k: d[k] for k in _fields(cls) if k not in ("fp32", "int8", "tried")}
            return cls(
                **plain,
                fp32=OnnxFigures.from_dict(d["fp32"]),
                int8=OnnxFigures.from_dict(d["int8"]),
                tried=tuple(Int8Score.from_dict(t) for t in d["tried"]),
            )
        except (KeyError, TypeError) as e:
            raise FormatError(f"{where}: malformed ({e.__class__.__name__}: {e})") from e


def _fields(cls) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]


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


def _as_inputs(data, meta: ModelMeta, shape: tuple[int, ...]) -> np.ndarray:
    """uint8 images are normalised with the model's metadata; float32 is taken as normalised."""
    x = np.asarray(data)
    if x.ndim == 3 and shape[0] == 1:
        x = x[:, None]
    if x.ndim != 4 or tuple(x.shape[1:]) != tuple(shape) or len(x) == 0:
        raise ConfigError(
            f"calibration/eval data has shape {tuple(x.shape)}: "
            f"allowed (N, {', '.join(map(str, shape))})"
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
    settings=None,
    eval_data=None,
    threads: int = 1,
    per_channel: bool = True,
    preprocess: bool = True,
    calib_batch: int = 16,
    runs: int = 30,
    on_setting: Callable[[int, int, str], None] | None = None,
    scorer: Callable[[Callable[[np.ndarray], np.ndarray]], float] | None = None,
    metric: str = "map50",
) -> Int8Result:
    """Quantize an exported ONNX model to int8 QDQ, keeping the fastest accurate setting.

    Every setting is calibrated on ``calibration_data`` (one calibration per method,
    cached and shared by the type pairs), timed at batch 1 on ``threads`` threads, and
    scored on ``eval_data`` (default: the calibration data): top-1 accuracy against
    ``labels`` if given, else top-1 agreement with the fp32 model. The fastest setting
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
        settings: ``Int8Setting``s or ``"U8S8/minmax"`` strings; default all of
            ``ALL_SETTINGS``.
        eval_data: images to score on, same forms as ``calibration_data``.
        threads: intra-op threads for the latency measurement.
        per_channel: per-output-channel weight scales.
        preprocess: run ORT's ``quant_pre_process`` (shape inference, graph fusions) first.
        calib_batch: calibration batch size; ranges are merged batch by batch (bounded memory).
        runs: timed runs per setting (after warm-up).
        on_setting: progress, ``on_setting(k, n, name)`` before step k (1-based) of n:
            calibrating and scoring each setting, then ``"timing"`` them all (the last).
        scorer: ``scorer(forward) -> score`` in place of top-1: ``forward`` maps normalised
            float32 NCHW images to the model's raw output (a detector's head map, scored as
            mAP by ``squeezelab.export.detection.map50_scorer``); ``labels`` must be None
            and ``eval_data`` is then only timed and counted.
        metric: the scorer's name in the result (default ``"map50"``).

    Returns:
        An :class:`Int8Result`: the ``chosen`` setting, ``within_tolerance``, ``metric``,
        ``fp32`` and ``int8`` figures, ``speedup`` and one :class:`Int8Score` per setting.

    Example:
        >>> r = quantize_int8("s.onnx", images, "s.int8.onnx", settings=["U8S8/minmax"])  # doctest: +SKIP
        >>> r.chosen, r.int8.latency_ms  # doctest: +SKIP
    """
    if not 0 <= tolerance < 1:
        raise ConfigError(f"tolerance={tolerance} is invalid: allowed 0 <= tolerance < 1")
    tries = [
        s if isinstance(s, Int8Setting) else Int8Setting.parse(s)
        for s in (settings or ALL_SETTINGS)
    ]
    info = read_onnx_meta(onnx_path)
    meta, shape = info.meta, info.input_shape
    calib = _as_inputs(calibration_data, meta, shape)
    x_eval = calib if eval_data is None else _as_inputs(eval_data, meta, shape)
    y = None if labels is None else np.asarray(labels).astype(np.int64).reshape(-1)
    if y is not None and len(y) != len(x_eval):
        raise ConfigError(f"labels has {len(y)} entries but the eval data has {len(x_eval)} images")
    if scorer is not None and y is not None:
        raise ConfigError("labels: not allowed with a scorer (it scores on its own data)")
    fp32 = make_session(onnx_path, threads)
    if scorer is None:
        ref = _predict(fp32, x_eval)
        fp32_score = _score(ref, y, ref)

        def score_of(sess) -> float:
            return _score(_predict(sess, x_eval), y, ref)
    else:

        def score_of(sess) -> float:
            return float(scorer(lambda x: sess.run(None, {INPUT_NAME: x})[0]))

        fp32_score = score_of(fp32)
    sessions, found = {"fp32": fp32}, []
    with tempfile.TemporaryDirectory(prefix="squeezelab-quant-") as tmp:
        src = _preprocess(onnx_path, tmp) if preprocess else str(onnx_path)
        for i, setting in enumerate(tries):
            if on_setting is not None:
                on_setting(i + 1, len(tries) + 1, setting.name)
            out = os.path.join(tmp, f"setting{i}.onnx")
            _quantize(src, out, setting, calib, calib_batch, per_channel, tmp)
            sessions[setting.name] = sess = make_session(out, threads)
            found.append((setting, score_of(sess), out))
        feeds = {INPUT_NAME: x_eval[:1]}
        if on_setting is not None:
            on_setting(len(tries) + 1, len(tries) + 1, "timing")
        lat = time_interleaved(
            {k: (lambda s=s: s.run(None, feeds)) for k, s in sessions.items()},
            rounds=max(1, runs // 5),
        )
        tried = tuple(
            Int8Score(
                setting=setting.name,
                types=setting.types,
                method=setting.method,
                score=score,
                score_drop=fp32_score - score,
                within_tolerance=score >= fp32_score - tolerance - 1e-12,
                bytes=os.path.getsize(out),
                latency_ms=lat[setting.name].median_ms,
                p90_ms=lat[setting.name].p90_ms,
                min_ms=lat[setting.name].min_ms,
            )
            for setting, score, out in found
        )
        ok = [t for t in tried if t.within_tolerance]
        best = (
            min(ok, key=lambda t: t.latency_ms)
            if ok
            else max(tried, key=lambda t: (t.score, -t.latency_ms))
        )
        stamp = Quantization(best.setting, best.score, best.score_drop, tolerance, len(calib))
        src_best = found[tried.index(best)][2]
        _finish(src_best, out_path, OnnxInfo(meta, info.parity, stamp))
    t32 = lat["fp32"]
    fp32_fig = OnnxFigures(
        t32.median_ms, t32.p90_ms, t32.min_ms, fp32_score, Path(onnx_path).stat().st_size
    )
    return Int8Result(
        chosen=best.setting,
        within_tolerance=bool(ok),
        metric=metric if scorer is not None else "agreement" if y is None else "top1",
        tolerance=tolerance,
        threads=threads,
        calibration_images=int(len(calib)),
        eval_images=int(len(x_eval)),
        preprocess=preprocess,
        per_channel=per_channel,
        fp32=fp32_fig,
        int8=OnnxFigures(best.latency_ms, best.p90_ms, best.min_ms, best.score, best.bytes),
        speedup=fp32_fig.latency_ms / best.latency_ms,
        tried=tried,
        path=str(out_path),
    )


def score_onnx(path: str | os.PathLike, images, labels, threads: int = 1) -> float:
    """Top-1 accuracy of an ONNX file written by squeezelab on uint8 (or normalised) images.

    For the one score of the chosen file on the test split, after :func:`quantize_int8`
    chose on the validation split.
    """
    y = np.asarray(labels).astype(np.int64).reshape(-1)
    pred = onnx_predictions(path, images, threads)
    if len(y) != len(pred):
        raise ConfigError(f"labels has {len(y)} entries but there are {len(pred)} images")
    return _score(pred, y, y)


def onnx_predictions(path: str | os.PathLike, images, threads: int = 1) -> np.ndarray:
    """The class an ONNX file written by squeezelab predicts for each image."""
    info = read_onnx_meta(path)
    x = _as_inputs(images, info.meta, info.input_shape)
    return _predict(make_session(path, threads), x)


def _finish(src: str, out_path, info: OnnxInfo) -> None:
    """Copy the chosen setting's file to ``out_path`` (atomically) with the metadata and choice."""
    import onnx

    from squeezelab.io import atomic_path

    proto = onnx.load(src)
    set_metadata(proto, metadata_entries(info))
    with atomic_path(out_path) as tmp:
        onnx.save(proto, str(tmp))


def _preprocess(onnx_path, tmp: str) -> str:
    """ORT's quant_pre_process: symbolic shape inference and graph fusions before calibration."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    out = os.path.join(tmp, "pre.onnx")
    quant_pre_process(str(onnx_path), out)
    return out


def _quantize(src, out, setting: Int8Setting, calib, calib_batch, per_channel, tmp) -> None:
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
    }[setting.method]
    act, wt = setting.types[:2], setting.types[2:4]
    exclude = [_output_node(src)] if setting.float_head else []
    with contextlib.redirect_stdout(io.StringIO()):  # the histogram calibrators print progress
        quantize_static(
            src,
            out,
            _reader(calib, calib_batch),
            calibration_cache_path=os.path.join(tmp, f"calib-{setting.method}.json"),
            quant_format=QuantFormat.QDQ,
            activation_type=getattr(QuantType, _TYPES[act]),
            weight_type=getattr(QuantType, _TYPES[wt]),
            calibrate_method=method,
            per_channel=per_channel,
            reduce_range=setting.types.endswith("r"),
            nodes_to_exclude=exclude,
            extra_options={"CalibStridedMinMax": 1},
        )


def _output_node(src: str) -> str:
    """The name of the node that makes the graph's (first) output."""
    import onnx

    g = onnx.load(src, load_external_data=False).graph
    out = g.output[0].name
    node = next((n for n in g.node if out in n.output), None)
    if node is None or not node.name:
        raise ConfigError(f"{src}: the node making output {out!r} has no name to keep in float")
    return node.name
