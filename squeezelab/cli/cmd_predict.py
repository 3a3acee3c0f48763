"""``squeezelab predict MODEL IMAGE... [--top-k K] [--json] [--wide]``: classify image files,
directories and globs; one table row (or JSON record) per image.
"""

from __future__ import annotations

from squeezelab.cli._common import console, print_json
from squeezelab.cli._flags import (
    MODEL_HELP,
    add_json,
    add_model,
    add_output,
    add_wide,
    positive_int,
)


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
    p.add_argument(
        "--min-score",
        type=float,
        default=0.3,
        help="detectors: the lowest score (class prob x confidence, 0..1) kept (default 0.3)",
    )
    add_output(p, help="detectors: draw the boxes on the (one) input image, written as PNG")
    add_json(p, "the predictions")
    add_wide(p)
    p.set_defaults(func=run_predict)


def _detector(ref: str):
    """``(meta, forward)`` when ``ref`` is a detector (model file, zoo name or .onnx), else None."""
    from pathlib import Path

    if Path(ref).suffix == ".onnx":
        from squeezelab.export.onnx import INPUT_NAME, make_session, read_onnx_meta

        meta = read_onnx_meta(ref).meta
        if meta.task != "detection":
            return None
        session = make_session(ref)
        return meta, lambda x: session.run(None, {INPUT_NAME: x})[0]
    from squeezelab.models import load_model
    from squeezelab.train.detect import torch_forward

    model, meta = load_model(ref)
    return (meta, torch_forward(model)) if meta.task == "detection" else None


def _run_detect(args, meta, forward) -> int:
    """Boxes of every image as a table or JSON; ``-o`` draws them on the one image."""
    import numpy as np

    from squeezelab.errors import ConfigError
    from squeezelab.export.predict import expand_inputs, load_image
    from squeezelab.train.detect import detections

    images = expand_inputs(args.images)
    if args.output and len(images) != 1:
        raise ConfigError(f"-o draws one image: allowed with 1 IMAGE, got {len(images)}")
    c, h, w = meta.input_shape
    if h != w:
        raise ConfigError(f"predict takes square inputs; {meta.name!r} takes {w}x{h}")
    x = np.stack([load_image(im, c, w, not args.no_resize) for im in images])
    names = meta.classes or tuple(str(i) for i in range(meta.num_classes))
    records = []
    for im, found in zip(images, detections(forward, meta, x), strict=True):
        keep = found["scores"] >= args.min_score
        records.append(
            {
                "image": str(im),
                "detections": [
                    {"label": int(lab), "class": names[int(lab)], "score": float(s), "box": b}
                    for lab, s, b in zip(
                        found["labels"][keep].tolist(),
                        found["scores"][keep].tolist(),
                        [[round(v, 2) for v in box] for box in found["boxes"][keep].tolist()],
                        strict=True,
                    )
                ],
            }
        )
    if args.output:
        _draw(x[0], records[0]["detections"], args.output)
    if args.json:
        print_json(records)
        return 0
    from squeezelab.cli._common import plain_table, print_table, short

    table = plain_table()
    for col in ("image", "class", "score", "box x1,y1,x2,y2 px"):
        table.add_column(col, no_wrap=True)
    for rec in records:
        for d in rec["detections"] or [{"class": "-", "score": 0.0, "box": []}]:
            box = ",".join(f"{v:.0f}" for v in d["box"])
            table.add_row(short(rec["image"], args.wide, 28), d["class"], f"{d['score']:.3f}", box)
    print_table(console(wide=args.wide), table, f"{short(args.model, args.wide, 40)}: boxes")
    if args.output:
        console().print(f"wrote {args.output}")
    return 0


def _draw(image, found, path) -> None:
    """The model's input image with a labelled rectangle per detection, as PNG (atomic)."""
    from PIL import Image, ImageDraw

    from squeezelab.io import atomic_path

    arr = image[0] if image.shape[0] == 1 else image.transpose(1, 2, 0)
    img = Image.fromarray(arr).convert("RGB")
    draw = ImageDraw.Draw(img)
    for d in found:
        draw.rectangle(d["box"], outline=(255, 64, 64))
        draw.text((d["box"][0] + 1, d["box"][1] + 1), d["class"][:12], fill=(255, 255, 0))
    with atomic_path(path) as tmp:
        img.save(tmp, format="PNG")


def run_predict(args) -> int:
    from squeezelab.export import predict

    found = _detector(args.model)
    if found is not None:
        return _run_detect(args, *found)
    if args.output:
        from squeezelab.errors import ConfigError

        raise ConfigError("-o: allowed for detectors only (a classifier's result is its table)")

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
