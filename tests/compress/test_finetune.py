"""Fine-tuning through squeezelab.train: pruned weights stay zero, centroids move."""

import pytest
import torch

from squeezelab.compress import (
    DoneStep,
    EncodeStep,
    EvaluateStep,
    FinetuneStep,
    PrunedStep,
    compress_model,
    compress_steps,
)
from squeezelab.compress.prune import prunable, prune_iterative
from squeezelab.compress.share import bake, finetune_centroids, share_weights, shared_tensors
from squeezelab.models.load import decode_sqz
from squeezelab.models.squeezenet import SqueezeNet
from squeezelab.train import TrainConfig
from tests.compress.test_sqz import TINY, assert_bit_identical

SPEC = TINY.replace(input_size=28, num_classes=10, batchnorm=True)  # synthetic: 28x28, 10 classes
CONFIG = TrainConfig(
    data="synthetic",
    epochs=1,
    batch_size=64,
    train_subset=256,
    val_fraction=0.05,
    lr=0.05,
    weight_decay=1e-3,
)


@pytest.mark.slow
def test_pruned_weights_stay_zero_through_finetune():
    model = SqueezeNet(SPEC)
    before = {n: w.detach().clone() for n, w in prunable(model).items()}
    records = list(prune_iterative(model, 0.7, steps=2, finetune_config=CONFIG))
    assert [(r.stage, r.round) for r in records[:-1]] == [("prune", 1), ("prune", 2)]
    assert isinstance(records[-1], PrunedStep)
    masks = records[-1].masks
    moved = 0
    for name, w in prunable(model).items():
        assert (w[~masks[name]] == 0).all(), name
        assert (~masks[name]).float().mean() >= 0.69
        moved += int((w[masks[name]] != before[name][masks[name]]).sum())
    assert moved > 0  # the survivors were trained


@pytest.mark.slow
def test_centroid_finetune_keeps_zeros_and_sharing():
    model = SqueezeNet(SPEC)
    list(prune_iterative(model, 0.5))
    widths = share_weights(model, 3)
    start = {t.name: t.codebook.copy() for t in shared_tensors(model, widths)}
    list(finetune_centroids(model, CONFIG))
    after = shared_tensors(model, widths)
    assert any((t.codebook != start[t.name][: len(t.codebook)]).any() for t in after)
    bake(model)
    for w in prunable(model).values():
        assert (w == 0).float().mean() >= 0.49
        assert len(torch.unique(w[w != 0])) <= 8


@pytest.mark.slow
def test_compress_with_finetune_and_per_stage_accuracy():
    from squeezelab.data import load_dataset

    test = load_dataset("synthetic", "test")
    c = compress_model(SqueezeNet(SPEC), None, 0.6, 4, finetune=CONFIG, eval_dataset=test)
    assert set(c.header["accuracy"]) == {"dense", "pruned", "shared", "coded"}
    assert [s["test_accuracy"] is not None for s in c.accounting.stages] == [True] * 4
    assert_bit_identical(c.model, decode_sqz(c.data)[0])


def test_compress_steps_records_and_one_read_of_the_training_split(monkeypatch):
    """Two pruning rounds and the centroids fine-tune on one read of the training split."""
    from squeezelab.data import load_dataset
    from tests.train.loads import count_loads

    test = load_dataset("synthetic", "test")
    loads = count_loads(monkeypatch)
    steps = list(
        compress_steps(
            SqueezeNet(SPEC), None, 0.5, 4, prune_steps=2, finetune=CONFIG, eval_dataset=test
        )
    )
    assert loads == {("synthetic", "train"): 1}
    tunes = [r for r in steps if isinstance(r, FinetuneStep)]
    assert [(r.stage, r.round, r.record.epoch) for r in tunes] == [
        ("prune", 1, 1),
        ("prune", 2, 1),
        ("share", None, 1),
    ]
    # the dict layout these records had: the epoch record's fields beside stage and round
    assert tunes[0].to_dict() == {"stage": "prune", "round": 1, **tunes[0].record.to_dict()}
    assert list(tunes[2].to_dict())[:2] == ["stage", "epoch"]
    evals = [r.to_dict() for r in steps if isinstance(r, EvaluateStep)]
    assert [(e["stage"], e["of"]) for e in evals] == [
        ("evaluate", "dense"),
        ("evaluate", "pruned"),
        ("evaluate", "shared"),
    ]
    encodes = [r for r in steps if isinstance(r, EncodeStep)]
    assert encodes[-1].to_dict() == {
        "stage": "encode",
        "tensor": encodes[-1].tensor,
        "done": len(encodes),
        "total": len(encodes),
    }
    assert isinstance(steps[-1], DoneStep) and steps[-1].stage == "done"
    assert steps[-1].result.header["accuracy"]["coded"] == evals[-1]["top1"]
