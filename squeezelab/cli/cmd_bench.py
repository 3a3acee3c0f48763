"""``squeezelab bench MODEL... [--input CxHxW] [--threads 1,2] [--json]``: runtime latency table."""

from __future__ import annotations

from squeezelab.cli._common import console, parse_input_shape, print_json

# Kept in step with squeezelab.export.bench.BACKENDS (not imported: `--help` stays light).
BACKENDS = ("torch", "torch_channels_last", "ort_fp32", "ort_int8")


def register(sub) -> None:
    p = sub.add_parser(
        "bench",
        help="batch-1 latency across runtimes",
        description="Time models at batch 1 in PyTorch eager (NCHW, channels_last) and ONNX "
        "Runtime (fp32, int8 QDQ), against the fp32 roofline bound of the calibrated host.",
    )
    p.add_argument("models", nargs="+", help="zoo names, model files, .sqz or .onnx files")
    p.add_argument("--input", help="input CxHxW, e.g. 3x224x224 (default: each model's own)")
    p.add_argument("--threads", default="1,2", help="comma list of thread counts (default 1,2)")
    p.add_argument(
        "--backends", default=",".join(BACKENDS), help=f"comma list from {', '.join(BACKENDS)}"
    )
    p.add_argument("--rounds", type=int, default=6, help="timing rounds of 5 runs (default 6)")
    p.add_argument(
        "--roofline",
        default="host",
        help="profile of the fp32 bound: 'host' calibrates this machine (~20 s per thread "
        "count), a profile name or YAML uses it, 'none' skips it (default host)",
    )
    p.add_argument("--json", action="store_true", help="print the records as JSON")
    p.set_defaults(func=run_bench)


def _threads(text: str) -> tuple[int, ...]:
    from squeezelab.errors import ConfigError

    try:
        out = tuple(int(t) for t in text.split(","))
    except ValueError:
        out = ()
    if not out or min(out) < 1:
        raise ConfigError(f"--threads={text!r} is invalid: allowed a comma list of integers >= 1")
    return out


def run_bench(args) -> int:
    from squeezelab.export import benchmark

    shape = parse_input_shape(args.input) if args.input else None
    threads = _threads(args.threads)
    if args.rounds < 1:
        from squeezelab.errors import ConfigError

        raise ConfigError(f"--rounds={args.rounds} is invalid: allowed >= 1")
    rows = []
    for ref in args.models:
        rows += benchmark(
            ref,
            shape,
            backends=tuple(args.backends.split(",")),
            threads=threads,
            rounds=args.rounds,
        )
    if args.json:
        print_json(rows)
        return 0
    from rich.table import Table

    table = Table(title="batch-1 latency (interleaved rounds, same input)")
    cols = (
        "model",
        "backend",
        "threads",
        "median ms",
        "p90 ms",
        "x torch",
        "roofline ms",
        "x roofline",
    )
    for col in cols:
        table.add_column(col, justify="left" if col in ("model", "backend") else "right")

    def fmt(v, spec):
        return "-" if v is None else format(v, spec)

    for r in rows:
        backend = r["backend"] + (f" ({r['int8_candidate']})" if r.get("int8_candidate") else "")
        table.add_row(
            str(r["model"]), backend, str(r["threads"]), f"{r['median_ms']:.3f}",
            f"{r['p90_ms']:.3f}", fmt(r["speedup_vs_torch"], ".2f"), fmt(r["roofline_ms"], ".3f"),
            fmt(r["ratio_to_roofline"], ".2f"),
        )  # fmt: skip
    con = console()
    con.print(table)
    if rows and rows[0]["roofline_ms"] is None:
        con.print("roofline: none (--roofline none, or an .onnx input has no module to analyse)")
    return 0
