import dataclasses
import json

import pytest
from torch import nn

from squeezelab.advise import SAVING_METRICS, advise
from squeezelab.advise.surgery import as_1x1, swap
from squeezelab.analysis import load_hardware, profile
from squeezelab.cli import main
from squeezelab.models import SQUEEZENET1_1, SqueezeNet, SqueezeNetSpec, create_model

ALEXNET_SHAPE = (3, 224, 224)


@pytest.fixture(scope="module")
def alexnet():
    return create_model("alexnet")


@pytest.fixture(scope="module")
def alexnet_advice(alexnet):
    return advise(alexnet, ALEXNET_SHAPE, name="alexnet")


@pytest.fixture(scope="module")
def squeezenet():
    return create_model("squeezenet1_0")


@pytest.fixture(scope="module")
def squeezenet_advice(squeezenet):
    return advise(squeezenet, name="squeezenet1_0")


def _check_savings(adv, model, hardware=None):
    """Every saving equals before - after of two profiles taken here, metric by metric."""
    shape = tuple(adv.input_shape)
    before = profile(model, shape, hardware)
    measured = 0
    for s in adv.suggestions:
        if not s.saving:
            assert s.variant is None  # distillation: nothing structural to measure
            continue
        after = profile(s.variant, shape, hardware, s.weight_bits, s.activation_bits)
        assert s.saving == {m: getattr(before, m) - getattr(after, m) for m in SAVING_METRICS}
        measured += 1
    assert measured >= 3


@pytest.mark.slow  # AlexNet at 224x224: 61M weights
def test_alexnet_names_fc_layers_and_proposes_conv_head(alexnet, alexnet_advice):
    top = [r.name for r in alexnet_advice.top["params"]]
    assert top[:2] == ["classifier.1", "classifier.4"]
    assert alexnet_advice.top["params"][0].share == pytest.approx(37_752_832 / 61_100_840)
    head = alexnet_advice.suggestions[0]
    assert head.technique == "conv-head"
    assert {"classifier.1", "classifier.4", "classifier.6"} == set(head.targets)
    assert head.message.startswith("classifier.1 holds 62% of the parameters")
    # the head built by hand: features -> dropout -> 1x1 conv 256->1000 -> ReLU -> GAP
    by_hand = nn.Sequential(
        alexnet.features,
        nn.Dropout(),
        nn.Conv2d(256, 1000, 1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
    )
    before, after = profile(alexnet, ALEXNET_SHAPE), profile(by_hand, ALEXNET_SHAPE)
    assert head.saving["params"] == before.params - after.params == 61_100_840 - 2_726_696
    assert head.saving["macs"] == before.macs - after.macs > 0
    assert f"removes {head.saving['params'] / 1e6:.3g}M" in head.message


@pytest.mark.slow  # AlexNet at 224x224: 61M weights
def test_alexnet_playbook_order_and_savings(alexnet, alexnet_advice):
    techniques = [s.technique for s in alexnet_advice.suggestions]
    for t in (
        "conv-head",
        "kernel-reduction",
        "channel-reduction",
        "downsample-later",
        "downsample-earlier",
        "depthwise",
        "distillation",
        "compression",
    ):
        assert t in techniques
    later = next(s for s in alexnet_advice.suggestions if s.technique == "downsample-later")
    assert later.targets == ["features.2", "features.5"] and later.saving["macs"] < 0
    kinds = [type(m).__name__ for m in later.variant.features]
    assert kinds[:6] == ["Conv2d", "ReLU", "Conv2d", "ReLU", "MaxPool2d", "Conv2d"]
    assert techniques[-3:] == ["distillation", "compression", "compression"]
    assert alexnet_advice.spec is None and not any(
        s.modified_spec for s in alexnet_advice.suggestions
    )
    _check_savings(alexnet_advice, alexnet)


def test_squeezenet_gets_measurable_spec_changes(squeezenet, squeezenet_advice):
    spec_changes = [s for s in squeezenet_advice.suggestions if s.modified_spec is not None]
    assert {s.technique for s in spec_changes} >= {"kernel-reduction", "channel-reduction"}
    before = profile(squeezenet)
    for s in spec_changes:  # rebuild each from its printed spec, independently of the advice
        after = profile(SqueezeNet(SqueezeNetSpec.from_dict(s.modified_spec)))
        assert s.saving == {m: getattr(before, m) - getattr(after, m) for m in SAVING_METRICS}
    assert any(v > 0 for s in spec_changes for v in s.saving.values())
    kernel = next(s for s in spec_changes if s.technique == "kernel-reduction")
    assert kernel.modified_spec["pct_3x3"] == 0.25 and kernel.saving["params"] > 0
    later = next(s for s in spec_changes if s.technique == "downsample-later")
    assert later.modified_spec["pool_after"] == [1, 5, 9] and later.saving["macs"] < 0
    _check_savings(squeezenet_advice, squeezenet)


def test_every_saving_on_a_microcontroller():
    model, hw = create_model("alexnet_small"), load_hardware("cortex-m7")
    adv = advise(model, (1, 28, 28), hw)
    assert any("exceeds cortex-m7" in line for line in adv.limits)
    _check_savings(adv, model, hw)
    json.dumps(adv.to_dict())  # plain data


def test_depthwise_only_where_the_target_runs_it_well():
    model = create_model("alexnet_small")
    good = advise(model, (1, 28, 28), "cortex-m7")
    assert "depthwise" in [s.technique for s in good.suggestions]
    base = load_hardware("cortex-m7")
    slow = dataclasses.replace(base, efficiency={**base.efficiency, "dwconv": 0.001})
    poor = advise(model, (1, 28, 28), slow)
    assert "depthwise" not in [s.technique for s in poor.suggestions]


def test_advise_leaves_the_model_unchanged(alexnet):
    m = create_model("alexnet_small")
    state = {k: v.clone() for k, v in m.state_dict().items()}
    kinds = [type(x) for x in m.modules()]
    advise(m, (1, 28, 28))
    assert kinds == [type(x) for x in m.modules()]
    assert all((state[k] == v).all() for k, v in m.state_dict().items())
    variant = swap(m, {"features.6": as_1x1(m.features[6])})
    assert m.features[6].kernel_size == (3, 3) and variant.features[6].kernel_size == (1, 1)
    assert variant.features[0].weight is m.features[0].weight  # shared, not copied


def test_cli_json_savings_are_profile_differences(capsys, tmp_path):
    spec_path = tmp_path / "spec.yaml"
    spec_path.write_text(SQUEEZENET1_1.replace(input_size=64, num_classes=10).to_yaml())
    assert main(["advise", str(spec_path), "--hardware", "phone-cpu", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["hardware"] == "phone-cpu" and data["spec"]["input_size"] == 64
    before = profile(SqueezeNet(SqueezeNetSpec.from_dict(data["spec"])), None, "phone-cpu")
    printed = [s for s in data["suggestions"] if s["modified_spec"]]
    assert printed
    for s in printed:
        after = profile(SqueezeNet(SqueezeNetSpec.from_dict(s["modified_spec"])), None, "phone-cpu")
        assert s["saving"] == {m: getattr(before, m) - getattr(after, m) for m in SAVING_METRICS}


def test_cli_model_file_gets_spec_changes(capsys, tmp_path):
    from squeezelab.models import ModelMeta, save_model

    model = create_model("squeezenet1_1", num_classes=10, input_size=64)
    path = tmp_path / "m.safetensors"
    save_model(path, model, ModelMeta.for_spec(model.spec, "squeezenet1_1"))
    assert main(["advise", str(path), "--hardware", "cortex-m7", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["model"] == "squeezenet1_1" and data["input_shape"] == [3, 64, 64]
    pct = next(s for s in data["suggestions"] if s["technique"] == "kernel-reduction")
    assert pct["modified_spec"]["pct_3x3"] == 0.25 and pct["saving"]["params"] > 0


def test_cli_renders_spec_to_try(capsys):
    assert main(["advise", "squeezenet_small", "--top", "3"]) == 0
    out = capsys.readouterr().out
    assert "largest layers by parameters" in out and "spec to try" in out
    assert "pct_3x3: 0.25" in out and "compression" in out


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["advise", "alexnet9"], "unknown model 'alexnet9'"),
        (["advise", "alexnet_small", "--hardware", "tpu9"], "'tpu9'"),
        (["advise", "alexnet_small", "--input", "3x28"], "--input='3x28' is invalid"),
        (["advise", "alexnet_small", "--input", "3x28x28"], "does not fit the model"),
    ],
)
def test_cli_user_errors_exit_2_with_one_line(capsys, argv, needle):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert needle in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
