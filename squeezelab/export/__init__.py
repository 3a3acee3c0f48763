"""Deployment: ONNX and .tflite export, int8 quantization, TFLM checks, C arrays, benchmarks.

Follows the ONNX Runtime quantization guide (static QDQ, per-channel weights) and the
SqueezeNet paper's point that a small model only pays off once it runs on the device.
Heavy libraries (onnx, onnxruntime) are imported inside the functions.
"""

from squeezelab.export.bench import BACKENDS, BenchRow, benchmark
from squeezelab.export.c_source import write_c_array
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
from squeezelab.export.tflite import TfliteExport, export_tflite
from squeezelab.export.tflm import TflmCheck, check_tflite
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
    "TflmCheck",
    "TfliteExport",
    "Timing",
    "TopClass",
    "benchmark",
    "check_tflite",
    "export_onnx",
    "export_tflite",
    "normalize",
    "predict",
    "quantize_int8",
    "read_onnx_meta",
    "write_c_array",
]
