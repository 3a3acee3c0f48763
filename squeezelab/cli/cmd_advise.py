"""``squeezelab advise MODEL``: the small-DNN playbook applied to a model, with measured savings."""

from __future__ import annotations

from squeezelab.cli import _flags
from squeezelab.cli._common import console, input_shape, print_json

_TITLES = {
    "params": "parameters",
    "macs": "MACs",
    "dram_bytes": "DRAM traffic",
    "energy_pj": "energy",
}


_LABELS = {
    "params": " params",
    "macs": "",
    "model_bytes": " model",
    "dram_bytes": " DRAM traffic",
    "energy_pj": " energy",
    "latency_ms": " latency",
    "peak_activation_bytes": " peak activations",
}


def register(sub) -> None:
    p = sub.add_parser(
        "advise",
        help="name the costly layers of a model and what to change",
        description="Profile a model, name the layers that hold its parameters, MACs, DRAM "
        "traffic and energy, and propose SqueezeNet's techniques with the saving each "
        "gives (the difference of two profiles: the model and the modified model).",
    )
    _flags.add_model(p)
    _flags.add_hardware(p)
    _flags.add_input(p)
    p.add_argument(
        "--top", type=_flags.positive_int, default=5, help="layers to list per metric (default: 5)"
    )
    _flags.add_json(p, "the advice")
    _flags.add_wide(p)
    p.set_defaults(func=run_advise)


def run_advise(args) -> int:
    from squeezelab.advise import advise
    from squeezelab.analysis import load_hardware
    from squeezelab.errors import ConfigError
    from squeezelab.models import load_model

    if args.top < 1:
        raise ConfigError(f"--top={args.top} is invalid: allowed an integer >= 1")
    hardware = load_hardware(args.hardware)  # fail fast on a bad name
    model, meta = load_model(args.model)
    shape = input_shape(args.input, meta)
    result = advise(model, shape, hardware, name=meta.name, top=args.top)
    if args.json:
        print_json(result.to_dict())
    else:
        render(result, args.wide)
    return 0


def render(adv, wide: bool = False) -> None:
    """The advice as rich tables and panels."""
    import yaml
    from rich.markup import escape

    from squeezelab.advise import SAVING_METRICS, human
    from squeezelab.cli._common import plain_table, print_table, short

    con = console(wide=wide)
    t = adv.totals
    con.print(
        f"[bold]{escape(adv.model)}[/] at {'x'.join(map(str, adv.input_shape))} on "
        f"[bold]{escape(adv.hardware)}[/]:\n{human('params', t['params'])} params, "
        f"{human('macs', t['macs'])}, {human('model_bytes', t['model_bytes'])}, "
        f"{human('energy_pj', t['energy_pj'])}, {human('latency_ms', t['latency_ms'])}"
    )
    for line in adv.limits:
        con.print(f"[red]limit:[/] {escape(line)}")
    for metric, rows in adv.top.items():
        table = plain_table()
        table.add_column("layer", no_wrap=True)
        table.add_column("op", no_wrap=True)
        table.add_column(metric, justify="right", no_wrap=True)
        table.add_column("share", justify="right", no_wrap=True)
        for r in rows:
            table.add_row(short(r.name, wide, 40), r.op, human(metric, r.value), f"{r.share:.1%}")
        print_table(con, table, f"largest layers by {_TITLES[metric]}")
    for i, s in enumerate(adv.suggestions, 1):
        con.print(
            f"\n[bold cyan]{i}. {s.technique}[/]"
            + (
                f"  [dim]{escape(', '.join(s.targets[:6]))}"
                f"{' ...' if len(s.targets) > 6 else ''}[/]"
                if s.targets
                else ""
            )
        )
        con.print(escape(s.message))
        figures = [
            f"{'-' if s.saving[m] >= 0 else '+'}{human(m, abs(s.saving[m]))}{_LABELS[m]}"
            for m in SAVING_METRICS
            if s.saving.get(m)
        ]
        if figures:
            con.print("[green]measured:[/] " + ", ".join(figures))
        if s.modified_spec is not None:
            con.print("[dim]spec to try:[/]")
            con.print(
                escape(
                    yaml.safe_dump(
                        s.modified_spec, sort_keys=False, default_flow_style=None
                    ).rstrip()
                )
            )
