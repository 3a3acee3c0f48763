"""``squeezelab predict MODEL IMAGE... [--top-k K] [--json] [--wide]``: classify image files,
directories and globs; one table row (or JSON record) per image.
"""

from __future__ import annotations

from squeezelab.cli._common import console, print_json
from squeezelab.cli._flags import MODEL_HELP, add_json, add_model, add_wide, positive_int


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
    add_wide(p)
    p.set_defaults(func=run_predict)


def run_predict(args) -> int:
    from squeezelab.export import predict

    records = predict(args.model, args.images, top_k=args.top_k, resize=not args.no_resize)
    if args.json:
        print_json([r.to_dict() for r in records])
        return 0
    render(records, args.model, args.top_k, args.wide)
    return 0


def render(records, model: str, top_k: int, wide: bool = False) -> None:
    """One row per image: its top class, and the next ones one per line (80 columns hold
    them at any ``top_k``; names are cut from the middle unless ``wide``)."""
    from squeezelab.cli._common import plain_table, print_table, short

    table = plain_table()
    table.add_column("image", no_wrap=True)
    table.add_column("class", no_wrap=True)
    table.add_column("prob", justify="right", no_wrap=True)
    if top_k > 1:
        table.add_column("next (prob)", no_wrap=True)
    for rec in records:
        first, rest = rec.top[0], rec.top[1:]
        row = [short(rec.image, wide, 28), short(first.label, wide, 16), f"{first.prob:.3f}"]
        if top_k > 1:
            row.append("\n".join(f"{short(t.label, wide, 16)} {t.prob:.3f}" for t in rest))
        table.add_row(*row)
    title = f"{short(model, wide, 40)}: top-{top_k} of {len(records)} image(s)"
    print_table(console(wide=wide), table, title, None if wide else "--wide: whole names")
