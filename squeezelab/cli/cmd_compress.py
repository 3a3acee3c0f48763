"""``squeezelab compress MODEL -o MODEL.sqz``: Deep Compression with a progress bar."""

from __future__ import annotations

from squeezelab.cli import _flags
from squeezelab.cli._common import console, plain_table, print_json, print_table

DEFAULT_FINETUNE_EPOCHS = 1  # with --data: pruning without fine-tuning is ruinous
VAL_FRACTION = 0.1  # the training split's share scored for warnings and the ladder
TOLERANCE = 0.005  # as squeezelab.compress.ladder.TOLERANCE (not imported: --help stays light)
DEFAULT_SPARSITY, DEFAULT_BITS = 0.67, 6


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
        default=None,
        help="fraction of conv/fc weights removed, 0..1 (default 0.67: a third kept; with "
        "--ladder: chosen among 0.67/0.5/0.33/0, or fixed to this level when given)",
    )
    p.add_argument(
        "--scope",
        choices=("layer", "global"),
        default="layer",
        help="prune each layer to the sparsity, or rank all weights together",
    )
    p.add_argument(
        "--bits",
        type=_flags.int_range(2, 8),
        default=None,
        help="index bits of conv layers, 2..8 (default 6; with --ladder: chosen, or fixed "
        "to this width when given)",
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
        default=None,
        help="epochs of fine-tuning after each pruning round and of the centroids "
        f"(default {DEFAULT_FINETUNE_EPOCHS} with --data, 0 without)",
    )
    _flags.add_data(
        p,
        help="dataset for fine-tuning and per-stage validation accuracy (carved from its "
        f"training split, {VAL_FRACTION:g} of it): fashion-mnist, cifar10, or an ImageFolder "
        "path; for a detector fashion-mnist-det or a COCO folder (fine-tuned with the "
        "detection loss, scored as mAP@0.5 on its val split)",
    )
    p.add_argument(
        "--tolerance",
        type=_flags.fraction,
        default=TOLERANCE,
        help="validation top-1 (a detector: mAP@0.5) a step may lose before a warning, and "
        f"a --ladder setting at most, as a fraction (default {TOLERANCE:g} = "
        f"{100 * TOLERANCE:g} points; for mAP@0.5 points of mAP x 100)",
    )
    p.add_argument(
        "--ladder",
        action="store_true",
        help="choose the setting as design does: the smallest file within --tolerance of the "
        "fp32 validation accuracy, from 67%% pruned 4-bit up to dense 8-bit (needs --data)",
    )
    p.add_argument(
        "--budget-minutes",
        type=_flags.positive_float,
        default=None,
        help="with --ladder: minutes of fine-tuning and scoring; when spent, only settings "
        "without fine-tuning are tried (default: no limit)",
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

    epochs = args.finetune_epochs
    if epochs is None:
        epochs = DEFAULT_FINETUNE_EPOCHS if args.data else 0
    if epochs and not args.data:
        raise ConfigError("--finetune-epochs needs --data (the dataset to fine-tune on)")
    if epochs < 0:
        raise ConfigError(f"--finetune-epochs={epochs} is invalid: allowed >= 0")
    if args.ladder and not args.data:
        raise ConfigError("--ladder needs --data (its validation split scores every setting)")
    if args.budget_minutes is not None and not args.ladder:
        raise ConfigError("--budget-minutes needs --ladder (it bounds the ladder's fine-tuning)")
    model, meta = load_model(args.model)
    det = meta.task == "detection"
    finetune, train, val = None, None, None
    if args.data and det:
        train, val = _detection_data(args, model, meta)
    elif args.data:
        from squeezelab.data import split_train_val
        from squeezelab.train import TrainConfig, load_training_split

        full = load_training_split(
            TrainConfig(data=args.data, data_dir=args.data_dir, input_size=meta.input_size)
        )
        # warnings and choices on validation images the fine-tuning never sees
        train, val = split_train_val(full, VAL_FRACTION, seed=0)
    if epochs:
        from squeezelab.train import TrainConfig

        finetune = TrainConfig(
            model=meta.name,
            spec=meta.spec,
            model_args=dict(meta.model_args) or None,
            data=args.data,
            data_dir=args.data_dir,
            input_size=meta.input_size,
            epochs=epochs,
            lr=args.lr,
            batch_size=args.batch_size,
            schedule="cosine",
            warmup_epochs=0.0,
            val_fraction=0.0,  # ``train`` holds no validation image already
            grad_clip=1.0 if det else None,  # SqueezeDet's solver clips at 1.0
        )
    score, metric = None, "top1"
    if det and args.data:
        from squeezelab.compress.ladder import map50

        score, metric = map50(meta), "map50"
    common = {"scope": args.scope, "prune_steps": args.prune_steps, "fp16_plain": args.fp16}
    common |= {"fc_bits": args.fc_bits, "reference": args.reference}
    if args.ladder:
        from squeezelab.compress.ladder import ladder_rungs, ladder_steps

        steps = ladder_steps(
            model,
            meta,
            val,
            ladder_rungs(args.sparsity, args.bits, finetune=finetune is not None),
            args.tolerance,
            finetune,
            train,
            budget_s=None if args.budget_minutes is None else 60 * args.budget_minutes,
            **common,
            **({"score": score, "metric": metric} if score else {}),
        )
        result, ladder = _run_ladder_with_progress(steps, args)
    else:
        sparsity = DEFAULT_SPARSITY if args.sparsity is None else args.sparsity
        bits = DEFAULT_BITS if args.bits is None else args.bits
        steps = compress_steps(
            model,
            meta,
            sparsity,
            bits,
            finetune=finetune,
            eval_dataset=val,
            finetune_data=train,
            score=score,
            **common,
        )
        result, ladder = _run_with_progress(steps, args, epochs, sparsity, bits, metric), None
    write_sqz(args.output, result.data)
    if args.json:
        out = result.accounting.to_dict()
        if det and args.data:
            out["metric"] = metric
            out["val_scores"] = dict(result.header.get("accuracy") or {})
        print_json(out if ladder is None else out | {"ladder": ladder.to_dict()})
        return 0
    from squeezelab.cli.cmd_inspect import render_accounting, render_header

    con = console()
    if ladder is not None:
        render_ladder(ladder, con)
    render_header(result.header)
    render_accounting(result.accounting, getattr(args, "wide", False), result.header.get("metric"))
    con.print(f"wrote {args.output}: {len(result.data):,} bytes")
    return 0


def _detection_data(args, model, meta):
    """A detector's fine-tuning canvases (its train split, with the model's anchors and
    normalisation) and the validation split every stage and rung is scored on (mAP@0.5)."""
    import dataclasses

    from squeezelab.data.detection import load_detection
    from squeezelab.errors import ConfigError
    from squeezelab.models.detect import anchor_shapes, head_layout
    from squeezelab.train import TrainConfig, load_training_split

    anchors = anchor_shapes(meta, head_layout(model)[1])
    full = load_training_split(
        TrainConfig(data=args.data, data_dir=args.data_dir, input_size=meta.input_size)
    )
    if tuple(full.images.shape[1:]) != tuple(meta.input_shape):
        raise ConfigError(
            f"--data={args.data!r} has canvases {tuple(full.images.shape[1:])} but the "
            f"model takes {tuple(meta.input_shape)}: allowed a dataset of the model's input shape"
        )
    # the model's own anchors and statistics: fine-tuning must not refit them
    train = dataclasses.replace(full, anchors=tuple(anchors), mean=meta.mean, std=meta.std)
    size = meta.input_shape[2]
    val = load_detection(args.data, "val", data_dir=args.data_dir, size=size)
    return train, val


def loss_line(
    of: str, before: float, after: float, tolerance: float, sparsity, bits, metric: str = "top1"
) -> str | None:
    """The warning when a step loses more than ``tolerance`` of validation top-1, else None.

    Example:
        >>> loss_line("pruned", 0.49, 0.099, 0.005, 0.67, 6)[:52]
        'pruning 67% lost 39.10 points of validation accuracy'
    """
    if after >= before - tolerance - 1e-12:
        return None
    if of == "pruned":
        what = f"pruning {sparsity:.0%}"
        lower = [s for s in (0.5, 0.33, 0.0) if s < sparsity][:1]
        hint = f"try --sparsity {lower[0]:g} or more --finetune-epochs" if lower else ""
    else:
        what = f"sharing at {bits} bits"
        hint = f"try --bits {min(8, bits + 2)} or more --finetune-epochs" if bits < 8 else ""
    hint = "; ".join(h for h in (hint, "or --ladder to choose a setting that keeps it") if h)
    if metric != "top1":
        return (
            f"{what} lost {100 * (before - after):.2f} points of validation mAP@0.5 "
            f"({before:.4f} -> {after:.4f}); allowed {100 * tolerance:g}; {hint}"
        )
    return (
        f"{what} lost {100 * (before - after):.2f} points of validation accuracy "
        f"({before:.1%} -> {after:.1%}); allowed {100 * tolerance:g}; {hint}"
    )


def render_ladder(ladder, con) -> None:
    """The rungs tried, smallest file first: bytes, validation top-1, chosen or why not."""
    from squeezelab.compress.ladder import METRICS, format_score

    m = ladder.metric
    score_col = "val top-1" if m == "top1" else "val mAP@0.5"
    table = plain_table()
    for col in ("setting", "bytes", score_col, "seconds", "chosen or why not"):
        table.add_column(col, justify="right" if col in ("bytes", score_col, "seconds") else "left")
    for r in ladder:
        acc = "-" if r.val_accuracy is None else format_score(r.val_accuracy, m)
        size = "-" if r.bytes is None else f"{r.bytes:,}" + ("" if r.tried else " (probe)")
        table.add_row(r.setting, size, acc, f"{r.seconds:.1f}", r.why)
    title = (
        f"compression ladder: fp32 {METRICS.get(m, m)} "
        f"{format_score(ladder.fp32_val_accuracy, m)} on "
        f"{ladder.val_images:,} images, tolerance {100 * ladder.tolerance:g} points"
    )
    print_table(con, table, title, ladder.line())


def _run_with_progress(steps, args, epochs: int, sparsity: float, bits: int, metric="top1"):
    from squeezelab.cli._progress import Display, count
    from squeezelab.compress import DoneStep, EncodeStep, EvaluateStep, FinetuneStep

    total = epochs * (args.prune_steps + 1)
    accuracy: dict[str, float] = {}
    previous = {"pruned": "dense", "shared": "pruned"}
    tuned = 0
    with Display(console(stderr=True)) as show:  # stderr: stdout holds the tables or JSON
        for rec in steps:
            if isinstance(rec, FinetuneStep):
                epoch, tuned = rec.record, tuned + 1
                acc = epoch.train_acc if epoch.val_acc is None else epoch.val_acc
                show.update(
                    "compress",
                    what=f"fine-tune ({rec.stage}) {count('epoch', tuned, total)}",
                    done=tuned,
                    total=total,
                    rate=epoch.img_per_s,
                    note=f"acc {acc:.3f}",
                )
            elif isinstance(rec, EvaluateStep):
                accuracy[rec.of] = rec.top1
                if metric == "top1":
                    msg = f"validation accuracy after {rec.of}: {rec.top1:.2%}"
                else:  # a detector: EvaluateStep.top1 holds the scorer's mAP@0.5
                    msg = f"validation mAP@0.5 after {rec.of}: {rec.top1:.4f}"
                show.message(msg, "compress")
                before = accuracy.get(previous.get(rec.of, ""))
                if before is not None:
                    line = loss_line(
                        rec.of, before, rec.top1, args.tolerance, sparsity, bits, metric
                    )
                    if line:
                        show.message(line, "compress", style="bold yellow")
            elif isinstance(rec, EncodeStep):
                what = f"encoding {count('tensor', rec.done, rec.total)}"
                show.update("compress", what=what, done=rec.done, total=rec.total, note="")
            elif isinstance(rec, DoneStep):
                return rec.result
    raise AssertionError("compression ended without a result")


def _run_ladder_with_progress(steps, args):
    """The ladder's rungs as one bar, fine-tuning epochs in its text; a line a rung."""
    from squeezelab.cli._progress import Display, count
    from squeezelab.compress import FinetuneStep
    from squeezelab.compress.ladder import LadderDone, RungStep

    rungs = "compression ladder"
    with Display(console(stderr=True)) as show:  # stderr: stdout holds the tables or JSON
        for rec in steps:
            if isinstance(rec, FinetuneStep):
                r = rec.record
                what = f"{rungs}, fine-tune ({rec.stage}) epoch {r.epoch}"
                show.update("compress", what=what, rate=r.img_per_s)
            elif isinstance(rec, RungStep):
                rungs = f"{count('rung', rec.index, rec.total)} done"
                show.update("compress", what=rungs, done=rec.index, total=rec.total)
                show.message(rec.line())
            elif isinstance(rec, LadderDone):
                return rec.compressed, rec.ladder
    raise AssertionError("the ladder ended without a result")
