"""``squeezelab measure MODEL``: time real inference (PyTorch eager), beside the prediction."""

from __future__ import annotations

from squeezelab.cli._common import console, parse_input_shape, print_json, resolve_model


def register(sub) -> None:
    p = sub.add_parser(
        "measure",
        help="time PyTorch eager inference of a model",
        description="Median and p90 latency of PyTorch eager inference after warm-up, "
        "contiguous and channels_last.",
    )
    p.add_argument("model", help="zoo name, spec YAML/JSON or model file")
    p.add_argument("--input", help="input shape CxHxW (default: the model's)")
    p.add_argument("--batch", type=int, default=1, help="images per call (default: 1)")
    p.add_argument("--threads", type=int, help="intra-op threads (default: PyTorch's setting)")
    p.add_argument("--runs", type=int, default=30, help="timed calls (default: 30)")
    p.add_argument("--warmup", type=int, default=5, help="untimed calls first (default: 5)")
    p.add_argument("--hardware", help="also show the latency this hardware profile predicts")
    p.add_argument("--json", action="store_true", help="print the results as JSON on stdout")
    p.set_defaults(func=run)


def run(args) -> int:
    from squeezelab.analysis import measure_latency, profile

    model, name, default_shape = resolve_model(args.model)
    shape = parse_input_shape(args.input) if args.input else default_shape
    rows = []
    with console(stderr=True).status(f"timing {name} ..."):
        for channels_last in (False, True):
            r = measure_latency(model, shape, args.batch, args.threads, channels_last,
                                args.warmup, args.runs)  # fmt: skip
            rows.append({"name": name, "input": list(shape), **r})
    predicted = None
    if args.hardware:
        predicted = profile(model, shape, args.hardware).latency_ms * args.batch
    if args.json:
        print_json({"measurements": rows, "predicted_ms": predicted})
        return 0
    from rich.table import Table

    table = Table(title=f"{name} {'x'.join(map(str, shape))}, batch {args.batch}, PyTorch eager")
    for col in ("memory format", "median ms", "p90 ms", "min ms", "cpu ms", "threads", "runs"):
        table.add_column(col, justify="left" if col == "memory format" else "right")
    for r in rows:
        table.add_row("channels_last" if r["channels_last"] else "contiguous",
                      f"{r['median_ms']:.3f}", f"{r['p90_ms']:.3f}", f"{r['min_ms']:.3f}",
                      f"{r['cpu_median_ms']:.3f}", str(r["threads"]), str(r["runs"]))  # fmt: skip
    con = console()
    con.print(table)
    if predicted is not None:
        con.print(f"predicted on {args.hardware}: {predicted:.3f} ms")
    return 0
