"""Cost formulas per operation: multiply-adds (MACs), elementwise ops and the op class.

One MAC is one multiply-add of a convolution or matrix product, bias excluded, the
count torchvision reports as "GFLOPS" for SqueezeNet (0.819 / 0.349). Grouped and
depthwise convolutions cost out_elems * (in_ch / groups) * kh * kw (Howard et al.
2017, arXiv 1704.04861, eq. 5). Elementwise work (activations, BatchNorm, pooling,
add, concat, copies) goes to ``other_ops``, never into MACs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from torch import nn

# Op classes: the keys of a hardware profile's `efficiency` and `overhead_ms` tables.
OP_CLASSES = (
    "conv",  # dense convolution with a kernel larger than 1x1
    "conv1x1",  # pointwise convolution
    "dwconv",  # depthwise convolution (groups == in_channels)
    "gconv",  # other grouped convolution
    "linear",  # fully connected layer, matmul
    "elementwise",  # activation, normalisation, add, mul
    "pool",  # max/average pooling, global pooling, mean
    "concat",  # torch.cat and stack
    "copy",  # data movement: contiguous, reshape of a transposed tensor, padding
    "view",  # metadata only: view, flatten, chunk, transpose, dropout at inference
    "create",  # a new tensor from constants (zeros, arange)
    "unknown",  # not understood: listed in Profile.unsupported
)


@dataclass
class OpCost:
    op: str  # one of OP_CLASSES
    macs: int = 0
    other_ops: int = 0
    attrs: dict = field(default_factory=dict)  # kernel, stride, groups, channels for advice


def _numel(shape) -> int:
    return math.prod(shape)


def conv_op(in_ch: int, groups: int, kernel_elems: int) -> str:
    """The op class of a convolution from its channels, groups and kernel size."""
    if groups > 1:
        return "dwconv" if groups == in_ch else "gconv"
    return "conv1x1" if kernel_elems == 1 else "conv"


def conv_macs(out_elems: int, in_ch: int, groups: int, kernel: tuple[int, ...]) -> int:
    """MACs of a (grouped) convolution: out_elems * (in_ch / groups) * prod(kernel)."""
    return out_elems * (in_ch // groups) * math.prod(kernel)


_ELEMENTWISE_MODULES = (
    nn.ReLU,
    nn.ReLU6,
    nn.Hardtanh,
    nn.Sigmoid,
    nn.Hardsigmoid,
    nn.Hardswish,
    nn.SiLU,
    nn.GELU,
    nn.Tanh,
    nn.LeakyReLU,
    nn.ELU,
    nn.PReLU,
    nn.Mish,
    nn.Softmax,
    nn.LogSoftmax,
    nn.modules.batchnorm._BatchNorm,
    nn.GroupNorm,
    nn.LayerNorm,
    nn.modules.instancenorm._InstanceNorm,
    nn.LocalResponseNorm,
)
_POOL_MODULES = (
    nn.MaxPool1d,
    nn.MaxPool2d,
    nn.MaxPool3d,
    nn.AvgPool1d,
    nn.AvgPool2d,
    nn.AvgPool3d,
    nn.LPPool1d,
    nn.LPPool2d,
)
_ADAPTIVE_POOL_MODULES = (
    nn.AdaptiveAvgPool1d,
    nn.AdaptiveAvgPool2d,
    nn.AdaptiveAvgPool3d,
    nn.AdaptiveMaxPool1d,
    nn.AdaptiveMaxPool2d,
    nn.AdaptiveMaxPool3d,
)
_VIEW_MODULES = (nn.Identity, nn.Flatten, nn.Unflatten, nn.modules.dropout._DropoutNd)
_COPY_MODULES = (
    nn.ChannelShuffle,
    nn.PixelShuffle,
    nn.PixelUnshuffle,
    nn.Upsample,
    nn.modules.padding._ConstantPadNd,
    nn.modules.padding._ReflectionPadNd,
    nn.modules.padding._ReplicationPadNd,
    nn.ZeroPad2d,
)
KNOWN_MODULES = (
    nn.modules.conv._ConvNd,
    nn.Linear,
    *_ELEMENTWISE_MODULES,
    *_POOL_MODULES,
    *_ADAPTIVE_POOL_MODULES,
    *_VIEW_MODULES,
    *_COPY_MODULES,
)


def is_known_module(module: nn.Module) -> bool:
    """True for module types whose cost :func:`module_cost` computes as a whole."""
    return isinstance(module, KNOWN_MODULES)


def module_cost(module: nn.Module, in_shapes: list, out_shapes: list) -> OpCost:
    """Cost of one call of a known leaf module, from its input and output shapes."""
    out_elems = sum(_numel(s) for s in out_shapes)
    in_elems = _numel(in_shapes[0]) if in_shapes else 0
    if isinstance(module, nn.modules.conv._ConvNd):
        k = tuple(module.kernel_size)
        attrs = {
            "in_channels": module.in_channels,
            "out_channels": module.out_channels,
            "kernel": list(k),
            "stride": list(module.stride),
            "groups": module.groups,
        }
        op = conv_op(module.in_channels, module.groups, math.prod(k))
        if module.transposed:  # every input element meets (out / groups) * k weights
            return OpCost(op, conv_macs(in_elems, module.out_channels, module.groups, k), 0, attrs)
        return OpCost(op, conv_macs(out_elems, module.in_channels, module.groups, k), 0, attrs)
    if isinstance(module, nn.Linear):
        attrs = {"in_features": module.in_features, "out_features": module.out_features}
        return OpCost("linear", out_elems * module.in_features, 0, attrs)
    if isinstance(module, _ELEMENTWISE_MODULES):
        return OpCost("elementwise", 0, out_elems)
    if isinstance(module, _POOL_MODULES):
        k = module.kernel_size
        window = math.prod(k) if isinstance(k, tuple | list) else k ** (len(out_shapes[0]) - 2)
        pad = getattr(module, "padding", 0)
        attrs = {"kernel": k, "stride": module.stride, "padding": pad}
        return OpCost("pool", 0, out_elems * window, attrs)
    if isinstance(module, _ADAPTIVE_POOL_MODULES):
        return OpCost("pool", 0, in_elems)
    if isinstance(module, _COPY_MODULES):
        return OpCost("copy", 0, out_elems)
    return OpCost("view")  # _VIEW_MODULES; the tracer turns it into "copy" if it copied


# Tensor functions by op class, named as TorchFunctionMode sees them after normalising:
# leading/trailing underscores stripped ("__add__", "add_" -> "add"), "iadd" -> "add".
_FUNCTIONS = {
    "elementwise": {
        "add",
        "sub",
        "rsub",
        "mul",
        "div",
        "truediv",
        "floordiv",
        "relu",
        "relu6",
        "hardtanh",
        "sigmoid",
        "hardsigmoid",
        "hardswish",
        "silu",
        "gelu",
        "tanh",
        "clamp",
        "clip",
        "leaky_relu",
        "elu",
        "mish",
        "prelu",
        "batch_norm",
        "layer_norm",
        "group_norm",
        "instance_norm",
        "softmax",
        "log_softmax",
        "neg",
        "exp",
        "abs",
        "sqrt",
        "rsqrt",
        "pow",
        "where",
        "maximum",
        "minimum",
        "setitem",
        "masked_fill",
        "fill",
        "zero",
        "copy",
        "sign",
        "square",
        "reciprocal",
        "log",
        "normalize",
    },
    "pool": {
        "max_pool1d",
        "max_pool2d",
        "max_pool3d",
        "avg_pool1d",
        "avg_pool2d",
        "avg_pool3d",
        "adaptive_avg_pool1d",
        "adaptive_avg_pool2d",
        "adaptive_avg_pool3d",
        "adaptive_max_pool1d",
        "adaptive_max_pool2d",
        "adaptive_max_pool3d",
        "mean",
        "sum",
        "amax",
        "amin",
        "max",
        "min",
        "logsumexp",
        "std",
        "var",
        "norm",
    },
    "concat": {"cat", "concat", "concatenate", "stack", "hstack", "vstack"},
    "view": {
        "view",
        "reshape",
        "flatten",
        "unflatten",
        "transpose",
        "permute",
        "squeeze",
        "unsqueeze",
        "chunk",
        "split",
        "split_with_sizes",
        "tensor_split",
        "unbind",
        "narrow",
        "getitem",
        "select",
        "t",
        "T",
        "expand",
        "expand_as",
        "view_as",
        "reshape_as",
        "movedim",
        "swapaxes",
        "dropout",
        "dropout1d",
        "dropout2d",
        "dropout3d",
        "alpha_dropout",
        "feature_alpha_dropout",
        "detach",
        "contiguous",
        "clone",
        "to",
        "float",
        "type_as",
        "as_strided",
    },
    "copy": {
        "pad",
        "channel_shuffle",
        "pixel_shuffle",
        "pixel_unshuffle",
        "interpolate",
        "upsample",
        "roll",
        "flip",
        "repeat",
        "tile",
    },
    "create": {
        "zeros",
        "ones",
        "empty",
        "full",
        "arange",
        "zeros_like",
        "ones_like",
        "empty_like",
        "full_like",
        "tensor",
        "as_tensor",
        "linspace",
    },
    "matmul": {"conv1d", "conv2d", "conv3d", "linear", "matmul", "mm", "bmm", "addmm"},
}
FUNCTION_OP = {name: op for op, names in _FUNCTIONS.items() for name in names}
_DUNDER = {
    "iadd": "add",
    "radd": "add",
    "isub": "sub",
    "imul": "mul",
    "rmul": "mul",
    "itruediv": "truediv",
    "rtruediv": "truediv",
    "rmatmul": "matmul",
    "ior": "or",
}


def function_name(func) -> str:
    """The normalised name of a function seen by TorchFunctionMode (``Tensor.__iadd__`` -> add)."""
    name = getattr(func, "__name__", "") or repr(func)
    if name == "__get__":  # a property such as Tensor.shape or Tensor.T
        name = getattr(getattr(func, "__self__", None), "__name__", name)
    name = name.strip("_")
    return _DUNDER.get(name, name)


def function_cost(
    name: str,
    args: tuple,
    kwargs: dict,
    in_shapes: list,
    out_shapes: list,
    weight_shape: tuple | None,
) -> OpCost:
    """Cost of one functional call (``torch.cat``, ``+``, ``F.conv2d``) outside a known module.

    ``weight_shape`` is the shape of the second tensor argument (the weight of
    conv/linear, the right operand of matmul).
    """
    op = FUNCTION_OP.get(name, "unknown")
    out_elems = sum(_numel(s) for s in out_shapes)
    if op == "matmul":
        if name.startswith("conv") and weight_shape is not None:
            out_ch, in_per_group = weight_shape[0], weight_shape[1]
            in_ch = in_shapes[0][1] if in_shapes and len(in_shapes[0]) > 1 else in_per_group
            groups = max(1, in_ch // in_per_group)
            macs = out_elems * in_per_group * math.prod(weight_shape[2:])
            return OpCost(
                conv_op(in_ch, groups, math.prod(weight_shape[2:])),
                macs,
                0,
                {
                    "in_channels": in_ch,
                    "out_channels": out_ch,
                    "kernel": list(weight_shape[2:]),
                    "groups": groups,
                },
            )
        if name == "linear" and weight_shape is not None:
            return OpCost("linear", out_elems * weight_shape[-1])
        if in_shapes and in_shapes[0]:
            inner = in_shapes[-1][-2] if name == "addmm" else in_shapes[0][-1]
            return OpCost("linear", out_elems * inner)
        return OpCost("unknown")
    if op == "pool":
        if name.startswith(("max_pool", "avg_pool")):
            k = args[1] if len(args) > 1 else kwargs.get("kernel_size", 1)
            dims = len(out_shapes[0]) - 2 if out_shapes else 2
            window = math.prod(k) if isinstance(k, tuple | list) else k**dims
            return OpCost("pool", 0, out_elems * window)
        return OpCost("pool", 0, _numel(in_shapes[0]) if in_shapes else 0)
    if op in ("elementwise", "concat", "copy"):
        return OpCost(op, 0, out_elems)
    return OpCost(op)
