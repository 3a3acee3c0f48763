"""``squeezelab models [PATTERN]`` and ``squeezelab spec NAME``."""

from __future__ import annotations

from squeezelab.cli._common import console, print_json


def register(sub) -> None:
    p = sub.add_parser("models", help="list the model zoo", description="List registered models.")
    p.add_argument(
        "pattern", nargs="?", default="*", help="glob filter on the name, e.g. 'squeezenet*'"
    )
    p.add_argument("--json", action="store_true", help="print the table as JSON on stdout")
    p.set_defaults(func=run_models)

    p = sub.add_parser(
        "spec",
        help="print a SqueezeNet model's spec",
        description="Print the SqueezeNetSpec of a model.",
    )
    p.add_argument("name", help="a SqueezeNet-family model name, e.g. squeezenet1_0")
    p.add_argument("--json", action="store_true", help="print JSON instead of YAML")
    p.set_defaults(func=run_spec)


def zoo_rows(pattern: str = "*") -> list[dict]:
    """One row per registered model: name, params at its defaults, input, description."""
    from squeezelab.models import create_model, list_models, model_info

    rows = []
    for name in list_models(pattern):
        info = model_info(name)
        params = sum(p.numel() for p in create_model(name).parameters())
        rows.append({
            "name": name,
            "params": params,
            "input": f"{info.in_chans}x{info.input_size}x{info.input_size}",
            "num_classes": info.num_classes,
            "description": info.description,
        })  # fmt: skip
    return rows


def run_models(args) -> int:
    rows = zoo_rows(args.pattern)
    if args.json:
        print_json(rows)
        return 0
    from rich.table import Table

    table = Table(title=f"squeezelab models ({len(rows)})")
    for col, just in (
        ("name", "left"),
        ("params", "right"),
        ("input", "left"),
        ("classes", "right"),
        ("description", "left"),
    ):
        table.add_column(col, justify=just)
    for r in rows:
        table.add_row(
            r["name"], f"{r['params']:,}", r["input"], str(r["num_classes"]), r["description"]
        )
    console().print(table)
    return 0


def run_spec(args) -> int:
    from squeezelab.errors import SpecError
    from squeezelab.models import model_info

    info = model_info(args.name)
    if info.spec is None:
        raise SpecError(
            f"model {args.name!r} has no SqueezeNetSpec; only the SqueezeNet family has one"
        )
    spec = info.spec
    if args.json:
        print_json({"name": spec.short_name, **spec.to_dict()})
    else:
        print(f"# {args.name}: {spec.short_name}")
        print(spec.to_yaml(), end="")
    return 0
