"""``squeezelab inspect MODEL.sqz``: the header and the bytes table, no weights decoded."""

from __future__ import annotations

from squeezelab.cli import _flags
from squeezelab.cli._common import console, print_json, text


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
    _flags.add_wide(p)
    p.set_defaults(func=run_inspect)


def run_inspect(args) -> int:
    from pathlib import Path

    from squeezelab.compress import byte_accounting
    from squeezelab.errors import ConfigError
    from squeezelab.io import is_sqz, read_sqz_layout

    if Path(args.model).suffix == ".sqz" and not Path(args.model).exists():
        raise ConfigError(f"MODEL={args.model!r}: .sqz file does not exist")
    if not (Path(args.model).is_file() and is_sqz(args.model)):
        raise ConfigError(f"MODEL={args.model!r} is invalid: allowed a .sqz file")
    header, entries = read_sqz_layout(args.model)
    table = byte_accounting(header, entries, Path(args.model).stat().st_size)
    if args.json:
        print_json({"header": header, "accounting": table.to_dict()})
        return 0
    render_header(header)
    render_accounting(table, args.wide, header.get("metric"))
    return 0


def render_header(header: dict) -> None:
    meta, comp = header.get("meta"), header.get("compression")
    meta = meta if isinstance(meta, dict) else {}
    comp = comp if isinstance(comp, dict) else {}
    out = console()
    out.print(
        f"[bold]{text(meta.get('model'))}[/]  input {text(meta.get('in_chans'))}x"
        f"{text(meta.get('input_size'))}x{text(meta.get('input_size'))}, "
        f"{text(meta.get('num_classes'))} classes"
    )
    if meta.get("classes"):  # every string from the file is text, never markup
        out.print(f"classes: {', '.join(map(str, meta['classes']))}", markup=False)
    if meta.get("normalization"):
        out.print(f"normalization: {meta['normalization']}", markup=False)
    if comp:
        fc = comp.get("fc_bits") or comp.get("bits")
        out.print(
            f"compression: sparsity {comp.get('sparsity')} ({comp.get('scope')}), "
            f"{comp.get('bits')}-bit conv, {fc}-bit fc, "
            f"plain tensors {'fp16' if comp.get('fp16_plain') else 'fp32'}",
            markup=False,
        )


def render_accounting(table, wide: bool = False, metric: str | None = "top1") -> None:
    """Bytes per layer and per stage; at 80 columns the main columns, ``wide`` all.

    ``metric`` is the header's: what its per-stage scores are (``map50``: a detector's
    mAP@0.5, written as a fraction); which split they are from is the writer's."""
    from squeezelab.analysis.units import format_score
    from squeezelab.cli._common import plain_table, print_table, short

    cols = (  # header, cell, shown at 80 columns
        ("tensor", lambda r: short(r.name.removesuffix(".weight"), wide, 20), True),
        ("params", lambda r: f"{r.params:,}", True),
        ("kept", lambda r: f"{r.nnz / r.params:.0%}" if r.params else "-", True),
        ("bits", lambda r: str(r.bits or "-"), True),
        ("gap", lambda r: str(r.gap_bits or "-"), False),
        ("dense B", lambda r: f"{r.dense_bytes:,.0f}", True),
        ("pruned B", lambda r: f"{r.pruned_bytes:,.0f}", False),
        ("shared B", lambda r: f"{r.shared_bytes:,.0f}", False),
        ("coded B", lambda r: f"{r.coded_bytes:,}", True),
        (
            "entropy B",
            lambda r: f"{r.entropy_bytes:,.0f}" if r.entropy_bytes is not None else "-",
            False,
        ),
        ("coders", lambda r: r.coders, False),
    )
    cols = [c for c in cols if wide or c[2]]
    layers = plain_table()
    for head, _, _ in cols:
        layers.add_column(head, justify="left" if head in ("tensor", "coders") else "right")
    for r in table.layers:
        layers.add_row(*(cell(r) for _, cell, _ in cols))
    stages = plain_table()
    ref = table.reference
    for col in (
        "stage",
        "bytes",
        f"vs {text(ref.get('model', 'reference'))}",
        "mAP@0.5" if metric == "map50" else "top-1",
    ):
        stages.add_column(col, justify="left" if col == "stage" else "right", no_wrap=True)
    for s in table.stages:
        red = f"{s['reduction']:.0f}x" if s["reduction"] else "-"
        a = s["test_accuracy"]
        acc = "-" if a is None else format_score(a, "map50" if metric == "map50" else "top1")
        name = "file (entropy-coded)" if s["stage"] == "coded" else s["stage"]
        stages.add_row(name, f"{s['bytes']:,}", red, acc)
    out = console(wide=wide)
    more = "" if wide else " (--wide: every stage's bytes and the coders)"
    print_table(out, layers, "bytes per layer" + more)
    print_table(out, stages, "bytes per stage")
    line = f"coded streams: {table.stream_bytes:,} bytes"
    if table.stream_entropy_bytes:
        over = table.stream_bytes / table.stream_entropy_bytes - 1
        line += f", entropy {table.stream_entropy_bytes:,.0f} ({over:+.2%})"
    out.print(line)
