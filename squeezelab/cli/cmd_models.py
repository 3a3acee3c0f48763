"""``squeezelab models [PATTERN]`` and ``squeezelab spec NAME``."""

from __future__ import annotations

from squeezelab.cli import _flags
from squeezelab.cli._common import console, print_json


def register(sub) -> None:
    p = sub.add_parser("models", help="list the model zoo", description="List registered models.")
    p.add_argument(
        "pattern", nargs="?", default="*", help="glob filter on the name, e.g. 'squeezenet*'"
    )
    _flags.add_json(p, "the table")
    _flags.add_wide(p)
    p.set_defaults(func=run_models)

    p = sub.add_parser(
        "spec",
        help="print a SqueezeNet model's spec",
        description="Print the SqueezeNetSpec of a model; the output is itself a spec file "
        "that every MODEL argument accepts (`squeezelab spec NAME --json > s.json`).",
    )
    _flags.add_model(
        p,
        help="a SqueezeNet-family zoo name (e.g. squeezenet1_0), spec file, "
        ".safetensors or .sqz file",
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of YAML")
    p.set_defaults(func=run_spec)


def zoo_rows(pattern: str = "*") -> list[dict]:
    """One row per registered model: name, params at its defaults, input, description."""
    from squeezelab.models import create_model, list_models, model_info

    rows = []
    for name in list_models(pattern):
        info = model_info(name)
        params = sum(p.numel() for p in create_model(name).parameters())
        rows.append(
            {
                "name": name,
                "params": params,
                "input": f"{info.in_chans}x{info.input_size}x{info.input_size}",
                "num_classes": info.num_classes,
                "description": info.description,
            }
        )
    return rows


def run_models(args) -> int:
    rows = zoo_rows(args.pattern)
    if args.json:
        print_json(rows)
        return 0
    from squeezelab.cli._common import plain_table, print_table

    cells = [
        {
            "name": r["name"],
            "params": f"{r['params']:,}",
            "input": r["input"],
            "classes": str(r["num_classes"]),
            "description": r["description"],
        }
        for r in rows
    ]
    table = plain_table()
    for col, just in (
        ("name", "left"),
        ("params", "right"),
        ("input", "left"),
        ("classes", "right"),
        ("description", "left"),
    ):
        table.add_column(col, justify=just, no_wrap=True)
    # every column but the description keeps its whole width; that one is cut to fit 80
    widths = (
        [max([len(k), *(len(c[k]) for c in cells)]) for k in list(cells[0])[:4]] if cells else []
    )
    room = 80 - sum(widths) - 2 * len(widths)
    for c in cells:
        d = c["description"]
        if not args.wide and len(d) > room:
            d = d[: max(room - 1, 0)] + "…"
        table.add_row(*list(c.values())[:4], d)
    note = () if args.wide else "--wide: whole descriptions"
    print_table(console(wide=args.wide), table, f"squeezelab models ({len(rows)})", note)
    return 0


def run_spec(args) -> int:
    from squeezelab.errors import SpecError
    from squeezelab.models import load_model

    _, meta = load_model(args.model)
    if meta.spec is None:
        raise SpecError(
            f"model {args.model!r} has no SqueezeNetSpec; only the SqueezeNet family has one"
        )
    spec = meta.spec
    if args.json:  # `name` is dropped by the spec-file reader: the output is a spec file
        print_json({"name": spec.short_name, **spec.to_dict()})
    else:
        print(f"# {args.model}: {spec.short_name}")
        print(spec.to_yaml(), end="")
    return 0
