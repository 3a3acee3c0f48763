"""``profile(model, input_shape)``: what a design costs on a target device, as data.

Per-layer records (params, MACs, bytes, DRAM traffic, energy, roofline latency) and
totals, including peak activation memory and model bytes at a weight bit width, and at
8 bits the TFLite Micro arena and ``.tflite`` size (:mod:`squeezelab.analysis.tflm_plan`). The
systematic approach of Iandola et al. 2016 (arXiv 1602.07360, section 1) needs these
numbers before any GPU hour is spent on a design.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from squeezelab.analysis.hardware import Hardware, load_hardware
from squeezelab.analysis.memory import liveness
from squeezelab.analysis.roofline import layer_traffic
from squeezelab.analysis.tflm_plan import tflm_plan
from squeezelab.analysis.trace import trace
from squeezelab.errors import ConfigError

DEFAULT_HARDWARE = "horowitz-45nm"


@dataclass
class LayerCost:
    name: str  # qualified module name ("features.3.expand3x3") or scope.function ("features.3.cat")
    op: str  # op class: conv, conv1x1, dwconv, gconv, linear, elementwise, pool, concat, copy, view, ...
    kind: str  # module class or function name ("Conv2d", "cat")
    input_shapes: list[list[int]]
    output_shapes: list[list[int]]
    params: int
    weight_bytes: int  # params * weight_bits / 8
    macs: int  # multiply-adds, bias excluded
    other_ops: int  # elementwise ops: activations, norms, pooling, add, concat, copies
    activation_in_bytes: int
    activation_out_bytes: int
    dram_bytes: int  # off-chip reads + writes (weights once, activations if they spill)
    arithmetic_intensity: float | None  # MACs per DRAM byte; None without DRAM traffic
    energy_compute_pj: float
    energy_onchip_pj: float
    energy_dram_pj: float
    energy_pj: float
    latency_ms: float
    live_bytes: int  # activation bytes alive while this layer runs
    attrs: dict = field(default_factory=dict)  # kernel, stride, groups, channels

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class Profile:
    layers: list[LayerCost]
    unsupported: list[str]  # names of operations the analyser did not understand
    hardware: str | None
    input_shape: list[int]
    weight_bits: int
    activation_bits: int
    params: int  # unique parameters of the model
    macs: int
    weight_bytes: int  # sum over layers (a shared weight counts per use)
    model_bytes: int  # params * weight_bits / 8
    other_ops: int
    dram_bytes: int
    energy_compute_pj: float
    energy_onchip_pj: float
    energy_dram_pj: float
    energy_pj: float
    latency_ms: float
    peak_activation_bytes: int
    peak_layer: str  # the layer during which peak_activation_bytes are alive
    # At 8-bit weights and activations, TFLite Micro's figures (analysis.tflm_plan); else None
    tflm_arena_bytes: int | None = None  # the tensor arena: planned head + persistent tail
    tflite_bytes: int | None = None  # the int8 .tflite flatbuffer (flash)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def totals(self) -> dict[str, Any]:
        """Everything but the per-layer records."""
        return {k: v for k, v in self.to_dict().items() if k != "layers"}


def _check_shape(input_shape: Any) -> tuple[int, ...]:
    ok = (
        isinstance(input_shape, tuple | list)
        and len(input_shape) in (1, 2, 3)
        and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in input_shape)
    )
    if not ok:
        raise ConfigError(
            f"input_shape={input_shape!r} is invalid: allowed (C, H, W) of positive integers"
        )
    return tuple(input_shape)


def _check_bits(name: str, bits: Any) -> int:
    if not isinstance(bits, int) or isinstance(bits, bool) or not 1 <= bits <= 32:
        raise ConfigError(f"{name}={bits!r} is invalid: allowed an integer from 1 to 32")
    return bits


def default_input_shape(model) -> tuple[int, int, int]:
    """``(C, H, W)`` from a SqueezeNet-family module's spec; ConfigError for other models."""
    spec = getattr(model, "spec", None)
    if spec is None:
        raise ConfigError("input_shape is required for a model without a SqueezeNetSpec")
    return (spec.in_chans, spec.input_size, spec.input_size)


def profile(
    model: nn.Module,
    input_shape: tuple[int, ...] | None = None,
    hardware: str | Hardware | None = None,
    weight_bits: int = 32,
    activation_bits: int = 32,
) -> Profile:
    """Per-layer costs and totals of one batch-1 inference of ``model`` on ``hardware``.

    Args:
        model: any ``nn.Module``; it is run once in eval mode and left unchanged.
        input_shape: ``(C, H, W)`` without the batch; None takes a SqueezeNet's spec.
        hardware: a profile name, a YAML path or a :class:`Hardware`; None is
            ``"horowitz-45nm"``.
        weight_bits: bits per stored weight (model_bytes, weight traffic, MAC energy).
        activation_bits: bits per activation element (activation bytes and traffic).

    Example:
        >>> from squeezelab.models import create_model
        >>> p = profile(create_model("squeezenet1_0"), (3, 224, 224))
        >>> p.macs, p.params
        (818924576, 1248424)
    """
    input_shape = _check_shape(default_input_shape(model) if input_shape is None else input_shape)
    weight_bits = _check_bits("weight_bits", weight_bits)
    activation_bits = _check_bits("activation_bits", activation_bits)
    hw = (
        load_hardware(hardware or DEFAULT_HARDWARE)
        if not isinstance(hardware, Hardware)
        else hardware
    )

    t = trace(model, input_shape)
    sizes = {k: n * activation_bits // 8 for k, n in t.buffers.items()}
    alive = liveness(
        [(n.inputs, n.outputs) for n in t.nodes], sizes, t.input_buffers, t.output_buffers
    )
    layers = []
    for node, live in zip(t.nodes, alive, strict=True):
        c = node.cost
        tr = layer_traffic(
            c.macs,
            c.other_ops,
            c.op,
            node.params,
            node.in_elems,
            node.out_elems,
            hw,
            weight_bits,
            activation_bits,
        )
        energy = tr.energy_compute_pj + tr.energy_onchip_pj + tr.energy_dram_pj
        layers.append(
            LayerCost(
                name=node.name,
                op=c.op,
                kind=node.kind,
                input_shapes=[list(s) for s in node.input_shapes],
                output_shapes=[list(s) for s in node.output_shapes],
                params=node.params,
                weight_bytes=tr.weight_bytes,
                macs=c.macs,
                other_ops=c.other_ops,
                activation_in_bytes=tr.activation_in_bytes,
                activation_out_bytes=tr.activation_out_bytes,
                dram_bytes=tr.dram_bytes,
                arithmetic_intensity=c.macs / tr.dram_bytes if tr.dram_bytes else None,
                energy_compute_pj=tr.energy_compute_pj,
                energy_onchip_pj=tr.energy_onchip_pj,
                energy_dram_pj=tr.energy_dram_pj,
                energy_pj=energy,
                latency_ms=tr.latency_ms,
                live_bytes=live,
                attrs=c.attrs,
            )
        )
    plan = None
    if weight_bits == 8 and activation_bits == 8 and len(input_shape) == 3:
        plan = tflm_plan(model, input_shape, traced=t)
    peak = max(alive, default=sum(sizes[k] for k in t.input_buffers))
    peak_layer = layers[alive.index(peak)].name if layers else ""
    return Profile(
        layers=layers,
        unsupported=t.unsupported,
        hardware=hw.name,
        input_shape=list(input_shape),
        weight_bits=weight_bits,
        activation_bits=activation_bits,
        params=t.params,
        macs=sum(x.macs for x in layers),
        weight_bytes=sum(x.weight_bytes for x in layers),
        model_bytes=t.params * weight_bits // 8,
        other_ops=sum(x.other_ops for x in layers),
        dram_bytes=sum(x.dram_bytes for x in layers),
        energy_compute_pj=sum(x.energy_compute_pj for x in layers),
        energy_onchip_pj=sum(x.energy_onchip_pj for x in layers),
        energy_dram_pj=sum(x.energy_dram_pj for x in layers),
        energy_pj=sum(x.energy_pj for x in layers),
        latency_ms=sum(x.latency_ms for x in layers),
        peak_activation_bytes=peak,
        peak_layer=peak_layer,
        tflm_arena_bytes=plan and plan.arena_bytes,
        tflite_bytes=plan and plan.tflite_bytes,
    )
