"""``squeezelab evaluate MODEL [--data NAME|DIR]``: top-1, top-5, per-class, confusion.

Without ``--data`` the dataset recorded in the model file (by ``train``) is scored.
"""

from __future__ import annotations

from squeezelab.cli import _flags


def register(sub) -> None:
    p = sub.add_parser(
        "evaluate",
        help="score a model on a dataset",
        description="Top-1 and top-5 accuracy, per-class accuracy and the confusion matrix. "
        "A zoo name or spec file is scored untrained (allowed, but only a baseline).",
    )
    _flags.add_model(p)
    _flags.add_data(
        p,
        help="dataset: fashion-mnist, cifar10, or an ImageFolder path "
        "(default: the dataset the model file records, as train wrote it)",
    )
    p.add_argument(
        "--input-size",
        type=_flags.int_range(1, 8192),
        metavar="PX",
        help="resize ImageFolder images to PXxPX (shorter side, then centre crop; "
        "default: the model's input size)",
    )
    p.add_argument(
        "--split",
        choices=("train", "test"),
        default="test",
        help="which split to score (default: test)",
    )
    p.add_argument(
        "--count",
        type=_flags.positive_int,
        default=None,
        metavar="N",
        help="detectors: score the split's first N images (default: all; fashion-mnist-det "
        "generates 2,000 test canvases)",
    )
    _flags.add_batch_size(p, 512, help="images per forward pass")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default: cpu)")
    _flags.add_json(p)
    _flags.add_wide(p)
    p.set_defaults(func=run_evaluate)


def run_evaluate(args) -> int:
    from dataclasses import replace

    from squeezelab.cli._common import print_json
    from squeezelab.cli._progress import count, open_display
    from squeezelab.data import load_dataset
    from squeezelab.errors import ConfigError
    from squeezelab.models import load_model
    from squeezelab.train import evaluate

    model, meta = load_model(args.model)
    data = args.data or meta.extra.get("dataset")
    if not isinstance(data, str) or not data:
        raise ConfigError(
            f"MODEL={args.model!r} records no dataset (only model files written by train "
            "do): pass --data NAME|DIR"
        )
    if meta.task == "detection":
        return _evaluate_detection(args, model, meta, data)
    ds = load_dataset(data, args.split, args.data_dir, args.input_size or meta.input_size)
    if ds.shape[0] != meta.in_chans or len(ds.classes) != meta.num_classes:
        raise ConfigError(
            f"MODEL={args.model!r} takes {meta.in_chans} channel(s) and gives "
            f"{meta.num_classes} classes; --data={data!r} has {ds.shape[0]} and "
            f"{len(ds.classes)}: allowed a dataset of the model's shape"
        )
    args.data = data
    ds = replace(ds, mean=meta.mean, std=meta.std)  # feed the model as it was trained
    with open_display(json=args.json) as show:  # stderr under --json

        def on_batch(k: int, n: int) -> None:
            show.update("evaluate", what=count("image", k, n), done=k, total=n, images=k)

        scores = evaluate(model, ds, args.batch_size, args.device, on_batch=on_batch)
    result = {
        "model_file": args.model,
        "data": args.data,
        "split": args.split,
        **scores.to_dict(),
    }
    if args.json:
        print_json(result)
        return 0
    render(result, ds.classes, args.wide)
    return 0


def _evaluate_detection(args, model, meta, data: str) -> int:
    """COCO mAP@[.5:.95], mAP@0.5 and per-class AP of a detector on a detection dataset."""
    from squeezelab.cli._common import console, plain_table, print_json, print_table, short, text
    from squeezelab.data.detection import load_detection
    from squeezelab.train.detect import evaluate_detection

    split = load_detection(
        data, args.split, data_dir=args.data_dir, size=meta.input_size, count=args.count
    )
    scores = evaluate_detection(model, meta, split, min(args.batch_size, 128), args.device)
    result = {"model_file": args.model, "data": data, "split": args.split, **scores.to_dict()}
    if args.json:
        print_json(result)
        return 0
    con = console(wide=args.wide)
    con.print(
        f"{text(args.model)} on {text(data)}:{args.split} ({scores.n:,} images)\n"
        f"mAP@[.5:.95] {100 * scores.map:.2f}  mAP@0.5 {100 * scores.map50:.2f}"
    )
    per = plain_table()
    per.add_column("class", no_wrap=True)
    per.add_column("AP@[.5:.95]", justify="right", no_wrap=True)
    per.add_column("AP@0.5", justify="right", no_wrap=True)
    for name, ap in scores.per_class.items():
        cells = [f"{100 * v:.2f}" if v >= 0 else "-" for v in (ap, scores.per_class50[name])]
        per.add_row(short(name, args.wide), *cells)  # "-": no such object in the split
    print_table(con, per, "per-class average precision")
    return 0


def render(result: dict, classes, wide: bool = False) -> None:
    """The scores, per-class accuracy and the confusion matrix (this one only where it fits
    80 columns, unless ``wide``: 10 classes do, 100 do not)."""
    from squeezelab.cli._common import console, plain_table, print_table, short, text

    con = console(wide=wide)
    con.print(
        f"{text(result['model_file'])} on {text(result['data'])}:{result['split']} "
        f"({result['n']:,} images)\ntop-1 {100 * result['top1']:.2f} %  "
        f"top-5 {100 * result['top5']:.2f} %  loss {result['loss']:.4f}"
    )
    per = plain_table()
    per.add_column("class", no_wrap=True)
    per.add_column("accuracy", justify="right", no_wrap=True)
    for name, acc in result["per_class"].items():
        per.add_row(short(name, wide), f"{100 * acc:.2f} %")
    print_table(con, per, "per-class accuracy")
    labels = [f"{i} {short(c, wide, 16)}" for i, c in enumerate(classes)]
    cells = [[f"{v:,}" for v in row] for row in result["confusion"]]
    widths = [max(len(str(j)), *(len(r[j]) for r in cells)) for j in range(len(classes))]
    need = max(map(len, labels)) + sum(widths) + 2 * len(widths)
    if need > 80 and not wide:
        con.print(f"confusion matrix: {len(classes)} classes need {need} columns; --wide or --json")
        return
    conf = plain_table()
    conf.add_column("", no_wrap=True)
    for i in range(len(classes)):
        conf.add_column(str(i), justify="right", no_wrap=True)
    for label, row in zip(labels, cells, strict=True):
        conf.add_row(label, *row)
    print_table(con, conf, "confusion matrix (rows: true, columns: predicted)")
