"""Run directories: ``fit`` trains from a config and writes config.json, metrics.jsonl,
last/best model files and the resume state, atomically, after every epoch.

A killed run continues with ``fit(config, out_dir, resume=True)`` and ends with the same
weights as a run that was never interrupted. Under torchrun only rank 0 writes. A run
directory is locked (``.lock``, an OS lock) for the run's life, so a second writer is
refused, and a directory holding a run is never overwritten unless asked to.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import torch
from torch import nn

from squeezelab.data import Dataset, load_dataset, split_train_val, subset
from squeezelab.data.names import dataset_ref, default_augment
from squeezelab.errors import ConfigError, FormatError
from squeezelab.io import atomic_write_bytes, atomic_write_json
from squeezelab.io.atomic import check_writable, exclusive_lock
from squeezelab.models import ModelMeta, SqueezeNetSpec, build_model, model_info, save_model
from squeezelab.train import detect, dist
from squeezelab.train.config import TrainConfig
from squeezelab.train.loop import make_trainer, pick_device
from squeezelab.train.records import EpochRecord
from squeezelab.train.state import STATE_FILE, load_state, save_state

# fields that may differ between a run and its resumption (they do not change the result)
RESUME_FREE = frozenset({"device", "compile", "data_dir"})
LOCK_FILE = ".lock"
# what a run writes; --overwrite removes these (and nothing else) before starting again
RUN_FILES = ("config.json", "metrics.jsonl", "last.safetensors", "best.safetensors", STATE_FILE)


def read_run_config(run_dir: str | Path) -> dict:
    """The saved ``config.json`` of a run directory as a dict; FormatError if malformed."""
    path = Path(run_dir) / "config.json"
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{run_dir}: no config.json in it; allowed: a run directory") from None
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise FormatError(f"{path}: not a run config ({str(e).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise FormatError(f"{path}: not a run config (a JSON object is needed)")
    return data


def load_training_split(config: TrainConfig) -> Dataset:
    """``config.data``'s training split as read from disk, before validation is carved."""
    if detect.is_detection_config(config):
        return detect.load_detection_train(config)
    return load_dataset(config.data, "train", config.data_dir, config.input_size)


def load_splits(config: TrainConfig, data: Dataset | None = None) -> tuple[Dataset, Dataset | None]:
    """Training and validation splits of a resolved config (validation carved with seed 0).

    ``data`` is the config's training split already loaded (what
    :func:`load_training_split` returns), so a caller that holds it (a design run) does
    not read it again; the validation share and ``train_subset`` are carved from it
    exactly as from a freshly loaded one.
    """
    full = data if data is not None else load_training_split(config)
    if isinstance(full, detect.DetectionData):  # its own val split; k-means anchors
        config.augment = config.augment or "none"
        if data is not None and config.train_subset and config.train_subset < len(full):
            # what load_training_split gives: the first N canvases, their own mean/std
            rows = full.split.head(config.train_subset)
            full = detect.detection_data(rows, full.name, full.anchors)
        probe = untrained_meta(config, full)
        try:
            k = detect.head_layout(build_model(probe, skeleton=True))[1]
        except ValueError:
            raise ConfigError(
                f"model={config.model!r} is a classifier and data={config.data!r} a detection "
                "dataset: allowed a detector (squeezedet_small, mobiledet_small, or a spec "
                "with head: convdet)"
            ) from None
        return detect.detection_splits(config, full, k)
    if config.augment is None:
        config.augment = ",".join(default_augment(config.data)) or "none"
    train, val = split_train_val(full, config.val_fraction, seed=0)
    if config.train_subset:
        train = subset(train, config.train_subset, seed=config.seed)
    return train, (val if len(val) else None)


def load_teacher(config: TrainConfig) -> tuple[nn.Module, tuple, tuple] | None:
    """The distillation teacher of a config as ``(module, mean, std)``, or ``None``."""
    if not config.teacher:
        return None
    from squeezelab.models import load_model

    model, meta = load_model(config.teacher)
    return model, meta.mean, meta.std


def untrained_meta(config: TrainConfig, ds: Dataset) -> ModelMeta:
    """What the configured model is when sized for ``ds`` (classes, channels, input side)."""
    c, h, w = ds.shape
    dims = {"num_classes": len(ds.classes), "in_chans": c, "input_size": w}
    height = None if h == w else h
    spec = None
    if config.spec:
        spec = SqueezeNetSpec.from_dict(config.spec).replace(**dims, input_height=height)
    elif model_info(config.model).spec is not None:
        spec = model_info(config.model).spec.replace(
            **dims, input_height=height, **(config.model_args or {})
        )
    is_det = isinstance(ds, detect.DetectionData)
    return ModelMeta(
        config.model,
        **dims,
        spec=spec,
        model_args={} if spec is not None else dict(config.model_args or {}),
        task="detection" if is_det else "classification",
        classes=tuple(ds.classes),
        mean=tuple(ds.mean),
        std=tuple(ds.std),
        input_height=height,
        anchors=ds.anchors if is_det else (),
    )


def build_run_model(config: TrainConfig, ds: Dataset) -> nn.Module:
    """The configured model, sized for ``ds``, seeded with ``config.seed``."""
    torch.manual_seed(config.seed)
    return build_model(untrained_meta(config, ds))


def trained_meta(
    config: TrainConfig, model: nn.Module, ds: Dataset, record: EpochRecord
) -> ModelMeta:
    """The metadata written beside a trained ``model``: what it is, plus its metrics."""
    extra = {
        "metrics": record.to_dict(),
        "dataset": dataset_ref(config.data),  # absolute, so evaluate finds it anywhere
        "recipe": config.recipe,
        "params": sum(p.numel() for p in model.parameters()),
    }
    return untrained_meta(config, ds).replace(extra=extra)


def _check_same(saved: dict, config: TrainConfig, out: Path) -> None:
    now = config.to_dict()
    diff = [
        f"{k}={now.get(k)!r} (run: {saved.get(k)!r})"
        for k in sorted(set(saved) | set(now))
        if k not in RESUME_FREE and saved.get(k) != now.get(k)
    ]
    if diff:
        raise ConfigError(
            f"cannot resume {out}: {', '.join(diff)} differ from the run's config; "
            "allowed: the run's own config (or a new -o directory)"
        )


def _check_fresh(out: Path, overwrite: bool) -> None:
    """Refuse to start a run over one already in ``out`` (``overwrite``: clear it first)."""
    if not out.is_dir():
        return
    held = sorted(p.name for p in out.iterdir() if p.name != LOCK_FILE)
    if not held:
        return
    if not overwrite:
        state = "a finished or killed run" if (out / "config.json").is_file() else "files"
        raise ConfigError(
            f"-o={str(out)!r} already holds {state} ({', '.join(held[:4])}"
            f"{', ...' if len(held) > 4 else ''}); allowed: --resume {out} to continue it, "
            "--overwrite to replace it, or a new directory"
        )
    for name in RUN_FILES:
        (out / name).unlink(missing_ok=True)


def fit(
    config: TrainConfig,
    out_dir: str | Path,
    resume: bool = False,
    overwrite: bool = False,
    data: Dataset | None = None,
    on_batch: Callable[[int, int, int], None] | None = None,
) -> Iterator[EpochRecord]:
    """Train ``config`` into the run directory ``out_dir``; yield one record per epoch.

    Each :class:`EpochRecord` holds ``epoch``, ``train_loss``, ``train_acc``, ``val_loss``,
    ``val_acc``, ``lr``, ``img_per_s`` and ``seconds``; ``metrics.jsonl`` holds their
    ``to_dict()``. ``data`` is ``config.data``'s training split when the caller has already
    loaded it (:func:`load_training_split`); ``None`` reads it from disk. ``on_batch(epoch,
    batch, batches)`` runs after every optimiser step (progress displays; 1-based).

    With ``resume=True`` a run directory holding a resume state continues after its last
    finished epoch (its records are not yielded again), refusing a config that differs
    from the saved one; an empty one starts fresh. Without it, a directory that already holds files is refused unless
    ``overwrite=True`` (which removes the previous run's files). The directory is locked
    for the run's life: a second ``fit`` on it raises ConfigError naming the holder.

    Example:
        >>> for rec in fit(TrainConfig(data="synthetic", epochs=2), "runs/demo"):  # doctest: +SKIP
        ...     print(rec.epoch, rec.val_acc)
    """
    out = Path(out_dir)
    config = config.resolved()
    created = dist.init_if_launched(pick_device(config.device).type)
    try:
        if dist.is_main():  # the only writer; other ranks never touch the directory
            check_writable(out, "-o", kind="dir")
            with exclusive_lock(out / LOCK_FILE, f"run directory {out}"):
                if not resume:
                    _check_fresh(out, overwrite)
                yield from _fit_locked(config, out, resume, data, on_batch)
        else:
            yield from _fit_locked(config, out, resume, data, on_batch)
    finally:
        dist.shutdown(created)


def _fit_locked(
    config: TrainConfig,
    out: Path,
    resume: bool,
    data: Dataset | None,
    on_batch: Callable[[int, int, int], None] | None = None,
) -> Iterator[EpochRecord]:
    """The body of :func:`fit`, run while the directory is locked."""
    train, val = load_splits(config, data)
    model = build_run_model(config, train)
    trainer = make_trainer(model, config, train, val, load_teacher(config))
    history: list[EpochRecord] = []
    best = None
    state_path = out / STATE_FILE
    if resume and state_path.is_file():
        _check_same(read_run_config(out), config, out)
        info = load_state(state_path, model, trainer.optimizer)
        if trainer.scaler is not None and info.get("scaler"):
            trainer.scaler.load_state_dict(info["scaler"])
        history = [
            EpochRecord.from_dict(r, f"{state_path}: history[{i}]")
            for i, r in enumerate(info["history"])
        ]
        best = info["best_val_acc"]
    elif dist.is_main():
        atomic_write_json(out / "config.json", config.to_dict())
    for epoch in range(len(history) + 1, config.epochs + 1):
        hook = None if on_batch is None else _batch_hook(on_batch, epoch, trainer.steps_per_epoch)
        record = trainer.run_epoch(epoch, hook)
        history.append(record)
        if dist.is_main():
            improved = best is None or record.score > best
            best = record.score if improved else best
            _write_epoch(out, config, trainer, train, record, history, best, improved)
        yield record


def _batch_hook(
    on_batch: Callable[[int, int, int], None], epoch: int, batches: int
) -> Callable[[nn.Module], None]:
    """The trainer's ``on_step(model)`` as ``on_batch(epoch, batch, batches)``: it counts."""
    steps = iter(range(1, batches + 1))
    return lambda _model: on_batch(epoch, next(steps, batches), batches)


def _write_epoch(
    out: Path,
    config: TrainConfig,
    trainer,
    train: Dataset,
    record: EpochRecord,
    history: list[EpochRecord],
    best: float,
    improved: bool,
) -> None:
    """last (and best) model file, then the resume state, then metrics.jsonl."""
    model = trainer.model
    meta = trained_meta(config, model, train, record)
    save_model(out / "last.safetensors", model, meta)
    if improved:
        save_model(out / "best.safetensors", model, meta)
    info = {
        "epoch": record.epoch,
        "epoch_seed": record.epoch + 1,  # data order and RNG are re-derived from this
        "history": [r.to_dict() for r in history],
        "best_val_acc": best,
        "scaler": trainer.scaler.state_dict() if trainer.scaler is not None else None,
    }
    save_state(out / STATE_FILE, model, trainer.optimizer, info)
    lines = "".join(json.dumps(r.to_dict(), sort_keys=True) + "\n" for r in history)
    atomic_write_bytes(out / "metrics.jsonl", lines.encode())


def finetune(
    model: nn.Module,
    config: TrainConfig,
    on_step: Callable[[nn.Module], None] | None = None,
    data: Dataset | None = None,
) -> Iterator[EpochRecord]:
    """Train an in-memory ``model`` for ``config.epochs`` on ``config.data``; yield records.

    No run directory is written. ``on_step(model)`` runs after every optimiser step
    (compression uses it to keep pruned weights at zero). ``data``: the training split
    already loaded, as in :func:`fit`. The model ends in eval mode, contiguous, on the
    device it came from.

    Example:
        >>> for rec in finetune(model, TrainConfig(data="synthetic", epochs=1)):  # doctest: +SKIP
        ...     print(rec.val_acc)
    """
    c = config.resolved()
    home = next(model.parameters()).device
    train, val = load_splits(c, data)
    trainer = make_trainer(model, c, train, val, load_teacher(c))
    try:
        for epoch in range(1, c.epochs + 1):
            yield trainer.run_epoch(epoch, on_step)
    finally:
        model.to(device=home, memory_format=torch.contiguous_format).eval()
