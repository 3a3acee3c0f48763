"""``squeezelab inspect MODEL.sqz``: the header and the bytes table, no weights decoded."""

from __future__ import annotations

from squeezelab.cli import _flags
from squeezelab.cli._common import console, print_json


def register(sub) -> None:
    p = sub.add_parser(
        "inspect",
        help="show a .sqz file's header and bytes per layer and stage",
        description="Print a .sqz file's header and its accounting table without decoding "
        "any weights (record headers only).",
    )
    _flags.add_model(
        p,
        help="a .sqz file written by `squeezelab compress` (other references "
        "have no header; `squeezelab profile` costs them)",
    )
    _flags.add_json(p, "header and table")
    p.set_defaults(func=run_inspect)


def run_inspect(args) -> int:
    from pathlib import Path

    from squeezelab.compress import byte_accounting
    from squeezelab.errors import ConfigError
    from squeezelab.io import is_sqz, read_sqz_layout

    if not (Path(args.model).is_file() and is_sqz(args.model)):
        raise ConfigError(f"MODEL={args.model!r} is invalid: allowed a .sqz file")
    header, entries = read_sqz_layout(args.model)
    table = byte_accounting(header, entries, Path(args.model).stat().st_size)
    if args.json:
        print_json({"header": header, "accounting": table.to_dict()})
        return 0
    render_header(header)
    render_accounting(table)
    return 0


def render_header(header: dict) -> None:
    meta, comp = header.get("meta"), header.get("compression")
    meta = meta if isinstance(meta, dict) else {}
    comp = comp if isinstance(comp, dict) else {}
    out = console()
    out.print(
        f"[bold]{meta.get('model')}[/]  input {meta.get('in_chans')}x"
        f"{meta.get('input_size')}x{meta.get('input_size')}, "
        f"{meta.get('num_classes')} classes"
    )
    if meta.get("classes"):
        out.print(f"classes: {', '.join(map(str, meta['classes']))}")
    if meta.get("normalization"):
        out.print(f"normalization: {meta['normalization']}")
    if comp:
        fc = comp.get("fc_bits") or comp.get("bits")
        out.print(
            f"compression: sparsity {comp.get('sparsity')} ({comp.get('scope')}), "
            f"{comp.get('bits')}-bit conv, {fc}-bit fc, "
            f"plain tensors {'fp16' if comp.get('fp16_plain') else 'fp32'}"
        )


def render_accounting(table) -> None:
    from rich.table import Table

    layers = Table(title="bytes per layer")
    for col in (
        "tensor",
        "params",
        "kept",
        "bits",
        "gap",
        "dense",
        "pruned",
        "shared",
        "coded",
        "entropy",
        "coders",
    ):
        layers.add_column(col, justify="left" if col in ("tensor", "coders") else "right")
    for r in table.layers:
        kept = f"{r.nnz / r.params:.0%}" if r.params else "-"
        ent = f"{r.entropy_bytes:,.0f}" if r.entropy_bytes is not None else "-"
        layers.add_row(
            r.name.removesuffix(".weight"),
            f"{r.params:,}",
            kept,
            str(r.bits or "-"),
            str(r.gap_bits or "-"),
            f"{r.dense_bytes:,.0f}",
            f"{r.pruned_bytes:,.0f}",
            f"{r.shared_bytes:,.0f}",
            f"{r.coded_bytes:,}",
            ent,
            r.coders,
        )
    stages = Table(title="bytes per stage")
    ref = table.reference
    for col in ("stage", "bytes", f"reduction vs {ref.get('model', 'reference')}", "test acc"):
        stages.add_column(col, justify="left" if col == "stage" else "right")
    for s in table.stages:
        red = f"{s['reduction']:.0f}x" if s["reduction"] else "-"
        acc = f"{s['test_accuracy']:.2%}" if s["test_accuracy"] is not None else "-"
        name = "file (entropy-coded)" if s["stage"] == "coded" else s["stage"]
        stages.add_row(name, f"{s['bytes']:,}", red, acc)
    out = console()
    if not out.is_terminal:  # a pipe or a file gets the whole table, not 80 columns
        from rich.console import Console

        out = Console(width=150)
    out.print(layers)
    out.print(stages)
    line = f"coded streams: {table.stream_bytes:,} bytes"
    if table.stream_entropy_bytes:
        over = table.stream_bytes / table.stream_entropy_bytes - 1
        line += f", empirical entropy {table.stream_entropy_bytes:,.0f} bytes ({over:+.2%})"
    out.print(line)
