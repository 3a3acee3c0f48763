"""``squeezelab data make|anchors``: write a generated detection benchmark as COCO folders;
print k-means anchors for a detection dataset."""

from __future__ import annotations

from squeezelab.cli._common import console, plain_table, print_json, print_table, text
from squeezelab.cli._flags import add_json, add_output, int_range, nonneg_int, positive_int

SPLITS = ("train", "val", "test")


def _add_generator_flags(p, split_help: str, split_default: str | None) -> None:
    p.add_argument("--split", choices=SPLITS, default=split_default, help=split_help)
    p.add_argument(
        "--size",
        type=int_range(64, 2048),
        default=128,
        help="canvas side of a generated benchmark, pixels; a COCO folder's images are "
        "letterboxed to it (default: 128)",
    )
    p.add_argument(
        "--count",
        type=positive_int,
        help="images per split (default: generated 10000 train, 1000 val, 2000 test; "
        "a folder: all)",
    )
    p.add_argument("--seed", type=nonneg_int, default=0, help="generator seed (default: 0)")
    p.add_argument(
        "--data-dir",
        metavar="DIR",
        help="folder holding Fashion-MNIST's IDX files (default: the system's)",
    )


def register(sub) -> None:
    p = sub.add_parser(
        "data",
        help="make a detection benchmark; fit anchors",
        description="Detection data: write a generated benchmark as COCO-format folders, "
        "or fit anchor shapes to a dataset's boxes (docs/detection.md).",
    )
    verbs = p.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    m = verbs.add_parser(
        "make",
        help="write a generated detection benchmark as COCO JSON + PNGs",
        description="Generate a detection benchmark (deterministic in --seed) and write "
        "each split to DIR/SPLIT/instances.json and DIR/SPLIT/images/.",
    )
    m.add_argument("name", metavar="NAME", help="the benchmark to generate: fashion-mnist-det")
    add_output(m, "folder to write DIR/SPLIT/ into", required=True, kind="dir")
    _add_generator_flags(m, "write only this split (default: train, val and test)", None)
    add_json(m, "what was written")
    m.set_defaults(func=run_make)
    a = verbs.add_parser(
        "anchors",
        help="print k-means anchor shapes (IoU distance) for a dataset's boxes",
        description="Fit k anchor shapes (w, h in pixels) to the boxes of a detection "
        "dataset's split with k-means under the IoU distance (YOLO9000).",
    )
    a.add_argument("data", metavar="DATA", help="fashion-mnist-det or a COCO-format folder")
    a.add_argument(
        "-k", "--anchors", type=int_range(1, 64), default=9, help="anchors to fit (default: 9)"
    )
    _add_generator_flags(a, "the split whose boxes are fitted (default: train)", "train")
    add_json(a, "the anchors")
    a.set_defaults(func=run_anchors)


def _generator_args(args) -> dict:
    return {"data_dir": args.data_dir, "size": args.size, "count": args.count, "seed": args.seed}


def run_make(args) -> int:
    from squeezelab.data.detection import make_benchmark

    splits = (args.split,) if args.split else SPLITS
    written = make_benchmark(args.name, args.output, splits=splits, **_generator_args(args))
    if args.json:
        print_json([w.to_dict() for w in written])
        return 0
    con = console()
    for w in written:
        con.print(f"{w.split}: {w.images} images, {w.boxes} boxes -> {text(w.path)}")
    return 0


def run_anchors(args) -> int:
    from squeezelab.data.detection import fit_anchors

    fit = fit_anchors(args.data, args.anchors, split=args.split, **_generator_args(args))
    if args.json:
        print_json(fit.to_dict())
        return 0
    t = plain_table()
    for col in ("anchor", "w px", "h px", "w/h"):
        t.add_column(col, justify="right")
    for i, (w, h) in enumerate(fit.anchors):
        t.add_row(str(i), f"{w:.1f}", f"{h:.1f}", f"{w / h:.2f}")
    h, w = fit.image_size
    print_table(
        console(),
        t,
        f"{len(fit.anchors)} anchors for {text(args.data)} {args.split} ({w}x{h} images)",
        f"{fit.boxes} boxes; mean IoU with the closest anchor {fit.mean_iou:.3f}",
    )
    return 0
