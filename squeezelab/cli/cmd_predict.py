"""``squeezelab predict MODEL IMAGE... [--top-k K] [--json]``: classify image files,
directories and globs; one table row (or JSON record) per image.
"""

from __future__ import annotations

from squeezelab.cli._common import console, print_json
from squeezelab.cli._flags import MODEL_HELP, add_json, add_model, positive_int


def register(sub) -> None:
    p = sub.add_parser(
        "predict",
        help="classify images with a model",
        description="Top-k classes of each image, preprocessed as the model's metadata says "
        "(resize, grayscale/RGB, normalisation). MODEL: an exported .onnx file or a "
        f"{MODEL_HELP}.",
    )
    add_model(p, help=f"{MODEL_HELP}, or an exported .onnx file")
    p.add_argument(
        "images",
        nargs="+",
        metavar="IMAGE",
        help="image files (PNG, JPEG, ... anything Pillow reads), directories (every image "
        "below them) or quoted globs such as 'photos/*.jpg' ('**' recurses)",
    )
    p.add_argument("--top-k", type=positive_int, default=5, help="classes per image (default 5)")
    p.add_argument(
        "--no-resize",
        action="store_true",
        help="refuse images not already at the model's input size",
    )
    add_json(p, "the predictions")
    p.set_defaults(func=run_predict)


def run_predict(args) -> int:
    from squeezelab.export import predict

    records = predict(args.model, args.images, top_k=args.top_k, resize=not args.no_resize)
    if args.json:
        print_json([r.to_dict() for r in records])
        return 0
    from rich.table import Table
    from rich.text import Text  # file names and labels are text, never markup

    table = Table(title=Text(f"{args.model}: top-{args.top_k} of {len(records)} image(s)"))
    table.add_column("image", overflow="fold")
    table.add_column("class")
    table.add_column("prob", justify="right", no_wrap=True)
    if args.top_k > 1:
        table.add_column("next", overflow="fold")
    for rec in records:
        first, rest = rec.top[0], rec.top[1:]
        row = [str(rec.image), first.label, f"{first.prob:.3f}"]
        if args.top_k > 1:
            row.append(", ".join(f"{t.label} {t.prob:.3f}" for t in rest))
        table.add_row(*(Text(c) for c in row))
    console().print(table)
    return 0
