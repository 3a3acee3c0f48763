"""``squeezelab profile MODEL... [--compare]``: per-layer costs and totals on a target."""

from __future__ import annotations

from squeezelab.cli import _flags
from squeezelab.cli._common import console, input_shape, print_json


def register(sub) -> None:
    p = sub.add_parser(
        "profile",
        help="params, MACs, bytes, DRAM traffic, energy and latency of a model",
        description="Cost of one batch-1 inference on a hardware profile, per layer and in total.",
    )
    _flags.add_model(p, many=True)
    _flags.add_input(p)
    _flags.add_hardware(p)
    _flags.add_cost_bits(p)
    _flags.deprecated_alias(p, "--bits", "--weight-bits", dest="weight_bits", type=int)
    p.add_argument(
        "--compare",
        action="store_true",
        help="totals of several models side by side (implied by several MODELs)",
    )
    _flags.add_json(p, "the profile(s)")
    p.set_defaults(func=run)


def _profiles(args) -> list:
    from squeezelab.analysis import load_hardware, profile
    from squeezelab.models import load_model

    hw = load_hardware(args.hardware)
    out = []
    for ref in args.models:
        model, meta = load_model(ref)
        shape = input_shape(args.input, meta)
        p = profile(model, shape, hw, args.weight_bits, args.activation_bits)
        out.append((meta.name, p, hw))
    return out


def _mb(n: float) -> str:
    return f"{n / 1e6:,.3f}"


TOTALS = (
    ("params", lambda p, hw: f"{p.params:,}"),
    ("model MB", lambda p, hw: _mb(p.model_bytes)),
    ("MMACs", lambda p, hw: f"{p.macs / 1e6:,.1f}"),
    ("other Mops", lambda p, hw: f"{p.other_ops / 1e6:,.1f}"),
    ("DRAM MB", lambda p, hw: _mb(p.dram_bytes)),
    ("energy uJ", lambda p, hw: f"{p.energy_pj / 1e6:,.1f}"),
    (
        "  compute / on-chip / DRAM",
        lambda p, hw: " / ".join(
            f"{e / 1e6:,.1f}" for e in (p.energy_compute_pj, p.energy_onchip_pj, p.energy_dram_pj)
        ),
    ),
    ("latency ms", lambda p, hw: f"{p.latency_ms:,.3f}"),
    ("peak activation MB", lambda p, hw: f"{_mb(p.peak_activation_bytes)} ({p.peak_layer})"),
    (
        "fits SRAM / flash",
        lambda p, hw: " / ".join(
            "-" if cap is None else ("yes" if need <= cap else "NO")
            for need, cap in (
                (p.peak_activation_bytes, hw.sram_bytes),
                (p.model_bytes, hw.flash_bytes),
            )
        ),
    ),
    ("unsupported", lambda p, hw: ", ".join(p.unsupported) or "none"),
)


def _layer_table(name: str, p):
    from rich.table import Table

    table = Table(
        title=f"{name} {'x'.join(map(str, p.input_shape))} on {p.hardware} "
        f"(w{p.weight_bits}/a{p.activation_bits}; views hidden)"
    )
    cols = (
        "layer",
        "op",
        "output",
        "params",
        "MACs",
        "other ops",
        "DRAM KB",
        "energy nJ",
        "latency us",
        "live KB",
    )
    for i, col in enumerate(cols):
        table.add_column(col, justify="left" if i < 3 else "right", overflow="fold")
    for x in p.layers:
        if x.op == "view":
            continue
        out = "x".join(map(str, x.output_shapes[0][1:])) if x.output_shapes else ""
        table.add_row(
            x.name,
            x.op,
            out,
            f"{x.params:,}",
            f"{x.macs:,}",
            f"{x.other_ops:,}",
            f"{x.dram_bytes / 1e3:,.1f}",
            f"{x.energy_pj / 1e3:,.1f}",
            f"{x.latency_ms * 1e3:,.1f}",
            f"{x.live_bytes / 1e3:,.1f}",
        )
    return table


def _totals_table(rows: list):
    from rich.table import Table

    table = Table(title=f"totals on {rows[0][1].hardware}")
    table.add_column("")
    for name, p, _ in rows:
        table.add_column(f"{name}\n{'x'.join(map(str, p.input_shape))}", justify="right")
    for label, fmt in TOTALS:
        table.add_row(label, *(fmt(p, hw) for _, p, hw in rows))
    return table


def run(args) -> int:
    rows = _profiles(args)
    compare = args.compare or len(rows) > 1
    if args.json:
        if compare:
            print_json([{"name": n, **p.totals()} for n, p, _ in rows])
        else:
            print_json({"name": rows[0][0], **rows[0][1].to_dict()})
        return 0
    con = console()
    if not compare:
        con.print(_layer_table(rows[0][0], rows[0][1]))
    con.print(_totals_table(rows))
    return 0
