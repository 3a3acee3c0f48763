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
from pathlib import Path
from typing import Any

import numpy as np

from squeezelab.errors import ConfigError, FormatError
from squeezelab.export._model import complete_meta

META_KEY = "squeezelab"  # the model-file metadata, as in squeezelab.fileio
PARITY_KEY = "squeezelab_parity"  # the export-time check against PyTorch
INPUT_NAME, OUTPUT_NAME = "input", "logits"
MIN_OPSET = 13  # per-channel QuantizeLinear/DequantizeLinear need opset 13


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


def sample_inputs(meta: dict[str, Any], input_shape: tuple[int, ...], n: int = 4, seed: int = 0):
    """Random uint8 images normalised with the model's stored normalisation, float32 NCHW."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, *input_shape), dtype=np.uint8)
    return normalize(images, meta)


def normalize(images: np.ndarray, meta: dict[str, Any]) -> np.ndarray:
    """uint8 ``(N, C, H, W)`` -> float32 ``(x/255 - mean) / std`` with the metadata's statistics."""
    norm = meta.get("normalization") or {}
    c = images.shape[1]
    mean = np.asarray(norm.get("mean", [0.0] * c), np.float32).reshape(1, -1, 1, 1)
    std = np.asarray(norm.get("std", [1.0] * c), np.float32).reshape(1, -1, 1, 1)
    return ((images.astype(np.float32) / 255.0 - mean) / std).astype(np.float32)


def export_onnx(
    model,
    input_shape: tuple[int, int, int],
    path: str | os.PathLike,
    opset: int = 17,
    dynamic_batch: bool = True,
    meta: dict[str, Any] | None = None,
    inputs: np.ndarray | None = None,
    tolerance: float = 1e-4,
) -> dict[str, Any]:
    """Export ``model`` to ONNX, check it, and write it atomically to ``path``.

    The graph is checked with ``onnx.checker``, run in ONNX Runtime on ``inputs`` (float32
    NCHW, already normalised; default: 4 random images normalised with ``meta``) and
    compared with PyTorch. The figures and ``meta`` are stored in ``metadata_props``.

    Args:
        model: a ``torch.nn.Module`` (put in eval mode for the export, then restored).
        input_shape: ``(C, H, W)`` of one input.
        path: where the ``.onnx`` file goes.
        opset: ONNX opset, at least 13.
        dynamic_batch: leave the batch dimension symbolic.
        meta: model-file metadata (model, classes, normalization, ...); the input size
            and channels are filled from ``input_shape`` when absent.
        inputs: parity inputs; real images give the most telling check.
        tolerance: the largest allowed max-abs difference of the outputs.

    Returns:
        The parity record: ``max_abs_diff``, ``mean_abs_diff``, ``top1_agreement``,
        ``n_inputs``, ``opset``, ``onnx_bytes``, ``path``.

    Raises:
        ConfigError: opset below 13 or an input of the wrong shape.
        FormatError: the exported graph fails the checker or the parity check.

    Example:
        >>> from squeezelab.models import create_model
        >>> r = export_onnx(create_model("squeezenet_small"), (1, 28, 28), "/tmp/s.onnx")
        >>> r["max_abs_diff"] <= 1e-4
        True
    """
    import onnx
    import torch

    if opset < MIN_OPSET:
        raise ConfigError(f"opset={opset} is too old: allowed >= {MIN_OPSET}")
    input_shape = tuple(int(d) for d in input_shape)
    meta = complete_meta(meta or {"model": type(model).__name__}, input_shape)
    x = sample_inputs(meta, input_shape) if inputs is None else np.asarray(inputs, np.float32)
    if x.ndim != 4 or tuple(x.shape[1:]) != input_shape:
        raise ConfigError(
            f"inputs has shape {tuple(x.shape)}: allowed (N, {', '.join(map(str, input_shape))})"
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
                    f"cannot export {meta['model']!r} at input {input_shape} to ONNX opset "
                    f"{opset}: {first[:300]}"
                ) from e
    finally:
        model.train(was_training)
    proto = onnx.load_from_string(buf.getvalue())
    try:
        onnx.checker.check_model(proto, full_check=True)
    except onnx.checker.ValidationError as e:
        raise FormatError(f"exported graph of {meta['model']!r} fails onnx.checker: {e}") from e
    session = make_session(proto.SerializeToString())
    if dynamic_batch:
        got = session.run(None, {INPUT_NAME: x})[0]
    else:
        got = np.concatenate(
            [session.run(None, {INPUT_NAME: x[i : i + 1]})[0] for i in range(len(x))]
        )
    diff = np.abs(got.astype(np.float64) - expected.astype(np.float64))
    parity = {
        "max_abs_diff": float(diff.max()),
        "mean_abs_diff": float(diff.mean()),
        "top1_agreement": float((got.argmax(1) == expected.argmax(1)).mean()),
        "n_inputs": int(len(x)),
        "tolerance": tolerance,
        "opset": opset,
        "dynamic_batch": dynamic_batch,
        "input_shape": list(input_shape),
    }
    if parity["max_abs_diff"] > tolerance:
        raise FormatError(
            f"ONNX export of {meta['model']!r} differs from PyTorch: max abs diff "
            f"{parity['max_abs_diff']:.3g} > tolerance {tolerance:g}"
        )
    set_metadata(proto, {META_KEY: meta, PARITY_KEY: parity})
    data = proto.SerializeToString()
    from squeezelab.io import atomic_write_bytes

    atomic_write_bytes(path, data)
    return {**parity, "onnx_bytes": len(data), "path": str(path)}


def set_metadata(proto, entries: dict[str, Any]) -> None:
    """Set ``metadata_props`` entries (values as JSON), replacing existing keys."""
    keep = [p for p in proto.metadata_props if p.key not in entries]
    del proto.metadata_props[:]
    proto.metadata_props.extend(keep)
    for key, value in entries.items():
        prop = proto.metadata_props.add()
        prop.key, prop.value = key, json.dumps(value, sort_keys=True)


def read_onnx_meta(path: str | os.PathLike) -> dict[str, Any]:
    """The squeezelab metadata of an exported ONNX file, with ``parity`` and ``quantization``.

    Raises:
        FormatError: the file is missing, not ONNX, or carries no squeezelab metadata.
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
        meta = json.loads(props[META_KEY])
        extra = {k: json.loads(v) for k, v in props.items() if k.startswith(f"{META_KEY}_")}
    except ValueError as e:
        raise FormatError(f"{path}: squeezelab metadata is not valid JSON") from e
    for key, value in extra.items():
        meta[key[len(META_KEY) + 1 :]] = value
    return meta
