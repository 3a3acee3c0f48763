"""``squeezelab profile MODEL... [--compare]``: per-layer costs and totals on a target."""

from __future__ import annotations

from squeezelab.cli import _flags
from squeezelab.cli._common import (
    console,
    input_shape,
    plain_table,
    print_json,
    print_table,
    shape_errors,
    text,
)


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
    _flags.add_wide(p)
    p.set_defaults(func=run)


def _profiles(args) -> list:
    from squeezelab.analysis import load_hardware, profile
    from squeezelab.models import load_model

    hw = load_hardware(args.hardware)
    out = []
    for ref in args.models:
        model, meta = load_model(ref)
        shape = input_shape(args.input, meta)
        bits = (args.weight_bits, args.activation_bits)
        p = shape_errors(args.input, profile, model, shape, hw, *bits)
        out.append((text(meta.name), p, hw))
    return out


def _totals(p, hw, wide: bool = False) -> list[tuple[str, str]]:
    from squeezelab.analysis.units import format_bytes, format_count, format_energy
    from squeezelab.cli._common import short

    fits = " / ".join(
        "-" if cap is None else ("yes" if need <= cap else "NO")
        for need, cap in ((p.peak_activation_bytes, hw.sram_bytes), (p.model_bytes, hw.flash_bytes))
    )
    parts = (p.energy_compute_pj, p.energy_onchip_pj, p.energy_dram_pj)
    return [
        ("params", format_count(p.params)),
        ("model size", format_bytes(p.model_bytes)),
        ("MACs", format_count(p.macs)),
        ("other ops", format_count(p.other_ops)),
        ("DRAM traffic", format_bytes(p.dram_bytes)),
        ("energy", format_energy(p.energy_pj)),
        ("  compute", format_energy(parts[0])),
        ("  on-chip", format_energy(parts[1])),
        ("  DRAM", format_energy(parts[2])),
        ("latency", f"{p.latency_ms:,.3f} ms"),
        ("peak activations", format_bytes(p.peak_activation_bytes)),
        ("  at layer", short(p.peak_layer, wide, 14)),
        ("fits SRAM / flash", fits),
        ("unsupported", ", ".join(p.unsupported) or "none"),
    ]


_OPS = {"elementwise": "eltwise"}  # short op names where 80 columns are tight


def _layer_table(name: str, p, wide: bool = False):
    """Per-layer costs; without ``wide`` the columns that fit 80 and names cut to fit."""
    from squeezelab.analysis.units import (
        byte_unit,
        energy_unit,
        format_bytes,
        format_energy,
    )
    from squeezelab.cli._common import short

    layers = [x for x in p.layers if x.op != "view"]
    du = byte_unit([x.dram_bytes for x in layers])
    lu = byte_unit([x.live_bytes for x in layers])
    eu = energy_unit([x.energy_pj for x in layers])
    cols = {  # name: (header, cell); the narrow table keeps the ones marked True
        "layer": ("layer", lambda x: short(x.name, wide, 26), True),
        "op": ("op", lambda x: x.op if wide else _OPS.get(x.op, x.op), True),
        "output": ("output", lambda x: "x".join(map(str, x.output_shapes[0][1:])), False),
        "params": ("params", lambda x: f"{x.params:,}", True),
        "macs": ("MACs", lambda x: f"{x.macs:,}", True),
        "other": ("other ops", lambda x: f"{x.other_ops:,}", False),
        "dram": (f"DRAM {du}", lambda x: format_bytes(x.dram_bytes, du, bare=True), False),
        "energy": (f"energy {eu}", lambda x: format_energy(x.energy_pj, eu, bare=True), True),
        "latency": ("latency ms", lambda x: f"{x.latency_ms:,.3f}", True),
        "live": (f"live {lu}", lambda x: format_bytes(x.live_bytes, lu, bare=True), wide),
    }
    shown = [c for c in cols.values() if wide or c[2]]
    table = plain_table()
    for i, (header, _, _) in enumerate(shown):
        table.add_column(header, justify="left" if i < 2 else "right", no_wrap=True)
    for x in layers:
        table.add_row(
            *(cell(x) if x.output_shapes or h != "output" else "" for h, cell, _ in shown)
        )
    return table


def _totals_table(rows: list, wide: bool = False):
    table = plain_table()
    table.add_column("", no_wrap=True)
    for name, p, _ in rows:
        table.add_column(f"{name}\n{'x'.join(map(str, p.input_shape))}", justify="right")
    cells = [_totals(p, hw, wide) for _, p, hw in rows]
    for i, (label, _) in enumerate(cells[0]):
        table.add_row(label, *(c[i][1] for c in cells))
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
    from squeezelab.analysis.units import SIZE_NOTE

    con = console(wide=args.wide)
    if not compare:
        name, p = rows[0][0], rows[0][1]
        title = (
            f"{name} {'x'.join(map(str, p.input_shape))} on {text(p.hardware)} "
            f"(w{p.weight_bits}/a{p.activation_bits}; views hidden)"
        )
        more = "" if args.wide else "; --wide: every column, whole names"
        print_table(con, _layer_table(name, p, args.wide), title, SIZE_NOTE + more)
    totals = _totals_table(rows, args.wide)
    print_table(con, totals, f"totals on {text(rows[0][1].hardware)}", SIZE_NOTE)
    return 0
