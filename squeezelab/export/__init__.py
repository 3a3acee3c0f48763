"""Deployment: ONNX export with a parity check, int8 quantization, runtime benchmarks, predict.

Follows the ONNX Runtime quantization guide (static QDQ, per-channel weights) and the
SqueezeNet paper's point that a small model only pays off once it runs on the device.
Heavy libraries (onnx, onnxruntime) are imported inside the functions.
"""

from squeezelab.export.bench import benchmark
from squeezelab.export.onnx import export_onnx, read_onnx_meta
from squeezelab.export.predict import predict
from squeezelab.export.quantize import quantize_int8

__all__ = ["benchmark", "export_onnx", "predict", "quantize_int8", "read_onnx_meta"]
