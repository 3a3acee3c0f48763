"""``squeezelab train``: train a zoo model or a spec file on a dataset into a run directory.

Works unchanged under ``torchrun --nproc_per_node N`` (DDP; only rank 0 prints and writes).
"""

from __future__ import annotations

from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser(
        "train",
        help="train a model into a run directory",
        description="Train a model; writes config.json, metrics.jsonl, last/best model files "
        "and a resume state to the run directory after every epoch.",
    )
    p.add_argument("--model", help="zoo name (e.g. squeezenet_small) or a SqueezeNetSpec YAML/JSON")
    p.add_argument("--data", help="fashion-mnist, mnist, cifar10, cifar100, synthetic, or a DIR")
    p.add_argument("--data-dir", help="directory to look for a named dataset first")
    p.add_argument("--epochs", type=int, help="passes over the training split")
    p.add_argument("--batch-size", type=int, help="global batch, images (all processes)")
    p.add_argument("--lr", type=float, help="peak learning rate")
    p.add_argument(
        "--recipe", help="named preset: fmnist-fast, squeezenet-caffe, adamw-cosine, ..."
    )
    p.add_argument("--optimizer", choices=("sgd", "adamw"))
    p.add_argument("--schedule", choices=("constant", "linear", "poly", "cosine", "onecycle"))
    p.add_argument("--teacher", help="model file of a teacher for knowledge distillation")
    p.add_argument("--train-subset", type=int, help="train on N class-balanced images")
    p.add_argument("--seed", type=int, default=0, help="seed of weights, data order, augmentation")
    p.add_argument("--amp", choices=("auto", "bf16", "fp16", "off"), default="auto",
                   help="mixed precision (auto: bf16 on CPUs with native bf16, AMP on CUDA)")  # fmt: skip
    p.add_argument("--no-channels-last", action="store_true", help="keep NCHW activations")
    p.add_argument("--compile", action="store_true", help="torch.compile the model")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--out", help="run directory to create")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue a killed run from its last epoch")
    p.add_argument("--json", action="store_true", help="print one JSON record per epoch on stdout")
    p.set_defaults(func=run_train)


def config_from_args(args):
    """A TrainConfig from the flags; ``--resume`` reads the run's own config.json."""
    import json

    from squeezelab.errors import ConfigError
    from squeezelab.train import TrainConfig

    if args.resume:
        path = Path(args.resume) / "config.json"
        if not path.is_file():
            raise ConfigError(f"--resume={args.resume!r} is invalid: no config.json in it")
        config = TrainConfig.from_dict(json.loads(path.read_text()))
        config.device, config.compile = args.device, args.compile
        return config, Path(args.resume)
    if not args.out or not args.model or not args.data:
        raise ConfigError("--model, --data and --out are required (or --resume RUN_DIR)")
    config = TrainConfig(
        data=args.data, data_dir=args.data_dir, recipe=args.recipe, epochs=args.epochs,
        batch_size=args.batch_size, lr=args.lr, optimizer=args.optimizer,
        schedule=args.schedule, teacher=args.teacher, train_subset=args.train_subset,
        seed=args.seed, amp=args.amp, channels_last=not args.no_channels_last,
        compile=args.compile, device=args.device,
    )  # fmt: skip
    model = Path(args.model)
    if model.suffix in (".yaml", ".yml", ".json") and model.is_file():
        from squeezelab.models.spec import SqueezeNetSpec

        text = model.read_text()
        spec = (SqueezeNetSpec.from_json(text) if model.suffix == ".json"
                else SqueezeNetSpec.from_yaml(text))  # fmt: skip
        config.model, config.spec = "squeezenet_small", spec.to_dict()
    else:
        from squeezelab.models import model_info

        config.model = model_info(args.model).name
    return config, Path(args.out)


def run_train(args) -> int:
    import json

    from squeezelab.train import dist, fit

    config, out = config_from_args(args)
    records = fit(config, out, resume=bool(args.resume))
    main = dist.is_main()
    if args.json or not main:
        for r in records:
            if main:
                print(json.dumps(r), flush=True)
        return 0
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    from squeezelab.cli._common import console

    con = console()
    total = config.resolved().epochs
    with Progress(TextColumn("[bold]train"), BarColumn(), MofNCompleteColumn(),
                  TimeRemainingColumn(), TextColumn("{task.description}"),
                  console=con) as bar:  # fmt: skip
        task = bar.add_task("", total=total)
        for r in records:
            val = f"val_acc {r['val_acc']:.4f}" if r["val_acc"] is not None else ""
            line = (f"epoch {r['epoch']}/{total}  loss {r['train_loss']:.4f}  "
                    f"acc {r['train_acc']:.4f}  {val}  {r['img_per_s']:.0f} img/s")  # fmt: skip
            bar.console.print(line)
            bar.update(task, completed=r["epoch"], description=f"lr {r['lr']:.4g}")
    con.print(f"run directory: {out} (best.safetensors, last.safetensors, metrics.jsonl)")
    return 0
