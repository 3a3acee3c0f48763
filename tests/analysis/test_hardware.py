"""Hardware profiles: shipped files load, sources are cited, bad files give clear errors."""

import pytest

from squeezelab.analysis import Hardware, list_hardware, load_hardware, profile
from squeezelab.analysis.hardware import PROFILE_DIR, hardware_from_dict, save_hardware
from squeezelab.analysis.roofline import layer_traffic
from squeezelab.errors import FormatError, UnknownNameError
from squeezelab.models import create_model


def test_shipped_profiles_load_and_cite_sources():
    names = list_hardware()
    assert {"horowitz-45nm", "eyeriss", "cortex-m7", "phone-cpu"} <= set(names)
    for name in names:
        hw = load_hardware(name)
        assert isinstance(hw, Hardware) and hw.name == name and hw.runtime
        assert "Sources:" in (PROFILE_DIR / f"{name}.yaml").read_text()


def test_horowitz_table():
    hw = load_hardware("horowitz-45nm")
    assert hw.mac_pj == {"int8": 0.23, "fp16": 1.5, "fp32": 4.6}
    assert hw.dram_pj_per_byte == 640 / 4 and hw.sram_pj_per_byte == 10 / 8


def test_eyeriss_relative_energies():
    hw = load_hardware("eyeriss")
    word = 2  # bytes per 16-bit access
    assert hw.sram_pj_per_byte * word == 6 * hw.mac_pj["fp16"]
    assert hw.dram_pj_per_byte * word == 200 * hw.mac_pj["fp16"]


def test_microcontroller_limits():
    hw = load_hardware("cortex-m7")
    assert hw.sram_bytes == 512 * 1024 and hw.flash_bytes == 2 * 1024 * 1024
    p = profile(create_model("squeezenet_small"), hardware=hw, weight_bits=8, activation_bits=8)
    assert p.peak_activation_bytes <= hw.sram_bytes and p.model_bytes <= hw.flash_bytes


def test_unknown_name_lists_close_matches():
    with pytest.raises(UnknownNameError, match="eyeriss"):
        load_hardware("eyeris")


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("name: x\n", "missing field"),
        ("- 1\n", "must be a mapping"),
        ("{{{", "not valid YAML"),
        ("name: x\nruntime: r\nbogus: 1\n", "unknown field"),
    ],
)
def test_malformed_profile_files(tmp_path, text, match):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(FormatError, match=match):
        load_hardware(path)


def test_bad_values_name_the_field():
    d = load_hardware("horowitz-45nm").to_dict()
    with pytest.raises(FormatError, match="dram_bytes_per_s"):
        hardware_from_dict({**d, "dram_bytes_per_s": -1})
    with pytest.raises(FormatError, match="efficiency.warp"):
        hardware_from_dict({**d, "efficiency": {"warp": 1.0}})
    with pytest.raises(FormatError, match="does not exist"):
        load_hardware("/nonexistent/host.yaml")


def test_save_and_reload_round_trip(tmp_path):
    hw = load_hardware("phone-cpu")
    save_hardware(hw, tmp_path / "p.yaml", "a comment")
    again = load_hardware(tmp_path / "p.yaml")
    assert again.to_dict() == hw.to_dict()
    assert (tmp_path / "p.yaml").read_text().startswith("# a comment\n")


def test_spill_rule_and_roofline():
    hw = load_hardware("horowitz-45nm")  # 512 KB on-chip buffer
    fits = layer_traffic(10**6, 0, "conv", 1000, 10_000, 10_000, hw)
    assert fits.dram_bytes == 4000  # weights once; activations stay on chip
    spills = layer_traffic(10**6, 0, "conv", 1000, 100_000, 100_000, hw)
    assert spills.dram_bytes == 4000 + 800_000  # 800 KB working set > 512 KB
    assert spills.energy_dram_pj == spills.dram_bytes * 160
    compute_ms = 10**6 / 256e9 * 1e3
    assert fits.latency_ms == pytest.approx(compute_ms)
    assert spills.latency_ms == pytest.approx(804_000 / 12.8e9 * 1e3)  # memory-bound


def test_int8_falls_back_to_the_next_wider_type():
    hw = load_hardware("eyeriss")  # 16-bit only
    assert hw.per_dtype(hw.mac_pj, 8) == hw.mac_pj["fp16"]
    assert hw.per_dtype(hw.mac_pj, 32) == hw.mac_pj["fp16"]


def test_onchip_bandwidth_term_adds_time():
    import dataclasses

    hw = load_hardware("horowitz-45nm")
    assert hw.onchip_bytes_per_s is None
    slow = dataclasses.replace(hw, onchip_bytes_per_s=1e9)
    a = layer_traffic(0, 1000, "elementwise", 0, 1000, 1000, hw)
    b = layer_traffic(0, 1000, "elementwise", 0, 1000, 1000, slow)
    assert b.latency_ms - a.latency_ms == pytest.approx(8000 / 1e9 * 1e3)
    with pytest.raises(FormatError, match="onchip_bytes_per_s"):
        hardware_from_dict({**hw.to_dict(), "onchip_bytes_per_s": 0})


def test_one_packaged_yaml_loader_for_profiles_and_presets(tmp_path):
    from squeezelab.io.packaged import load_packaged_yaml, packaged_names

    assert "eyeriss" in packaged_names("profiles") and "mcu-256k" in packaged_names("presets")
    data, path = load_packaged_yaml("profiles", "eyeriss", "hardware profile")
    assert data["name"] == "eyeriss" and path.name == "eyeriss.yaml"
    with pytest.raises(UnknownNameError, match="mcu-256k"):
        load_packaged_yaml("presets", "mcu-265k", "search space")
    with pytest.raises(FormatError, match="does not exist"):
        load_hardware(tmp_path / "nope.yaml")
