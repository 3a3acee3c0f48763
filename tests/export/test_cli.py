import json

import numpy as np
from PIL import Image

from squeezelab.cli import main
from squeezelab.export import read_onnx_meta


def _int8_argv(out, *extra) -> list[str]:
    """``export squeezenet_small --int8`` on 8 calibration images, as JSON."""
    return [
        "export",
        "squeezenet_small",
        "-o",
        str(out),
        "--int8",
        "--calib-size",
        "8",
        "--json",
        *extra,
    ]


def test_export_int8_random_calibration_says_so(tmp_path, capsys):
    out = tmp_path / "s.onnx"
    rc = main(_int8_argv(out, "--settings", "U8S8/minmax"))
    assert rc == 0
    cap = capsys.readouterr()
    assert "random inputs" in cap.err and "not" in cap.err
    rep = json.loads(cap.out)
    assert rep["fp32"]["max_abs_diff"] <= 1e-4 and rep["int8"]["calibration"] == "random"
    assert read_onnx_meta(tmp_path / "s.int8.onnx").quantization.setting == "U8S8/minmax"
    assert rep["int8"]["tried"][0]["candidate"] == "U8S8/minmax"


def test_export_table_and_bench_and_predict(trained, fmnist, tmp_path, capsys):
    path = trained[0]
    out = tmp_path / "m.onnx"
    assert main(["export", str(path), "-o", str(out)]) == 0
    assert "parity max abs diff" in capsys.readouterr().out
    rc = main(
        [
            "bench",
            str(out),
            "squeezenet_small",
            "--thread-counts",
            "1",
            "--rounds",
            "1",
            "--backends",
            "torch,ort_fp32",
            "--roofline",
            "none",
            "--json",
        ]
    )
    assert rc == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["model"], r["backend"]) for r in rows] == [
        ("squeezenet_small", "ort_fp32"),
        ("squeezenet_small", "torch"),
        ("squeezenet_small", "ort_fp32"),
    ]
    img = tmp_path / "x.png"
    Image.fromarray(fmnist["test_x"][0, 0]).save(img)
    assert main(["predict", str(out), str(img), "--top-k", "2", "--json"]) == 0
    (rec,) = json.loads(capsys.readouterr().out)
    assert len(rec["top"]) == 2 and rec["image"] == str(img)


def test_cli_errors_are_one_line(tmp_path, capsys):
    notes = tmp_path / "notes.txt"
    notes.write_text("no model here")
    img = tmp_path / "x.png"
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(img)
    assert main(["predict", str(notes), str(img)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("squeezelab predict: error:") and "is not a model" in err
    assert len(err.splitlines()) == 1
    assert main(["bench", "squeezenet_small", "--thread-counts", "0"]) == 2
    assert "--thread-counts='0' is invalid" in capsys.readouterr().err


def test_old_spellings_warn_and_still_work(tmp_path, capsys, monkeypatch):
    from squeezelab.export import bench

    def boom(threads):
        raise AssertionError("--roofline none calibrated the host")

    monkeypatch.setattr(bench, "host_hardware", boom)
    rc = main(
        [
            "bench",
            "squeezenet_small",
            "--threads",
            "1",
            "--rounds",
            "1",
            "--backends",
            "torch",
            "--roofline",
            "none",
            "--json",
        ]
    )
    assert rc == 0
    cap = capsys.readouterr()
    assert "--threads is deprecated" in cap.err and "--thread-counts" in cap.err
    (row,) = json.loads(cap.out)
    assert row["threads"] == 1 and row["roofline_ms"] is None
    out = tmp_path / "s.onnx"
    # the old spellings of --settings and --data
    rc = main(_int8_argv(out, "--candidates", "U8S8/minmax", "--calib-data", "synthetic"))
    cap = capsys.readouterr()
    assert "--candidates is deprecated" in cap.err and "--calib-data is deprecated" in cap.err
