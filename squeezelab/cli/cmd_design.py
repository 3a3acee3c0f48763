"""``squeezelab design``: the main job as one command (explore -> report).

Its flags are :class:`squeezelab.design.DesignConfig`'s fields (defaults and help
included), through the shared adders of ``_flags`` where the vocabulary has one.
"""

from __future__ import annotations

import dataclasses

from squeezelab.cli import _flags
from squeezelab.cli._common import console, print_json

_SHARED = {"data", "data_dir", "hardware"}  # added by the shared adders


def register(sub) -> None:
    from squeezelab.design import DesignConfig

    p = sub.add_parser(
        "design",
        help="search, train, compress, export and report a small net for a device",
        description="Explore a design space under the hardware's limits, retrain the best "
        "feasible design, compress it to .sqz, export fp32/int8 ONNX and the file the "
        "target runs (int8 .tflite + C array for TFLite Micro, its arena measured), time it "
        "and write OUTPUT/report.html. Run the same command again to resume an interrupted run. "
        "With --pick TRIAL, finish another member of OUTPUT's Pareto front instead (the "
        "report's front table gives each one's command): no new search, the same stages "
        "from retraining on, into OUTPUT/pick-TRIAL.",
    )
    fields = {f.name: f for f in dataclasses.fields(DesignConfig)}
    _flags.add_data(
        p, help=f"{fields['data'].metadata['help']} (default: {fields['data'].default})"
    )
    _flags.add_hardware(p, default=fields["hardware"].default)
    _flags.deprecated_alias(p, "--target", "--hardware", dest="hardware")
    _flags.add_config_fields(p, DesignConfig, [n for n in fields if n not in _SHARED])
    p.set_defaults(data=fields["data"].default)
    _flags.add_output(p, "output folder (study, model files, report); required", kind="dir")
    _flags.deprecated_alias(p, "--out", "--output", dest="output")
    p.add_argument(
        "--restart",
        action="store_true",
        help="move the previous run to OUTPUT/previous-N and run every stage again",
    )
    _flags.add_json(p, "the summary")
    p.set_defaults(func=run)


def render_summary(summary, con) -> None:
    """Print a :class:`squeezelab.design.DesignResult` as a table and a line of figures."""
    from squeezelab.analysis.units import SIZE_NOTE, format_bytes, format_energy
    from squeezelab.cli._common import plain_table, print_table, short

    table = plain_table()
    score = "test acc." if summary.metric == "top-1" else f"test {summary.metric}"
    for col in ("artefact", "size", score, "latency ms", "x smaller"):
        table.add_column(col, justify="left" if col == "artefact" else "right", no_wrap=True)
    details = []  # an artefact's parenthetical, one line under the table: 80 columns
    for r in summary.rows:
        name, _, more = r.artefact.partition(" (")
        if more:
            details.append(f"{name}: {more.removesuffix(')')}")
        table.add_row(
            short(name, False, 30),
            format_bytes(r.bytes),
            "-" if r.test_accuracy is None else summary.figure(r.test_accuracy),
            "-" if r.latency_ms is None else f"{r.latency_ms:,.3f}",
            f"{r.reduction_vs_alexnet_small:,.0f}x",
        )
    title = f"squeezelab design: {short(summary.model, False, 40)} ({summary.params:,} params)"
    notes = [
        *details,
        "latency: median at batch 1 here, 1 thread; x smaller: vs AlexNet-style fp32",
        SIZE_NOTE,
    ]
    print_table(con, table, title, notes)
    con.print(
        f"On {summary.hardware} (int8, predicted): {summary.target_latency_ms:.2f} ms, "
        f"{format_energy(summary.target_energy_pj)} per image, peak activations "
        f"{format_bytes(summary.target_peak_activation_bytes)}. "
        f"AlexNet-style baseline fp32: {format_bytes(summary.baseline_fp32_bytes)}. "
        f"Trials: {summary.trials.get('trained', 0)} trained, "
        f"{summary.trials.get('infeasible', 0)} infeasible."
    )
    con.print(summary.ship_line(), style=None if summary.shipped else "bold red", markup=False)


def run(args) -> int:
    from squeezelab.cli._progress import Display, design_event
    from squeezelab.design import DesignConfig, design
    from squeezelab.design.run import run_folder
    from squeezelab.errors import ConfigError

    if args.output is None:  # not required by argparse, so the old --out still counts
        raise ConfigError("design needs -o/--output: the folder the run writes")
    config = DesignConfig(
        **{f.name: getattr(args, f.name) for f in dataclasses.fields(DesignConfig)}
    )
    con = console(stderr=args.json)
    with Display(con) as show:  # a bar on a terminal, else timestamped lines
        summary = design(
            config, args.output, lambda ev: design_event(show, ev), restart=args.restart
        )
    if args.json:
        print_json(summary.to_dict())
    else:
        render_summary(summary, con)
        con.print(f"Report: {run_folder(config, args.output) / 'report.html'}")
    return 0
