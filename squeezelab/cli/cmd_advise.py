"""``squeezelab advise MODEL``: the small-DNN playbook applied to a model, with measured savings."""

from __future__ import annotations

from squeezelab.cli._common import console, parse_input_shape, print_json

_TITLES = {"params": "parameters", "macs": "MACs", "dram_bytes": "DRAM traffic",
           "energy_pj": "energy"}  # fmt: skip


_LABELS = {"params": " params", "macs": "", "model_bytes": " model", "dram_bytes": " DRAM traffic",
           "energy_pj": " energy", "latency_ms": " latency",
           "peak_activation_bytes": " peak activations"}  # fmt: skip


def register(sub) -> None:
    p = sub.add_parser(
        "advise",
        help="name the costly layers of a model and what to change",
        description="Profile a model, name the layers that hold its parameters, MACs, DRAM "
        "traffic and energy, and propose SqueezeNet's techniques with the saving each "
        "gives (the difference of two profiles: the model and the modified model).",
    )
    p.add_argument("model", help="a zoo name, a spec .yaml/.json, or a .safetensors model file")
    p.add_argument("--hardware", default=None,
                   help="hardware profile name or YAML path (default: horowitz-45nm)")  # fmt: skip
    p.add_argument("--input", default=None, metavar="CxHxW",
                   help="input shape in channels x pixels, e.g. 3x224x224 "
                   "(default: the model's own)")  # fmt: skip
    p.add_argument("--top", type=int, default=5, help="layers to list per metric (default: 5)")
    p.add_argument("--json", action="store_true", help="print the advice as JSON on stdout")
    p.set_defaults(func=run_advise)


def run_advise(args) -> int:
    from squeezelab.advise import advise
    from squeezelab.analysis import load_hardware
    from squeezelab.cli._common import resolve_model
    from squeezelab.errors import ConfigError

    if args.top < 1:
        raise ConfigError(f"--top={args.top} is invalid: allowed an integer >= 1")
    shape = parse_input_shape(args.input) if args.input else None
    hardware = load_hardware(args.hardware) if args.hardware else None  # fail fast on a bad name
    model, name, default_shape = resolve_model(args.model)
    result = advise(model, shape or default_shape, hardware, name=name, top=args.top)
    if args.json:
        print_json(result.to_dict())
    else:
        render(result)
    return 0


def render(adv) -> None:
    """The advice as rich tables and panels."""
    import yaml
    from rich.markup import escape
    from rich.table import Table

    from squeezelab.advise import SAVING_METRICS, human

    con = console()
    t = adv.totals
    con.print(
        f"[bold]{escape(adv.model)}[/] at {'x'.join(map(str, adv.input_shape))} on "
        f"[bold]{escape(adv.hardware)}[/]: {human('params', t['params'])} params, "
        f"{human('macs', t['macs'])}, {human('model_bytes', t['model_bytes'])}, "
        f"{human('energy_pj', t['energy_pj'])}, {human('latency_ms', t['latency_ms'])}"
    )
    for line in adv.limits:
        con.print(f"[red]limit:[/] {escape(line)}")
    for metric, rows in adv.top.items():
        table = Table(title=f"largest layers by {_TITLES[metric]}", title_justify="left")
        table.add_column("layer")
        table.add_column("op")
        table.add_column(metric, justify="right")
        table.add_column("share", justify="right")
        for r in rows:
            table.add_row(escape(r.name), r.op, human(metric, r.value), f"{r.share:.1%}")
        con.print(table)
    for i, s in enumerate(adv.suggestions, 1):
        con.print(f"\n[bold cyan]{i}. {s.technique}[/]"
                  + (f"  [dim]{escape(', '.join(s.targets[:6]))}"
                     f"{' ...' if len(s.targets) > 6 else ''}[/]" if s.targets else ""))  # fmt: skip
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
