"""benchmarks/talk_claims.py: the quick run writes what docs/reproduction.md quotes, and the
DRAM-vs-arithmetic energy ratio on the page is the one the hardware profiles give."""

import json
import subprocess
import sys

import pytest

from squeezelab.analysis import load_hardware
from tests.benchmarks.conftest import ROOT, run_quick

PAGE = ROOT / "docs" / "reproduction.md"
RESULT = ROOT / "benchmarks" / "results" / "talk_claims.json"
SECTION = "## The talk's three reasons for small models"


def section() -> str:
    text = PAGE.read_text()
    assert SECTION in text
    return text.split(SECTION, 1)[1].split("\n## ", 1)[0]


@pytest.mark.slow
def test_quick_run_measures_the_three_claims(tmp_path):
    data = run_quick("talk_claims", tmp_path, "--img", str(tmp_path), timeout=None)
    assert set(data["host"]["cpu_flags"]) >= {"avx2", "avx512f"}
    ids = ["squeezenet_small", "squeezenet_small-sr0.5"]
    assert list(data["models"]) == ids
    small, wide = (data["models"][i]["params"] for i in ids)
    assert small == 187_370 and wide > small  # SR 0.5 squeezes less: more parameters

    air = {r["id"]: r for r in data["air"]["rows"]}
    for i in ids:
        r = air[i]
        assert r["failed"] == {}
        # int8 files hold about a byte per weight, the 6-bit .sqz less, fp32 four
        assert r["sqz_bytes"] < r["onnx_int8_bytes"] < r["onnx_fp32_bytes"]
        assert r["sqz_bits_per_param"] == pytest.approx(8 * r["sqz_bytes"] / r["params"], abs=1e-3)
    # a quick run converts one .tflite (the slowest step) and says so for the other
    assert small <= air[ids[0]]["tflite_int8_bytes"] < 2 * small
    assert "tflite_int8_bytes" not in air[ids[1]] and "tflite" in air[ids[1]]["skipped"]
    assert air[ids[1]]["sqz_bytes"] > air[ids[0]]["sqz_bytes"]
    trained = data["air"]["trained"]
    assert trained["trained"] and trained["params"] == small
    # trained weights are far from uniform, so they code below the seeded init's ~6 bits
    assert trained["sqz_bytes"] < air["squeezenet_small"]["sqz_bytes"]

    ddp = {r["id"]: r for r in data["ddp"]["rows"]}
    assert data["ddp"]["settings"]["nproc"] == 2 and data["ddp"]["settings"]["backend"] == "gloo"
    for i in ids:
        r = ddp[i]
        # what the comm hook was handed: every gradient, fp32, once per step
        assert r["grad_bytes_per_step"] == r["params_x4_bytes"] == 4 * data["models"][i]["params"]
        assert r["buckets_per_step"] >= 1 and r["step_s"] > 0 and r["compute_s"] > 0
        assert 0 < r["allreduce_share"] < 1
    assert ddp[ids[1]]["grad_bytes_per_step"] > ddp[ids[0]]["grad_bytes_per_step"]

    dram = {r["id"]: r for r in data["dram"]["rows"]}
    for i in ids:
        p = dram[i]["profiles"]["horowitz-45nm/32bit"]
        assert p["dram_bytes"] >= p["weight_dram_bytes"] == 4 * data["models"][i]["params"]
        assert p["energy_pj"] == pytest.approx(
            p["energy_dram_pj"] + p["energy_compute_pj"] + p["energy_onchip_pj"]
        )
    summary = data["summary"]
    for part in ("air", "ddp", "dram"):
        assert data["verdicts"][part]["verdict"] in ("held", "not held", "not resolved")
        assert part in summary
    for name in ("air", "ddp", "dram"):
        assert (tmp_path / f"talk_claims_{name}.png").stat().st_size > 0


def test_energy_ratio_on_the_page_is_the_profiles():
    hw = load_hardware("horowitz-45nm")
    ratio = 4 * hw.dram_pj_per_byte / hw.mac_pj["fp32"]  # a 32-bit DRAM word vs an fp32 MAC
    eyeriss = load_hardware("eyeriss")
    ratio16 = 2 * eyeriss.dram_pj_per_byte / eyeriss.mac_pj["fp16"]
    text = section()
    assert f"{4 * hw.dram_pj_per_byte:g} pJ" in text and f"{hw.mac_pj['fp32']:g} pJ" in text
    assert f"{ratio:.0f}x" in text and f"{ratio16:.0f}x" in text
    assert ratio >= 100  # the talk's "100x+"
    quoted = json.loads(RESULT.read_text())["dram"]["energy_ratio"]
    assert quoted["horowitz-45nm/32bit"]["dram_over_mac"] == pytest.approx(ratio, abs=0.05)
    assert quoted["eyeriss/16bit"]["dram_over_mac"] == pytest.approx(ratio16, abs=0.05)


def test_page_quotes_the_committed_result():
    """The section shows every plot, states each claim's verdict as the JSON does, and its
    tables are the ones ``--plots-only`` prints from the committed JSON."""
    text = section()
    data = json.loads(RESULT.read_text())
    assert not data["quick"]
    for letter, part in zip("abc", ("air", "ddp", "dram"), strict=True):
        assert f"img/talk_claims_{part}.png" in text
        assert (ROOT / "docs" / "img" / f"talk_claims_{part}.png").is_file()
        (line,) = [ln for ln in text.splitlines() if ln.startswith(f"- **({letter})")]
        assert f": {data['verdicts'][part]['verdict']}." in line
    s = data["summary"]
    assert f"{s['air']['alexnet_fp32_over_squeezenet1_0_sqz']:,.0f}x" in text
    assert f"{s['ddp']['alexnet_over_squeezenet1_0']['grad_bytes_per_step']:.1f}x" in text


def test_page_tables_are_the_json(tmp_path):
    script = ROOT / "benchmarks" / "talk_claims.py"
    cmd = [
        sys.executable,
        str(script),
        "--plots-only",
        "--out",
        str(RESULT),
        "--img",
        str(tmp_path),
    ]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120, check=True)
    rows = [ln for ln in done.stdout.splitlines() if ln.startswith("| ")]
    assert len(rows) > 30
    text = section()
    assert [r for r in rows if r not in text] == []


def test_a_quick_run_never_overwrites_the_committed_json(capsys):
    from benchmarks.talk_claims import main

    with pytest.raises(SystemExit) as e:
        main(["--quick"])
    assert e.value.code == 2 and "give --out" in capsys.readouterr().err
