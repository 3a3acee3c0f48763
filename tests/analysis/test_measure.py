"""Measured latency and calibration on this host (quick settings)."""

import pytest
import torch

from squeezelab.analysis import calibrate, load_hardware, measure_latency, profile
from squeezelab.analysis.calibrate import probe_net
from squeezelab.analysis.hardware import save_hardware
from squeezelab.errors import ConfigError
from squeezelab.models import create_model


def test_measure_latency_fields_and_threads_restored():
    before = torch.get_num_threads()
    model = create_model("squeezenet_small")
    r = measure_latency(model, (1, 28, 28), threads=1, warmup=1, runs=3, channels_last=True)
    assert r["threads"] == 1 and r["runs"] == 3 and r["channels_last"]
    assert 0 < r["min_ms"] <= r["median_ms"] <= r["p90_ms"]
    assert torch.get_num_threads() == before
    assert next(model.parameters()).is_contiguous()  # the model itself is not converted


def test_measure_rejects_bad_arguments():
    with pytest.raises(ConfigError, match="runs"):
        measure_latency(create_model("squeezenet_small"), (1, 28, 28), runs=0)


def test_probe_net_covers_every_op_class():
    ops = {x.op for x in profile(probe_net(16, 3), (3, 56, 56)).layers}
    assert {"conv", "conv1x1", "dwconv", "gconv", "linear", "elementwise", "pool", "concat",
            "copy", "view"} <= ops  # fmt: skip


@pytest.mark.slow
def test_quick_calibration_writes_a_loadable_profile(tmp_path):
    hw = calibrate(threads=1, quick=True)
    assert hw.runtime == "torch-eager" and hw.threads == 1
    assert hw.peak_macs_per_s["fp32"] > 1e8 and hw.dram_bytes_per_s > 1e8
    assert max(hw.efficiency.values()) == 1.0
    save_hardware(hw, tmp_path / "host.yaml")
    again = load_hardware(tmp_path / "host.yaml")
    p = profile(create_model("squeezenet_small"), hardware=again)
    assert p.hardware == "host" and p.latency_ms > 0
