"""The compression ladder: the smallest setting within tolerance wins, every rung recorded,
losses reported and replaced, fine-tuning bounded by the time budget."""

import pytest
import torch

from squeezelab.compress import FinetuneStep
from squeezelab.compress.ladder import (
    LadderDone,
    LadderResult,
    Rung,
    RungStep,
    choose_compression,
    ladder_rungs,
    ladder_steps,
)
from squeezelab.compress.prune import prunable
from squeezelab.errors import ConfigError, FormatError
from squeezelab.models import ModelMeta, load_model
from squeezelab.models.squeezenet import SqueezeNet
from squeezelab.train import TrainConfig
from tests.compress.test_sqz import TINY

# synthetic: 28x28, 10 classes; wide enough that weights, not BatchNorm, fill the file and a
# float layer has more than 256 distinct values (what the fake scorer reads)
SPEC = TINY.replace(input_size=28, num_classes=10, stem_channels=32, base_e=32, incr_e=32)
TUNE = TrainConfig(data="synthetic", epochs=1, batch_size=64, train_subset=64, val_fraction=0.0)


def _model():
    torch.manual_seed(0)
    return SqueezeNet(SPEC), ModelMeta.for_spec(SPEC, "squeezenet_small")


def fake_score(loss_of):
    """A scorer reading the setting off the module: its sparsity and codebook width.

    ``loss_of(sparsity, bits)`` is the top-1 the setting loses against 0.9 (fp32: bits None).
    """

    def score(model, dataset):
        weights = list(prunable(model).values())
        zeros = sum(int((w == 0).sum()) for w in weights) / sum(w.numel() for w in weights)
        widest = max(len(torch.unique(w[w != 0])) for w in weights)
        bits = None if widest > 256 else next(b for b in range(2, 9) if widest <= 2**b)
        level = min((0.0, 0.33, 0.5, 0.67), key=lambda s: abs(s - zeros))
        return 0.9 - (0.0 if bits is None else loss_of(level, bits))

    return score


class Val:  # the ladder only scores it (through the fake) and counts it
    def __len__(self):
        return 100


def _run(loss_of, **kw):
    model, meta = _model()
    records = list(ladder_steps(model, meta, Val(), score=fake_score(loss_of), **kw))
    assert isinstance(records[-1], LadderDone)
    return records


def _pruning_costs(level, bits):
    """67 % loses 3 points, 50 % 1, 33 % 0.2; 4-bit sharing another 0.4."""
    return {0.67: 0.03, 0.5: 0.01, 0.33: 0.002, 0.0: 0.0}[level] + (0.004 if bits <= 4 else 0)


def test_picks_the_smallest_setting_within_tolerance_and_records_the_rejected():
    records = _run(_pruning_costs, finetune=TUNE)
    done = records[-1]
    ladder = done.ladder
    rungs = list(ladder)
    assert rungs[0].setting == "67% pruned, 4-bit, fine-tuned"  # the smallest file first
    assert rungs[-1].setting == "dense, 8-bit"  # the largest, the fallback, last
    chosen = ladder.chosen
    passing = [r for r in rungs if _pruning_costs(r.sparsity, r.bits) <= 0.005]
    assert chosen == passing[0] and ladder.within_tolerance  # the first (smallest) that passes
    before = rungs[: rungs.index(chosen)]
    assert before and all(r.tried and r.why.startswith("lost ") for r in before)
    assert {0.67, 0.5} <= {r.sparsity for r in before}  # the larger prunings tried, and lost
    after = rungs[rungs.index(chosen) + 1 :]
    assert after and all(not r.tried and r.why.startswith("not needed") for r in after)
    assert chosen.val_accuracy == pytest.approx(0.9 - _pruning_costs(chosen.sparsity, chosen.bits))
    assert sum(isinstance(r, RungStep) for r in records) == len(rungs)
    assert any(isinstance(r, FinetuneStep) for r in records)
    # the chosen file is what load_model decodes, pruned as recorded
    assert len(done.compressed.data) == chosen.bytes
    stored = done.compressed.header["compression"]["sparsity"]
    assert stored == pytest.approx(chosen.sparsity, abs=0.02)
    again = LadderResult.from_dict(ladder.to_dict())
    assert again == ladder and again.chosen == chosen


def test_a_step_that_loses_accuracy_is_reported_and_replaced(tmp_path):
    def sharing_hurts(level, bits):  # pruning is free here, sharing below 8 bits is not
        return 0.0 if bits == 8 else 0.02

    ladder = _run(sharing_hurts, finetune=TUNE, rungs=[Rung(0.67, 4, True), Rung(0.0, 8, False)])
    lost, chosen = ladder[-1].ladder.rungs
    assert lost.why == "lost 2.00 points (allowed 0.5)" and not lost.chosen
    assert chosen.setting == "dense, 8-bit" and chosen.chosen
    path = tmp_path / "m.sqz"
    path.write_bytes(ladder[-1].compressed.data)
    decoded, _ = load_model(path)
    assert all((w != 0).all() for w in prunable(decoded).values())  # the loss not shipped


def test_no_setting_within_tolerance_keeps_the_most_accurate_and_says_so():
    ladder = _run(lambda level, bits: 0.05 - bits / 1000, rungs=ladder_rungs(finetune=False))
    ladder = ladder[-1].ladder
    assert not ladder.within_tolerance
    assert ladder.chosen.bits == 8 and "most accurate" in ladder.chosen.why
    assert "NO setting" in ladder.line()


def test_out_of_time_falls_back_to_a_rung_without_finetuning():
    now = [0.0]

    def clock():  # every call takes a second: the budget runs out before any fine-tuning
        now[0] += 1.0
        return now[0]

    records = _run(
        lambda level, bits: 0.002 if level == 0 else 0.0,
        finetune=TUNE,
        budget_s=5.0,
        img_per_s=1.0,  # 64 images an epoch: about two minutes planned per pruned rung
        clock=clock,
    )
    ladder = records[-1].ladder
    assert not any(isinstance(r, FinetuneStep) for r in records)  # no time was spent training
    assert ladder.out_of_time and ladder.within_tolerance
    rungs = list(ladder)
    skipped = [r for r in rungs[: rungs.index(ladder.chosen)] if r.finetuned]
    assert skipped and all(r.why.startswith("out of time") for r in skipped)
    assert not ladder.chosen.finetuned and ladder.chosen.sparsity == 0


def test_ladder_rungs_bounds_and_fallback():
    assert ladder_rungs()[-1] == Rung(0.0, 8, False)
    assert {r.sparsity for r in ladder_rungs()} == {0.67, 0.5, 0.33, 0.0}
    assert all(not r.finetune for r in ladder_rungs(finetune=False))
    fixed = ladder_rungs(sparsity=0.5, bits=4)
    assert fixed == (Rung(0.5, 4, True), Rung(0.0, 8, False))
    assert {r.bits for r in ladder_rungs(bits=6)} == {6, 8}


def test_user_errors_and_damaged_records():
    model, meta = _model()
    with pytest.raises(ConfigError, match="tolerance"):
        choose_compression(model, meta, Val(), tolerance=2)
    with pytest.raises(ConfigError, match="budget_s"):
        choose_compression(model, meta, Val(), budget_s=-1)
    good = _run(_pruning_costs, rungs=ladder_rungs(finetune=False))[-1].ladder.to_dict()
    for rung in good["rungs"]:
        rung["chosen"] = False
    with pytest.raises(FormatError, match="compression ladder"):
        LadderResult.from_dict(good)
    with pytest.raises(FormatError, match="compression ladder"):
        LadderResult.from_dict({"rungs": "x"})
