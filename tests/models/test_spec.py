import pytest

from squeezelab.errors import SpecError, UnknownNameError
from squeezelab.models import SqueezeNetSpec, create_model
from squeezelab.models.spec import SQUEEZENET_SMALL


@pytest.mark.parametrize(
    "spec",
    [SqueezeNetSpec(), SQUEEZENET_SMALL, SqueezeNetSpec(sr=0.75, bypass="simple", pct_3x3=0.25)],
)
def test_spec_round_trips(spec):
    assert SqueezeNetSpec.from_json(spec.to_json()) == spec
    assert SqueezeNetSpec.from_yaml(spec.to_yaml()) == spec
    assert SqueezeNetSpec.from_dict(spec.to_dict()) == spec


def test_spec_model_spec_round_trip():
    spec = SqueezeNetSpec(base_e=64, incr_e=32, sr=0.25, num_classes=10, in_chans=1, input_size=32)
    model = create_model(
        "squeezenet1_0",
        **{k: v for k, v in spec.to_dict().items() if k not in ("num_classes", "in_chans")},
        num_classes=10,
        in_chans=1,
    )
    assert model.spec == spec
    assert SqueezeNetSpec.from_json(model.spec.to_json()) == spec


def test_paper_SR_alias():
    assert SqueezeNetSpec.from_dict({"SR": 0.5}).sr == 0.5


@pytest.mark.parametrize(
    "field,value,message",
    [
        ("sr", 0, r"sr=0 is invalid: allowed a number in \(0, 1\]"),
        ("sr", 1.5, r"sr=1.5 is invalid: allowed a number in \(0, 1\]"),
        ("pct_3x3", -0.1, r"pct_3x3=-0.1 is invalid: allowed a number in \[0, 1\]"),
        ("pct_3x3", 1.2, r"pct_3x3=1.2 is invalid"),
        ("freq", 0, r"freq=0 is invalid: allowed an integer >= 1"),
        ("base_e", 0, r"base_e=0 is invalid: allowed an integer >= 1"),
        ("incr_e", -1, r"incr_e=-1 is invalid: allowed an integer >= 0"),
        ("num_fire", 0, r"num_fire=0 is invalid"),
        ("stem_channels", 2.5, r"stem_channels=2.5 is invalid"),
        ("stem_kernel", 0, r"stem_kernel=0 is invalid"),
        ("stem_stride", 0, r"stem_stride=0 is invalid"),
        ("num_classes", 0, r"num_classes=0 is invalid"),
        ("in_chans", 0, r"in_chans=0 is invalid"),
        ("input_size", 0, r"input_size=0 is invalid"),
        ("input_size", 5, r"input_size=5 is invalid: allowed >= 7"),
        ("dropout", 1.0, r"dropout=1.0 is invalid: allowed a number in \[0, 1\)"),
        (
            "bypass",
            "full",
            r"bypass='full' is invalid: allowed one of \['none', 'simple', 'complex'\]",
        ),
        ("batchnorm", "yes", r"batchnorm='yes' is invalid: allowed true or false"),
        (
            "pool_after",
            (1, 12),
            r"pool_after=\[1, 12\] is invalid: allowed distinct layer numbers from 1 \(conv1\) to 9",
        ),
        ("pool_after", (4, 4), r"pool_after=\[4, 4\] is invalid"),
        ("pct_3x3", 0.001, r"pct_3x3=0.001 rounds fire2's 3x3 expand channels to 0"),
        ("pct_3x3", 0.999, r"pct_3x3=0.999 rounds fire2's 1x1 expand channels to 0"),
    ],
)
def test_every_invalid_field_is_named(field, value, message):
    with pytest.raises(SpecError, match=message):
        SqueezeNetSpec().replace(**{field: value})


def test_too_many_pools_for_input():
    with pytest.raises(SpecError, match=r"pool_after=\[1, 4, 8\] is invalid for input_size=12"):
        SqueezeNetSpec(input_size=12)


def test_errors_raise_before_any_module_is_built():
    with pytest.raises(SpecError, match="sr=2"):
        create_model("squeezenet1_0", sr=2)


def test_unknown_field_lists_allowed():
    with pytest.raises(SpecError, match=r"unknown spec field\(s\) \['squeeze_ratio'\]; allowed"):
        SqueezeNetSpec.from_dict({"squeeze_ratio": 0.5})


def test_pct_3x3_extremes_drop_a_branch():
    import torch

    for pct in (0.0, 1.0):
        m = create_model("squeezenet_small", pct_3x3=pct).eval()
        assert m(torch.zeros(1, 1, 28, 28)).shape == (1, 10)


def test_unknown_model_suggests_close_names():
    with pytest.raises(UnknownNameError, match="did you mean .*squeezenet1_0"):
        create_model("squeezenet1_O")
