"""``squeezelab bench MODEL... [--input CxHxW] [--thread-counts 1,2] [--json] [--wide]``: latency
table (80 columns unless ``--wide``)."""

from __future__ import annotations

from squeezelab.cli._common import console, parse_input_shape, print_json
from squeezelab.cli._flags import (
    MODEL_HELP,
    add_json,
    add_model,
    add_wide,
    deprecated_alias,
    positive_int,
)

# Kept in step with squeezelab.export.bench.BACKENDS (not imported: `--help` stays light).
BACKENDS = ("torch", "torch_channels_last", "ort_fp32", "ort_int8")
LITERT_BACKENDS = ("litert_fp32", "litert_int8")  # on request: they need the deploy extra


def register(sub) -> None:
    p = sub.add_parser(
        "bench",
        help="batch-1 latency across runtimes",
        description="Time models at batch 1 in PyTorch eager (NCHW, channels_last), ONNX "
        "Runtime (fp32, int8 QDQ) and on request LiteRT (fp32, int8 .tflite), against the fp32 roofline bound of the calibrated host.",
    )
    add_model(p, many=True, help=f"{MODEL_HELP}, or an exported .onnx file")
    p.add_argument("--input", help="input CxHxW, e.g. 3x224x224 (default: each model's own)")
    p.add_argument(
        "--thread-counts",
        default="1,2",
        metavar="N,N",
        help="comma list of CPU thread counts to time each backend at (default 1,2)",
    )
    deprecated_alias(p, "--threads", "--thread-counts", dest="thread_counts")
    p.add_argument(
        "--backends",
        default=",".join(BACKENDS),
        help=f"comma list from {', '.join(BACKENDS + LITERT_BACKENDS)} (default: "
        f"{','.join(BACKENDS)}; the LiteRT ones convert to .tflite, XNNPACK delegate)",
    )
    p.add_argument(
        "--rounds", type=positive_int, default=6, help="timing rounds of 5 runs (default 6)"
    )
    p.add_argument(
        "--roofline",
        default="host",
        help="profile of the fp32 bound: 'host' calibrates this machine (~20 s per thread "
        "count), a profile name or YAML uses it, 'none' skips it (default host)",
    )
    add_json(p, "the records")
    add_wide(p)
    p.set_defaults(func=run_bench)


def _thread_counts(text: str) -> tuple[int, ...]:
    from squeezelab.errors import ConfigError

    try:
        out = tuple(int(t) for t in text.split(","))
    except ValueError:
        out = ()
    if not out or min(out) < 1:
        raise ConfigError(
            f"--thread-counts={text!r} is invalid: allowed a comma list of integers >= 1"
        )
    return out


def run_bench(args) -> int:
    from squeezelab.cli._progress import count, open_display
    from squeezelab.errors import ConfigError
    from squeezelab.export import benchmark

    shape = parse_input_shape(args.input) if args.input else None
    counts = _thread_counts(args.thread_counts)
    if args.rounds < 1:
        raise ConfigError(f"--rounds={args.rounds} is invalid: allowed >= 1")
    roofline = None if args.roofline.lower() == "none" else args.roofline
    rows = []
    with open_display(json=args.json) as show:  # stderr under --json
        for i, ref in enumerate(args.models, 1):
            what = f"{count('model', i, len(args.models))} {ref}"
            show.update("bench", what=what, done=i - 1, total=len(args.models))
            rows += benchmark(
                ref,
                input_shape=shape,
                backends=tuple(args.backends.split(",")),
                thread_counts=counts,
                rounds=args.rounds,
                roofline=roofline,
                on_phase=lambda text, what=what: show.update(what=f"{what}: {text}"),
            )
    if args.json:
        print_json([r.to_dict() for r in rows])
        return 0
    render(rows, args.wide)
    return 0


def render(rows, wide: bool = False) -> None:
    """The latency table: 80 columns hold model, backend, threads, median and the ratios;
    ``wide`` adds p90, the roofline bound and ort_int8's setting in its cell."""
    from squeezelab.cli._common import plain_table, print_table, short, text

    has_roof = any(r.roofline_ms is not None for r in rows)
    cols = [  # (header, cell, shown)
        ("model", lambda r: short(r.model, wide, 16), True),
        ("backend", lambda r: text(_backend(r, wide)), True),
        ("threads", lambda r: str(r.threads), True),
        ("median ms", lambda r: _num(r.median_ms, ",.3f"), True),
        ("p90 ms", lambda r: _num(r.p90_ms, ",.3f"), wide),
        ("x torch", lambda r: _num(r.speedup_vs_torch, ",.2f"), True),
        ("roofline ms", lambda r: _num(r.roofline_ms, ",.3f"), wide and has_roof),
        ("x roofline", lambda r: _num(r.ratio_to_roofline, ",.2f"), has_roof),
    ]
    shown = [c for c in cols if c[2]]
    table = plain_table()
    for i, (header, _, _) in enumerate(shown):
        table.add_column(header, justify="left" if i < 2 else "right", no_wrap=True)
    for r in rows:
        table.add_row(*(cell(r) for _, cell, _ in shown))
    notes = []
    if not has_roof:
        notes.append("roofline: none (--roofline none, or an .onnx input has no module)")
    settings = sorted({r.int8_setting for r in rows if r.int8_setting})
    if settings and not wide:
        notes.append(f"ort_int8 ran {', '.join(settings)}")
    if not wide:
        notes.append("--wide: p90" + (" and the roofline bound" if has_roof else ""))
    con = console(wide=wide)
    print_table(con, table, "batch-1 latency (interleaved rounds, same input)", notes)


def _backend(r, wide: bool) -> str:
    return r.backend + (f" ({r.int8_setting})" if wide and r.int8_setting else "")


def _num(v, spec: str) -> str:
    return "-" if v is None else format(v, spec)
