"""Profile totals against published counts and hand counts (REFERENCES.md)."""

import numpy
import pytest
import torch
from torch import nn

from squeezelab.analysis import profile
from squeezelab.errors import ConfigError
from squeezelab.models import create_model, list_models, model_info
from tests.conftest import n_params

# torchvision's "GFLOPS" for SqueezeNet are these multiply-add counts (REFERENCES.md).
PUBLISHED_MACS = {
    ("squeezenet1_0", 224): 818_924_576,
    ("squeezenet1_1", 224): 349_151_936,
    ("squeezenet1_0", 227): 832_667_936,
    ("squeezenet1_1", 227): 387_747_520,
}


@pytest.mark.parametrize(("name", "size"), sorted(PUBLISHED_MACS))
def test_squeezenet_macs_exact(name, size):
    p = profile(create_model(name), (3, size, size))
    assert p.macs == PUBLISHED_MACS[name, size]
    assert p.params == n_params(create_model(name))
    assert p.unsupported == []


def test_alexnet_within_one_percent_of_714m():
    p = profile(create_model("alexnet"), (3, 224, 224))
    assert abs(p.macs - 714e6) / 714e6 < 0.01
    assert p.model_bytes == 61_100_840 * 4


def test_depthwise_hand_count():
    # 3x3 depthwise on 32x10x10 (padding 1): 32*10*10 outputs, each 1 input channel * 9
    # taps; then 1x1 pointwise 32 -> 64: 64*10*10 outputs * 32 inputs.
    net = nn.Sequential(
        nn.Conv2d(32, 32, 3, padding=1, groups=32, bias=False),
        nn.Conv2d(32, 64, 1, bias=False),
        nn.Conv2d(64, 64, 3, padding=1, groups=4, bias=False),  # grouped: 16 inputs per output
    )
    p = profile(net, (32, 10, 10))
    assert [x.macs for x in p.layers] == [32 * 100 * 9, 64 * 100 * 32, 64 * 100 * 16 * 9]
    assert [x.op for x in p.layers] == ["dwconv", "conv1x1", "gconv"]
    assert p.params == 32 * 9 + 64 * 32 + 64 * 16 * 9


class TwoBranch(nn.Module):
    """x -> a (conv 4->8) -> [b1 (conv 8->6), b2 (conv 8->2)] -> cat -> + x'(conv 4->8) -> relu."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(4, 8, 1)
        self.b1 = nn.Conv2d(8, 6, 1)
        self.b2 = nn.Conv2d(8, 2, 3, padding=1)
        self.skip = nn.Conv2d(4, 8, 1)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x):
        a = self.a(x)
        y = torch.cat([self.b1(a), self.b2(a)], 1)
        return self.act(y + self.skip(x))


def test_peak_activation_two_branch_hand_count():
    # fp32 on 5x5: one channel = 25 elements = 100 bytes. In execution order:
    #   a:    x(4) a(8)                    = 12 ch (x stays: skip reads it later)
    #   b1:   x(4) a(8) b1(6)              = 18
    #   b2:   x(4) a(8) b1(6) b2(2)        = 20 (a dies after b2)
    #   cat:  x(4) b1(6) b2(2) y(8)        = 20
    #   skip: x(4) y(8) s(8)               = 20
    #   add:  y(8) s(8) z(8)               = 24  <- peak
    #   act:  z(8) in place                =  8
    p = profile(TwoBranch(), (4, 5, 5))
    assert [x.name for x in p.layers] == ["a", "b1", "b2", "cat", "skip", "add", "act"]
    assert [x.live_bytes for x in p.layers] == [1200, 1800, 2000, 2000, 2000, 2400, 800]
    assert p.peak_activation_bytes == 2400 and p.peak_layer == "add"
    assert profile(TwoBranch(), (4, 5, 5), activation_bits=8).peak_activation_bytes == 600
    cat = p.layers[3]
    assert cat.op == "concat" and cat.macs == 0 and cat.other_ops == 8 * 25


def test_elementwise_ops_are_not_macs():
    net = nn.Sequential(nn.BatchNorm2d(3), nn.ReLU(), nn.MaxPool2d(2), nn.AdaptiveAvgPool2d(1))
    p = profile(net, (3, 8, 8))
    assert p.macs == 0
    assert [x.other_ops for x in p.layers] == [192, 192, 3 * 16 * 4, 3 * 16]


class Weird(nn.Module):
    def forward(self, x):
        return torch.special.erf(x)


def test_unknown_ops_are_listed_by_name():
    net = nn.Sequential(nn.Conv2d(1, 2, 1), Weird(), nn.ReLU())
    p = profile(net, (1, 4, 4))
    assert p.unsupported == ["1.special_erf"]
    assert p.macs == 2 * 16


class Opaque(nn.Module):
    """A leaf whose output comes from no op the tracer can see."""

    def forward(self, x):
        return torch.from_numpy(numpy.zeros(tuple(x.shape), dtype="float32"))


def test_invisible_leaf_module_is_unsupported():
    p = profile(nn.Sequential(nn.Conv2d(1, 2, 1), Opaque()), (1, 4, 4))
    assert "1" in p.unsupported


def test_functional_conv_and_custom_leaf_are_counted():
    class Shuffle(nn.Module):
        def forward(self, x):
            b, c, h, w = x.shape
            return x.view(b, 2, c // 2, h, w).transpose(1, 2).reshape(b, c, h, w)

    class FConv(nn.Module):
        def __init__(self):
            super().__init__()
            self.weight = nn.Parameter(torch.randn(8, 2, 3, 3))

        def forward(self, x):
            return nn.functional.conv2d(x, self.weight, padding=1, groups=2)

    p = profile(nn.Sequential(FConv(), Shuffle()), (4, 6, 6))
    assert p.unsupported == []
    conv = p.layers[0]
    assert (conv.name, conv.op, conv.macs, conv.params) == (
        "0.conv2d",
        "gconv",
        8 * 36 * 2 * 9,
        144,
    )
    assert [x.op for x in p.layers] == ["gconv", "view", "view", "copy"]


@pytest.mark.parametrize("name", list_models())
def test_zoo_profiles_fully_understood(name):
    info = model_info(name)
    model = create_model(name)
    p = profile(model, (info.in_chans, info.input_size, info.input_size))
    assert p.unsupported == []
    assert p.params == n_params(model) == sum(x.params for x in p.layers)
    assert p.macs > 0 and p.latency_ms > 0 and p.energy_pj > 0
    assert p.peak_activation_bytes >= max(x.activation_out_bytes for x in p.layers)
    assert model.training  # left in its mode


def test_qualified_layer_names_for_advice():
    names = [x.name for x in profile(create_model("squeezenet1_0"), (3, 224, 224)).layers]
    assert "features.3.expand3x3" in names and "classifier.1" in names
    assert "features.3.cat" in names and "flatten" in names


def test_bits_scale_model_bytes_and_energy():
    m = create_model("squeezenet1_1")
    p32 = profile(m, (3, 224, 224))
    p8 = profile(m, (3, 224, 224), weight_bits=8, activation_bits=8)
    assert p8.model_bytes * 4 == p32.model_bytes == 1_235_496 * 4
    assert p8.energy_pj < p32.energy_pj / 4
    assert p8.peak_activation_bytes * 4 == p32.peak_activation_bytes


@pytest.mark.parametrize(
    ("kw", "field"),
    [({"input_shape": (3, 0, 4)}, "input_shape"), ({"weight_bits": 0}, "weight_bits")],
)
def test_bad_arguments_name_the_field(kw, field):
    with pytest.raises(ConfigError, match=field):
        profile(nn.Conv2d(3, 3, 1), **{"input_shape": (3, 4, 4), **kw})


def test_to_dict_is_json_ready():
    import json

    p = profile(create_model("squeezenet_small"))
    d = json.loads(json.dumps(p.to_dict()))
    assert d["macs"] == p.macs and len(d["layers"]) == len(p.layers)
    assert d["layers"][0]["name"] == "features.0"
