"""Detectors through the deploy runtimes: raw head maps, mAP, the int8 form chosen by mAP.

A detector's file holds the raw ConvDet map (``K*(C+5)`` channels per grid cell, no
decoding in the graph; docs/detection.md). Each runtime here is a ``forward``: normalised
float32 NCHW images -> the head map as float32 NCHW, which
``squeezelab.train.detect.detections`` decodes (anchors from the model's metadata) and
``coco_map`` scores. An int8 file's output is dequantised with the scale and zero point
the file carries. The int8 form of a detector is chosen on validation canvases by
mAP@0.5 (:func:`choose_int8`), never on the test split, which is scored once after.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from squeezelab.errors import ConfigError, FormatError
from squeezelab.models import ModelMeta

Forward = Callable[[np.ndarray], np.ndarray]  # normalised NCHW float32 -> head map NCHW
# int8 forms of a .tflite detector, "OBSERVER/WEIGHTS[/fp32-head]": litert's histogram
# (least-L2) activation ranges or the whole range, weight scales per output channel or per
# tensor, and the ConvDet convolution in float (one int8 scale serves its class logits,
# confidences and deltas badly: -6 points of mAP@0.5 in ONNX Runtime, docs/detection.md)
TFLITE_FORMS = (
    "histogram/per-channel",
    "minmax/per-channel",
    "histogram/per-channel/fp32-head",
    "minmax/per-channel/fp32-head",
)


def require_detector(meta: ModelMeta, what: str) -> None:
    """Raise a ConfigError unless ``meta`` is a detector (``what`` names the caller)."""
    if meta.task != "detection":
        raise ConfigError(f"{what}: {meta.name!r} is a classifier: allowed a detector")


def head_channels(meta: ModelMeta) -> int:
    """``K*(C+5)``: the head map's channels for ``meta`` (K from its anchors or the spec)."""
    k = len(meta.anchors) or (meta.spec.head_anchors if meta.spec is not None else 9)
    return k * (meta.num_classes + 5)


def _to_nchw(y: np.ndarray, channels: int, where: str) -> np.ndarray:
    """A runtime's ``(N, C, H, W)`` or ``(N, H, W, C)`` head map -> ``(N, C, H, W)``."""
    if y.ndim == 4 and y.shape[1] == channels:
        return y
    if y.ndim == 4 and y.shape[3] == channels:
        return np.ascontiguousarray(y.transpose(0, 3, 1, 2))
    raise FormatError(
        f"{where}: output of shape {tuple(y.shape)} is not a head map of {channels} channels"
    )


def onnx_forward(path: str | os.PathLike, threads: int = 1) -> Forward:
    """``forward`` through ONNX Runtime on an ONNX file written by squeezelab (fp32 or int8)."""
    from squeezelab.export.onnx import INPUT_NAME, make_session

    sess = make_session(path, threads)
    return lambda x: sess.run(None, {INPUT_NAME: np.ascontiguousarray(x, np.float32)})[0]


def _tflite_spec(path: str | os.PathLike):
    from squeezelab.export.tflite import file_spec, read_tflite

    data = Path(path).read_bytes()
    info = read_tflite(data, str(path))
    return data, info, file_spec(info, len(data), str(path))


def _quantize(x: np.ndarray, spec) -> np.ndarray:
    """Normalised NCHW float32 -> the file's NHWC input (int8 when the file is)."""
    x = np.asarray(x, np.float32).transpose(0, 2, 3, 1)
    if not spec.int8:
        return np.ascontiguousarray(x)
    q = np.round(x / spec.input_scale) + spec.input_zero_point
    return np.clip(q, -128, 127).astype(np.int8)


def _dequantize(y: np.ndarray, spec) -> np.ndarray:
    if not spec.int8 or not spec.output_scale:  # a float file, or a float head
        return y.astype(np.float32)
    return (spec.output_scale * (y.astype(np.float32) - spec.output_zero_point)).astype(np.float32)


def litert_forward(path: str | os.PathLike, threads: int = 1, reference: bool = False) -> Forward:
    """``forward`` through LiteRT on a squeezelab ``.tflite`` detector, one batch-1 invoke
    an image; ``reference``: LiteRT's reference kernels (the ones TFLite Micro equals)."""
    from squeezelab.export.tflite import require_deploy

    data, info, spec = _tflite_spec(path)
    meta = _record_meta(info, str(path))
    lite = require_deploy("ai_edge_litert.interpreter")
    kw = {"num_threads": threads}
    if reference:
        kw = {"experimental_op_resolver_type": lite.OpResolverType.BUILTIN_REF}
    it = lite.Interpreter(model_content=data, **kw)
    it.allocate_tensors()
    i_in, i_out = it.get_input_details()[0]["index"], it.get_output_details()[0]["index"]
    channels = head_channels(meta)

    def run(x: np.ndarray) -> np.ndarray:
        feed, outs = _quantize(x, spec), []
        for i in range(len(feed)):
            it.set_tensor(i_in, feed[i : i + 1])
            it.invoke()
            outs.append(_dequantize(it.get_tensor(i_out), spec))
        return _to_nchw(np.concatenate(outs), channels, str(path))

    return run


def tflm_head_maps(path: str | os.PathLike, images_uint8: np.ndarray) -> np.ndarray:
    """TFLite Micro's raw int8 head maps ``(N, ...)`` (the file's output layout) on uint8
    ``(N, C, H, W)`` canvases, from its host interpreter (the runtime an MCU runs)."""
    from squeezelab.export.firmware_build import tflm_outputs

    data, info, spec = _tflite_spec(path)
    _record_meta(info, str(path))
    out, _ = tflm_outputs(path, spec.quantize_input(np.asarray(images_uint8)))
    return out


def litert_head_maps(
    path: str | os.PathLike, images_uint8: np.ndarray, reference: bool = True
) -> np.ndarray:
    """LiteRT's raw int8 outputs, flattened per image as :func:`tflm_head_maps` gives them."""
    from squeezelab.export.tflite import require_deploy

    data, info, spec = _tflite_spec(path)
    lite = require_deploy("ai_edge_litert.interpreter")
    kw = {"experimental_op_resolver_type": lite.OpResolverType.BUILTIN_REF} if reference else {}
    it = lite.Interpreter(model_content=data, **kw)
    it.allocate_tensors()
    i_in, i_out = it.get_input_details()[0]["index"], it.get_output_details()[0]["index"]
    feed, outs = spec.quantize_input(np.asarray(images_uint8)), []
    for i in range(len(feed)):
        it.set_tensor(i_in, feed[i : i + 1])
        it.invoke()
        outs.append(it.get_tensor(i_out).reshape(1, -1).copy())
    return np.concatenate(outs)


def _record_meta(info, where: str) -> ModelMeta:
    """The ModelMeta in a squeezelab ``.tflite``'s metadata; a classifier is refused."""
    rec = info.record or {}
    if "model" not in rec:
        raise ConfigError(f"{where}: has no squeezelab model metadata: allowed a squeezelab export")
    meta = ModelMeta.from_dict(rec["model"], where=f"{where}: metadata")
    require_detector(meta, where)
    return meta


def map50_scorer(meta: ModelMeta, split) -> Callable[[Forward], float]:
    """``forward -> mAP@0.5`` of the detector ``meta`` on a ``DetectionSplit``."""
    from squeezelab.train.detect import coco_map, detections

    def score(forward: Forward) -> float:
        return coco_map(split, detections(forward, meta, split.images.numpy())).map50

    return score


def detection_scores(forward: Forward, meta: ModelMeta, split) -> dict[str, float]:
    """``{"map": mAP@[.5:.95], "map50": mAP@0.5}`` of ``forward`` on ``split``."""
    from squeezelab.train.detect import coco_map, detections

    s = coco_map(split, detections(forward, meta, split.images.numpy()))
    return {"map": s.map, "map50": s.map50}


# -- the int8 form chosen on validation canvases ---------------------------------------


@dataclass(frozen=True)
class FormScore:
    """One int8 form tried: its validation mAP@0.5 and file size."""

    form: str
    val_map50: float
    bytes: int

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Int8Choice:
    """Which int8 form :func:`choose_int8` kept, and every form's validation mAP@0.5."""

    chosen: str
    fp32_val_map50: float
    tolerance: float  # points of mAP@0.5 as a fraction (0.01 = 1 point)
    val_images: int
    tried: tuple[FormScore, ...]

    @property
    def best(self) -> FormScore:
        return next(t for t in self.tried if t.form == self.chosen)

    @property
    def within_tolerance(self) -> bool:
        return self.best.val_map50 >= self.fp32_val_map50 - self.tolerance - 1e-12

    def to_dict(self) -> dict[str, Any]:
        return {
            "chosen": self.chosen,
            "fp32_val_map50": self.fp32_val_map50,
            "tolerance": self.tolerance,
            "val_images": self.val_images,
            "within_tolerance": self.within_tolerance,
            "tried": [t.to_dict() for t in self.tried],
        }

    @classmethod
    def from_dict(cls, d: Any, where: str = "int8 choice") -> Int8Choice:
        try:
            tried = tuple(
                FormScore(str(t["form"]), float(t["val_map50"]), int(t["bytes"]))
                for t in d["tried"]
            )
            choice = cls(
                str(d["chosen"]),
                float(d["fp32_val_map50"]),
                float(d["tolerance"]),
                int(d["val_images"]),
                tried,
            )
            choice.best  # noqa: B018 -- the chosen form must be among those tried
            return choice
        except (KeyError, TypeError, ValueError, StopIteration) as e:
            raise FormatError(f"{where}: malformed ({e.__class__.__name__}: {e})") from None


def choose_int8(
    forms: Sequence[str],
    make: Callable[[str, Path], None],
    score: Callable[[Path], float],
    fp32_score: float,
    out: str | os.PathLike,
    tolerance: float = 0.005,
    val_images: int = 0,
    on_form: Callable[[int, int, str], None] | None = None,
) -> Int8Choice:
    """Make every int8 form, score each on validation data, write the most accurate to ``out``.

    All int8 forms of a file run at the same cost on a device, so the choice is by accuracy
    alone: the highest validation mAP@0.5, the first listed on a tie.

    Args:
        forms: the forms' names, in order of preference on a tie.
        make: ``make(form, path)`` writes that form's file to ``path``.
        score: ``score(path) -> validation mAP@0.5`` of a written file.
        fp32_score: the float model's score on the same validation canvases.
        out: the chosen file's path (copied there atomically).
        tolerance: the mAP@0.5 loss (a fraction) ``within_tolerance`` reports against.
        on_form: progress, ``on_form(k, n, form)`` before form k (1-based) of n.

    Example:
        >>> c = choose_int8(["a", "b"], lambda f, p: p.write_text(f), lambda p: {"a": .4, "b": .5}[p.read_text()], .5, "/tmp/o")
        >>> c.chosen, c.within_tolerance
        ('b', True)
    """
    from squeezelab.io import atomic_path

    if not forms:
        raise ConfigError("int8 forms: none given: allowed one form at least")
    if not 0 <= tolerance < 1:
        raise ConfigError(f"tolerance={tolerance} is invalid: allowed 0 <= tolerance < 1")
    tried, best = [], None
    with tempfile.TemporaryDirectory(prefix="squeezelab-int8-") as tmp:
        for i, form in enumerate(dict.fromkeys(forms)):
            if on_form is not None:
                on_form(i + 1, len(forms), form)
            path = Path(tmp, f"form{i}{Path(out).suffix}")
            make(form, path)
            s = FormScore(form, float(score(path)), path.stat().st_size)
            tried.append(s)
            if best is None or s.val_map50 > best[0].val_map50:
                best = (s, path)
        with atomic_path(out) as dst:
            shutil.copyfile(best[1], dst)
    return Int8Choice(best[0].form, float(fp32_score), tolerance, val_images, tuple(tried))


def parse_tflite_form(form: str) -> dict[str, Any]:
    """``"minmax/per-channel"`` -> ``export_tflite`` keywords; names the allowed forms."""
    observer, _, rest = form.partition("/")
    weights, _, head = rest.partition("/")
    if (
        observer not in ("histogram", "minmax")
        or weights not in ("per-channel", "per-tensor")
        or head not in ("", "fp32-head")
    ):
        raise ConfigError(
            f"int8 form {form!r} is invalid: allowed OBSERVER/WEIGHTS[/fp32-head] with "
            "OBSERVER in histogram, minmax and WEIGHTS in per-channel, per-tensor"
        )
    kw = {"observer": observer, "per_channel": weights == "per-channel"}
    return kw | ({"float_head": True} if head else {})


def choose_tflite_int8(
    model,
    meta: ModelMeta,
    path: str | os.PathLike,
    calib: np.ndarray,
    val,
    forms: Sequence[str] = TFLITE_FORMS,
    tolerance: float = 0.005,
    threads: int = 1,
    on_form: Callable[[int, int, str], None] | None = None,
):
    """The int8 ``.tflite`` of a detector whose form scores the best LiteRT mAP@0.5 on ``val``.

    Args:
        model, meta: the detector (``load_model``).
        path: the ``.tflite`` to write.
        calib: uint8 ``(N, C, H, W)`` training canvases for the activation ranges.
        val: a ``DetectionSplit`` of validation canvases (never the test split).
        forms: :data:`TFLITE_FORMS` names to try.

    Returns:
        ``(TfliteExport of the written file, Int8Choice)``.
    """
    from squeezelab.export.tflite import export_tflite
    from squeezelab.train.detect import torch_forward

    require_detector(meta, "choose_tflite_int8")
    kws = {f: parse_tflite_form(f) for f in forms}
    score = map50_scorer(meta, val)
    exports: dict[str, Any] = {}

    def make(form: str, p: Path) -> None:
        exports[p.name] = export_tflite(
            model, meta, p, calib=calib, n_calib=len(calib), **kws[form]
        )

    choice = choose_int8(
        list(kws),
        make,
        lambda p: score(litert_forward(p, threads)),
        score(torch_forward(model)),
        path,
        tolerance,
        len(val),
        on_form,
    )
    from squeezelab.export.tflite import file_spec, read_tflite

    data = Path(path).read_bytes()
    spec = file_spec(read_tflite(data, str(path)), len(data), str(path))
    first = next(iter(exports.values()))
    exp = dataclasses.replace(
        spec, input_shape=first.input_shape, calibration=first.calibration, path=str(path)
    )
    return exp, choice


def tflite_output_shape(path: str | os.PathLike) -> tuple[int, ...]:
    """The output tensor's shape of a ``.tflite`` (a detector's: its head map layout)."""
    from squeezelab.export.tflite import require_deploy

    lite = require_deploy("ai_edge_litert.interpreter")
    it = lite.Interpreter(model_content=Path(path).read_bytes())
    return tuple(int(d) for d in it.get_output_details()[0]["shape"])
