""".tflite export for LiteRT and TensorFlow Lite Micro: int8 by PT2E quantization.

The route is litert-torch's: ``torch.export`` -> torchao's ``prepare_pt2e`` with
litert's ``PT2EQuantizer`` (int8, weights symmetric per output channel, activations
per tensor) -> calibration -> ``convert_pt2e`` -> ``litert_torch.convert``. The input is
NHWC (what a camera hands an MCU) and int8; the model's normalisation and the input and
output quantisation go into the file's ``metadata`` under ``squeezelab``. Before the file
is written its operators are checked against TFLite Micro's builtin set.
"""

from __future__ import annotations

import json
import os
import struct
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from squeezelab.errors import ConfigError, FormatError, SqueezelabError
from squeezelab.models import ModelMeta

META_KEY = "squeezelab"  # name of the metadata entry holding our JSON record
DEPLOY_EXTRA = "pip install 'squeezelab[deploy]'"
MAX_META_BYTES = 1 << 20  # our record is a few hundred bytes; a bigger one is foreign
# TFLite Micro's builtin kernels (tflite-micro's micro_mutable_op_resolver.h, the version
# pinned in pyproject.toml; tests/export/test_tflite.py checks each against its runtime).
TFLM_BUILTIN_OPS = frozenset(
    [
        "ABS",
        "ADD",
        "ADD_N",
        "ARG_MAX",
        "ARG_MIN",
        "ASSIGN_VARIABLE",
        "AVERAGE_POOL_2D",
        "BATCH_MATMUL",
        "BATCH_TO_SPACE_ND",
        "BROADCAST_ARGS",
        "BROADCAST_TO",
        "CALL_ONCE",
        "CAST",
        "CEIL",
        "CONCATENATION",
        "CONV_2D",
        "COS",
        "CUMSUM",
        "DEPTHWISE_CONV_2D",
        "DEPTH_TO_SPACE",
        "DEQUANTIZE",
        "DIV",
        "DYNAMIC_UPDATE_SLICE",
        "ELU",
        "EMBEDDING_LOOKUP",
        "EQUAL",
        "EXP",
        "EXPAND_DIMS",
        "FILL",
        "FLOOR",
        "FLOOR_DIV",
        "FLOOR_MOD",
        "FULLY_CONNECTED",
        "GATHER",
        "GATHER_ND",
        "GREATER",
        "GREATER_EQUAL",
        "HARD_SWISH",
        "IF",
        "L2_NORMALIZATION",
        "L2_POOL_2D",
        "LEAKY_RELU",
        "LESS",
        "LESS_EQUAL",
        "LOG",
        "LOGICAL_AND",
        "LOGICAL_NOT",
        "LOGICAL_OR",
        "LOGISTIC",
        "LOG_SOFTMAX",
        "MAXIMUM",
        "MAX_POOL_2D",
        "MEAN",
        "MINIMUM",
        "MIRROR_PAD",
        "MUL",
        "NEG",
        "NOT_EQUAL",
        "PACK",
        "PAD",
        "PADV2",
        "PRELU",
        "QUANTIZE",
        "READ_VARIABLE",
        "REDUCE_MAX",
        "REDUCE_MIN",
        "RELU",
        "RELU6",
        "RESHAPE",
        "RESIZE_BILINEAR",
        "RESIZE_NEAREST_NEIGHBOR",
        "REVERSE_V2",
        "ROUND",
        "RSQRT",
        "SELECT_V2",
        "SHAPE",
        "SIN",
        "SLICE",
        "SOFTMAX",
        "SPACE_TO_BATCH_ND",
        "SPACE_TO_DEPTH",
        "SPLIT",
        "SPLIT_V",
        "SQRT",
        "SQUARE",
        "SQUARED_DIFFERENCE",
        "SQUEEZE",
        "STRIDED_SLICE",
        "SUB",
        "SUM",
        "SVDF",
        "TANH",
        "TRANSPOSE",
        "TRANSPOSE_CONV",
        "UNIDIRECTIONAL_SEQUENCE_LSTM",
        "UNPACK",
        "VAR_HANDLE",
        "WHILE",
        "ZEROS_LIKE",
    ]
)


def require_deploy(module: str):
    """Import ``module`` from the ``deploy`` extra, or raise a ConfigError naming the extra."""
    import importlib

    try:  # torchao and torch log import-time noise (missing CUDA kernels, deprecations)
        return _quiet(lambda: importlib.import_module(module))
    except ImportError as e:
        raise ConfigError(
            f"TFLite export and checks need the deploy extra ({module} is missing): {DEPLOY_EXTRA}"
        ) from e


@dataclass(frozen=True)
class TfliteExport:
    """What :func:`export_tflite` wrote."""

    path: str
    tflite_bytes: int  # file size = flash the model takes
    int8: bool  # int8 weights, activations, input and output (else float32)
    ops: tuple[str, ...]  # builtin operator names, in the file's order
    input_scale: float  # real = scale * (q - zero_point); 0.0 for a float file
    input_zero_point: int
    output_scale: float
    output_zero_point: int
    mean: tuple[float, ...] = ()  # normalisation applied to x/255 before quantising
    std: tuple[float, ...] = ()
    input_shape: tuple[int, ...] = ()  # NHWC, batch 1
    calibration: str = ""  # "dataset (N images)", "random (N images)" or "" for fp32

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for k in ("ops", "mean", "std", "input_shape"):
            d[k] = list(d[k])
        return d

    @classmethod
    def from_dict(cls, d: Any, where: str = "TFLite export") -> TfliteExport:
        try:
            return cls(
                path=str(d["path"]),
                tflite_bytes=int(d["tflite_bytes"]),
                int8=bool(d["int8"]),
                ops=tuple(str(o) for o in d["ops"]),
                input_scale=float(d["input_scale"]),
                input_zero_point=int(d["input_zero_point"]),
                output_scale=float(d["output_scale"]),
                output_zero_point=int(d["output_zero_point"]),
                mean=tuple(float(v) for v in d.get("mean", ())),
                std=tuple(float(v) for v in d.get("std", ())),
                input_shape=tuple(int(v) for v in d.get("input_shape", ())),
                calibration=str(d.get("calibration", "")),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise FormatError(f"{where}: malformed record ({e.__class__.__name__}: {e})") from e

    def quantize_input(self, images_uint8: np.ndarray) -> np.ndarray:
        """uint8 ``(N, C, H, W)`` -> the file's input: int8 (or float32) ``(N, H, W, C)``."""
        mean = np.asarray(self.mean, np.float32).reshape(1, -1, 1, 1)
        std = np.asarray(self.std, np.float32).reshape(1, -1, 1, 1)
        x = ((images_uint8.astype(np.float32) / 255.0 - mean) / std).transpose(0, 2, 3, 1)
        if not self.int8:
            return np.ascontiguousarray(x, np.float32)
        q = np.round(x / self.input_scale) + self.input_zero_point
        return np.clip(q, -128, 127).astype(np.int8)


# -- reading a .tflite (untrusted: bounded, every failure a FormatError) ---------------


@dataclass(frozen=True)
class TfliteInfo:
    """What :func:`read_tflite` finds in a file."""

    ops: tuple[str, ...]  # builtin operator names (custom ops as "CUSTOM:name")
    op_layers: dict[str, str]  # op name -> the first layer (module path) producing it
    n_operators: int
    input_shape: tuple[int, ...]
    input_dtype: str  # "int8", "float32", ...
    record: dict[str, Any] | None  # our metadata record, None for a foreign file


_DTYPES = {0: "float32", 2: "int32", 3: "uint8", 9: "int8", 7: "int16", 1: "float16"}


def _layer_of(tensor_name: str) -> str:
    """A converter tensor name -> the torch module path that made it (best effort).

    litert-torch names tensors ``pkg.Class_attr/pkg.Class_attr/...``; the attribute names
    joined with dots are the module path (``features.4.squeeze``).
    """
    last = tensor_name.split(";")[-2 if tensor_name.endswith(";") else -1]
    parts = []
    for comp in last.split("/"):
        cls_attr = comp.rsplit(".", 1)[-1]
        if "_" in cls_attr:
            attr = cls_attr.split("_", 1)[1]
            if attr != "wrapped":
                parts.append(attr)
    return ".".join(parts) or last or "?"


def read_tflite(data: bytes, where: str = "tflite file") -> TfliteInfo:
    """Parse a .tflite flatbuffer's operators, input and squeezelab metadata.

    Raises:
        FormatError: the bytes are not a TFLite model (truncated, altered or foreign).
    """
    schema = require_deploy("tflite_micro.tensorflow.lite.micro.python.schema_py_generated")
    if len(data) < 8 or data[4:8] != b"TFL3":
        raise FormatError(f"{where}: not a TFLite flatbuffer (no 'TFL3' identifier at byte 4)")
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    limit = len(data) // 4  # no vector can hold more entries than the file has words

    def count(n: int, what: str) -> int:
        if not 0 <= n <= limit:
            raise FormatError(f"{where}: {what} count {n} exceeds what {len(data)} bytes hold")
        return n

    try:
        m = schema.Model.GetRootAsModel(data, 0)
        codes = []
        for i in range(count(m.OperatorCodesLength(), "operator code")):
            oc = m.OperatorCodes(i)
            code = max(oc.BuiltinCode(), oc.DeprecatedBuiltinCode())
            if names.get(code) == "CUSTOM":
                codes.append("CUSTOM:" + (oc.CustomCode() or b"?").decode("utf-8", "replace"))
            else:
                codes.append(names.get(code, f"UNKNOWN_{code}"))
        if count(m.SubgraphsLength(), "subgraph") < 1:
            raise FormatError(f"{where}: no subgraph")
        sg = m.Subgraphs(0)
        n_tensors = count(sg.TensorsLength(), "tensor")
        op_layers: dict[str, str] = {}
        n_ops = count(sg.OperatorsLength(), "operator")
        for i in range(n_ops):
            op = sg.Operators(i)
            idx = op.OpcodeIndex()
            if not 0 <= idx < len(codes):
                raise FormatError(f"{where}: operator {i} has opcode index {idx} out of range")
            if codes[idx] not in op_layers and op.OutputsLength() > 0:
                t = op.Outputs(0)
                name = sg.Tensors(t).Name() if 0 <= t < n_tensors else b""
                op_layers[codes[idx]] = _layer_of((name or b"").decode("utf-8", "replace"))
        if count(sg.InputsLength(), "input") < 1:
            raise FormatError(f"{where}: the subgraph has no input")
        t_in = sg.Inputs(0)
        if not 0 <= t_in < n_tensors:
            raise FormatError(f"{where}: input tensor index {t_in} out of range")
        tin = sg.Tensors(t_in)
        shape = tuple(int(tin.Shape(j)) for j in range(count(tin.ShapeLength(), "dimension")))
        dtype = _DTYPES.get(tin.Type(), f"type{tin.Type()}")
        record = None
        for i in range(count(m.MetadataLength(), "metadata")):
            md = m.Metadata(i)
            if md.Name() == META_KEY.encode():
                b = md.Buffer()
                if not 0 <= b < count(m.BuffersLength(), "buffer"):
                    raise FormatError(f"{where}: metadata buffer index {b} out of range")
                buf = m.Buffers(b)
                n = buf.DataLength()
                if n > MAX_META_BYTES:
                    raise FormatError(f"{where}: metadata of {n} bytes (allowed <= 1 MiB)")
                raw = buf.DataAsNumpy().tobytes() if n else b""
                record = json.loads(raw.decode("utf-8"))
                if not isinstance(record, dict):
                    raise FormatError(f"{where}: metadata {META_KEY!r} is not a JSON object")
    except FormatError:
        raise
    except (
        struct.error,
        IndexError,
        ValueError,
        TypeError,
        UnicodeDecodeError,
        AttributeError,
    ) as e:
        raise FormatError(
            f"{where}: truncated or altered TFLite flatbuffer ({e.__class__.__name__}: {e})"
        ) from e
    return TfliteInfo(tuple(codes), op_layers, n_ops, shape, dtype, record)


def check_tflm_ops(info: TfliteInfo, where: str = "tflite file") -> None:
    """Raise a ConfigError naming the first operator TFLite Micro has no kernel for."""
    for op in info.ops:
        if op not in TFLM_BUILTIN_OPS:
            layer = info.op_layers.get(op, "?")
            raise ConfigError(
                f"{where}: operator {op} (from layer {layer!r}) has no TFLite Micro kernel: "
                "allowed the builtins in squeezelab.export.tflite.TFLM_BUILTIN_OPS "
                "(CONV_2D, DEPTHWISE_CONV_2D, RELU, HARD_SWISH, ...); replace that layer"
            )


def _add_metadata(data: bytes, record: dict[str, Any]) -> bytes:
    """Return ``data`` with a ``squeezelab`` metadata entry holding ``record`` as JSON."""
    import flatbuffers

    schema = require_deploy("tflite_micro.tensorflow.lite.micro.python.schema_py_generated")
    model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(data, 0))
    buf = schema.BufferT()
    buf.data = np.frombuffer(json.dumps(record, sort_keys=True).encode(), np.uint8)
    model.buffers.append(buf)
    md = schema.MetadataT()
    md.name = META_KEY
    md.buffer = len(model.buffers) - 1
    model.metadata = [m for m in (model.metadata or []) if m.name != META_KEY.encode()] + [md]
    b = flatbuffers.Builder(len(data) + 4096)
    b.Finish(model.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())


# -- export ---------------------------------------------------------------------------


def _calibration_images(calib, meta: ModelMeta, n_calib: int) -> tuple[np.ndarray, str]:
    shape = meta.input_shape
    if isinstance(calib, str):
        if calib != "random":
            raise ConfigError(f"calib={calib!r} is invalid: allowed 'random' or uint8 images")
        rng = np.random.default_rng(0)
        return rng.integers(0, 256, (n_calib, *shape), dtype=np.uint8), f"random ({n_calib} images)"
    x = np.asarray(calib)
    if x.dtype != np.uint8 or x.ndim != 4 or tuple(x.shape[1:]) != tuple(shape) or not len(x):
        raise ConfigError(
            f"calibration images of dtype {x.dtype} shape {tuple(x.shape)}: allowed uint8 "
            f"(N, {', '.join(map(str, shape))}) with N >= 1"
        )
    x = x[:n_calib]
    return x, f"dataset ({len(x)} images)"


def _io_quant(schema, model, tensor_index) -> tuple[float, int]:
    q = model.Subgraphs(0).Tensors(tensor_index).Quantization()
    if q is None or q.ScaleLength() == 0:
        return 0.0, 0
    return float(q.Scale(0)), int(q.ZeroPoint(0))


def _int8_quantizer(base, float_head: bool = False):
    """litert's ``PT2EQuantizer`` that also quantizes tensor-tensor adds (residuals).

    litert finds adds by ``source_fn_stack``, which ``torch.export`` no longer records,
    so its annotator skips them and the converter leaves every residual add in float
    (DEQUANTIZE, float ADD, QUANTIZE: four bytes a value in the arena). Annotating the
    ``aten.add`` nodes directly, inputs and output int8 per tensor as litert's own add
    annotator would, gives an int8 ADD, which TFLite Micro runs as well.
    """
    import torch
    from litert_torch.quantize.pt2e_quantizer_utils import (
        get_input_act_qspec,
        get_output_act_qspec,
    )
    from torchao.quantization.pt2e.quantizer import QuantizationAnnotation

    adds = (torch.ops.aten.add.Tensor, torch.ops.aten.add_.Tensor)
    convs = (torch.ops.aten.conv2d.default, torch.ops.aten.convolution.default)

    def unannotate_head(model) -> None:
        """Leave the convolution making the graph's output (and the layout ops after it) in
        float: a detector's ConvDet map mixes ranges one int8 scale serves badly."""
        out = next(n for n in model.graph.nodes if n.op == "output")
        node = out.args[0][0] if isinstance(out.args[0], list | tuple) else out.args[0]
        while isinstance(node, torch.fx.Node) and node.op == "call_function":
            node.meta.pop("quantization_annotation", None)
            if node.target in convs:
                return
            node = node.args[0]
        raise ConfigError("float head: no convolution makes the model's output")

    class Int8Quantizer(base):
        def annotate(self, model):
            cfg = self.global_config
            for n in model.graph.nodes:
                args = n.args[:2]
                if (
                    n.op == "call_function"
                    and n.target in adds
                    and len(args) == 2
                    and all(isinstance(a, torch.fx.Node) for a in args)
                    and "quantization_annotation" not in n.meta
                ):
                    n.meta["quantization_annotation"] = QuantizationAnnotation(
                        input_qspec_map={a: get_input_act_qspec(cfg) for a in args},
                        output_qspec=get_output_act_qspec(cfg),
                        _annotated=True,
                    )
            model = super().annotate(model)
            if float_head:
                unannotate_head(model)
            return model

    return Int8Quantizer()


OBSERVERS = ("histogram", "minmax")  # activation range calibration of export_tflite


def _with_observer(config, observer: str):
    """litert's quantization ``config`` with its activation observer swapped to ``observer``."""
    if observer == "histogram":  # litert's own choice
        return config
    import dataclasses

    from torchao.quantization.pt2e.observer import MinMaxObserver

    act = config.input_activation
    act = dataclasses.replace(act, observer_or_fake_quant_ctr=MinMaxObserver.with_args(eps=2**-12))
    return dataclasses.replace(config, input_activation=act, output_activation=act)


def export_tflite(
    model,
    meta: ModelMeta,
    path: str | os.PathLike,
    *,
    int8: bool = True,
    calib=None,
    n_calib: int = 256,
    observer: str = "histogram",
    per_channel: bool = True,
    float_head: bool = False,
) -> TfliteExport:
    """Convert ``model`` to a ``.tflite`` file (int8 for TFLite Micro by default).

    Args:
        model: the torch module (``load_model(ref)[0]``).
        meta: its ModelMeta: input shape and normalisation.
        path: the file to write (atomically).
        int8: int8 weights (per channel), activations, input and output; False: float32.
        calib: uint8 images ``(N, C, H, W)`` to calibrate the activation ranges, or
            ``"random"`` (uniform noise: a runnable file, not an accurate one).
        n_calib: the most calibration images used.
        observer: how activation ranges are calibrated: ``"histogram"`` (litert's
            default, the range of least L2 error) or ``"minmax"`` (the whole range).
        per_channel: weight scales per output channel (else one per tensor).
        float_head: the last convolution (a detector's ConvDet) in float32, its output
            float32: TFLite Micro runs it; the interpreter-free firmware does not.

    Raises:
        ConfigError: int8 without ``calib``, the deploy extra missing, or an operator
            TFLite Micro lacks (named, with the layer that produced it).

    Example:
        >>> m, meta = load_model("squeezenet_small")  # doctest: +SKIP
        >>> export_tflite(m, meta, "m.tflite", calib="random").ops  # doctest: +SKIP
        ('DEPTHWISE_CONV_2D', 'CONV_2D', 'CONCATENATION', 'QUANTIZE', 'MAX_POOL_2D', 'MEAN')
    """
    from squeezelab.io import atomic_write_bytes

    if n_calib < 1:
        raise ConfigError(f"n_calib={n_calib} is invalid: allowed >= 1")
    if observer not in OBSERVERS:
        raise ConfigError(f"observer={observer!r} is invalid: allowed one of {list(OBSERVERS)}")
    if int8 and calib is None:
        raise ConfigError(
            "int8 export needs calibration images: pass --data DATASET (or --calib random "
            "for a demo file whose accuracy means nothing, or --fp32 for a float file)"
        )
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # the converter's C++ chatter
    os.environ.setdefault("LITERT_TORCH_SHOW_PROGRESS", "n")  # its progress lines on stdout
    litert_torch = require_deploy("litert_torch")
    require_deploy("torchao.quantization.pt2e.quantize_pt2e")
    schema = require_deploy("tflite_micro.tensorflow.lite.micro.python.schema_py_generated")
    import torch

    from squeezelab.export.onnx import normalize

    c, h, w = meta.input_shape
    model = model.eval()
    # a detector's head map leaves NHWC too: the layout the kernels make (no TRANSPOSE op,
    # which the firmware generator lacks), anchors innermost as split_head reads them
    outputs = [0] if meta.task == "detection" else None
    wrapped = litert_torch.to_channel_last_io(model, args=[0], outputs=outputs).eval()
    sample = torch.zeros(1, h, w, c)
    calibration = ""
    try:
        with torch.no_grad():
            if int8:
                from litert_torch.quantize.pt2e_quantizer import (
                    PT2EQuantizer,
                    get_symmetric_quantization_config,
                )
                from litert_torch.quantize.quant_config import QuantConfig
                from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

                images, calibration = _calibration_images(calib, meta, n_calib)
                x = torch.from_numpy(normalize(images, meta)).permute(0, 2, 3, 1).contiguous()
                config = get_symmetric_quantization_config(is_per_channel=per_channel)
                quantizer = _int8_quantizer(PT2EQuantizer, float_head).set_global(
                    _with_observer(config, observer)
                )
                graph = torch.export.export(wrapped, (sample,)).module()
                prepared = prepare_pt2e(graph, quantizer)
                for i in range(len(x)):  # the exported graph has batch 1
                    prepared(x[i : i + 1])
                converted = convert_pt2e(prepared, fold_quantize=False)
                edge = _quiet(
                    lambda: litert_torch.convert(
                        converted, (sample,), quant_config=QuantConfig(pt2e_quantizer=quantizer)
                    )
                )
            else:
                edge = _quiet(lambda: litert_torch.convert(wrapped, (sample,)))
    except SqueezelabError:
        raise
    except Exception as e:  # torch.export / PT2E / the converter raise many kinds
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:300]
        raise FormatError(
            f"{meta.name}: the LiteRT converter cannot convert this model "
            f"({type(e).__name__}: {first})"
        ) from e
    data = bytes(_quiet(edge.model_content))
    where = str(path)
    info = read_tflite(data, where)
    check_tflm_ops(info, where)
    m = schema.Model.GetRootAsModel(data, 0)
    sg = m.Subgraphs(0)
    in_q = _io_quant(schema, m, sg.Inputs(0))
    out_q = _io_quant(schema, m, sg.Outputs(0))
    record = {
        "model": meta.to_dict(),
        "mean": list(meta.mean),
        "std": list(meta.std),
        "layout": "NHWC",
        "input": {"scale": in_q[0], "zero_point": in_q[1], "dtype": info.input_dtype},
        "output": {"scale": out_q[0], "zero_point": out_q[1]},
        "int8": int8,
        "calibration": calibration,
    }
    data = _add_metadata(data, record)
    atomic_write_bytes(Path(path), data)
    return TfliteExport(
        path=str(path),
        tflite_bytes=len(data),
        int8=int8,
        ops=info.ops,
        input_scale=in_q[0],
        input_zero_point=in_q[1],
        output_scale=out_q[0],
        output_zero_point=out_q[1],
        mean=tuple(meta.mean),
        std=tuple(meta.std),
        input_shape=info.input_shape,
        calibration=calibration,
    )


def file_spec(info, n_bytes: int, where: str) -> TfliteExport:
    """How to feed a squeezelab ``.tflite``: its metadata (normalisation, in/out
    quantisation) read from ``read_tflite``'s ``info`` and checked against its input.

    Raises:
        ConfigError: the file has no squeezelab metadata.
        FormatError: the metadata is malformed or does not fit the input.
    """
    rec = info.record
    if rec is None:
        raise ConfigError(
            f"{where}: has no squeezelab metadata (normalisation, input quantisation), "
            "so images cannot be fed to it: allowed a file written by squeezelab export"
        )
    int8 = info.input_dtype == "int8"
    try:
        fields = {
            "path": where,
            "tflite_bytes": n_bytes,
            "int8": int8,
            "ops": info.ops,
            "input_scale": rec["input"]["scale"],
            "input_zero_point": rec["input"]["zero_point"],
            "output_scale": rec["output"]["scale"],
            "output_zero_point": rec["output"]["zero_point"],
            "mean": rec["mean"],
            "std": rec["std"],
        }
    except (KeyError, TypeError) as e:
        raise FormatError(f"{where}: malformed squeezelab metadata (missing {e})") from e
    spec = TfliteExport.from_dict(fields, where)
    c = info.input_shape[-1] if info.input_shape else 0
    if (
        len(spec.mean) != c
        or len(spec.std) != c
        or 0.0 in spec.std
        or (int8 and not spec.input_scale > 0)
    ):
        raise FormatError(
            f"{where}: squeezelab metadata does not fit the input {info.input_shape} "
            "(mean/std per channel, std and input scale > 0)"
        )
    return spec


def litert_top1(path: str | os.PathLike, images_uint8, labels, threads: int = 1) -> float:
    """Top-1 of a squeezelab ``.tflite`` under LiteRT's default (XNNPACK) kernels.

    The runtime a phone runs the file with; its int8 outputs may differ from TFLite
    Micro's (the reference kernels') by one step. The file's metadata says how to
    normalise and quantise ``images_uint8`` (``(N, C, H, W)``).
    """
    y = np.asarray(labels).reshape(-1)
    if len(images_uint8) != len(y):
        raise ConfigError(f"labels has {len(y)} entries but there are {len(images_uint8)} images")
    return float((litert_predictions(path, images_uint8, threads) == y).mean()) if len(y) else 0.0


def litert_predictions(path: str | os.PathLike, images_uint8, threads: int = 1) -> np.ndarray:
    """The class LiteRT predicts for each image, one batch-1 invoke each (as a phone runs)."""
    data = Path(path).read_bytes()
    spec = file_spec(read_tflite(data, str(path)), len(data), str(path))
    lite = require_deploy("ai_edge_litert.interpreter")
    feed = spec.quantize_input(np.asarray(images_uint8))
    it = lite.Interpreter(model_content=data, num_threads=threads)
    it.allocate_tensors()
    i_in, i_out = it.get_input_details()[0]["index"], it.get_output_details()[0]["index"]
    out = np.empty(len(feed), np.int64)
    for i in range(len(feed)):
        it.set_tensor(i_in, feed[i : i + 1])
        it.invoke()
        out[i] = it.get_tensor(i_out).reshape(-1).argmax()
    return out


def _quiet(fn):
    """Run ``fn`` with file descriptors 1 and 2 sent to /dev/null (the converter's C++ logs).

    The converter's MLIR passes print hundreds of lines straight to the descriptors;
    Python's ``sys.stderr`` redirection cannot catch them.
    """
    import sys

    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        return fn()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, devnull):
            os.close(fd)
