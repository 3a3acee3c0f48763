"""``squeezelab compress MODEL -o MODEL.sqz``: Deep Compression with a progress bar."""

from __future__ import annotations

from squeezelab.cli import _flags
from squeezelab.cli._common import console, print_json


def register(sub) -> None:
    p = sub.add_parser(
        "compress",
        help="prune, weight-share and entropy-code a model into a .sqz file",
        description="Deep Compression (Han et al. 2016) of a model into a .sqz file, with "
        "the bytes of every stage at the end. A zoo name or spec file is compressed untrained.",
    )
    _flags.add_model(p)
    _flags.add_output(p, help=".sqz file to write", required=True)
    p.add_argument(
        "--sparsity",
        type=_flags.fraction,
        default=0.67,
        help="fraction of conv/fc weights removed, 0..1 (0.67 keeps a third)",
    )
    p.add_argument(
        "--scope",
        choices=("layer", "global"),
        default="layer",
        help="prune each layer to the sparsity, or rank all weights together",
    )
    p.add_argument(
        "--bits", type=_flags.int_range(2, 8), default=6, help="index bits of conv layers, 2..8"
    )
    p.add_argument(
        "--fc-bits",
        type=_flags.int_range(2, 8),
        default=None,
        help="index bits of fully connected layers, 2..8 (default: --bits)",
    )
    p.add_argument(
        "--prune-steps",
        type=_flags.positive_int,
        default=1,
        help="pruning rounds of rising sparsity, each followed by fine-tuning",
    )
    p.add_argument(
        "--finetune-epochs",
        type=_flags.nonneg_int,
        default=0,
        help="epochs of fine-tuning after each pruning round and of the centroids",
    )
    _flags.add_data(
        p,
        help="dataset for fine-tuning and per-stage test accuracy: fashion-mnist, cifar10, "
        "or an ImageFolder path",
    )
    p.add_argument(
        "--lr", type=_flags.positive_float, default=0.01, help="fine-tuning peak learning rate"
    )
    _flags.add_batch_size(p, 128, help="fine-tuning batch, images")
    p.add_argument(
        "--fp16", action="store_true", help="store biases and BatchNorm at 16 bits instead of 32"
    )
    p.add_argument(
        "--reference",
        default=None,
        help="zoo model whose fp32 bytes the reduction is against "
        "(default alexnet, or alexnet_small for inputs up to 64 px)",
    )
    _flags.add_json(p, "the accounting")
    _flags.add_wide(p)
    p.set_defaults(func=run_compress)


def run_compress(args) -> int:
    from squeezelab.compress import compress_steps, write_sqz
    from squeezelab.errors import ConfigError
    from squeezelab.models import load_model

    if args.finetune_epochs and not args.data:
        raise ConfigError("--finetune-epochs needs --data (the dataset to fine-tune on)")
    if args.finetune_epochs < 0:
        raise ConfigError(f"--finetune-epochs={args.finetune_epochs} is invalid: allowed >= 0")
    model, meta = load_model(args.model)
    finetune, test = None, None
    if args.data:
        from squeezelab.data import load_dataset

        test = load_dataset(args.data, "test", data_dir=args.data_dir)
    if args.finetune_epochs:
        from squeezelab.train import TrainConfig

        finetune = TrainConfig(
            model=meta.name,
            spec=meta.spec,
            model_args=dict(meta.model_args) or None,
            data=args.data,
            data_dir=args.data_dir,
            epochs=args.finetune_epochs,
            lr=args.lr,
            batch_size=args.batch_size,
            schedule="cosine",
            warmup_epochs=0.0,
        )
    steps = compress_steps(
        model,
        meta,
        args.sparsity,
        args.bits,
        args.fc_bits,
        scope=args.scope,
        prune_steps=args.prune_steps,
        finetune=finetune,
        eval_dataset=test,
        fp16_plain=args.fp16,
        reference=args.reference,
    )
    result = _run_with_progress(steps, args)
    write_sqz(args.output, result.data)
    if args.json:
        print_json(result.accounting.to_dict())
        return 0
    from squeezelab.cli.cmd_inspect import render_accounting, render_header

    render_header(result.header)
    render_accounting(result.accounting, getattr(args, "wide", False))
    console().print(f"wrote {args.output}: {len(result.data):,} bytes")
    return 0


def _run_with_progress(steps, args):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from squeezelab.compress import DoneStep, EncodeStep, EvaluateStep, FinetuneStep

    epochs = args.finetune_epochs * (args.prune_steps + 1)
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=console(stderr=True),
        transient=True,
    ) as bar:
        train = bar.add_task("fine-tune", total=epochs, visible=bool(epochs))
        encode = bar.add_task("encode", total=None)
        for rec in steps:
            if isinstance(rec, FinetuneStep):
                epoch = rec.record
                acc = epoch.train_acc if epoch.val_acc is None else epoch.val_acc
                desc = f"fine-tune ({rec.stage}) acc {acc:.3f}"
                bar.update(train, advance=1, description=desc)
            elif isinstance(rec, EvaluateStep):
                bar.console.print(f"test accuracy after {rec.of}: {rec.top1:.2%}")
            elif isinstance(rec, EncodeStep):
                bar.update(encode, completed=rec.done, total=rec.total)
            elif isinstance(rec, DoneStep):
                return rec.result
    raise AssertionError("compression ended without a result")
