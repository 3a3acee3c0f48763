"""``squeezelab design``: the main job as one command (explore -> report)."""

from __future__ import annotations

from squeezelab.cli._common import console, print_json


def register(sub) -> None:
    p = sub.add_parser(
        "design",
        help="search, train, compress, export and report a small net for a device",
        description="Explore a design space under the target's limits, retrain the best "
        "feasible design, compress it to .sqz, export fp32/int8 ONNX, time it and write "
        "OUT/report.html. Run the same command again to resume an interrupted run.",
    )
    p.add_argument(
        "--data", default="fashion-mnist", help="dataset name or directory (default: fashion-mnist)"
    )
    p.add_argument("--data-dir", help="directory holding the named dataset's files")
    p.add_argument(
        "--target",
        default="cortex-m7",
        help="hardware profile name or YAML file (default: cortex-m7)",
    )
    p.add_argument(
        "--budget-minutes",
        type=float,
        default=10.0,
        help="wall-clock budget in minutes the stages plan for (default: 10)",
    )
    p.add_argument(
        "--space",
        default="design-small",
        help="search-space preset or YAML file (default: design-small)",
    )
    p.add_argument("--trials", type=int, help="trained trials at most (default: the space's)")
    p.add_argument(
        "--sparsity",
        type=float,
        default=0.67,
        help="fraction of weights pruned, 0..1 (default: 0.67)",
    )
    p.add_argument("--bits", type=int, default=6, help="codebook index bits, 2..8 (default: 6)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument(
        "-o", "--out", required=True, help="output directory (study, model files, report)"
    )
    p.add_argument("--json", action="store_true", help="print the summary as JSON on stdout")
    p.set_defaults(func=run)


def _fmt_bytes(n: int) -> str:
    return f"{n / 1e6:.2f} MB" if n >= 1e6 else f"{n / 1e3:.1f} kB"


def render_summary(summary: dict, con) -> None:
    from rich.table import Table

    table = Table(title=f"squeezelab design: {summary['model']} ({summary['params']:,} params)")
    for col in (
        "artefact",
        "bytes",
        "test acc.",
        "latency here (1 thread)",
        "vs AlexNet-style fp32",
    ):
        table.add_column(col, justify="left" if col == "artefact" else "right")
    for r in summary["rows"]:
        acc = "-" if r["test_accuracy"] is None else f"{100 * r['test_accuracy']:.2f}%"
        lat = "-" if r["latency_ms"] is None else f"{r['latency_ms']:.3f} ms"
        table.add_row(
            r["artefact"],
            _fmt_bytes(r["bytes"]),
            acc,
            lat,
            f"{r['reduction_vs_alexnet_small']:.0f}x smaller",
        )
    con.print(table)
    con.print(
        f"On {summary['target']} (int8, predicted): {summary['target_latency_ms']:.2f} ms, "
        f"{summary['target_energy_pj'] / 1e6:.2f} uJ per image, peak activations "
        f"{_fmt_bytes(summary['target_peak_activation_bytes'])}. "
        f"AlexNet-style baseline fp32: {_fmt_bytes(summary['baseline_fp32_bytes'])}. "
        f"Trials: {summary['trials']['trained']} trained, {summary['trials']['infeasible']} infeasible."
    )


def run(args) -> int:
    from squeezelab.design import DesignConfig, design

    config = DesignConfig(data=args.data, data_dir=args.data_dir, target=args.target,
                          budget_minutes=args.budget_minutes, space=args.space, trials=args.trials,
                          sparsity=args.sparsity, bits=args.bits, seed=args.seed)  # fmt: skip
    con = console(stderr=args.json)

    def on_event(ev: dict) -> None:
        stage = ev["stage"]
        if "message" in ev:
            con.print(f"[bold]{stage}[/bold]: {ev['message']}")
        elif "progress" in ev:
            p = ev["progress"]
            con.print(
                f"[bold]{stage}[/bold]: {p['trained']} trained, {p['infeasible']} infeasible, {p['failed']} failed"
            )
        elif "record" in ev and "epoch" in ev["record"]:
            r = ev["record"]
            of = f"/{ev['epochs']}" if "epochs" in ev else ""
            con.print(f"[bold]{stage}[/bold]: epoch {r['epoch']}{of} val acc {100 * r['val_acc']:.2f}% "
                      f"({r['img_per_s']:.0f} img/s)")  # fmt: skip

    summary = design(config, args.out, on_event)
    if args.json:
        print_json(summary)
    else:
        render_summary(summary, con)
        con.print(f"Report: {args.out}/report.html")
    return 0
