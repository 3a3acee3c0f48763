"""``squeezelab check FILE.tflite [--data DATASET]``: the file measured in TFLite Micro."""

from __future__ import annotations

from squeezelab.cli._common import console, print_json
from squeezelab.cli._flags import add_data, add_json


def register(sub) -> None:
    p = sub.add_parser(
        "check",
        help="run a .tflite in TFLite Micro: arena, flash, int8 accuracy, agreement",
        description="Run a .tflite file in TFLite Micro's host interpreter: find the smallest "
        "tensor arena that runs it (bisection), its flash size, its top-1 accuracy on the "
        "test split of --data, and its agreement with LiteRT's reference kernels (0 LSB "
        "expected). The interpreter runs in a child process, so a hostile file cannot take "
        "the command down.",
    )
    p.add_argument("tflite", metavar="FILE.tflite", help="the .tflite file to check")
    add_data(p, help="dataset whose test split is scored (default: 16 random inputs, no accuracy)")
    p.add_argument(
        "--eval-size",
        type=int,
        default=1000,
        help="test images to run (default 1000; 0 = the whole test split)",
    )
    add_json(p, "the check")
    p.set_defaults(func=run_check)


def run_check(args) -> int:
    from squeezelab.errors import ConfigError
    from squeezelab.export.tflite import require_deploy

    require_deploy("tflite_micro")
    from squeezelab.export import check_tflite

    if args.eval_size < 0:
        raise ConfigError(f"--eval-size={args.eval_size} is invalid: allowed >= 0")
    images = labels = None
    if args.data:
        from squeezelab.data import load_dataset, subset

        test = load_dataset(args.data, split="test", data_dir=args.data_dir)
        if args.eval_size:
            test = subset(test, args.eval_size, seed=0)
        images, labels = test.images.numpy(), test.labels.numpy()
    r = check_tflite(args.tflite, images, labels)
    if args.json:
        print_json(r.to_dict())
        return 0
    con = console()
    con.print(f"{r.path}: {', '.join(r.ops)}")
    con.print(
        f"arena: {r.arena_bytes} bytes (head {r.arena_head_bytes} planned activations, "
        f"tail {r.arena_tail_bytes} persistent), smallest that runs in TFLite Micro"
    )
    con.print(f"flash: {r.flash_bytes} bytes (the file)")
    if r.int8_top1 is not None:
        con.print(f"top-1: {r.int8_top1:.4f} on {r.n_images} {args.data} test images")
    con.print(
        f"TFLM vs LiteRT reference kernels: max {r.tflm_vs_reference_max_lsb} LSB "
        f"on {r.n_images} inputs"
    )
    return 0
