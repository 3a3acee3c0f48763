"""CLI verbs profile, measure and calibrate."""

import json

import pytest

from squeezelab.cli import main


def _json(capsys):
    return json.loads(capsys.readouterr().out)


def test_profile_json_is_the_profile(capsys):
    assert main(["profile", "squeezenet1_0", "--json"]) == 0
    d = _json(capsys)
    assert d["macs"] == 818_924_576 and d["input_shape"] == [3, 224, 224]
    assert d["hardware"] == "horowitz-45nm" and d["layers"]


def test_profile_table_and_flags(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    assert (
        main(
            [
                "profile",
                "squeezenet1_1",
                "--input",
                "3x227x227",
                "--weight-bits",
                "8",
                "--hardware",
                "cortex-m7",
                "--wide",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "features.3.expand3x3" in out and "387,747,520" in out and "cortex-m7" in out


def test_profile_compare(capsys):
    assert main(["profile", "--compare", "squeezenet1_0", "squeezenet1_1", "--json"]) == 0
    rows = _json(capsys)
    assert [r["name"] for r in rows] == ["squeezenet1_0", "squeezenet1_1"]
    assert "layers" not in rows[0]
    assert main(["profile", "--compare", "squeezenet1_0", "alexnet"]) == 0
    assert "alexnet" in capsys.readouterr().out


def test_profile_spec_file(tmp_path, capsys):
    spec = tmp_path / "s.yaml"
    spec.write_text("sr: 0.25\nbypass: simple\n")
    assert main(["profile", str(spec), "--json"]) == 0
    assert _json(capsys)["unsupported"] == []


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (["profile", "squeezenet1_0", "--hardware", "tpu9"], "unknown hardware profile"),
        (["profile", "squeezenet1_0", "--hardware", "missing.yaml"], "does not exist"),
        (["profile", "squeezenet1_0", "--input", "3x224"], "--input"),
        (["profile", "squeezenet1_0", "--weight-bits", "0"], "--weight-bits"),
    ],
)
def test_profile_errors_exit_2(capsys, argv, match):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert match in err and "Traceback" not in err


def test_measure_json(capsys):
    argv = [
        "measure",
        "squeezenet_small",
        "--runs",
        "2",
        "--warmup",
        "1",
        "--threads",
        "1",
        "--hardware",
        "horowitz-45nm",
        "--json",
    ]
    assert main(argv) == 0
    d = _json(capsys)
    assert [m["channels_last"] for m in d["measurements"]] == [False, True]
    assert d["measurements"][0]["threads"] == 1 and d["predicted_ms"] > 0


@pytest.mark.slow
def test_calibrate_writes_profile(tmp_path, capsys):
    out = tmp_path / "host.yaml"
    assert main(["calibrate", "-o", str(out), "--quick", "--threads", "1"]) == 0
    assert "host" in capsys.readouterr().out
    assert main(["profile", "squeezenet_small", "--hardware", str(out), "--json"]) == 0
    assert _json(capsys)["hardware"] == "host"
