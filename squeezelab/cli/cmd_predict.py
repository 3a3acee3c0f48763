"""``squeezelab predict MODEL IMAGE... [--top-k K]``: classify image files."""

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
    p.add_argument("images", nargs="+", help="image files (PNG, JPEG, ... anything Pillow reads)")
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
    con = console()
    for rec in records:
        tops = ", ".join(f"{t.label} {t.prob:.3f}" for t in rec.top)
        con.print(f"{rec.image}: {tops}", markup=False, highlight=False)
    return 0
