"""``squeezelab train MODEL -o RUN_DIR``: train a zoo model or a spec file into a run directory.

Its flags are :class:`~squeezelab.train.TrainConfig`'s fields (``_flags.add_config_fields``),
so the two cannot drift. Works unchanged under ``torchrun --nproc_per_node N`` (DDP; only
rank 0 prints and writes).
"""

from __future__ import annotations

from pathlib import Path

from squeezelab.cli import _flags

# every TrainConfig field but the model's (MODEL sets model, spec and model_args)
FIELDS = (
    "data",
    "data_dir",
    "input_size",
    "recipe",
    "epochs",
    "batch_size",
    "lr",
    "optimizer",
    "momentum",
    "nesterov",
    "schedule",
    "poly_power",
    "warmup_epochs",
    "weight_decay",
    "label_smoothing",
    "augment",
    "crop_padding",
    "grad_clip",
    "train_subset",
    "val_fraction",
    "seed",
    "channels_last",
    "amp",
    "compile",
    "teacher",
    "distill_alpha",
    "distill_temperature",
    "device",
)


def register(sub) -> None:
    from squeezelab.train.config import AMP_CHOICES, BASE, OPTIMIZERS, RECIPES, SCHEDULES

    p = sub.add_parser(
        "train",
        help="train a model into a run directory",
        description="Train a model; writes config.json, metrics.jsonl, last/best model files "
        "and a resume state to the run directory after every epoch. Unset training fields "
        "come from --recipe, else the built-in defaults.",
    )
    _flags.add_model(
        p,
        optional=True,
        help="zoo name or SqueezeNetSpec .yaml/.json file "
        "(trains from scratch; a .safetensors or .sqz file is refused)",
    )
    _flags.add_output(p, help="run directory to create", kind="dir")
    p.add_argument(
        "--resume",
        metavar="RUN_DIR",
        help="continue a killed run from its last epoch (its own config; "
        "a flag that contradicts it is refused)",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the run already in -o (default: refuse to touch it)",
    )
    _flags.add_json(p, "one record per epoch")
    choices = {
        "recipe": RECIPES,
        "optimizer": OPTIMIZERS,
        "schedule": SCHEDULES,
        "amp": AMP_CHOICES,
    }
    shown = {k: f"the recipe's, else {v}" for k, v in BASE.items() if v is not None}
    _flags.add_config_fields(p, _train_config(), FIELDS, choices=choices, shown=shown)
    _flags.deprecated_alias(p, "--model", "the positional MODEL", dest="model_flag")
    _flags.deprecated_alias(p, "--out", "-o/--output", dest="output")
    p.set_defaults(func=run_train)


def _train_config():
    from squeezelab.train import TrainConfig

    return TrainConfig


def config_from_args(args):
    """A TrainConfig from MODEL and the flags; ``--resume`` reads the run's own config.json
    and refuses every flag (and MODEL, -o) that contradicts it, naming each."""
    from squeezelab.errors import ConfigError
    from squeezelab.train import TrainConfig
    from squeezelab.train.run import RESUME_FREE, read_run_config

    if args.resume:
        if not Path(args.resume).is_dir():
            raise ConfigError(f"--resume={args.resume!r} is invalid: not a run directory")
        saved = read_run_config(args.resume)
        config = TrainConfig.from_dict(saved)
        # the flags typed, not those that differ from their default: `--seed 0` typed
        # against a run saved with seed 3 is a contradiction too
        given = {n: getattr(args, n) for n in FIELDS if n in _flags.typed_fields(args)}
        for name in RESUME_FREE & set(given):
            setattr(config, name, given.pop(name))
        clash = ["--overwrite (a resumed run keeps its files)"] if args.overwrite else []
        clash += [
            f"--{n.replace('_', '-')}={v!r} (run: {saved.get(n)!r})"
            for n, v in sorted(given.items())
            if saved.get(n) != v
        ]
        ref = args.model or getattr(args, "model_flag", None)
        if ref:
            _, meta = _load(ref)
            spec = meta.spec.to_dict() if meta.spec is not None else None
            if meta.name != saved.get("model") or (spec and spec != saved.get("spec")):
                clash.insert(0, f"MODEL={ref!r} (run: {saved.get('model')!r})")
        if args.output and Path(args.output).resolve() != Path(args.resume).resolve():
            clash.append(f"-o={args.output!r} (run: {args.resume!r})")
        if clash:
            raise ConfigError(
                f"--resume {args.resume}: {', '.join(clash)} contradict the run's config; "
                "allowed: --resume alone (or only --device/--compile/--data-dir)"
            )
        return config, Path(args.resume)
    ref = args.model or getattr(args, "model_flag", None)
    if not ref or not args.output:
        raise ConfigError("MODEL and -o/--output are required (or --resume RUN_DIR)")
    _, meta = _load(ref)
    config = TrainConfig(model=meta.name, spec=meta.spec, **_flags.config_values(args, FIELDS))
    return config, Path(args.output)


def _load(ref: str):
    """MODEL -> ``(module, meta)``; a trained file is refused (train builds from scratch)."""
    from squeezelab.errors import ConfigError
    from squeezelab.models import load_model

    path = Path(ref)
    if path.is_file() and path.suffix not in (".yaml", ".yml", ".json"):
        raise ConfigError(
            f"MODEL={ref!r} is a trained model file; train starts from scratch: allowed a zoo "
            "name or a spec .yaml/.json (fine-tune a model file with `compress "
            "--finetune-epochs`)"
        )
    return load_model(ref)


def run_train(args) -> int:
    import json

    from squeezelab.cli._progress import TrainProgress, open_display
    from squeezelab.train import dist, fit

    config, out = config_from_args(args)
    main = dist.is_main()  # only rank 0 prints
    resolved = config.resolved()
    # under --json the records go to stdout and the display to stderr
    with open_display(json=args.json, enabled=main) as show:
        tp = TrainProgress(show, resolved.epochs, resolved.batch_size)
        records = fit(
            config, out, resume=bool(args.resume), overwrite=args.overwrite, on_batch=tp.on_batch
        )
        for r in records:
            if args.json and main:
                print(json.dumps(r.to_dict()), flush=True)
            tp.epoch(r)
    if main and not args.json:
        files = "best.safetensors, last.safetensors, metrics.jsonl"
        show.con.print(f"run directory: {out} ({files})", markup=False, highlight=False)
    return 0
