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
    _flags.add_batch_size(p, 512, help="images per forward pass")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default: cpu)")
    _flags.add_json(p)
    p.set_defaults(func=run_evaluate)


def run_evaluate(args) -> int:
    from dataclasses import replace

    from squeezelab.cli._common import console, print_json
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
    ds = load_dataset(data, args.split, args.data_dir, args.input_size or meta.input_size)
    if ds.shape[0] != meta.in_chans or len(ds.classes) != meta.num_classes:
        raise ConfigError(
            f"MODEL={args.model!r} takes {meta.in_chans} channel(s) and gives "
            f"{meta.num_classes} classes; --data={data!r} has {ds.shape[0]} and "
            f"{len(ds.classes)}: allowed a dataset of the model's shape"
        )
    args.data = data
    ds = replace(ds, mean=meta.mean, std=meta.std)  # feed the model as it was trained
    result = {
        "model_file": args.model,
        "data": args.data,
        "split": args.split,
        **evaluate(model, ds, args.batch_size, args.device).to_dict(),
    }
    if args.json:
        print_json(result)
        return 0
    from rich.table import Table

    con = console()
    con.print(
        f"{args.model} on {args.data}:{args.split} ({result['n']} images): "
        f"top-1 {result['top1']:.4f}  top-5 {result['top5']:.4f}  "
        f"loss {result['loss']:.4f}"
    )
    per = Table(title="per-class accuracy")
    per.add_column("class")
    per.add_column("accuracy", justify="right")
    for name, acc in result["per_class"].items():
        per.add_row(name, f"{acc:.4f}")
    con.print(per)
    conf = Table(title="confusion matrix (rows: true, columns: predicted)")
    conf.add_column("")
    for i in range(len(ds.classes)):
        conf.add_column(str(i), justify="right")
    for i, row in enumerate(result["confusion"]):
        conf.add_row(f"{i} {ds.classes[i]}", *(str(v) for v in row))
    con.print(conf)
    return 0
