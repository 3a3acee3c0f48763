"""Deployment: ONNX export with a parity check, int8 quantization, runtime benchmarks, predict.

Follows the ONNX Runtime quantization guide (static QDQ, per-channel weights) and the
SqueezeNet paper's point that a small model only pays off once it runs on the device.
Heavy libraries (onnx, onnxruntime) are imported inside the functions.
"""

from squeezelab.export.bench import BACKENDS, BenchRow, benchmark
from squeezelab.export.onnx import (
    OnnxExport,
    OnnxInfo,
    OnnxParity,
    Quantization,
    export_onnx,
    normalize,
    read_onnx_meta,
)
from squeezelab.export.predict import Prediction, TopClass, predict
from squeezelab.export.quantize import (
    ALL_SETTINGS,
    Int8Result,
    Int8Score,
    Int8Setting,
    OnnxFigures,
    quantize_int8,
)
from squeezelab.export.timing import Timing

__all__ = [
    "ALL_SETTINGS",
    "BACKENDS",
    "BenchRow",
    "Int8Result",
    "Int8Score",
    "Int8Setting",
    "OnnxExport",
    "OnnxFigures",
    "OnnxInfo",
    "OnnxParity",
    "Prediction",
    "Quantization",
    "Timing",
    "TopClass",
    "benchmark",
    "export_onnx",
    "normalize",
    "predict",
    "quantize_int8",
    "read_onnx_meta",
]
