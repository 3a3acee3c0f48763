"""A hardware profile names the runtime its device runs (``deploy``), validated."""

import pytest

from squeezelab.analysis import load_hardware
from squeezelab.analysis.hardware import hardware_from_dict
from squeezelab.errors import FormatError


def test_shipped_profiles_name_their_runtime():
    assert load_hardware("cortex-m7").deploy == ("tflite-micro",)
    assert load_hardware("cortex-m7").tflm
    assert load_hardware("phone-cpu").deploy == ("litert", "onnxruntime")
    assert not load_hardware("phone-cpu").tflm
    assert load_hardware("eyeriss").deploy == ()


def test_old_profile_without_deploy_reads_its_runtime():
    d = load_hardware("cortex-m7").to_dict()
    del d["deploy"]
    assert hardware_from_dict(d).deploy == ("tflite-micro",)
    d["runtime"] = "torch-eager"
    assert hardware_from_dict(d).deploy == ()


def test_deploy_round_trips_through_yaml(tmp_path):
    import yaml

    hw = load_hardware("phone-cpu")
    assert hardware_from_dict(yaml.safe_load(hw.to_yaml())).deploy == hw.deploy


@pytest.mark.parametrize("bad", ["coreml", ["litert", "tvm"], [{"a": 1}], 3])
def test_unknown_deploy_runtime_is_one_format_error(bad):
    d = {**load_hardware("cortex-m7").to_dict(), "deploy": bad}
    with pytest.raises(FormatError, match=r"deploy=.*allowed .*tflite-micro.*litert.*onnxruntime"):
        hardware_from_dict(d, "my.yaml")
