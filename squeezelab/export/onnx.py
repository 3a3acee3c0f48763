"""ONNX export with a parity check against PyTorch, and the ONNX Runtime session we deploy with.

Uses torch.onnx's TorchScript-based exporter (fast, offline, folds BatchNorm in eval mode);
the exported graph must pass ``onnx.checker``, run in ONNX Runtime and match PyTorch's
outputs; the check's figures and the model metadata go into the ONNX ``metadata_props``.
"""

from __future__ import annotations

import io
import json
import os
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from squeezelab.errors import ConfigError, FormatError
from squeezelab.models import ModelMeta

META_KEY = "squeezelab"  # the model metadata (ModelMeta.to_dict(), as in model files)
PARITY_KEY = "squeezelab_parity"  # the export-time check against PyTorch
QUANT_KEY = "squeezelab_quantization"  # the int8 setting an int8 file was made with
INPUT_NAME, OUTPUT_NAME = "input", "logits"
MIN_OPSET = 13  # per-channel QuantizeLinear/DequantizeLinear need opset 13


@dataclass(frozen=True)
class OnnxParity:
    """The export-time check of the ONNX graph against PyTorch (stored in the file)."""

    max_abs_diff: float  # largest |onnx - torch| over all outputs
    mean_abs_diff: float
    top1_agreement: float  # fraction of inputs whose arg-max agrees
    n_inputs: int
    tolerance: float  # the max_abs_diff allowed
    opset: int
    dynamic_batch: bool
    input_shape: tuple[int, int, int]  # (C, H, W) the graph was exported at

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "input_shape": list(self.input_shape)}

    @classmethod
    def from_dict(cls, d: Any, where: str = "ONNX parity") -> OnnxParity:
        try:
            return cls(
                max_abs_diff=float(d["max_abs_diff"]),
                mean_abs_diff=float(d["mean_abs_diff"]),
                top1_agreement=float(d["top1_agreement"]),
                n_inputs=int(d["n_inputs"]),
                tolerance=float(d.get("tolerance", 1e-4)),
                opset=int(d["opset"]),
                dynamic_batch=bool(d.get("dynamic_batch", True)),
                input_shape=tuple(int(x) for x in d["input_shape"]),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise FormatError(
                f"{where}: malformed parity record ({e.__class__.__name__}: {e})"
            ) from e


@dataclass(frozen=True)
class OnnxExport:
    """What :func:`export_onnx` wrote: the file, its size and the parity check."""

    path: str
    onnx_bytes: int
    parity: OnnxParity

    def to_dict(self) -> dict[str, Any]:
        """Flat JSON: the parity fields, ``onnx_bytes`` and ``path``."""
        return {**self.parity.to_dict(), "onnx_bytes": self.onnx_bytes, "path": self.path}

    @classmethod
    def from_dict(cls, d: Any, where: str = "ONNX export") -> OnnxExport:
        try:
            return cls(str(d["path"]), int(d["onnx_bytes"]), OnnxParity.from_dict(d, where))
        except (KeyError, TypeError, ValueError) as e:
            raise FormatError(
                f"{where}: malformed export record ({e.__class__.__name__}: {e})"
            ) from e


@dataclass(frozen=True)
class Quantization:
    """The int8 setting an ONNX file was quantized with (stored in the file)."""

    setting: str  # "TYPES/METHOD", e.g. "U8S8/minmax" (JSON key: "candidate")
    score: float  # top-1 accuracy or agreement of the int8 model on the eval data
    score_drop: float  # fp32 score minus int8 score
    tolerance: float  # the drop allowed
    calibration_images: int

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["candidate"] = d.pop("setting")
        return d

    @classmethod
    def from_dict(cls, d: Any, where: str = "ONNX quantization") -> Quantization:
        try:
            return cls(
                setting=str(d["candidate"]),
                score=float(d["score"]),
                score_drop=float(d["score_drop"]),
                tolerance=float(d["tolerance"]),
                calibration_images=int(d["calibration_images"]),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise FormatError(
                f"{where}: malformed quantization record ({e.__class__.__name__}: {e})"
            ) from e


@dataclass(frozen=True)
class OnnxInfo:
    """The squeezelab metadata of an exported ONNX file (:func:`read_onnx_meta`)."""

    meta: ModelMeta
    parity: OnnxParity | None = None
    quantization: Quantization | None = None  # set in int8 files

    @property
    def is_int8(self) -> bool:
        return self.quantization is not None

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """The shape the graph was exported at (the model's own when unknown)."""
        return self.parity.input_shape if self.parity else self.meta.input_shape

    def to_dict(self) -> dict[str, Any]:
        """The model metadata with ``parity`` and ``quantization`` merged in (as before)."""
        d = self.meta.to_dict()
        if self.parity is not None:
            d["parity"] = self.parity.to_dict()
        if self.quantization is not None:
            d["quantization"] = self.quantization.to_dict()
        return d


def make_session(model: str | os.PathLike | bytes, threads: int = 1):
    """An ONNX Runtime CPU session tuned for batch-1 latency.

    ORT_ENABLE_ALL turns on the layout transforms (NCHWc blocked convolutions) and the
    QDQ -> QLinearConv fusions; one sequential executor with ``threads`` intra-op threads
    and no inter-op pool, so two sessions on a 2-core host do not fight over cores.
    """
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    src = model if isinstance(model, bytes) else str(model)
    return ort.InferenceSession(src, so, providers=["CPUExecutionProvider"])


def sample_inputs(
    meta: ModelMeta, n: int = 4, seed: int = 0, input_shape: tuple[int, ...] | None = None
) -> np.ndarray:
    """Random uint8 images normalised with ``meta``'s statistics, float32 NCHW.

    ``input_shape`` (C, H, W) defaults to ``meta.input_shape``.
    """
    rng = np.random.default_rng(seed)
    shape = meta.input_shape if input_shape is None else tuple(input_shape)
    images = rng.integers(0, 256, size=(n, *shape), dtype=np.uint8)
    return normalize(images, meta)


def normalize(images: np.ndarray, meta: ModelMeta) -> np.ndarray:
    """uint8 ``(N, C, H, W)`` -> float32 ``(x/255 - mean) / std`` with ``meta.mean/std``."""
    mean = np.asarray(meta.mean, np.float32).reshape(1, -1, 1, 1)
    std = np.asarray(meta.std, np.float32).reshape(1, -1, 1, 1)
    return ((images.astype(np.float32) / 255.0 - mean) / std).astype(np.float32)


def export_onnx(
    model,
    meta: ModelMeta,
    path: str | os.PathLike,
    opset: int = 17,
    dynamic_batch: bool = True,
    inputs: np.ndarray | None = None,
    tolerance: float = 1e-4,
    input_shape: tuple[int, int, int] | None = None,
) -> OnnxExport:
    """Export ``model`` to ONNX, check it, and write it atomically to ``path``.

    The graph is checked with ``onnx.checker``, run in ONNX Runtime on ``inputs`` (float32
    NCHW, already normalised; default: 4 random images normalised with ``meta``) and
    compared with PyTorch. The figures and ``meta`` are stored in ``metadata_props``.

    Args:
        model: a ``torch.nn.Module`` (put in eval mode for the export, then restored).
        meta: the model's :class:`~squeezelab.models.ModelMeta` (from ``load_model``).
        path: where the ``.onnx`` file goes.
        opset: ONNX opset, at least 13.
        dynamic_batch: leave the batch dimension symbolic.
        inputs: parity inputs; real images give the most telling check.
        tolerance: the largest allowed max-abs difference of the outputs.
        input_shape: ``(C, H, W)`` of one input; default ``meta.input_shape``. The
            file's metadata keeps the model's own size; the parity record holds this one.

    Returns:
        An :class:`OnnxExport`: ``path``, ``onnx_bytes`` and the :class:`OnnxParity`.

    Raises:
        ConfigError: opset below 13 or an input of the wrong shape.
        FormatError: the exported graph fails the checker or the parity check.

    Example:
        >>> from squeezelab.models import load_model
        >>> model, meta = load_model("squeezenet_small")
        >>> export_onnx(model, meta, "/tmp/s.onnx").parity.max_abs_diff <= 1e-4
        True
    """
    import onnx
    import torch

    if not isinstance(meta, ModelMeta):
        raise ConfigError(
            f"meta is a {type(meta).__name__}: allowed a ModelMeta (export_onnx(model, meta, "
            "path); squeezelab.models.load_model returns one)"
        )
    if opset < MIN_OPSET:
        raise ConfigError(f"opset={opset} is too old: allowed >= {MIN_OPSET}")
    shape = meta.input_shape if input_shape is None else tuple(int(d) for d in input_shape)
    if len(shape) != 3 or shape[0] != meta.in_chans:
        raise ConfigError(
            f"input_shape={shape} is invalid: allowed (C, H, W) with C = {meta.in_chans}, "
            f"the channels of {meta.name!r}"
        )
    x = sample_inputs(meta, input_shape=shape) if inputs is None else np.asarray(inputs, np.float32)
    if x.ndim != 4 or tuple(x.shape[1:]) != shape:
        raise ConfigError(
            f"inputs has shape {tuple(x.shape)}: allowed (N, {', '.join(map(str, shape))})"
        )
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            expected = model(torch.from_numpy(x)).numpy()
        buf = io.BytesIO()
        axes = {INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}} if dynamic_batch else None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the legacy-exporter deprecation notice
            try:
                torch.onnx.export(
                    model,
                    (torch.from_numpy(x[:1]),),
                    buf,
                    dynamo=False,
                    opset_version=opset,
                    input_names=[INPUT_NAME],
                    output_names=[OUTPUT_NAME],
                    dynamic_axes=axes,
                    do_constant_folding=True,
                )
            except Exception as e:  # the exporter's errors carry the whole graph: keep line 1
                first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
                raise FormatError(
                    f"cannot export {meta.name!r} at input {shape} to ONNX opset "
                    f"{opset}: {first[:300]}"
                ) from e
    finally:
        model.train(was_training)
    proto = onnx.load_from_string(buf.getvalue())
    try:
        onnx.checker.check_model(proto, full_check=True)
    except onnx.checker.ValidationError as e:
        raise FormatError(f"exported graph of {meta.name!r} fails onnx.checker: {e}") from e
    session = make_session(proto.SerializeToString())
    if dynamic_batch:
        got = session.run(None, {INPUT_NAME: x})[0]
    else:
        got = np.concatenate(
            [session.run(None, {INPUT_NAME: x[i : i + 1]})[0] for i in range(len(x))]
        )
    diff = np.abs(got.astype(np.float64) - expected.astype(np.float64))
    parity = OnnxParity(
        max_abs_diff=float(diff.max()),
        mean_abs_diff=float(diff.mean()),
        top1_agreement=float((got.argmax(1) == expected.argmax(1)).mean()),
        n_inputs=int(len(x)),
        tolerance=tolerance,
        opset=opset,
        dynamic_batch=dynamic_batch,
        input_shape=shape,
    )
    if parity.max_abs_diff > tolerance:
        raise FormatError(
            f"ONNX export of {meta.name!r} differs from PyTorch: max abs diff "
            f"{parity.max_abs_diff:.3g} > tolerance {tolerance:g}"
        )
    set_metadata(proto, {META_KEY: meta.to_dict(), PARITY_KEY: parity.to_dict()})
    data = proto.SerializeToString()
    from squeezelab.io import atomic_write_bytes

    atomic_write_bytes(path, data)
    return OnnxExport(path=str(path), onnx_bytes=len(data), parity=parity)


def set_metadata(proto, entries: dict[str, Any]) -> None:
    """Set ``metadata_props`` entries (values as JSON), replacing existing keys."""
    keep = [p for p in proto.metadata_props if p.key not in entries]
    del proto.metadata_props[:]
    proto.metadata_props.extend(keep)
    for key, value in entries.items():
        prop = proto.metadata_props.add()
        prop.key, prop.value = key, json.dumps(value, sort_keys=True)


def metadata_entries(info: OnnxInfo) -> dict[str, Any]:
    """``info`` as the ``metadata_props`` entries :func:`read_onnx_meta` reads back."""
    entries: dict[str, Any] = {META_KEY: info.meta.to_dict()}
    if info.parity is not None:
        entries[PARITY_KEY] = info.parity.to_dict()
    if info.quantization is not None:
        entries[QUANT_KEY] = info.quantization.to_dict()
    return entries


def read_onnx_meta(path: str | os.PathLike) -> OnnxInfo:
    """The squeezelab metadata of an exported ONNX file: its ModelMeta, parity and int8 setting.

    Raises:
        FormatError: the file is missing, not ONNX, or carries no valid squeezelab metadata.

    Example:
        >>> read_onnx_meta("model.onnx").meta.classes  # doctest: +SKIP
    """
    import onnx

    path = Path(path)
    if not path.is_file():
        raise FormatError(f"ONNX file {str(path)!r} does not exist")
    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as e:  # protobuf raises its own DecodeError family
        raise FormatError(f"{path}: not an ONNX model ({e.__class__.__name__})") from e
    props = {p.key: p.value for p in proto.metadata_props}
    if not proto.graph.node or META_KEY not in props:
        raise FormatError(f"{path}: not an ONNX model exported by squeezelab (no metadata)")
    try:
        raw = {k: json.loads(v) for k, v in props.items() if k.startswith(META_KEY)}
    except ValueError as e:
        raise FormatError(f"{path}: squeezelab metadata is not valid JSON") from e
    where = f"{path}: {META_KEY} metadata"
    parity, quant = raw.get(PARITY_KEY), raw.get(QUANT_KEY)
    return OnnxInfo(
        meta=ModelMeta.from_dict(raw[META_KEY], where=where),
        parity=None if parity is None else OnnxParity.from_dict(parity, f"{path}: {PARITY_KEY}"),
        quantization=None
        if quant is None
        else Quantization.from_dict(quant, f"{path}: {QUANT_KEY}"),
    )
