"""``squeezelab predict MODEL IMAGE... [--top-k K]``: classify image files."""

from __future__ import annotations

from squeezelab.cli._common import console, print_json


def register(sub) -> None:
    p = sub.add_parser(
        "predict",
        help="classify images with a model",
        description="Top-k classes of each image, preprocessed as the model's metadata says "
        "(resize, grayscale/RGB, normalisation). MODEL: .onnx, .safetensors, .sqz or a zoo name.",
    )
    p.add_argument("model", help="a .onnx, .safetensors or .sqz file, or a zoo name")
    p.add_argument("images", nargs="+", help="image files (PNG, JPEG, ... anything Pillow reads)")
    p.add_argument("--top-k", type=int, default=5, help="classes per image (default 5)")
    p.add_argument(
        "--no-resize",
        action="store_true",
        help="refuse images not already at the model's input size",
    )
    p.add_argument("--json", action="store_true", help="print the predictions as JSON")
    p.set_defaults(func=run_predict)


def run_predict(args) -> int:
    from squeezelab.export import predict

    records = predict(args.model, args.images, top_k=args.top_k, resize=not args.no_resize)
    if args.json:
        print_json(records)
        return 0
    con = console()
    for rec in records:
        tops = ", ".join(f"{t['label']} {t['prob']:.3f}" for t in rec["top"])
        con.print(f"{rec['image']}: {tops}", markup=False, highlight=False)
    return 0
