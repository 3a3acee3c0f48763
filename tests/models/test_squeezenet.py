import pytest
import torch
from torch import nn

from squeezelab.models import (
    SqueezeNetSpec,
    create_model,
    expand,
    fire_channels,
    list_models,
    load_model,
)
from squeezelab.models.spec import SQUEEZENET1_0, SQUEEZENET1_1
from squeezelab.models.squeezenet import Fire, SqueezeNet, load_torchvision_weights
from tests.conftest import n_params

# Published figures: REFERENCES.md (torchvision metadata; paper Table 1).
PUBLISHED_PARAMS = {"squeezenet1_0": 1_248_424, "squeezenet1_1": 1_235_496, "alexnet": 61_100_840}

# Table 1 of the paper at Caffe's 227x227 crop: layer -> (side, channels, params).
TABLE1 = {
    "conv1": (111, 96, 14_208),
    "maxpool1": (55, 96, 0),
    "fire2": (55, 128, 11_920),
    "fire3": (55, 128, 12_432),
    "fire4": (55, 256, 45_344),
    "maxpool4": (27, 256, 0),
    "fire5": (27, 256, 49_440),
    "fire6": (27, 384, 104_880),
    "fire7": (27, 384, 111_024),
    "fire8": (27, 512, 188_992),
    "maxpool8": (13, 512, 0),
    "fire9": (13, 512, 197_184),
    "conv10": (13, 1000, 513_000),
}


@pytest.mark.parametrize("name", sorted(PUBLISHED_PARAMS))
def test_exact_published_param_counts(name):
    assert n_params(create_model(name)) == PUBLISHED_PARAMS[name]


def _named_layer_outputs(model: SqueezeNet, x: torch.Tensor) -> dict:
    """Run features and conv10, naming each output as the paper's Table 1 does."""
    out, layer = {}, 1
    for m in model.features:
        x = m(x)
        if isinstance(m, nn.Conv2d):
            out["conv1"] = (x, n_params(m))
        elif isinstance(m, Fire):
            layer += 1
            out[f"fire{layer}"] = (x, n_params(m))
        elif isinstance(m, nn.MaxPool2d):
            out[f"maxpool{layer}"] = (x, 0)
    conv10 = model.classifier[1]
    out["conv10"] = (conv10(x), n_params(conv10))
    return out


def test_v1_0_matches_table1_at_227():
    model = create_model("squeezenet1_0").eval()
    got = _named_layer_outputs(model, torch.zeros(1, 3, 227, 227))
    assert list(got) == list(TABLE1)
    for name, (side, ch, params) in TABLE1.items():
        x, p = got[name]
        assert tuple(x.shape[1:]) == (ch, side, side), name
        assert p == params, name


def test_v1_0_sides_at_224():
    got = _named_layer_outputs(create_model("squeezenet1_0").eval(), torch.zeros(1, 3, 224, 224))
    sides = {k: v[0].shape[-1] for k, v in got.items()}
    assert (sides["conv1"], sides["fire2"], sides["fire4"], sides["fire5"], sides["fire9"]) == (
        109,
        54,
        54,
        27,
        13,
    )


def test_expand_agrees_with_module_shapes():
    for spec in (SQUEEZENET1_0, SQUEEZENET1_1, SQUEEZENET1_0.replace(input_size=227)):
        plan = expand(spec)
        got = _named_layer_outputs(
            SqueezeNet(spec).eval(), torch.zeros(1, 3, spec.input_size, spec.input_size)
        )
        assert got["conv1"][0].shape[-1] == plan.stem_out
        for f in plan.fires:
            assert got[f.name][0].shape[1:] == (f.out_channels, f.spatial, f.spatial)


def test_metaparameters_of_v1_0():
    # Section 5: base_e 128, incr_e 128, freq 2, pct_3x3 0.5, SR 0.125.
    e = [s_e1_e3[1] + s_e1_e3[2] for s_e1_e3 in fire_channels(SQUEEZENET1_0)]
    s = [c[0] for c in fire_channels(SQUEEZENET1_0)]
    assert e == [128, 128, 256, 256, 384, 384, 512, 512]
    assert s == [16, 16, 32, 32, 48, 48, 64, 64]


def test_default_spec_rebuilds_v1_0_and_short_name():
    assert SqueezeNetSpec() == SQUEEZENET1_0
    assert SQUEEZENET1_0.short_name == "sqz-b128-i128-f2-p50-sr125"
    assert SQUEEZENET1_1.short_name != SQUEEZENET1_0.short_name


def test_bypass_variants():
    simple = expand(SQUEEZENET1_0.replace(bypass="simple"))
    assert [f.name for f in simple.fires if f.bypass != "none"] == [
        "fire3",
        "fire5",
        "fire7",
        "fire9",
    ]
    complex_ = expand(SQUEEZENET1_0.replace(bypass="complex"))
    assert {f.name: f.bypass for f in complex_.fires}["fire2"] == "conv"
    assert all(f.bypass != "none" for f in complex_.fires)
    base = n_params(create_model("squeezenet1_0"))
    assert n_params(create_model("squeezenet1_0", bypass="simple")) == base  # identity adds nothing
    assert n_params(create_model("squeezenet1_0", bypass="complex")) > base
    y = create_model("squeezenet1_0", bypass="complex")(torch.zeros(1, 3, 224, 224))
    assert y.shape == (1, 1000)


@pytest.mark.parametrize("name", ["squeezenet1_0", "squeezenet1_1", "squeezenet_small"])
@pytest.mark.parametrize("chans,size", [(1, 28), (3, 32)])
def test_family_at_small_inputs(name, chans, size):
    model = create_model(name, num_classes=10, in_chans=chans, input_size=size).eval()
    assert model(torch.randn(2, chans, size, size)).shape == (2, 10)


@pytest.mark.parametrize("name", list_models())
def test_forward_every_registered_model(name):
    from squeezelab.models import model_info

    info = model_info(name)
    model, meta = load_model(name)
    with torch.no_grad():
        y = model(torch.randn(1, *meta.input_shape))
    if info.task == "detection":  # the raw ConvDet map: K * (C + 1 + 4) channels per cell
        assert y.shape[1] % (info.num_classes + 5) == 0 and y.dim() == 4
        return
    assert y.shape == (1, info.num_classes)


# torchvision's SqueezeNet, written out layer by layer (torchvision is not a dependency).
class _TvFire(nn.Module):
    def __init__(self, inplanes, squeeze, e1, e3):
        super().__init__()
        self.inplanes = inplanes
        self.squeeze = nn.Conv2d(inplanes, squeeze, kernel_size=1)
        self.squeeze_activation = nn.ReLU(inplace=True)
        self.expand1x1 = nn.Conv2d(squeeze, e1, kernel_size=1)
        self.expand1x1_activation = nn.ReLU(inplace=True)
        self.expand3x3 = nn.Conv2d(squeeze, e3, kernel_size=3, padding=1)
        self.expand3x3_activation = nn.ReLU(inplace=True)

    def forward(self, x):
        x = self.squeeze_activation(self.squeeze(x))
        return torch.cat(
            [
                self.expand1x1_activation(self.expand1x1(x)),
                self.expand3x3_activation(self.expand3x3(x)),
            ],
            1,
        )


class _TvSqueezeNet(nn.Module):
    def __init__(self, version):
        super().__init__()
        pool = lambda: nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True)  # noqa: E731
        if version == "1_0":
            self.features = nn.Sequential(
                nn.Conv2d(3, 96, kernel_size=7, stride=2),
                nn.ReLU(inplace=True),
                pool(),
                _TvFire(96, 16, 64, 64),
                _TvFire(128, 16, 64, 64),
                _TvFire(128, 32, 128, 128),
                pool(),
                _TvFire(256, 32, 128, 128),
                _TvFire(256, 48, 192, 192),
                _TvFire(384, 48, 192, 192),
                _TvFire(384, 64, 256, 256),
                pool(),
                _TvFire(512, 64, 256, 256),
            )
        else:
            self.features = nn.Sequential(
                nn.Conv2d(3, 64, kernel_size=3, stride=2),
                nn.ReLU(inplace=True),
                pool(),
                _TvFire(64, 16, 64, 64),
                _TvFire(128, 16, 64, 64),
                pool(),
                _TvFire(128, 32, 128, 128),
                _TvFire(256, 32, 128, 128),
                pool(),
                _TvFire(256, 48, 192, 192),
                _TvFire(384, 48, 192, 192),
                _TvFire(384, 64, 256, 256),
                _TvFire(512, 64, 256, 256),
            )
        self.classifier = nn.Sequential(
            nn.Dropout(p=0.5),
            nn.Conv2d(512, 1000, kernel_size=1),
            nn.ReLU(inplace=True),
            nn.AdaptiveAvgPool2d((1, 1)),
        )
        for p in self.parameters():  # non-zero biases so that a missed bias would show
            nn.init.normal_(p, std=0.05)

    def forward(self, x):
        return torch.flatten(self.classifier(self.features(x)), 1)


@pytest.mark.parametrize("version", ["1_0", "1_1"])
def test_torchvision_checkpoint_loads_strict(tmp_path, version):
    tv = _TvSqueezeNet(version).eval()
    path = tmp_path / f"squeezenet{version}.pth"
    torch.save(tv.state_dict(), path)
    ours = load_torchvision_weights(create_model(f"squeezenet{version}"), str(path)).eval()
    assert {k: v.shape for k, v in ours.state_dict().items()} == {
        k: v.shape for k, v in tv.state_dict().items()
    }
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        assert torch.equal(ours(x), tv(x))


def test_torchvision_loader_refuses_pickled_code(tmp_path):
    from squeezelab.errors import FormatError

    class Evil:
        def __reduce__(self):
            return (exec, ("raise SystemExit('pwned')",))

    path = tmp_path / "evil.pth"
    torch.save({"x": Evil()}, path)
    with pytest.raises(FormatError, match="weights-only"):
        load_torchvision_weights(create_model("squeezenet1_1"), str(path))


def test_alexnet_small_starts_with_logits_of_usable_scale():
    # Without BatchNorm, PyTorch's default init left the logits ~0.01 on unit-variance
    # input and SGD sat at chance for epochs; He init keeps them of order one.
    torch.manual_seed(0)
    model = create_model("alexnet_small").eval()
    with torch.no_grad():
        logits = model(torch.randn(64, 1, 28, 28))
    assert 0.1 < logits.std().item() < 10
