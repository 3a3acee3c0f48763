"""The tensor arena and ``.tflite`` size of a model under TFLite Micro, predicted.

The traced graph is lowered the way the int8 converter (litert-torch with PT2E per-channel
quantization) lowers it: convolutions, BatchNorm and ReLU/ReLU6 fuse into one CONV_2D,
views are free, residual adds are int8 ADDs (``export.tflite`` annotates them), a max pool
right after a concatenation gets a requantizing QUANTIZE, a channel shuffle is
RESHAPE-TRANSPOSE-RESHAPE, a global pool that drops H and W (``x.mean((2, 3))``) is a
TRANSPOSE back to NCHW (a RESHAPE at 1x1) and a reduce (named MEAN here; the converter
may write SUM, the same kernel), and an ADD a ReLU follows takes it in. The file stores
identical constants once: the all-zero biases of an untrained net share a buffer per
length (read from the module's weights), the repeated shape constants of channel
shuffles one tensor each. The arena is then planned
as TFLM plans it (``micro_allocation_info.cc``, ``greedy_memory_planner.cc``):

* each op is one allocation scope; the graph input lives from scope 0, an op's outputs
  from its scope, every tensor until the scope of its last reader, the graph output to
  the end;
* buffer sizes are rounded up to 16 bytes; buffers are placed largest first (equal
  sizes in reverse tensor order), each at the lowest offset where it fits between the
  buffers alive at the same time (first fit); the arena's *head* is the highest end;
* the *tail* holds what lives as long as the interpreter: one ``TfLiteEvalTensor`` per
  tensor, one node-and-registration record per op, each kernel's op data (for the
  convolutions also per-channel multipliers and shifts) and the input/output
  ``TfLiteTensor`` records;
* the smallest arena is the tail plus the larger of the head and the planner's
  temporaries (per tensor and per planned buffer), which must fit while it plans.

The tail's struct sizes are those of the 64-bit host build of ``tflite-micro`` that
``squeezelab deploy-check`` measures with; a 32-bit Cortex-M build holds smaller
pointers, so its tail is a little smaller (the head is the same).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from squeezelab.analysis.trace import Trace, trace

ALIGN = 16  # kBufferAlignment / MicroArenaBufferAlignment()

# Tail, in bytes, of the host (x86-64) build: sizeof(TfLiteEvalTensor), the
# NodeAndRegistration record, the interpreter's input/output TfLiteTensor with its
# quantization records, and a fixed part (allocator, context, subgraph records).
EVAL_TENSOR_BYTES = 24
NODE_BYTES = 64
IO_TENSOR_BYTES = 64 + 32
TAIL_FIXED_BYTES = 880
TAIL_OP_BYTES = 16  # further persistent bytes per op (fit to the host build's reports)
# While it plans, TFLM holds temporaries in the head's space: an AllocationInfo per tensor
# and the planner's records per planned buffer; a net of many small tensors (a channel
# shuffle's) needs more arena for them than for its activations.
TEMP_TENSOR_BYTES = 32
TEMP_BUFFER_BYTES = 36
TEMP_FIXED_BYTES = 1024
# Persistent op data per kernel (reference kernels), bytes; convolutions add
# 2 * 4 bytes per output channel (per-channel multiplier and shift).
OP_DATA_BYTES = {
    "CONV_2D": 80,
    "DEPTHWISE_CONV_2D": 80,
    "FULLY_CONNECTED": 48,
    "CONCATENATION": 80,
    "MEAN": 48,
    "ADD": 80,
    "MUL": 48,
    "QUANTIZE": 32,
}

# The flatbuffer: per tensor (table, shape, quantization record), per op (table, inputs,
# outputs, options), a fixed part (schema header, op codes, signature, metadata), and the
# per-channel quantization of a constant: a float scale and an int64 zero point.
FILE_TENSOR_BYTES = 96
FILE_OP_BYTES = 64
FILE_FIXED_BYTES = 2500  # with the metadata record export.tflite writes
FILE_PER_CHANNEL_BYTES = 12
# Tensor names: the converter names a tensor by the module path that made it, each
# component spelled ``package.Class_attribute`` (one "path" = the mean such path of the
# model's convolutions); a convolution's output fuses its activation's and neighbours'
# paths, other ops' outputs name their parent block (under one path), a weight's
# is one path, a distinct bias's fuses its neighbours', a shared constant's is short
# ("tfl.pseudo_qconst").
CONV_OUT_NAME_PATHS = 2.1
OTHER_NAME_PATHS = 0.65
BIAS_NAME_PATHS = 2.6
SHARED_NAME_BYTES = 20
_PATH_PREFIX = "litert_torch._convert.to_channel_last_io.ChannelLastIOWrapper/"


@dataclass(frozen=True)
class TflmPlan:
    """Predicted TFLM memory and file size of an int8 model (see the module docstring)."""

    arena_bytes: int  # the smallest tensor arena that runs it: tail + max(head, temporaries)
    arena_head_bytes: int  # the memory plan: activations alive at once, with gaps
    arena_tail_bytes: int  # persistent: tensor and node records, kernels' op data
    tflite_bytes: int  # the int8 .tflite flatbuffer
    ops: tuple[str, ...]  # TFLite builtin ops in execution order
    tensors: int  # tensors of the flatbuffer, constants included
    peak_op: int  # index into ops of the op whose scope reaches the head's end
    unsupported: tuple[str, ...] = ()  # traced ops the lowering did not understand

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def align(n: int, to: int = ALIGN) -> int:
    return -(-n // to) * to


def lifetimes(graph_input: int, ops, graph_outputs) -> dict[int, list[int]]:
    """``tensor -> [first, last]`` scope as TFLM's planner sees them.

    The graph input lives from scope 0, op ``i``'s outputs from scope ``i + 1``, every
    tensor until its last reader's scope, the graph outputs to the end. ``ops`` have
    ``inputs`` and ``outputs`` (tensor indices).
    """
    life: dict[int, list[int]] = {graph_input: [0, 0]}
    for scope, op in enumerate(ops, start=1):
        for t in op.outputs:
            life.setdefault(t, [scope, scope])
        for t in op.inputs:
            if t in life:
                life[t][1] = scope
    for t in graph_outputs:
        life[t][1] = len(ops)
    return life


def greedy_plan(buffers: list[tuple[int, int, int]]) -> tuple[int, list[int]]:
    """TFLM's GreedyMemoryPlanner over ``(bytes, first_scope, last_scope)`` buffers.

    Returns the arena size the plan needs and each buffer's offset.

    Example:
        >>> greedy_plan([(32, 0, 1), (16, 1, 2), (32, 2, 3)])
        (48, [0, 32, 0])
    """
    # largest first; TFLM fills its sort array from the tail and bubble-sorts it (stable),
    # so buffers of equal size go in the reverse of the order they were added
    order = sorted(range(len(buffers)), key=lambda i: (-buffers[i][0], -i))
    offsets = [0] * len(buffers)
    placed: list[tuple[int, int, int, int]] = []  # (offset, bytes, first, last) by offset
    for i in order:
        size, first, last = buffers[i]
        offset = 0
        for p_off, p_size, p_first, p_last in placed:
            if p_first > last or first > p_last:
                continue
            if p_off - offset >= size:
                break
            offset = max(offset, p_off + p_size)
        offsets[i] = offset
        placed.append((offset, size, first, last))
        placed.sort(key=lambda p: p[0])
    return max((o + b[0] for o, b in zip(offsets, buffers, strict=True)), default=0), offsets


@dataclass
class _Op:
    name: str
    inputs: list[int]  # activation tensor ids
    outputs: list[int]
    consts: list[tuple[int, int]] = field(default_factory=list)  # (bytes, channels) each
    channels: int = 0  # output channels (per-channel op data)
    zero_bias: bool = False  # its bias (BatchNorm folded in) is all zeros: an untrained net
    activated: bool = False  # an ADD with a ReLU fused in (its output name fuses both paths)


@dataclass
class _Graph:
    sizes: list[int] = field(default_factory=list)  # activation tensor bytes by id
    ops: list[_Op] = field(default_factory=list)
    producer: dict[int, str] = field(default_factory=dict)  # tensor id -> op name
    unsupported: list[str] = field(default_factory=list)

    def tensor(self, nbytes: int) -> int:
        self.sizes.append(nbytes)
        return len(self.sizes) - 1

    def op(self, name: str, inputs: list[int], out_bytes: list[int], **kw) -> list[int]:
        outs = [self.tensor(b) for b in out_bytes]
        self.ops.append(_Op(name, inputs, outs, **kw))
        for t in outs:
            self.producer[t] = name
        return outs


_ACTS = {"ReLU", "ReLU6", "Hardtanh", "relu", "relu6", "hardtanh", "clamp", "clip"}
_FUSED = _ACTS | {"BatchNorm1d", "BatchNorm2d", "batch_norm", "Identity", "Dropout", "dropout"}
_ELEMENTWISE_OPS = {
    "add": "ADD",
    "mul": "MUL",
    "sub": "SUB",
    "Hardswish": "HARD_SWISH",
    "hardswish": "HARD_SWISH",
    "Sigmoid": "LOGISTIC",
    "sigmoid": "LOGISTIC",
    "Tanh": "TANH",
    "tanh": "TANH",
    "Softmax": "SOFTMAX",
    "softmax": "SOFTMAX",
}


def _elems(shape) -> int:
    n = 1
    for v in shape:
        n *= v
    return n


def _is_view(node) -> bool:
    return node.cost.op == "view" and node.kind not in ("chunk", "split", "unbind")


def _zero_biases(model: nn.Module, t: Trace) -> set[str]:
    """Names of the conv / linear nodes whose bias, with a following BatchNorm folded in, is 0.

    The converter stores identical constants once: the all-zero biases of an untrained net
    (zero-initialised, BatchNorm at its initial statistics) share one buffer per length,
    a trained net's biases are all distinct.
    """
    import torch

    modules = dict(model.named_modules())
    bn_after = {n.inputs[0]: modules.get(n.name) for n in t.nodes if n.kind == "BatchNorm2d"}
    zero = set()
    with torch.no_grad():
        for node in t.nodes:
            mod = modules.get(node.name)
            if not isinstance(mod, nn.Conv2d | nn.Linear) or not node.outputs:
                continue
            bias = mod.bias if mod.bias is not None else torch.zeros(mod.weight.shape[0])
            bn = bn_after.get(node.outputs[0])
            if isinstance(bn, nn.BatchNorm2d) and bn.running_mean is not None:
                gamma = bn.weight if bn.weight is not None else torch.ones_like(bias)
                beta = bn.bias if bn.bias is not None else torch.zeros_like(bias)
                scale = gamma / torch.sqrt(bn.running_var + bn.eps)
                bias = (bias - bn.running_mean) * scale + beta
            if not bool(bias.any()):
                zero.add(node.name)
    return zero


def _lower(
    t: Trace, input_shape: tuple[int, ...], nhwc_input: bool, zero_bias: set[str] = frozenset()
) -> _Graph:
    """The traced graph as the int8 TFLite ops the converter writes (one byte per value)."""
    g = _Graph()
    tid: dict[int, int] = {}  # trace buffer key -> tensor id
    (in_key,) = t.input_buffers
    x = g.tensor(_elems(input_shape))
    tid[in_key] = x
    if not nhwc_input:  # NCHW to TFLite's NHWC: a RESHAPE when C == 1, else a TRANSPOSE
        layout = "RESHAPE" if input_shape[0] == 1 else "TRANSPOSE"
        (tid[in_key],) = g.op(layout, [x], [_elems(input_shape)])
    g.input = x  # type: ignore[attr-defined]
    for node in t.nodes:
        ins = [tid[k] for k in node.inputs if k in tid]
        out_bytes = [_elems(s) for s in node.output_shapes]
        op, kind, attrs = node.cost.op, node.kind, node.cost.attrs
        if op in ("conv", "conv1x1", "dwconv", "gconv"):
            cin, cout = attrs["in_channels"], attrs["out_channels"]
            name = "DEPTHWISE_CONV_2D" if op == "dwconv" or cin == 1 else "CONV_2D"
            weights = node.params - (cout if node.params > cin * cout else 0)
            consts = [(weights, cout), (4 * cout, cout)]
            src = ins[:1]
            p = _needs_pad(node, attrs)
            if p:
                c, h, w = node.input_shapes[0][1:]
                (pad,) = g.op("PAD", src, [c * (h + 2 * p) * (w + 2 * p)])
                src = [pad]
            outs = g.op(
                name,
                src,
                out_bytes[:1],
                consts=consts,
                channels=cout,
                zero_bias=node.name in zero_bias,
            )
        elif op == "linear" and "out_features" in attrs:
            cout = attrs["out_features"]
            consts = [(attrs["in_features"] * cout, cout), (4 * cout, cout)]
            outs = g.op(
                "FULLY_CONNECTED",
                ins[:1],
                out_bytes[:1],
                consts=consts,
                channels=cout,
                zero_bias=node.name in zero_bias,
            )
        elif kind in _FUSED or _is_view(node):
            outs = ins[:1] * len(node.outputs)  # fused into the producer, or a free view
            last = g.ops[-1] if g.ops else None
            if last and last.name == "ADD" and ins[:1] == last.outputs and kind in _ACTS:
                last.activated = True
        elif kind in ("chunk", "split", "unbind"):
            outs = [g.op("SLICE", ins[:1], [b])[0] for b in out_bytes]
        elif kind in _ELEMENTWISE_OPS:
            outs = g.op(_ELEMENTWISE_OPS[kind], ins, out_bytes[:1])
        elif op == "pool":
            if "max" in kind.lower():
                src = ins[0]
                if g.producer.get(src) == "CONCATENATION":
                    # the pool takes a new scale: its input is requantized
                    (src,) = g.op("QUANTIZE", [src], [g.sizes[src]])
                k, st = attrs.get("kernel", 1), attrs.get("stride", 1)
                k, st = (
                    (k if isinstance(k, int) else k[-1]),
                    (st if isinstance(st, int) else st[-1]),
                )
                pad = attrs.get("padding", 0)
                pad = pad if isinstance(pad, int) else pad[-1]
                p = pad and _needs_pad(node, {"kernel": [k], "stride": [st]})
                if p:  # padded with the lowest int8 value, a PADV2
                    c, h, w = node.input_shapes[0][1:]
                    (src,) = g.op("PADV2", [src], [c * (h + 2 * p) * (w + 2 * p)])
                outs = g.op("MAX_POOL_2D", [src], out_bytes[:1])
            elif "adaptive" in kind.lower() or kind in ("mean", "sum"):
                src = ins[:1]
                if kind in ("mean", "sum") and len(node.output_shapes[0]) == 2:
                    # a reduction that drops H and W (``x.mean((2, 3))``) takes its input
                    # back to NCHW first: a TRANSPOSE, a RESHAPE when H = W = 1
                    h, w = node.input_shapes[0][-2:]
                    src = g.op("RESHAPE" if h * w == 1 else "TRANSPOSE", src, [g.sizes[src[0]]])
                outs = g.op("MEAN", src, out_bytes[:1])
            else:
                outs = g.op("AVERAGE_POOL_2D", ins[:1], out_bytes[:1])
        elif op == "concat":
            outs = g.op("CONCATENATION", ins, out_bytes[:1])
        elif op == "copy":  # a channel shuffle: NHWC -> NCHW, shuffle, and back
            outs = ins[:1]
            for name in ("TRANSPOSE", "RESHAPE", "TRANSPOSE", "RESHAPE", "TRANSPOSE"):
                outs = g.op(name, outs, out_bytes[:1])
        else:
            g.unsupported.append(node.name)
            outs = g.op(kind.upper(), ins, out_bytes)
        for key, out in zip(node.outputs, outs, strict=False):
            tid[key] = out
    g.outputs = [tid[k] for k in t.output_buffers if k in tid]  # type: ignore[attr-defined]
    return g


def _torch_pad(size: int, out: int, kernel: int, stride: int) -> int:
    """The symmetric padding that gives ``out`` from ``size``: (k - 1) // 2 if it fits."""
    fits = [p for p in range(kernel) if (size + 2 * p - kernel) // stride + 1 == out]
    return (kernel - 1) // 2 if (kernel - 1) // 2 in fits else (fits[0] if fits else 0)


def _needs_pad(node, attrs: dict) -> int:
    """Torch's padding per side when a convolution needs a PAD op before it, else 0.

    TFLite's SAME padding puts the odd pixel at the end; a strided convolution whose
    symmetric torch padding differs from it gets an explicit PAD.
    """
    stride, kernel = attrs.get("stride", [1])[-1], attrs.get("kernel", [1])[-1]
    size, out = node.input_shapes[0][-1], node.output_shapes[0][-1]
    pad = _torch_pad(size, out, kernel, stride)
    if pad == 0:
        return 0
    same = max((-(-size // stride) - 1) * stride + kernel - size, 0)
    return pad if (same != 2 * pad or out != -(-size // stride)) else 0


def _arena(g: _Graph) -> tuple[int, int, int, int]:
    """(head, tail, peak op, planning temporaries) of the graph's TFLM arena."""
    life = lifetimes(g.input, g.ops, g.outputs)  # type: ignore[attr-defined]
    ids = sorted(life)
    buffers = [(align(g.sizes[t]), *life[t]) for t in ids]
    head, offsets = greedy_plan(buffers)
    top = max(range(len(ids)), key=lambda i: offsets[i] + buffers[i][0]) if ids else 0
    peak_op = max(buffers[top][1] - 1, 0) if ids else 0
    tensors = _tensor_count(g)
    op_data = sum(
        OP_DATA_BYTES.get(op.name, 0) + (2 * align(4 * op.channels, 8) if op.channels else 0)
        for op in g.ops
    )
    io = len(g.outputs) + 1  # type: ignore[attr-defined]
    tail = (
        align(EVAL_TENSOR_BYTES * tensors)
        + (NODE_BYTES + TAIL_OP_BYTES) * len(g.ops)
        + IO_TENSOR_BYTES * io
        + align(op_data)
        + TAIL_FIXED_BYTES
    )
    temp = TEMP_TENSOR_BYTES * tensors + TEMP_BUFFER_BYTES * len(ids) + TEMP_FIXED_BYTES
    return head, align(tail), peak_op, align(temp)


def _tensor_count(g: _Graph) -> int:
    used = {t for op in g.ops for t in (*op.inputs, *op.outputs)} | {g.input}  # type: ignore[attr-defined]
    params = {
        "RESHAPE": 1,
        "TRANSPOSE": 1,
        "MEAN": 1,
        "SLICE": 2,
        "PAD": 1,
        "PADV2": 2,
    }  # shape / axis constants
    # identical constants are one tensor in the file: a shape / axis constant is told
    # apart by its op and the sizes it maps between (the repeated channel shuffles share)
    shapes = {
        (op.name, tuple(g.sizes[t] for t in (*op.inputs, *op.outputs)), i)
        for op in g.ops
        for i in range(params.get(op.name, 0))
    }
    return len(used) + sum(len(op.consts) for op in g.ops) + len(shapes)


def _path_bytes(model: nn.Module) -> float:
    """Mean length of the converter's module-path name of ``model``'s convolutions."""

    def qual(m: nn.Module) -> str:
        return f"{type(m).__module__}.{type(m).__qualname__}"

    lengths = []
    for name, mod in model.named_modules():
        if isinstance(mod, nn.Conv2d | nn.Linear) and name:
            parts, cur = [f"{qual(model)}_wrapped"], model
            for attr in name.split("."):
                cur = cur.get_submodule(attr)
                parts.append(f"{qual(cur)}_{attr}")
            lengths.append(len(_PATH_PREFIX) + len("/".join(parts)) + 1)
    return sum(lengths) / len(lengths) if lengths else float(len(_PATH_PREFIX))


def _file_bytes(g: _Graph, tensors: int, path: float) -> int:
    # zero biases of one length share a buffer, and its tensors a short name; the other
    # biases are fused locations naming the convolution and its activation: long names
    zero = [op.consts[-1][0] for op in g.ops if op.zero_bias and op.consts]
    shared = {b for b in zero if zero.count(b) > 1}
    n_shared = sum(zero.count(b) for b in shared)
    n_distinct = sum(1 for op in g.ops if op.consts) - n_shared
    data = sum(align(b) + FILE_PER_CHANNEL_BYTES * c for op in g.ops for b, c in op.consts)
    data -= sum(align(b) * (zero.count(b) - 1) for b in shared)
    n_weights = sum(len(op.consts) - 1 for op in g.ops if op.consts)
    # outputs with an activation fused in: convolutions, and ADDs a ReLU follows
    n_conv_out = sum(
        1 for op in g.ops if op.name in ("CONV_2D", "DEPTHWISE_CONV_2D") or op.activated
    )
    n_other = tensors - n_weights - n_shared - n_distinct - n_conv_out
    names = path * (
        CONV_OUT_NAME_PATHS * n_conv_out
        + OTHER_NAME_PATHS * n_other
        + n_weights
        + BIAS_NAME_PATHS * n_distinct
    )
    names += SHARED_NAME_BYTES * n_shared
    per_tensor = FILE_TENSOR_BYTES * tensors + round(names)
    return data + per_tensor + FILE_OP_BYTES * len(g.ops) + FILE_FIXED_BYTES


def tflm_plan(
    model: nn.Module,
    input_shape: tuple[int, ...],
    traced: Trace | None = None,
    nhwc_input: bool = True,
) -> TflmPlan:
    """Predict the TFLM tensor arena and the int8 ``.tflite`` size of ``model``.

    Args:
        model: any ``nn.Module`` (run once in eval mode, unchanged).
        input_shape: ``(C, H, W)`` without the batch.
        traced: the model's :func:`~squeezelab.analysis.trace.trace`, when already made.
        nhwc_input: the file takes NHWC input, as ``export.export_tflite`` writes it;
            False: NCHW, converted by a leading RESHAPE or TRANSPOSE.

    Example:
        >>> from squeezelab.models import create_model
        >>> p = tflm_plan(create_model("squeezenet_small"), (1, 28, 28))
        >>> p.arena_head_bytes, p.ops[:2]
        (106624, ('DEPTHWISE_CONV_2D', 'CONV_2D'))
    """
    shape = tuple(input_shape)
    t = traced if traced is not None else trace(model, shape)
    g = _lower(t, shape, nhwc_input, _zero_biases(model, t))
    head, tail, peak_op, temp = _arena(g)
    tensors = _tensor_count(g)
    return TflmPlan(
        arena_bytes=max(head, temp) + tail,
        arena_head_bytes=head,
        arena_tail_bytes=tail,
        tflite_bytes=_file_bytes(g, tensors, _path_bytes(model)),
        ops=tuple(op.name for op in g.ops),
        tensors=tensors,
        peak_op=peak_op,
        unsupported=tuple(g.unsupported),
    )
