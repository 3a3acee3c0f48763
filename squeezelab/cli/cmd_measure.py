"""``squeezelab measure MODEL``: time real inference (PyTorch eager), beside the prediction."""

from __future__ import annotations

from squeezelab.cli import _flags
from squeezelab.cli._common import (
    console,
    input_shape,
    plain_table,
    print_json,
    print_table,
    short,
    text,
)


def register(sub) -> None:
    p = sub.add_parser(
        "measure",
        help="time PyTorch eager inference of a model",
        description="Median and p90 latency of PyTorch eager inference after warm-up, "
        "contiguous and channels_last.",
    )
    _flags.add_model(p)
    _flags.add_input(p)
    _flags.add_batch_size(p, 1, help="images per call")
    _flags.deprecated_alias(
        p, "--batch", "--batch-size", dest="batch_size", type=_flags.positive_int
    )
    _flags.add_threads(p)
    p.add_argument("--runs", type=_flags.positive_int, default=30, help="timed calls (default: 30)")
    p.add_argument(
        "--warmup", type=_flags.nonneg_int, default=5, help="untimed calls first (default: 5)"
    )
    _flags.add_hardware(
        p, default=None, help="also show the latency this hardware profile (name or YAML) predicts"
    )
    _flags.add_json(p, "the results")
    p.set_defaults(func=run)


def run(args) -> int:
    from squeezelab.analysis import load_hardware, measure_latency, profile
    from squeezelab.models import load_model

    hardware = load_hardware(args.hardware) if args.hardware else None  # before timing
    model, meta = load_model(args.model)
    name, shape = meta.name, input_shape(args.input, meta)
    rows = []
    with console(stderr=True).status(f"timing {name} ..."):
        for channels_last in (False, True):
            r = measure_latency(
                model, shape, args.batch_size, args.threads, channels_last, args.warmup, args.runs
            )
            rows.append({"name": name, "input": list(shape), **r})
    predicted = None
    if args.hardware:
        predicted = profile(model, shape, hardware).latency_ms * args.batch_size
    if args.json:
        print_json({"measurements": rows, "predicted_ms": predicted})
        return 0
    render(name, shape, args.batch_size, rows)
    if predicted is not None:
        console().print(f"predicted on {text(args.hardware)}: {predicted:,.3f} ms")
    return 0


def render(name: str, shape, batch_size: int, rows: list[dict]) -> None:
    """The timings, one row per memory format (fits 80 columns)."""
    table = plain_table()
    for col in ("memory format", "median ms", "p90 ms", "min ms", "cpu ms", "threads", "runs"):
        table.add_column(col, justify="left" if col == "memory format" else "right", no_wrap=True)
    for r in rows:
        table.add_row(
            "channels_last" if r["channels_last"] else "contiguous",
            *(f"{r[k]:,.3f}" for k in ("median_ms", "p90_ms", "min_ms", "cpu_median_ms")),
            str(r["threads"]),
            f"{r['runs']:,}",
        )
    title = (
        f"{short(name, False, 40)} {'x'.join(map(str, shape))}, batch {batch_size}, PyTorch eager"
    )
    print_table(console(), table, title)
