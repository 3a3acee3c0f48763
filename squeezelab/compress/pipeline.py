"""Deep Compression end to end: prune, share, (fine-tune), entropy-code, account.

The three stages of Han et al. 2016 (arXiv 1510.00149) applied to a module and its model
metadata, producing the bytes of a ``.sqz`` file that ``squeezelab.models.load_model``
decodes to the very weight-shared module that was encoded, bit for bit. The byte layout is
``squeezelab.io.sqzfile``'s; here a module's tensors become its records.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from squeezelab.compress.accounting import Accounting, byte_accounting, reference_fp32_bytes
from squeezelab.compress.prune import SCOPES, prunable, prune_iterative
from squeezelab.compress.records import DoneStep, EncodeStep, EvaluateStep, PrunedStep, StepRecord
from squeezelab.compress.share import (
    bake,
    check_bits,
    finetune_centroids,
    share_weights,
    shared_tensors,
)
from squeezelab.errors import ConfigError
from squeezelab.io import atomic_write_bytes, sqzfile
from squeezelab.models import ModelMeta


@dataclass
class Compressed:
    """The result: the file's bytes, its header, the module it decodes to, the table."""

    data: bytes
    header: dict[str, Any]
    meta: ModelMeta
    model: nn.Module  # weight-shared, baked: what load_model returns for the file
    accounting: Accounting


def default_reference(meta: ModelMeta) -> str:
    """AlexNet for ImageNet-sized inputs, the AlexNet-style ``alexnet_small`` otherwise."""
    return "alexnet" if meta.input_size > 64 else "alexnet_small"


def write_sqz(path, data: bytes) -> int:
    """Write encoded bytes atomically; returns the file size in bytes."""
    atomic_write_bytes(path, data)
    return len(data)


def _meta_of(model: nn.Module, meta: ModelMeta | None) -> ModelMeta:
    """The metadata to store; a SqueezeNet's own spec wins (the module is what is encoded)."""
    if meta is not None and not isinstance(meta, ModelMeta):
        raise ConfigError(
            f"meta is a {type(meta).__name__}: allowed a ModelMeta "
            "(squeezelab.models.load_model returns one, ModelMeta.from_dict reads a dict)"
        )
    spec = getattr(model, "spec", None)
    if meta is None:
        if spec is None:
            raise ConfigError(
                "compress_model needs the meta of a model without a spec (load_model returns it)"
            )
        return ModelMeta.for_spec(spec)
    if spec is not None and spec != meta.spec:
        dims = {k: getattr(spec, k) for k in ("num_classes", "in_chans", "input_size")}
        same_io = dims["num_classes"] == meta.num_classes and dims["in_chans"] == meta.in_chans
        keep = {} if same_io else {"classes": None, "mean": (), "std": ()}
        meta = dataclasses.replace(meta, spec=spec, model_args={}, **dims, **keep)
    return ModelMeta.from_dict(meta.to_dict())  # what the decoder will check, checked now


def compress_steps(
    model: nn.Module,
    meta: ModelMeta | None = None,
    sparsity: float | None = 0.67,
    bits: int = 6,
    fc_bits: int | None = None,
    scope: str = "layer",
    prune_steps: int = 1,
    finetune=None,
    eval_dataset=None,
    fp16_plain: bool = False,
    reference: str | None = None,
    finetune_data=None,
    score=None,
) -> Iterator[StepRecord]:
    """Compress a copy of ``model``, yielding progress records; the last one holds the result.

    Records (``squeezelab.compress.records``, each with a ``stage``): a
    :class:`FinetuneStep` per fine-tuning epoch (stage "prune" or "share", the trainer's
    :class:`~squeezelab.train.EpochRecord` as ``record``); an :class:`EvaluateStep` per
    stage when ``eval_dataset`` is given; an :class:`EncodeStep` per tensor; and finally
    a :class:`DoneStep` holding the :class:`Compressed` result. Arguments as
    :func:`compress_model`; ``score(module, eval_dataset) -> fraction`` replaces top-1
    (a detector's mAP@0.5: ``squeezelab.compress.ladder.map50``).
    """
    if scope not in SCOPES:
        raise ConfigError(f"scope={scope!r} is invalid: allowed one of {list(SCOPES)}")
    check_bits(bits)
    if fc_bits is not None:
        check_bits(fc_bits, "fc_bits")
    meta = _meta_of(model, meta)
    model = copy.deepcopy(model).cpu()
    accuracy: dict[str, float] = {}
    tunes = finetune is not None and finetune.epochs > 0
    if tunes and finetune_data is None:  # read once for every round of fine-tuning
        from squeezelab.train import load_training_split

        finetune_data = load_training_split(finetune)

    def evaluate(stage: str) -> Iterator[EvaluateStep]:
        if eval_dataset is not None:
            from squeezelab.train import evaluate as run_eval

            model.eval()
            if score is not None:
                accuracy[stage] = float(score(model, eval_dataset))
            else:
                accuracy[stage] = run_eval(model, eval_dataset).top1
            yield EvaluateStep(stage, accuracy[stage])

    yield from evaluate("dense")
    if sparsity is not None:  # None: already pruned, keep its zeros
        steps = prune_iterative(model, sparsity, scope, prune_steps, finetune, finetune_data)
        yield from (rec for rec in steps if not isinstance(rec, PrunedStep))
    yield from evaluate("pruned")
    weights = prunable(model).values()
    removed = sum(int((w == 0).sum()) for w in weights) / max(1, sum(w.numel() for w in weights))
    widths = share_weights(model, bits, fc_bits)
    if tunes:
        yield from finetune_centroids(model, finetune, finetune_data)
    shared = shared_tensors(model, widths)
    bake(model)
    model.eval()
    if fp16_plain:  # round what is stored at 16 bits so the module equals the decoded one
        with torch.no_grad():
            for name, t in model.state_dict().items():
                if name not in widths and t.is_floating_point():
                    t.copy_(t.half().float())
    yield from evaluate("shared")
    if "shared" in accuracy:
        accuracy["coded"] = accuracy["shared"]  # lossless: the decoded module is identical
    by_name = {t.name: t for t in shared}
    encoded = []
    state = model.state_dict()
    for i, (name, tensor) in enumerate(state.items()):
        t = by_name.get(name)
        if t is not None:
            encoded.append(
                sqzfile.encode_shared(name, t.shape, t.bits, t.codebook, t.index, t.positions)
            )
        else:
            encoded.append(sqzfile.encode_plain(name, tensor.cpu().numpy(), fp16_plain))
        yield EncodeStep(name, i + 1, len(state))
    ref = reference or default_reference(meta)
    header = {
        "meta": meta.to_dict(),
        "compression": {
            "sparsity": round(removed, 4),
            "bits": bits,
            "fc_bits": fc_bits,
            "scope": scope,
            "prune_steps": prune_steps,
            "fp16_plain": fp16_plain,
        },
        "reference": {
            "model": ref,
            "fp32_bytes": reference_fp32_bytes(ref, meta.num_classes, meta.in_chans),
        },
        "accuracy": accuracy,
        # what "accuracy" holds: top-1, or the scorer's metric (a detector's map50)
        "metric": "top1" if score is None else getattr(score, "metric", "score"),
    }
    data = sqzfile.encode_sqz(header, encoded)
    full_header = sqzfile.parse_sqz_header(data)
    table = byte_accounting(full_header, [t.entry for t in encoded], len(data))
    result = Compressed(data, full_header, meta, model, table)
    yield DoneStep(result)


def compress_model(
    model: nn.Module,
    meta: ModelMeta | None = None,
    sparsity: float | None = 0.67,
    bits: int = 6,
    fc_bits: int | None = None,
    **kwargs,
) -> Compressed:
    """Prune, weight-share and entropy-code a model into ``.sqz`` bytes.

    Args:
        model: the trained module (not modified; a copy is compressed).
        meta: its metadata (from ``load_model``); a SqueezeNet's spec is enough without.
        sparsity: fraction of conv / linear weights removed (0.67: a third remain);
            ``None`` keeps the zeros of an already pruned model.
        bits: index width of conv layers (2..8); ``fc_bits`` that of linear layers.
        **kwargs: ``scope`` ("layer" | "global"), ``prune_steps``, ``finetune`` (a
            ``TrainConfig`` used after each pruning round and for the centroids),
            ``finetune_data`` (its training split, already loaded: not read again),
            ``eval_dataset`` (test accuracy per stage), ``fp16_plain``, ``reference``.

    Example:
        >>> from squeezelab.models import create_model
        >>> c = compress_model(create_model("squeezenet_small"))
        >>> c.accounting.file_bytes < 4 * 187370 / 10
        True
    """
    for rec in compress_steps(model, meta, sparsity, bits, fc_bits, **kwargs):
        if isinstance(rec, DoneStep):
            return rec.result
    raise AssertionError("compress_steps ended without a result")
