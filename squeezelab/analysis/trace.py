"""Record every operation of one forward pass, in execution order, without changing the model.

Known leaf modules (convolutions, Linear, BatchNorm, activations, pooling) are recorded
whole through forward hooks; tensor functions called outside them (``torch.cat``, ``+``,
``flatten``, ``chunk``, a view/transpose/reshape channel shuffle, ``mean``) through a
``TorchFunctionMode``. Each node names the storage buffers it reads and writes, which is
what the liveness analysis (:mod:`squeezelab.analysis.memory`) needs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_flatten

from squeezelab.analysis.costs import (
    OpCost,
    function_cost,
    function_name,
    is_known_module,
    module_cost,
)


@dataclass
class Node:
    name: str  # qualified module name ("features.3.expand3x3"), or scope + function ("features.3.cat")
    kind: str  # module class or function name: "Conv2d", "cat", "add"
    cost: OpCost
    input_shapes: list[tuple[int, ...]]
    output_shapes: list[tuple[int, ...]]
    params: int  # parameters this call uses
    inputs: list[int] = field(default_factory=list)  # buffer keys read
    outputs: list[int] = field(default_factory=list)  # buffer keys written or aliased
    in_elems: int = 0  # activation elements read
    out_elems: int = 0  # activation elements written


@dataclass
class Trace:
    nodes: list[Node]
    buffers: dict[int, int]  # buffer key -> elements of its storage
    input_buffers: list[int]  # the model input
    output_buffers: list[int]  # the model output(s)
    unsupported: list[str]
    params: int  # unique parameters of the model


def _tensors(obj) -> list[torch.Tensor]:
    return [t for t in tree_flatten(obj)[0] if isinstance(t, torch.Tensor)]


def _key(t: torch.Tensor) -> int:
    """The identity of a tensor's storage: views and in-place results share it."""
    return t.untyped_storage()._cdata


class _Recorder(TorchFunctionMode):
    """Hooks and a function mode that append a :class:`Node` per operation."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.nodes: list[Node] = []
        self.buffers: dict[int, int] = {}
        self.keep: list[torch.Tensor] = []  # hold every tensor so storage addresses stay unique
        self.weights = {_key(p) for p in model.parameters()} | {_key(b) for b in model.buffers()}
        self.params_by_key = {_key(p): p.numel() for p in model.parameters()}
        self.scope: list[str] = []
        self.in_leaf = 0
        self.quiet = False
        self.names: dict[str, int] = {}
        self.unsupported: list[str] = []

    # -- bookkeeping -------------------------------------------------------------------
    def _unique(self, name: str) -> str:
        n = self.names.get(name, 0)
        self.names[name] = n + 1
        return name if n == 0 else f"{name}:{n + 1}"

    def _acts(self, tensors: list[torch.Tensor]) -> list[torch.Tensor]:
        return [t for t in tensors if t.numel() and _key(t) not in self.weights]

    def add_input(self, x: torch.Tensor) -> int:
        self.keep.append(x)
        self.buffers[_key(x)] = x.untyped_storage().nbytes() // x.element_size()
        return _key(x)

    def record(self, name: str, kind: str, cost: OpCost, ins, outs, params: int) -> None:
        ins, outs = self._acts(_tensors(ins)), self._acts(_tensors(outs))
        in_keys = list(dict.fromkeys(_key(t) for t in ins))
        new = [t for t in outs if _key(t) not in self.buffers]
        for t in new:
            self.keep.append(t)
            self.buffers[_key(t)] = t.untyped_storage().nbytes() // t.element_size()
        if cost.op == "view" and new:  # reshape/contiguous/clone that had to copy
            cost = OpCost("copy", 0, sum(t.numel() for t in new), cost.attrs)
        moves = cost.op != "view"
        node = Node(
            name=self._unique(name),
            kind=kind,
            cost=cost,
            input_shapes=[tuple(t.shape) for t in ins],
            output_shapes=[tuple(t.shape) for t in outs],
            params=params,
            inputs=in_keys,
            outputs=list(dict.fromkeys(_key(t) for t in outs)),
            in_elems=sum(t.numel() for t in ins) if moves else 0,
            out_elems=sum(t.numel() for t in outs) if moves else 0,
        )
        if cost.op == "unknown":
            self.unsupported.append(node.name)
        self.nodes.append(node)

    # -- module hooks ------------------------------------------------------------------
    def pre_hook(self, name: str):
        def hook(module, args, kwargs):
            self.scope.append(name)
            if is_known_module(module):
                self.in_leaf += 1

        return hook

    def post_hook(self, name: str):
        def hook(module, args, kwargs, output):
            self.scope.pop()
            self.quiet = True
            try:
                if is_known_module(module):
                    self.in_leaf -= 1
                    if self.in_leaf == 0:
                        ins = self._acts(_tensors((args, kwargs)))
                        outs = self._acts(_tensors(output))
                        cost = module_cost(
                            module, [tuple(t.shape) for t in ins], [tuple(t.shape) for t in outs]
                        )
                        params = sum(p.numel() for p in module.parameters())
                        self.record(name, type(module).__name__, cost, ins, outs, params)
                elif self.in_leaf == 0:
                    self._check_produced(name, module, output)
            finally:
                self.quiet = False

        return hook

    def _check_produced(self, name: str, module: nn.Module, output) -> None:
        """An output buffer no recorded op produced means an op we could not see."""
        for t in self._acts(_tensors(output)):
            if _key(t) not in self.buffers:
                self.record(
                    name or type(module).__name__,
                    type(module).__name__,
                    OpCost("unknown"),
                    (),
                    t,
                    0,
                )

    # -- functions outside known modules ---------------------------------------------------
    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if self.in_leaf or self.quiet:
            return out
        outs = self._acts(_tensors(out))
        if not outs:  # size(), shape, dim(): metadata only
            return out
        name = function_name(func)
        arg_tensors = _tensors((args, kwargs))
        ins = self._acts(arg_tensors)
        weight = arg_tensors[1] if len(arg_tensors) > 1 else None
        params = sum(self.params_by_key.get(_key(t), 0) for t in arg_tensors)
        cost = function_cost(
            name,
            args,
            kwargs,
            [tuple(t.shape) for t in ins],
            [tuple(t.shape) for t in outs],
            tuple(weight.shape) if weight is not None else None,
        )
        scope = self.scope[-1] if self.scope else ""
        self.record(f"{scope}.{name}" if scope else name, name, cost, ins, outs, params)
        return out


def trace(model: nn.Module, input_shape: tuple[int, ...]) -> Trace:
    """Run one batch-1 forward pass of ``model`` in eval mode and record its operations.

    The pass is real (zeros in, on the model's device): PyTorch's meta device would skip
    the arithmetic, but its Python kernels (cat, addmm) import torch._dynamo on first
    use, which costs more than a small network's forward pass. The model's training flag
    is restored afterwards; its weights are not touched.

    Example:
        >>> from squeezelab.models import create_model
        >>> t = trace(create_model("squeezenet1_1"), (3, 224, 224))
        >>> sum(n.cost.macs for n in t.nodes)
        349151936
    """
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    dtype = param.dtype if param is not None and param.is_floating_point() else torch.float32
    rec = _Recorder(model)
    handles = []
    was_training = model.training
    try:
        for name, module in model.named_modules():
            handles.append(module.register_forward_pre_hook(rec.pre_hook(name), with_kwargs=True))
            handles.append(module.register_forward_hook(rec.post_hook(name), with_kwargs=True))
        model.eval()
        x = torch.zeros((1, *input_shape), device=device, dtype=dtype)
        in_key = rec.add_input(x)
        with torch.no_grad(), rec:
            out = model(x)
        out_keys = list(dict.fromkeys(_key(t) for t in rec._acts(_tensors(out))))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    params = sum(p.numel() for p in model.parameters())
    return Trace(rec.nodes, rec.buffers, [in_key], out_keys, rec.unsupported, params)
