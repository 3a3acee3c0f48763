"""Measured latency and calibration on this host (quick settings)."""

import pytest
import torch

from squeezelab.analysis import calibrate, load_hardware, measure_latency, profile
from squeezelab.analysis.calibrate import MAX_EFFICIENCY, _fit, probe_net
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
    assert {
        "conv",
        "conv1x1",
        "dwconv",
        "gconv",
        "linear",
        "elementwise",
        "pool",
        "concat",
        "copy",
        "view",
    } <= ops


def test_fit_recovers_efficiency_and_overhead():
    points = [(x, 0.0, x / 0.25 + 1e-5) for x in (1e-5, 2e-5, 4e-5, 8e-5)]
    eff, overhead, err = _fit(points, 0.0)
    assert eff == pytest.approx(0.25) and overhead == pytest.approx(1e-5) and err < 1e-20


def test_fit_bounds_an_overhead_only_class():
    # Layers whose time is all overhead, with a sliver of noise that grows with compute
    # (this once fitted efficiency ~1e4, which made every other class round to 0.0).
    points = [(x, 0.0, 1e-4 + x * 1e-6) for x in (1e-8, 2e-8, 4e-8)]
    eff, overhead, _ = _fit(points, 0.0)
    assert eff == MAX_EFFICIENCY and overhead == pytest.approx(1e-4, rel=1e-3)


@pytest.mark.slow
def test_quick_calibration_writes_a_loadable_profile(tmp_path):
    hw = calibrate(threads=1, quick=True)
    assert hw.runtime == "torch-eager" and hw.threads == 1
    assert hw.peak_macs_per_s["fp32"] > 1e8 and hw.dram_bytes_per_s > 1e8
    assert max(hw.efficiency.values()) == 1.0 and min(hw.efficiency.values()) > 0
    save_hardware(hw, tmp_path / "host.yaml")
    again = load_hardware(tmp_path / "host.yaml")
    p = profile(create_model("squeezenet_small"), hardware=again)
    assert p.hardware == "host" and p.latency_ms > 0
