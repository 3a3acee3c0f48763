"""Generated firmware: an int8 ``.tflite`` as dependency-free C99 (``model.c`` / ``model.h``).

The graph, weights and quantisation parameters are read from the int8 ``.tflite`` that
``export_tflite`` writes (the file TFLite Micro runs), so the C computes what TFLM computes:
each op calls a kernel of ``firmware_c/sqz_kernels.c`` written after TFLM's reference
kernel of the same name, and the per-channel multipliers and shifts are computed here the
way TFLM computes them when it prepares the model (``QuantizeMultiplier``, double
rounding). Weights, biases and multipliers are ``const`` arrays (flash). Activations live
in one static arena laid out by the planner ``profile`` uses for TFLM
(``analysis.tflm_plan.greedy_plan``: TFLM's greedy first-fit over the same lifetimes), so
the arena is exactly the predicted plan's head. One entry point, ``int model_run(const
int8_t *in, int8_t *out)``: no malloc, no float, no interpreter.

Building, running on the host and in QEMU: :mod:`squeezelab.export.firmware_build`.
"""

from __future__ import annotations

import math
import os
import shutil
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from squeezelab.analysis.tflm_plan import align, greedy_plan, lifetimes
from squeezelab.errors import ConfigError, FormatError
from squeezelab.export.c_source import c_ident

KERNEL_SOURCES = ("sqz_kernels.c", "sqz_kernels.h")
# ops the generator writes code for; every other op is refused by name
SUPPORTED_OPS = (
    "CONV_2D",
    "DEPTHWISE_CONV_2D",
    "FULLY_CONNECTED",
    "MAX_POOL_2D",
    "AVERAGE_POOL_2D",
    "MEAN",
    "SUM",
    "ADD",
    "CONCATENATION",
    "QUANTIZE",
    "RESHAPE",
    "PAD",
    "PADV2",
)
# Code bytes of each kernel, and per op of model_run, for the flash prediction: measured
# with Debian's arm-none-eabi-gcc 12 (-O2 -mcpu=cortex-m7 -mthumb, --gc-sections).
KERNEL_CODE_BYTES = {
    "sqz_conv": 498,
    "sqz_depthwise_conv": 474,
    "sqz_max_pool": 306,
    "sqz_avg_pool": 320,
    "sqz_mean_hw": 98,
    "sqz_add": 428,
    "sqz_requantize": 204,
    "sqz_concat": 100,
    "sqz_pad": 178,
    "sqz_copy": 30,
    "sqz_mul_by_quantized_multiplier": 132,
}
CALL_CODE_BYTES = 20  # model_run's instructions per op (arguments and the call)
RUNNER_CODE_BYTES = 840  # vector table, startup, semihosting and the test runner
MAX_DIM = 32767  # int16 fields of sqz_conv_t / sqz_pool_t
MAX_ELEMS = 1 << 30  # one tensor; a model needing more is not an MCU model
_NONE, _RELU, _RELU_N1_TO_1, _RELU6 = 0, 1, 2, 3  # tflite ActivationFunctionType
_SAME = 0  # tflite Padding


# -- TFLM's quantisation arithmetic, at generation time ----------------------------------


def _round_away(x: float) -> int:
    """``std::round``: halves away from zero."""
    return int(math.floor(abs(x) + 0.5)) * (1 if x >= 0 else -1)


def quantize_multiplier(real: float) -> tuple[int, int]:
    """TFLM's ``QuantizeMultiplier``: ``real`` = ``mult`` * 2^(``shift`` - 31).

    Example:
        >>> quantize_multiplier(0.5)
        (1073741824, 0)
    """
    if real == 0.0:
        return 0, 0
    q, shift = math.frexp(real)
    fixed = _round_away(q * (1 << 31))
    if fixed == 1 << 31:
        fixed //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    return fixed, shift


def _act_range(act: int, scale: float, zp: int, where: str) -> tuple[int, int]:
    """TFLM's ``CalculateActivationRangeQuantized`` for int8 (float32 division, as in C++)."""

    def q(f: float) -> int:
        return zp + _round_away(float(np.float32(f) / np.float32(scale)))

    if act == _NONE:
        return -128, 127
    if act == _RELU:
        return max(-128, q(0.0)), 127
    if act == _RELU6:
        return max(-128, q(0.0)), min(127, q(6.0))
    if act == _RELU_N1_TO_1:
        return max(-128, q(-1.0)), min(127, q(1.0))
    raise ConfigError(
        f"{where}: fused activation {act} is not supported: allowed NONE, RELU, RELU6, RELU_N1_TO_1"
    )


def _out_size(padding: int, size: int, k: int, stride: int, dil: int) -> int:
    eff = (k - 1) * dil + 1
    return (size + stride - 1) // stride if padding == _SAME else (size + stride - eff) // stride


def _pad(stride: int, dil: int, size: int, k: int, out: int) -> int:
    """TFLM's ``ComputePaddingWithOffset``: the top / left padding (the odd pixel at the end)."""
    total = (out - 1) * stride + (k - 1) * dil + 1 - size
    return max(total, 0) // 2


# -- the graph read from the .tflite ------------------------------------------------------


@dataclass
class Tensor:
    shape: tuple[int, ...]
    dtype: int  # tflite TensorType (9 = int8, 2 = int32)
    scale: tuple[float, ...]
    zero_point: tuple[int, ...]
    data: np.ndarray | None  # constant bytes (uint8), None for an activation

    @property
    def elems(self) -> int:
        return int(np.prod(self.shape)) if self.shape else 1


@dataclass
class Op:
    name: str
    inputs: list[int]
    outputs: list[int]
    options: Any


@dataclass
class Graph:
    tensors: list[Tensor]
    ops: list[Op]
    input: int
    output: int


def read_graph(data: bytes, where: str = "tflite file") -> Graph:
    """The first subgraph of an int8 ``.tflite``: tensors (constants with their bytes) and ops.

    Raises:
        FormatError: the bytes are not a TFLite model, or a reference is out of range.
        ConfigError: the model is not int8 in and out (a float file has no firmware).
    """
    from squeezelab.export.tflite import read_tflite, require_deploy

    info = read_tflite(data, where)  # bounded checks of counts and indices first
    schema = require_deploy("tflite_micro.tensorflow.lite.micro.python.schema_py_generated")
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    try:
        m = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(data, 0))
        sg = m.subgraphs[0]
        tensors = []
        for t in sg.tensors:
            buf = m.buffers[t.buffer] if 0 <= t.buffer < len(m.buffers) else None
            raw = None
            if buf is not None and buf.data is not None and len(buf.data):
                raw = np.asarray(buf.data, np.uint8)
            elif buf is not None and getattr(buf, "offset", 0) > 1:
                off, size = int(buf.offset), int(buf.size)
                if off + size > len(data):
                    raise FormatError(f"{where}: a buffer runs past the end of the file")
                raw = np.frombuffer(data, np.uint8, size, off)
            q = t.quantization
            scale = tuple(
                float(s) for s in (q.scale if q is not None and q.scale is not None else ())
            )
            zp = tuple(
                int(z) for z in (q.zeroPoint if q is not None and q.zeroPoint is not None else ())
            )
            shape = tuple(int(s) for s in (t.shape if t.shape is not None else ()))
            tensors.append(Tensor(shape, int(t.type), scale, zp, raw))
        ops = []
        for op in sg.operators:
            oc = m.operatorCodes[op.opcodeIndex]
            code = max(oc.builtinCode, oc.deprecatedBuiltinCode)
            ins = [int(i) for i in (op.inputs if op.inputs is not None else ())]
            outs = [int(i) for i in (op.outputs if op.outputs is not None else ())]
            for i in (*ins, *outs):
                if not -1 <= i < len(tensors):
                    raise FormatError(f"{where}: tensor index {i} out of range")
            ops.append(Op(names.get(code, f"UNKNOWN_{code}"), ins, outs, op.builtinOptions))
        graph = Graph(tensors, ops, int(sg.inputs[0]), int(sg.outputs[0]))
    except (FormatError, ConfigError):
        raise
    except (IndexError, ValueError, TypeError, AttributeError, KeyError) as e:
        raise FormatError(
            f"{where}: truncated or altered TFLite flatbuffer ({e.__class__.__name__}: {e})"
        ) from e
    if info.input_dtype != "int8" or graph.tensors[graph.output].dtype != 9:
        raise ConfigError(
            f"{where}: input {info.input_dtype}: the firmware needs an int8 model (allowed: "
            "a file written by `squeezelab export MODEL --format tflite`, without --fp32)"
        )
    return graph


# -- the memory plan ----------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """Where each activation tensor lives in the static arena."""

    arena_bytes: int  # the arena's size: the plan's head (TFLM's greedy planner)
    offsets: dict[int, int]  # tensor index -> byte offset in the arena
    sizes: dict[int, int]  # tensor index -> bytes


def plan_graph(g: Graph) -> Plan:
    """Plan the activations as TFLM (and ``analysis.tflm_plan``) does: TFLM's lifetimes
    (:func:`~squeezelab.analysis.tflm_plan.lifetimes`), buffers 16-byte aligned and placed
    by :func:`~squeezelab.analysis.tflm_plan.greedy_plan`.
    """
    life = lifetimes(g.input, g.ops, [g.output])
    ids = sorted(life)
    sizes = {t: g.tensors[t].elems for t in ids}
    head, offsets = greedy_plan([(align(sizes[t]), *life[t]) for t in ids])
    return Plan(head, dict(zip(ids, offsets, strict=True)), sizes)


# -- code generation ----------------------------------------------------------------------


def _c_array(ctype: str, name: str, values, per_line: int = 16) -> str:
    vals = [str(int(v)) for v in np.asarray(values).reshape(-1)]
    rows = [", ".join(vals[i : i + per_line]) for i in range(0, len(vals), per_line)]
    return f"static const {ctype} {name}[{len(vals)}] = {{\n  " + ",\n  ".join(rows) + "\n};\n"


@dataclass
class _Gen:
    g: Graph
    plan: Plan
    where: str
    consts: list[str] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)
    const_bytes: int = 0  # bytes of const data written (weights, biases, params)
    kernels: set[str] = field(default_factory=set)

    def buf(self, t: int) -> str:
        return f"(sqz_arena + {self.plan.offsets[t]})"

    def const(self, ctype: str, name: str, values, nbytes: int) -> str:
        self.consts.append(_c_array(ctype, name, values))
        self.const_bytes += nbytes
        return name

    def int8_values(self, t: int) -> np.ndarray:
        data = self.g.tensors[t].data
        if data is None:
            raise ConfigError(f"{self.where}: tensor {t} should be a constant")
        return data.view(np.int8)

    def int32_values(self, t: int) -> np.ndarray:
        data = self.g.tensors[t].data
        if data is None or data.size % 4:
            raise ConfigError(f"{self.where}: tensor {t} should be an int32 constant")
        return np.frombuffer(data.tobytes(), "<i4")

    def q(self, t: int) -> tuple[float, int]:
        x = self.g.tensors[t]
        if not x.scale:
            raise ConfigError(f"{self.where}: tensor {t} has no quantisation: allowed int8 models")
        return x.scale[0], (x.zero_point[0] if x.zero_point else 0)


def _hw(shape: tuple[int, ...]) -> tuple[int, int, int]:
    """(H, W, C) of an NHWC (or N, C) activation of batch 1."""
    if len(shape) == 4:
        return shape[1], shape[2], shape[3]
    if len(shape) == 2:
        return 1, 1, shape[1]
    raise ConfigError(f"activation shape {shape}: allowed NHWC or (N, C) of batch 1")


def _conv(gen: _Gen, i: int, op: Op, kind: str) -> None:
    g, o = gen.g, op.options
    x, w, y = g.tensors[op.inputs[0]], g.tensors[op.inputs[1]], g.tensors[op.outputs[0]]
    bias = op.inputs[2] if len(op.inputs) > 2 and op.inputs[2] >= 0 else None
    in_s, in_zp = gen.q(op.inputs[0])
    out_s, out_zp = gen.q(op.outputs[0])
    ih, iw, ic = _hw(x.shape)
    oh, ow, oc = _hw(y.shape)
    if kind == "FULLY_CONNECTED":
        ih = iw = oh = ow = 1
        ic = w.shape[1]
        kh = kw = sh = sw = dh = dw = 1
        fc, mult_d, ph, pw, act = ic, 1, 0, 0, o.fusedActivationFunction
    else:
        kh, kw = w.shape[1], w.shape[2]
        sh, sw, dh, dw = o.strideH, o.strideW, o.dilationHFactor, o.dilationWFactor
        if (_out_size(o.padding, ih, kh, sh, dh), _out_size(o.padding, iw, kw, sw, dw)) != (oh, ow):
            raise FormatError(
                f"{gen.where}: op {i} ({kind}): output shape does not fit its options"
            )
        ph, pw = _pad(sh, dh, ih, kh, oh), _pad(sw, dw, iw, kw, ow)
        act = o.fusedActivationFunction
        if kind == "CONV_2D":
            fc, mult_d = w.shape[3], 1
            if ic % fc or oc % (ic // fc):
                raise FormatError(
                    f"{gen.where}: op {i} (CONV_2D): channels do not divide in groups"
                )
        else:
            fc, mult_d = 1, oc // ic
            if mult_d * ic != oc:
                raise FormatError(f"{gen.where}: op {i}: depth multiplier does not fit")
    w_scales = w.scale if len(w.scale) > 1 else w.scale * oc
    if len(w_scales) != oc:
        raise FormatError(
            f"{gen.where}: op {i} ({kind}): {len(w.scale)} weight scales, {oc} channels"
        )
    mults, shifts = zip(*(quantize_multiplier(in_s * ws / out_s) for ws in w_scales), strict=True)
    lo, hi = _act_range(act, out_s, out_zp, f"{gen.where}: op {i} ({kind})")
    weights = gen.int8_values(op.inputs[1])
    if weights.size != oc * kh * kw * fc:
        raise FormatError(f"{gen.where}: op {i} ({kind}): weight size does not fit its shape")
    wn = gen.const("int8_t", f"w{i}", weights, weights.size)
    bn = "0"
    if bias is not None:
        b = gen.int32_values(bias)
        if b.size != oc:
            raise FormatError(f"{gen.where}: op {i} ({kind}): {b.size} biases, {oc} channels")
        bn = gen.const("int32_t", f"b{i}", b, 4 * oc)
    mn = gen.const("int32_t", f"m{i}", mults, 4 * oc)
    sn = gen.const("int32_t", f"s{i}", shifts, 4 * oc)
    fields = (ih, iw, ic, oh, ow, oc, kh, kw, sh, sw, dh, dw, ph, pw, fc, mult_d)
    gen.consts.append(
        f"static const sqz_conv_t p{i} = {{{', '.join(map(str, fields))}, {-in_zp}, {out_zp}, "
        f"{lo}, {hi}, {wn}, {bn}, {mn}, {sn}}};\n"
    )
    gen.const_bytes += 2 * 16 + 4 * 4 + 4 * 4
    fn = "sqz_depthwise_conv" if kind == "DEPTHWISE_CONV_2D" else "sqz_conv"
    gen.kernels.add(fn)
    gen.calls.append(f"  {fn}(&p{i}, {gen.buf(op.inputs[0])}, {gen.buf(op.outputs[0])});")


def _pool(gen: _Gen, i: int, op: Op, kind: str) -> None:
    o = op.options
    x, y = gen.g.tensors[op.inputs[0]], gen.g.tensors[op.outputs[0]]
    (in_s, in_zp), (out_s, out_zp) = gen.q(op.inputs[0]), gen.q(op.outputs[0])
    if (in_s, in_zp) != (out_s, out_zp):
        raise FormatError(f"{gen.where}: op {i} ({kind}): input and output quantisation differ")
    ih, iw, c = _hw(x.shape)
    oh, ow, _ = _hw(y.shape)
    kh, kw, sh, sw = o.filterHeight, o.filterWidth, o.strideH, o.strideW
    if (_out_size(o.padding, ih, kh, sh, 1), _out_size(o.padding, iw, kw, sw, 1)) != (oh, ow):
        raise FormatError(f"{gen.where}: op {i} ({kind}): output shape does not fit its options")
    lo, hi = _act_range(o.fusedActivationFunction, out_s, out_zp, f"{gen.where}: op {i}")
    fields = (ih, iw, c, oh, ow, kh, kw, sh, sw, _pad(sh, 1, ih, kh, oh), _pad(sw, 1, iw, kw, ow))
    gen.consts.append(
        f"static const sqz_pool_t p{i} = {{{', '.join(map(str, fields))}, {lo}, {hi}}};\n"
    )
    gen.const_bytes += 11 * 2 + 2 + 8
    fn = "sqz_max_pool" if kind == "MAX_POOL_2D" else "sqz_avg_pool"
    gen.kernels.add(fn)
    gen.calls.append(f"  {fn}(&p{i}, {gen.buf(op.inputs[0])}, {gen.buf(op.outputs[0])});")


def _mean(gen: _Gen, i: int, op: Op, kind: str) -> None:
    x = gen.g.tensors[op.inputs[0]]
    axes = sorted(int(a) % 4 for a in gen.int32_values(op.inputs[1]))
    if len(x.shape) != 4 or axes != [1, 2]:
        raise ConfigError(
            f"{gen.where}: op {i} ({kind}) over axes {axes} of shape {x.shape}: allowed the "
            "mean over H and W (axes 1 and 2) of an NHWC tensor (a global average pool)"
        )
    (in_s, in_zp), (out_s, out_zp) = gen.q(op.inputs[0]), gen.q(op.outputs[0])
    mult, shift = quantize_multiplier(in_s / out_s)
    n = x.shape[1] * x.shape[2]
    if kind == "MEAN":  # reference_ops::QuantizedMeanOrSum folds 1/n in the same way
        s = min(n.bit_length() - 1, 32, 31 + shift)
        mult, shift = (mult << s) // n, shift - s
    gen.kernels.add("sqz_mean_hw")
    gen.calls.append(
        f"  sqz_mean_hw({gen.buf(op.inputs[0])}, {n}, {x.shape[3]}, {in_zp}, {out_zp}, "
        f"{mult}, {shift}, {gen.buf(op.outputs[0])});"
    )


def _add(gen: _Gen, i: int, op: Op) -> None:
    a, b, y = (gen.g.tensors[t] for t in (*op.inputs[:2], op.outputs[0]))
    if not (a.shape == b.shape == y.shape):
        raise ConfigError(
            f"{gen.where}: op {i} (ADD) of shapes {a.shape} and {b.shape}: allowed equal "
            "shapes (a bypass), not broadcasting"
        )
    (s1, z1), (s2, z2), (so, zo) = (gen.q(t) for t in (*op.inputs[:2], op.outputs[0]))
    left = 20
    twice = 2 * max(s1, s2)
    m1, sh1 = quantize_multiplier(s1 / twice)
    m2, sh2 = quantize_multiplier(s2 / twice)
    mo, sho = quantize_multiplier(twice / ((1 << left) * so))
    lo, hi = _act_range(op.options.fusedActivationFunction, so, zo, f"{gen.where}: op {i}")
    vals = (-z1, -z2, zo, m1, m2, mo, sh1, sh2, sho, left, lo, hi)
    gen.consts.append(f"static const sqz_add_t p{i} = {{{', '.join(map(str, vals))}}};\n")
    gen.const_bytes += 4 * len(vals)
    gen.kernels.add("sqz_add")
    ins = ", ".join(gen.buf(t) for t in op.inputs[:2])
    gen.calls.append(f"  sqz_add(&p{i}, {ins}, {y.elems}, {gen.buf(op.outputs[0])});")


def _concat(gen: _Gen, i: int, op: Op) -> None:
    y = gen.g.tensors[op.outputs[0]]
    axis = op.options.axis % len(y.shape)
    qo = gen.q(op.outputs[0])
    for t in op.inputs:
        if gen.q(t) != qo:
            raise ConfigError(
                f"{gen.where}: op {i} (CONCATENATION): an input's quantisation differs from the "
                "output's (TFLM copies int8 inputs unscaled): allowed shared scales"
            )
    if op.options.fusedActivationFunction != _NONE:
        raise ConfigError(f"{gen.where}: op {i} (CONCATENATION) with a fused activation")
    outer = int(np.prod(y.shape[:axis]))
    widths = [int(np.prod(gen.g.tensors[t].shape[axis:])) for t in op.inputs]
    gen.consts.append(
        f"static const int32_t cw{i}[{len(widths)}] = {{{', '.join(map(str, widths))}}};\n"
    )
    gen.const_bytes += 4 * len(widths)
    gen.kernels.add("sqz_concat")
    ptrs = ", ".join(gen.buf(t) for t in op.inputs)
    gen.calls.append(
        f"  {{\n    const int8_t *ins[{len(widths)}] = {{{ptrs}}};\n"
        f"    sqz_concat(ins, cw{i}, {len(widths)}, {outer}, {gen.buf(op.outputs[0])});\n  }}"
    )


def _quantize(gen: _Gen, i: int, op: Op) -> None:
    x = gen.g.tensors[op.inputs[0]]
    if x.dtype != 9 or gen.g.tensors[op.outputs[0]].dtype != 9:
        raise ConfigError(f"{gen.where}: op {i} (QUANTIZE): allowed int8 to int8 only")
    (si, zi), (so, zo) = gen.q(op.inputs[0]), gen.q(op.outputs[0])
    mult, shift = quantize_multiplier(si / so)
    gen.kernels.add("sqz_requantize")
    gen.calls.append(
        f"  sqz_requantize({gen.buf(op.inputs[0])}, {x.elems}, {zi}, {zo}, {mult}, {shift}, "
        f"{gen.buf(op.outputs[0])});"
    )


def _reshape(gen: _Gen, i: int, op: Op) -> None:
    x = gen.g.tensors[op.inputs[0]]
    gen.kernels.add("sqz_copy")
    gen.calls.append(f"  sqz_copy({gen.buf(op.inputs[0])}, {x.elems}, {gen.buf(op.outputs[0])});")


def _pad_op(gen: _Gen, i: int, op: Op, kind: str) -> None:
    x = gen.g.tensors[op.inputs[0]]
    pads = gen.int32_values(op.inputs[1]).reshape(-1, 2)
    if len(x.shape) != 4 or pads.shape[0] != 4 or pads[0].any() or pads[3].any():
        raise ConfigError(f"{gen.where}: op {i} ({kind}): allowed padding of H and W of NHWC")
    _, zo = gen.q(op.outputs[0])
    value = zo
    if kind == "PADV2" and len(op.inputs) > 2 and op.inputs[2] >= 0:
        value = int(gen.int8_values(op.inputs[2])[0])
    _, h, w, c = x.shape
    gen.kernels.add("sqz_pad")
    gen.calls.append(
        f"  sqz_pad({gen.buf(op.inputs[0])}, {h}, {w}, {c}, {pads[1][0]}, {pads[1][1]}, "
        f"{pads[2][0]}, {pads[2][1]}, {value}, {gen.buf(op.outputs[0])});"
    )


@dataclass(frozen=True)
class FirmwareSources:
    """What :func:`write_firmware` wrote."""

    dir: str
    files: tuple[str, ...]  # file names in ``dir``: model.c, model.h, the kernel sources
    name: str  # the C prefix of model.h's macros
    arena_bytes: int  # static activation buffer: the planner's head
    input_bytes: int
    output_bytes: int
    const_bytes: int  # weights, biases, multipliers and op parameters in flash
    ops: tuple[str, ...]
    kernels: tuple[str, ...]  # kernel functions the model calls
    input_scale: float
    input_zero_point: int
    output_scale: float
    output_zero_point: int
    predicted_flash_bytes: int = 0  # const data + kernel code + the runner, before building

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for k in ("files", "ops", "kernels"):
            d[k] = list(d[k])
        return d


def generate(
    data: bytes, where: str = "tflite file", name: str = "model"
) -> tuple[str, str, FirmwareSources]:
    """``(model.c, model.h, record)`` for an int8 ``.tflite``'s bytes (nothing written)."""
    g = read_graph(data, where)
    for i, op in enumerate(g.ops):
        if op.name not in SUPPORTED_OPS:
            raise ConfigError(
                f"{where}: op {i} is {op.name}, which the firmware generator has no kernel "
                f"for: allowed {', '.join(SUPPORTED_OPS)}"
            )
    for t in g.tensors:  # the kernels' parameter records hold dimensions as int16
        if any(not 0 < d <= MAX_DIM for d in t.shape) or t.elems > MAX_ELEMS:
            raise ConfigError(
                f"{where}: a tensor of shape {t.shape}: allowed dimensions 1..{MAX_DIM} and "
                f"at most {MAX_ELEMS:,} values (an MCU model)"
            )
    plan = plan_graph(g)
    gen = _Gen(g, plan, where)
    for i, op in enumerate(g.ops):
        if op.name in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"):
            _conv(gen, i, op, op.name)
        elif op.name in ("MAX_POOL_2D", "AVERAGE_POOL_2D"):
            _pool(gen, i, op, op.name)
        elif op.name in ("MEAN", "SUM"):
            _mean(gen, i, op, op.name)
        elif op.name == "ADD":
            _add(gen, i, op)
        elif op.name == "CONCATENATION":
            _concat(gen, i, op)
        elif op.name == "QUANTIZE":
            _quantize(gen, i, op)
        elif op.name == "RESHAPE":
            _reshape(gen, i, op)
        else:
            _pad_op(gen, i, op, op.name)
    prefix = c_ident(name).upper()
    (in_s, in_zp), (out_s, out_zp) = gen.q(g.input), gen.q(g.output)
    n_in, n_out = g.tensors[g.input].elems, g.tensors[g.output].elems
    h = f"""/* {name}.h: generated by squeezelab (`squeezelab export MODEL --format firmware`).
 * int8 inference without an interpreter: weights in flash, activations in one static
 * arena of {plan.arena_bytes} bytes planned at generation time; no malloc, no float. */
#ifndef {prefix}_H_
#define {prefix}_H_

#include <stdint.h>

#define {prefix}_INPUT_BYTES {n_in}  /* NHWC {"x".join(map(str, g.tensors[g.input].shape))} */
#define {prefix}_OUTPUT_BYTES {n_out}
#define {prefix}_ARENA_BYTES {plan.arena_bytes}
/* real = scale * (q - zero_point) */
#define {prefix}_INPUT_SCALE {in_s!r}f
#define {prefix}_INPUT_ZERO_POINT ({in_zp})
#define {prefix}_OUTPUT_SCALE {out_s!r}f
#define {prefix}_OUTPUT_ZERO_POINT ({out_zp})

/* Runs one inference: {n_in} int8 inputs in, {n_out} int8 outputs out. Returns 0.
 * Not reentrant: the activations live in one static arena. */
int {c_ident(name)}_run(const int8_t *in, int8_t *out);

#endif /* {prefix}_H_ */
"""
    c = (
        f"/* {name}.c: generated by squeezelab from {Path(where).name}; do not edit. */\n"
        f'#include "{name}.h"\n#include "sqz_kernels.h"\n\n'
        f"/* Activations: TFLM's greedy plan (squeezelab.analysis.tflm_plan.greedy_plan). */\n"
        f"static int8_t sqz_arena[{plan.arena_bytes}];\n\n"
        + "".join(gen.consts)
        + f"\nint {c_ident(name)}_run(const int8_t *in, int8_t *out) {{\n"
        f"  sqz_copy(in, {n_in}, {gen.buf(g.input)});\n"
        + "\n".join(gen.calls)
        + f"\n  sqz_copy({gen.buf(g.output)}, {n_out}, out);\n  return 0;\n}}\n"
    )
    kernels = gen.kernels | {"sqz_copy", "sqz_mul_by_quantized_multiplier"}
    code = sum(KERNEL_CODE_BYTES.get(k, 0) for k in kernels) + CALL_CODE_BYTES * len(g.ops)
    rec = FirmwareSources(
        dir="",
        files=(f"{name}.c", f"{name}.h", *KERNEL_SOURCES),
        name=prefix,
        arena_bytes=plan.arena_bytes,
        input_bytes=n_in,
        output_bytes=n_out,
        const_bytes=gen.const_bytes,
        ops=tuple(op.name for op in g.ops),
        kernels=tuple(sorted(kernels)),
        input_scale=in_s,
        input_zero_point=in_zp,
        output_scale=out_s,
        output_zero_point=out_zp,
        predicted_flash_bytes=gen.const_bytes + code + RUNNER_CODE_BYTES,
    )
    return c, h, rec


def kernel_dir() -> Path:
    """The packaged C sources (``squeezelab/export/firmware_c``)."""
    return Path(str(resources.files("squeezelab.export") / "firmware_c"))


def write_firmware(
    tflite_path: str | os.PathLike, out_dir: str | os.PathLike, name: str = "model"
) -> FirmwareSources:
    """Write ``model.c`` / ``model.h`` and the kernel sources for an int8 ``.tflite``.

    Args:
        tflite_path: the int8 file (``export_tflite``), the one TFLite Micro runs.
        out_dir: the folder to write into (created).
        name: the stem of the model files; the entry point is ``<name>_run``.

    Raises:
        ConfigError: a float file, or an op the generator has no kernel for (named).
        FormatError: the file is not a TFLite model.

    Example:
        >>> write_firmware("m.tflite", "fw").arena_bytes  # doctest: +SKIP
        9984
    """
    from squeezelab.io import atomic_path

    p = Path(tflite_path)
    try:
        data = p.read_bytes()
    except OSError as e:
        raise ConfigError(f"{p}: cannot read ({e.strerror})") from e
    c, h, rec = generate(data, str(p), name)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for fname, text in ((f"{name}.c", c), (f"{name}.h", h)):
        with atomic_path(out / fname) as tmp:
            Path(tmp).write_text(text)
    src = kernel_dir()
    for fname in KERNEL_SOURCES:
        with atomic_path(out / fname) as tmp:
            shutil.copyfile(src / fname, tmp)
    return FirmwareSources(**{**asdict(rec), "dir": str(out)})
