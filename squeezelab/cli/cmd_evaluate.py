"""``squeezelab evaluate MODEL_FILE --data NAME|DIR``: top-1, top-5, per-class, confusion."""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser(
        "evaluate",
        help="score a model file on a dataset",
        description="Top-1 and top-5 accuracy, per-class accuracy and the confusion matrix.",
    )
    p.add_argument("model_file", help="a model file (.safetensors; .sqz where supported)")
    p.add_argument("--data", required=True, help="dataset name or directory")
    p.add_argument("--data-dir", help="directory to look for a named dataset first")
    p.add_argument("--split", choices=("train", "test"), default="test")
    p.add_argument("--batch-size", type=int, default=512, help="images per forward pass")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    p.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    p.set_defaults(func=run_evaluate)


def run_evaluate(args) -> int:
    from dataclasses import replace

    from squeezelab.cli._common import console, print_json
    from squeezelab.data import load_dataset
    from squeezelab.fileio import load_any_model
    from squeezelab.train import evaluate

    model, meta = load_any_model(args.model_file)
    ds = load_dataset(args.data, args.split, args.data_dir)
    norm = meta.get("normalization")
    if norm:  # feed the model as it was trained
        ds = replace(ds, mean=tuple(norm["mean"]), std=tuple(norm["std"]))
    result = {"model_file": args.model_file, "data": args.data, "split": args.split,
              **evaluate(model, ds, args.batch_size, args.device)}  # fmt: skip
    if args.json:
        print_json(result)
        return 0
    from rich.table import Table

    con = console()
    con.print(f"{args.model_file} on {args.data}:{args.split} ({result['n']} images): "
              f"top-1 {result['top1']:.4f}  top-5 {result['top5']:.4f}  "
              f"loss {result['loss']:.4f}")  # fmt: skip
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
