"""The training loop: one readable function per epoch, yielding a record per epoch.

Data stays a uint8 tensor on the training device; each global batch is drawn from a
permutation seeded by (seed, epoch), augmented as one batch, and cut into per-rank
shards, so a run under DDP sees the same global batches as a single process
(Goyal et al. 2017, "large minibatch SGD": averaged gradients of the shards equal the
gradient of the global batch). Every random draw is re-seeded from (seed, epoch, rank)
at the start of an epoch, which makes a resumed run bit-identical to an uninterrupted one.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn

from squeezelab.data import Dataset, augment, normalize
from squeezelab.errors import ConfigError
from squeezelab.train import dist
from squeezelab.train.config import TrainConfig, augment_ops
from squeezelab.train.detect import make_task
from squeezelab.train.records import EpochRecord
from squeezelab.train.schedule import lr_at, make_optimizer


def pick_device(name: str = "auto") -> torch.device:
    """``auto`` -> the first CUDA device when present, else CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as e:
        raise ConfigError(f"device={name!r} is invalid: allowed auto, cpu, cuda, cuda:N") from e
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device={name!r} is unavailable: this machine has no CUDA device")
    return device


def amp_dtype(amp: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype: bf16 on CPUs with native bf16 (AVX-512 BF16 / AMX), AMP on CUDA."""
    if amp == "off":
        return None
    if amp == "fp16":
        return torch.float16
    if amp == "bf16":
        return torch.bfloat16
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    # emulated bf16 on AVX2-only CPUs is several times slower than fp32: stay in fp32 there
    return torch.bfloat16 if torch.ops.mkldnn._is_mkldnn_bf16_supported() else None


def epoch_seed(seed: int, epoch: int, rank: int = 0) -> int:
    """The seed of everything random in ``epoch`` (1-based) on ``rank``."""
    return (seed * 1_000_003 + epoch * 7919 + rank * 104_729) % (2**63)


@dataclass
class Trainer:
    """Everything one run needs; built by :func:`prepare`, stepped by :meth:`run_epoch`."""

    config: TrainConfig  # resolved
    model: nn.Module  # the module being trained (weights live here)
    forward: nn.Module  # what is called: model, or its DDP / compiled wrapper
    optimizer: torch.optim.Optimizer
    train: Dataset  # on device
    val: Dataset | None  # on device
    device: torch.device
    dtype: torch.dtype | None  # autocast dtype, None = fp32
    scaler: torch.amp.GradScaler | None
    teacher: tuple[nn.Module, tuple, tuple] | None  # (module, mean, std)
    steps_per_epoch: int
    rank: int = 0
    world: int = 1
    task: object | None = None  # None: classification; else loss, correct, validate (detect.py)

    @property
    def memory_format(self) -> torch.memory_format:
        return torch.channels_last if self.config.channels_last else torch.contiguous_format

    def loss(self, logits: torch.Tensor, y: torch.Tensor, x_uint8: torch.Tensor) -> torch.Tensor:
        c = self.config
        if self.task is not None:  # y: the batch's rows of the task's targets
            return self.task.loss(logits, y)
        ce = F.cross_entropy(logits.float(), y, label_smoothing=c.label_smoothing)
        if self.teacher is None:
            return ce
        teacher, mean, std = self.teacher
        with torch.no_grad():
            t = teacher(normalize(x_uint8, mean, std, self.memory_format)).float()
        temp = c.distill_temperature
        kd = (
            F.kl_div(
                F.log_softmax(logits.float() / temp, 1),
                F.log_softmax(t / temp, 1),
                reduction="batchmean",
                log_target=True,
            )
            * temp
            * temp
        )
        return (1 - c.distill_alpha) * ce + c.distill_alpha * kd

    def run_epoch(
        self, epoch: int, on_step: Callable[[nn.Module], None] | None = None
    ) -> EpochRecord:
        """Train one epoch (1-based), evaluate on the validation split, return the record."""
        c, dev = self.config, self.device
        t0 = time.perf_counter()
        torch.manual_seed(epoch_seed(c.seed, epoch, self.rank))  # dropout
        g = torch.Generator().manual_seed(epoch_seed(c.seed, epoch))  # same on every rank
        n, bs = len(self.train), c.batch_size
        local = bs // self.world
        perm = torch.randperm(n, generator=g)
        ops = augment_ops(c.augment)
        total = c.epochs * self.steps_per_epoch
        warmup = round(c.warmup_epochs * self.steps_per_epoch)
        self.forward.train()
        loss_sum = torch.zeros((), device=dev)
        correct = torch.zeros((), device=dev, dtype=torch.int64)
        lr = c.lr
        for i in range(self.steps_per_epoch):
            step = (epoch - 1) * self.steps_per_epoch + i
            idx = perm[i * bs : (i + 1) * bs].to(dev)
            xb = augment(self.train.images[idx], ops, g, c.crop_padding)
            yb = self.train.labels[idx]
            xb = xb[self.rank * local : (self.rank + 1) * local]
            yb = yb[self.rank * local : (self.rank + 1) * local]
            x = normalize(xb, self.train.mean, self.train.std, self.memory_format)
            lr = lr_at(step, total, c.lr, c.schedule, warmup, c.poly_power)
            for group in self.optimizer.param_groups:
                group["lr"] = lr
            with torch.autocast(
                dev.type, dtype=self.dtype or torch.float32, enabled=self.dtype is not None
            ):
                logits = self.forward(x)
                loss = self.loss(logits, yb, xb)
            self.optimizer.zero_grad(set_to_none=True)
            if self.scaler is not None:
                self.scaler.scale(loss).backward()
                if c.grad_clip:
                    self.scaler.unscale_(self.optimizer)
                    nn.utils.clip_grad_norm_(self.model.parameters(), c.grad_clip)
                self.scaler.step(self.optimizer)
                self.scaler.update()
            else:
                loss.backward()
                if c.grad_clip:
                    nn.utils.clip_grad_norm_(self.model.parameters(), c.grad_clip)
                self.optimizer.step()
            if on_step is not None:
                on_step(self.model)
            loss_sum += loss.detach() * len(yb)
            if self.task is not None:
                correct += self.task.correct(logits, yb)
            else:
                correct += (logits.detach().argmax(1) == yb).sum()
        sums = torch.stack([loss_sum, correct.to(loss_sum.dtype)])
        dist.all_reduce_sum(sums)
        seen = self.steps_per_epoch * local * self.world
        train_s = time.perf_counter() - t0
        val_loss = val_acc = None
        if self.task is not None and self.val is not None and len(self.val):
            val_loss, val_acc = self.task.validate(  # val_acc: the task's metric (mAP@0.5)
                self.model, 128, dev, self.dtype, self.memory_format
            )
        elif self.val is not None and len(self.val):
            loss_v, confusion = eval_sums(
                self.model,
                self.val,
                512,
                dev,
                self.dtype,
                self.memory_format,
                self.rank,
                self.world,
            )
            val_loss = loss_v / len(self.val)
            val_acc = float(confusion.trace()) / len(self.val)
        return EpochRecord(
            epoch=epoch,
            train_loss=float(sums[0]) / seen,
            train_acc=float(sums[1]) / seen,
            val_loss=val_loss,
            val_acc=val_acc,
            lr=lr,
            img_per_s=seen / train_s,
            seconds=time.perf_counter() - t0,
        )


@torch.no_grad()
def eval_sums(
    model: nn.Module,
    ds: Dataset,
    batch_size: int,
    device: torch.device,
    dtype: torch.dtype | None = None,
    memory_format: torch.memory_format = torch.contiguous_format,
    rank: int = 0,
    world: int = 1,
    topk: int = 0,
    on_batch: Callable[[int, int], None] | None = None,
):
    """Summed cross-entropy and the confusion matrix (true x predicted) over ``ds``.

    Under DDP each rank evaluates every ``world``-th batch and the sums are all-reduced.
    With ``topk`` > 0 also returns the count of labels within the top ``topk`` logits.
    ``on_batch(images_done, images)`` runs after every batch (progress displays).
    """
    was_training = model.training
    model.eval()
    k = len(ds.classes)
    loss = torch.zeros((), device=device, dtype=torch.float64)
    confusion = torch.zeros(k * k, device=device, dtype=torch.int64)
    top = torch.zeros((), device=device, dtype=torch.int64)
    for start in range(rank * batch_size, len(ds), batch_size * world):
        xb = ds.images[start : start + batch_size].to(device)
        yb = ds.labels[start : start + batch_size].to(device)
        x = normalize(xb, ds.mean, ds.std, memory_format)
        with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            logits = model(x).float()
        loss += F.cross_entropy(logits, yb, reduction="sum").double()
        confusion += torch.bincount(yb * k + logits.argmax(1), minlength=k * k)
        if topk:
            hits = logits.topk(min(topk, k), 1).indices == yb[:, None]
            top += hits.any(1).sum()
        if on_batch is not None:
            on_batch(min(start + batch_size, len(ds)), len(ds))
    packed = torch.cat([loss[None], confusion.double(), top.double()[None]])
    dist.all_reduce_sum(packed)
    model.train(was_training)
    confusion = packed[1:-1].round().long().reshape(k, k).cpu()
    if topk:
        return float(packed[0]), confusion, int(packed[-1])
    return float(packed[0]), confusion


@dataclass(frozen=True)
class Scores:
    """What :func:`evaluate` measures on a dataset (accuracies are fractions)."""

    top1: float  # top-1 accuracy
    top5: float  # top-5 accuracy (top-k for fewer than 5 classes)
    loss: float  # mean cross-entropy
    per_class: dict[str, float]  # top-1 accuracy per class name
    confusion: list[list[int]]  # rows: true class, columns: predicted class
    n: int  # images scored

    def to_dict(self) -> dict:
        return asdict(self)


def evaluate(
    model: nn.Module,
    dataset: Dataset,
    batch_size: int = 512,
    device: str | torch.device | None = None,
    on_batch: Callable[[int, int], None] | None = None,
) -> Scores:
    """Top-1, top-5, mean loss, per-class accuracy and confusion matrix of ``model``.

    ``dataset`` supplies the normalisation; the model is returned to its original mode.
    ``on_batch(images_done, images)`` runs after every batch.

    Example:
        >>> evaluate(model, load_dataset("fashion-mnist", "test")).top1  # doctest: +SKIP
        0.93
    """
    dev = pick_device(str(device)) if device is not None else next(model.parameters()).device
    model.to(dev)
    loss, confusion, top5 = eval_sums(model, dataset, batch_size, dev, topk=5, on_batch=on_batch)
    n = max(1, len(dataset))
    per_class_n = confusion.sum(1).clamp_min(1)
    return Scores(
        top1=float(confusion.trace()) / n,
        top5=top5 / n,
        loss=loss / n,
        per_class={
            name: float(confusion[i, i] / per_class_n[i]) for i, name in enumerate(dataset.classes)
        },
        confusion=confusion.tolist(),
        n=len(dataset),
    )


def make_trainer(
    model: nn.Module,
    config: TrainConfig,
    train: Dataset,
    val: Dataset | None,
    teacher: tuple[nn.Module, tuple, tuple] | None = None,
) -> Trainer:
    """Move data and model to the device, set up AMP, DDP, compile and the optimiser.

    ``teacher`` is ``(module, mean, std)`` for distillation (``run.load_teacher`` reads it).
    """
    c = config
    rank, world = dist.rank_world()
    if c.batch_size % world:
        raise ConfigError(
            f"batch_size={c.batch_size} is invalid under {world} processes: "
            f"allowed a multiple of the world size {world}"
        )
    steps = len(train) // c.batch_size
    if steps < 1:
        raise ConfigError(
            f"batch_size={c.batch_size} is invalid: larger than the {len(train)} training "
            "images; allowed at most the training set size"
        )
    device = dist.local_device(pick_device(c.device))
    dtype = amp_dtype(c.amp, device)
    model.to(device)
    if c.channels_last:
        model.to(memory_format=torch.channels_last)
    train = replace(train, images=train.images.to(device), labels=train.labels.to(device))
    if val is not None:
        val = replace(val, images=val.images.to(device), labels=val.labels.to(device))
    optimizer = make_optimizer(model, c)
    scaler = (
        torch.amp.GradScaler("cuda") if dtype == torch.float16 and device.type == "cuda" else None
    )
    task = make_task(model, train, val, device)
    if task is not None and (teacher is not None or augment_ops(c.augment or "none")):
        raise ConfigError(
            f"teacher={c.teacher!r}, augment={c.augment!r} are invalid for detection: "
            "allowed no teacher and augment none (a crop or flip would move the boxes)"
        )
    forward = dist.wrap(model, device)
    if c.compile:
        forward = torch.compile(forward)
    if teacher is not None:
        teacher[0].to(device).eval()
        if c.channels_last:
            teacher[0].to(memory_format=torch.channels_last)
    return Trainer(
        c,
        model,
        forward,
        optimizer,
        train,
        val,
        device,
        dtype,
        scaler,
        teacher,
        steps,
        rank,
        world,
        task,
    )
