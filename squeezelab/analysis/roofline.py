"""Per-layer DRAM traffic, energy and roofline latency on a hardware profile.

Traffic: weights are fetched from DRAM once; a layer whose working set (input + output
activations + weights) exceeds the on-chip buffer also reads its input from and writes
its output to DRAM. Every operand passes the on-chip buffer once. Energy follows
Horowitz (ISSCC 2014) and Han et al. (2015, arXiv 1506.02626, Figure 1); latency is a
roofline (Williams et al. 2009): max(compute time, DRAM time), plus the time of the
on-chip traffic where a profile gives its bandwidth (an eager runtime pays per byte for
allocating and writing each output), plus a per-op overhead.
"""

from __future__ import annotations

from dataclasses import dataclass

from squeezelab.analysis.hardware import Hardware


@dataclass
class LayerTraffic:
    weight_bytes: int
    activation_in_bytes: int
    activation_out_bytes: int
    dram_bytes: int
    onchip_bytes: int
    energy_compute_pj: float
    energy_onchip_pj: float
    energy_dram_pj: float
    latency_ms: float


def layer_traffic(
    macs: int,
    other_ops: int,
    op: str,
    weight_params: int,
    in_elems: int,
    out_elems: int,
    hw: Hardware,
    weight_bits: int = 32,
    activation_bits: int = 32,
) -> LayerTraffic:
    """Bytes moved, energy and predicted latency of one layer.

    Example:
        >>> from squeezelab.analysis.hardware import load_hardware
        >>> t = layer_traffic(10**6, 0, "conv", 1000, 5000, 5000, load_hardware("horowitz-45nm"))
        >>> t.dram_bytes, round(t.energy_compute_pj)
        (4000, 4600000)
    """
    weight_bytes = weight_params * weight_bits // 8
    act_in = in_elems * activation_bits // 8
    act_out = out_elems * activation_bits // 8
    working_set = act_in + act_out + weight_bytes
    spill = hw.onchip_buffer_bytes is not None and working_set > hw.onchip_buffer_bytes
    dram = weight_bytes + (act_in + act_out if spill else 0)
    bits = max(weight_bits, activation_bits) if macs else activation_bits
    compute_pj = macs * hw.per_dtype(hw.mac_pj, bits) + other_ops * hw.per_dtype(hw.op_pj, bits)
    compute_s = (
        macs / hw.per_dtype(hw.peak_macs_per_s, bits)
        + other_ops / hw.per_dtype(hw.peak_other_ops_per_s, bits)
    ) / hw.eff(op)
    onchip_s = working_set / hw.onchip_bytes_per_s if hw.onchip_bytes_per_s else 0.0
    latency_s = max(compute_s, dram / hw.dram_bytes_per_s) + onchip_s + hw.overhead_s(op)
    return LayerTraffic(
        weight_bytes=weight_bytes,
        activation_in_bytes=act_in,
        activation_out_bytes=act_out,
        dram_bytes=dram,
        onchip_bytes=working_set,
        energy_compute_pj=compute_pj,
        energy_onchip_pj=working_set * hw.sram_pj_per_byte,
        energy_dram_pj=dram * hw.dram_pj_per_byte,
        latency_ms=latency_s * 1e3,
    )
