import pytest
import torch
from torch import nn

from squeezelab.errors import SpecError
from squeezelab.models import create_model
from squeezelab.models.shufflenet import channel_shuffle
from tests.conftest import n_params

# Published figures at 224x224 and 1000 classes: REFERENCES.md (torchvision metadata,
# papers; 724,056 is the imgclsmob re-implementation of 1.0-SqNxt-23).
EXACT_PARAMS = {
    "mobilenet_v1": 4_231_976,
    "mobilenet_v2": 3_504_872,
    "shufflenet_v2_x1_0": 2_278_604,
}
PUBLISHED_MACS = {
    "mobilenet_v1": 569e6,
    "mobilenet_v2": 300.8e6,
    "shufflenet_v2_x1_0": 145e6,
    "squeezenext_23": 285e6,  # ~282-287M
}
PEERS = sorted(PUBLISHED_MACS)


def conv_linear_macs(model: nn.Module, size: int = 224) -> int:
    """Multiply-accumulates of every Conv2d and Linear, counted with forward hooks."""
    total = 0

    def hook(m, _inputs, out):
        nonlocal total
        if isinstance(m, nn.Conv2d):
            kh, kw = m.kernel_size
            total += out.numel() * m.in_channels // m.groups * kh * kw
        else:
            total += out.numel() * m.in_features

    handles = [
        m.register_forward_hook(hook)
        for m in model.modules()
        if isinstance(m, nn.Conv2d | nn.Linear)
    ]
    with torch.no_grad():
        model.eval()(torch.zeros(1, 3, size, size))
    for h in handles:
        h.remove()
    return total


@pytest.mark.parametrize("name", sorted(EXACT_PARAMS))
def test_exact_published_param_counts(name):
    assert n_params(create_model(name)) == EXACT_PARAMS[name]


def test_squeezenext_23_within_one_percent_of_reimplementation():
    assert abs(n_params(create_model("squeezenext_23")) - 724_056) <= 0.01 * 724_056


@pytest.mark.parametrize("name", PEERS)
def test_macs_match_published(name):
    macs = conv_linear_macs(create_model(name))
    assert abs(macs - PUBLISHED_MACS[name]) <= 0.02 * PUBLISHED_MACS[name], macs


@pytest.mark.parametrize("name", PEERS)
def test_forward_small_input_and_other_heads(name):
    model = create_model(name, num_classes=10, in_chans=1).eval()
    with torch.no_grad():
        assert model(torch.randn(2, 1, 32, 32)).shape == (2, 10)


@pytest.mark.parametrize("name", ["mobilenet_v1", "mobilenet_v2", "squeezenext_23"])
def test_width_mult_changes_params_monotonically(name):
    counts = [n_params(create_model(name, width_mult=w)) for w in (0.25, 0.5, 0.75, 1.0, 1.4)]
    assert counts == sorted(counts) and len(set(counts)) == len(counts)


def test_shufflenet_width_table():
    counts = [
        n_params(create_model("shufflenet_v2_x1_0", width_mult=w)) for w in (0.5, 1.0, 1.5, 2.0)
    ]
    assert counts[0] == n_params(create_model("shufflenet_v2_x0_5")) == 1_366_792
    assert counts == sorted(counts) and len(set(counts)) == 4
    with pytest.raises(SpecError, match=r"width_mult must be one of \[0.5, 1.0, 1.5, 2.0\].*0.7"):
        create_model("shufflenet_v2_x1_0", width_mult=0.7)


@pytest.mark.parametrize("name", ["mobilenet_v1", "mobilenet_v2", "squeezenext_23"])
@pytest.mark.parametrize("bad", [0, -1.0, "wide", True])
def test_bad_width_mult_names_field_and_value(name, bad):
    with pytest.raises(SpecError, match=rf"width_mult must be a number > 0, got {bad!r}"):
        create_model(name, width_mult=bad)


def test_mobilenet_v2_rounds_channels_to_multiples_of_8():
    model = create_model("mobilenet_v2", width_mult=0.35)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert all(m.out_channels % 8 == 0 for m in convs)
    assert convs[0].out_channels == 16 and convs[-1].out_channels == 1280  # 32*.35 -> 16


def test_channel_shuffle_interleaves_groups():
    x = torch.arange(6.0).view(1, 6, 1, 1)
    assert channel_shuffle(x, 2).flatten().tolist() == [0, 3, 1, 4, 2, 5]


def test_squeezenext_blocks_follow_the_paper():
    model = create_model("squeezenext_23")
    block = model.features[3]  # a plain stage-1 block: C = 32
    kernels = [(s[0].out_channels, s[0].kernel_size) for s in block.body]
    assert kernels == [(16, (1, 1)), (8, (1, 1)), (16, (3, 1)), (16, (1, 3)), (32, (1, 1))]
    assert isinstance(block.shortcut, nn.Identity)
    assert sum(1 for m in model.features if type(m).__name__ == "SqnxtUnit") == 21
