import math

import pytest
import torch

from squeezelab.errors import ConfigError, UnknownNameError
from squeezelab.models import create_model
from squeezelab.train import TrainConfig, lr_at
from squeezelab.train.schedule import make_optimizer, param_groups


def test_poly_is_the_caffe_solver():
    assert lr_at(0, 100, 0.04, "poly") == 0.04
    assert lr_at(50, 100, 0.04, "poly", power=2.0) == pytest.approx(0.04 * 0.25)
    assert lr_at(99, 100, 0.04, "linear") == pytest.approx(0.0004)


def test_warmup_then_cosine():
    lrs = [lr_at(s, 100, 1.0, "cosine", warmup=10) for s in range(100)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)
    assert lrs[55] == pytest.approx((1 + math.cos(math.pi * 0.5)) / 2)
    assert all(a >= b for a, b in zip(lrs[9:], lrs[10:], strict=False))


def test_onecycle_peaks_then_anneals():
    lrs = [lr_at(s, 100, 0.1, "onecycle") for s in range(100)]
    assert lrs[0] == pytest.approx(0.1 / 25) and max(lrs) == pytest.approx(0.1)
    assert lrs[-1] < 1e-3 and lrs.index(max(lrs)) == 30


def test_weight_decay_on_weights_only():
    model = create_model("squeezenet_small")
    decay, no_decay = param_groups(model, 5e-4)
    assert all(p.ndim > 1 for p in decay["params"]) and decay["weight_decay"] == 5e-4
    bn = [m.weight for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    ids = {id(p) for p in no_decay["params"]}
    assert no_decay["weight_decay"] == 0 and all(id(p) in ids for p in bn)
    opt = make_optimizer(model, TrainConfig(optimizer="adamw").resolved())
    assert isinstance(opt, torch.optim.AdamW)


def test_recipe_fills_unset_fields_and_explicit_wins():
    c = TrainConfig(recipe="squeezenet-caffe", lr=0.01).resolved()
    assert (c.optimizer, c.momentum, c.weight_decay, c.schedule, c.poly_power) == (
        "sgd",
        0.9,
        2e-4,
        "poly",
        1.0,
    )
    assert c.lr == 0.01
    assert TrainConfig.from_dict(c.to_dict()) == c


def test_bad_config_names_field_and_range():
    with pytest.raises(
        ConfigError, match=r"label_smoothing=1.5 is invalid: allowed a number in \[0, 1\)"
    ):
        TrainConfig(label_smoothing=1.5).resolved()
    with pytest.raises(UnknownNameError, match="recipe 'fmnist'"):
        TrainConfig(recipe="fmnist").resolved()
    with pytest.raises(ConfigError, match="unknown train config field"):
        TrainConfig.from_dict({"learning_rate": 1})
