"""Every CLI table fits 80 columns (what any pipe gets): no line longer, no row folded.

A table row that rich folds takes more lines at 80 columns than at 200; so each verb is
rendered at both widths (COLUMNS, as a terminal or a pipe sets it) and the table lines
must be the same and at most 80 wide. Prose that follows tables is not checked here.
"""

import io
import re
from contextlib import redirect_stdout

import pytest

from squeezelab.cli import main
from squeezelab.explore import run_study, space_from_dict
from tests.explore.fakes import fake_train


def _render(monkeypatch, argv: list[str], columns: int) -> list[str]:
    import torch

    monkeypatch.setenv("COLUMNS", str(columns))
    torch.manual_seed(0)  # an untrained zoo model predicts the same at both widths
    buf = io.StringIO()
    with redirect_stdout(buf):
        assert main(argv) == 0
    return buf.getvalue().splitlines()


@pytest.fixture(scope="module")
def study_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("study")
    space = space_from_dict(
        {
            "name": "a-study-with-a-rather-long-name",
            "model": "squeezenet_small",
            "params": {"sr": [0.125, 0.25, 0.5, 1.0], "base_e": 16, "incr_e": 16},
            "objectives": [
                "accuracy",
                "params",
                {"metric": "model_bytes", "bits": 4},
                "energy_pj",
            ],
            "search": {"sampler": "grid"},
            "train": {"epochs": 1},
        }
    )
    run_study(space, d, train_fn=fake_train)
    return d


@pytest.fixture(scope="module")
def sqz(tmp_path_factory):
    out = tmp_path_factory.mktemp("sqz") / "m.sqz"
    with redirect_stdout(io.StringIO()):
        assert main(["compress", "squeezenet_small", "--sparsity", "0.5", "-o", str(out)]) == 0
    return out


CASES = {
    "profile": ["profile", "mobilenet_v2", "--hardware", "cortex-m7"],
    "profile squeezenet": ["profile", "squeezenet1_0", "--weight-bits", "8"],
    "profile --compare": ["profile", "--compare", "squeezenet1_0", "squeezenet1_1", "alexnet"],
    "models": ["models"],
    "advise": ["advise", "mobilenet_v2"],
}


@pytest.mark.parametrize("name", list(CASES))
def test_table_fits_80_columns(monkeypatch, name):
    _check(monkeypatch, CASES[name])


def test_study_show_fits_80_columns(monkeypatch, study_dir):
    lines = _check(monkeypatch, ["study", "show", str(study_dir)])
    assert any("model_bytes[4bit]" in line for line in lines)  # objectives' columns kept
    wide = _render(monkeypatch, ["study", "show", str(study_dir), "--wide"], 80)
    assert any("run dir" in line for line in wide) and max(map(len, wide)) > 80


def test_inspect_fits_80_columns(monkeypatch, sqz):
    _check(monkeypatch, ["inspect", str(sqz)])


@pytest.fixture(scope="module")
def bench_rows():
    """Rows timed once (tiny model, one round, a packaged profile's roofline), plus the
    widest cells a table meets: a long model name, ort_int8 with its setting, 4-digit ms."""
    import dataclasses

    from squeezelab.export import benchmark

    rows = benchmark(
        "squeezenet_small",
        backends=("torch", "torch_channels_last"),
        thread_counts=(1,),
        rounds=1,
        roofline="cortex-m7",
    )
    wide = dataclasses.replace(
        rows[1],
        model="squeezenet_with_a_rather_long_name_v2",
        backend="ort_int8",
        int8_setting="U8S8r/minmax",
        median_ms=1234.5678,
        p90_ms=2345.678,
        roofline_ms=1000.25,
    )
    return [*rows, wide]


def test_bench_fits_80_columns(monkeypatch, bench_rows):
    import squeezelab.export

    calls = []
    monkeypatch.setattr(
        squeezelab.export, "benchmark", lambda ref, **kw: calls.append(kw) or bench_rows
    )
    argv = ["bench", "squeezenet_small", "--rounds", "1", "--thread-counts", "1"]
    lines = _check(monkeypatch, argv)
    assert calls[0]["roofline"] == "host" and calls[0]["thread_counts"] == (1,)
    assert any(
        "1,234.568" in line and "squeeze…_name_v2" in line for line in lines
    )  # cut, separated
    assert any("U8S8r/minmax" in line for line in lines)  # the int8 setting, in a note
    wide = _render(monkeypatch, [*argv, "--wide"], 80)
    assert any("p90 ms" in line and "roofline ms" in line for line in wide)
    assert any("squeezenet_with_a_rather_long_name_v2" in line for line in wide)
    assert max(map(len, wide)) > 80


def test_bench_without_roofline_fits_80_columns(monkeypatch, bench_rows):
    import dataclasses

    import squeezelab.export

    rows = [dataclasses.replace(r, roofline_ms=None, ratio_to_roofline=None) for r in bench_rows]
    monkeypatch.setattr(squeezelab.export, "benchmark", lambda ref, **kw: rows)
    lines = _check(monkeypatch, ["bench", "squeezenet_small", "--roofline", "none"])
    assert not any("x roofline" in line for line in lines)  # an all-"-" column is left out


def test_predict_fits_80_columns(monkeypatch, tmp_path):
    from PIL import Image

    folder = tmp_path / "photos-from-the-summer-holiday-in-the-mountains"
    folder.mkdir()
    for name in ("a.png", "a-rather-long-file-name-of-a-shirt-photo.png"):
        Image.new("L", (28, 28), 90).save(folder / name)
    lines = _check(monkeypatch, ["predict", "squeezenet_small", str(folder)])
    assert sum("next (prob)" in line for line in lines) == 1
    probs = [w for line in lines for w in line.split() if re.fullmatch(r"[01]\.\d{3}", w)]
    assert len(probs) == 2 * 5  # top-5 of each image: every class, each with its prob
    cut = [line.split()[0] for line in lines if "…" in line]
    assert len(cut) == 2 and all(c.endswith(".png") and len(c) == 28 for c in cut)  # middle
    wide = _render(monkeypatch, ["predict", "squeezenet_small", str(folder), "--wide"], 80)
    assert any(str(folder / "a.png") in line for line in wide)


def test_measure_fits_80_columns(monkeypatch):
    import squeezelab.analysis

    real = squeezelab.analysis.measure_latency
    timed = {}  # one real timing per memory format, rendered at both widths

    def once(model, shape, batch, threads, channels_last, warmup, runs):
        if channels_last not in timed:
            timed[channels_last] = real(model, shape, batch, threads, channels_last, 0, 2)
        return timed[channels_last]

    monkeypatch.setattr(squeezelab.analysis, "measure_latency", once)
    lines = _check(monkeypatch, ["measure", "squeezenet_small", "--hardware", "cortex-m7"])
    assert any(line.startswith("channels_last ") for line in lines)


def test_evaluate_fits_80_columns(monkeypatch):
    lines = _check(monkeypatch, ["evaluate", "squeezenet_small", "--data", "synthetic"])
    assert any(line.startswith("confusion matrix") for line in lines)
    assert any(line.rstrip().endswith("%") for line in lines)  # per-class accuracy


def test_evaluate_many_classes_leaves_the_matrix_to_wide(monkeypatch, capsys):
    from squeezelab.cli.cmd_evaluate import render

    classes = [f"class-with-a-long-name-{i:03d}" for i in range(40)]
    confusion = [[1000 if i == j else 3 for j in range(40)] for i in range(40)]
    result = {"model_file": "m.safetensors", "data": "d", "split": "test", "n": 40_120}
    result.update(top1=0.9, top5=0.99, loss=0.3, confusion=confusion)
    result["per_class"] = dict.fromkeys(classes, 0.97)
    monkeypatch.setenv("COLUMNS", "80")
    render(result, classes)
    narrow = capsys.readouterr().out.splitlines()
    assert max(map(len, narrow)) <= 80
    assert "confusion matrix: 40 classes need" in narrow[-1] and "--wide" in narrow[-1]
    render(result, classes, wide=True)
    assert any(len(line) > 80 for line in capsys.readouterr().out.splitlines())


@pytest.fixture(scope="module")
def onnx_results(tmp_path_factory):
    """A real fp32 export and int8 search (one setting), done once."""
    import json

    from squeezelab.export import Int8Result, OnnxExport

    out = tmp_path_factory.mktemp("onnx") / "a-model-file-with-a-long-name.onnx"
    argv = ["export", "squeezenet_small", "-o", str(out), "--int8"]
    buf = io.StringIO()
    with redirect_stdout(buf):
        assert main([*argv, "--settings", "U8S8/minmax", "--calib-size", "8", "--json"]) == 0
    report = json.loads(buf.getvalue())
    return out, OnnxExport.from_dict(report["fp32"]), Int8Result.from_dict(report["int8"])


def test_export_fits_80_columns(monkeypatch, onnx_results):
    import squeezelab.export

    out, fp32, int8 = onnx_results
    monkeypatch.setattr(squeezelab.export, "export_onnx", lambda *a, **kw: fp32)
    monkeypatch.setattr(squeezelab.export, "quantize_int8", lambda *a, **kw: int8)
    argv = ["export", "squeezenet_small", "-o", str(out), "--int8"]
    lines = _check(monkeypatch, argv, between=("int8 settings", "int8: "))
    assert any(line.startswith("U8S8/minmax*") for line in lines)


def test_design_summary_fits_80_columns():
    from rich.console import Console

    from squeezelab.cli.cmd_design import render_summary
    from squeezelab.design.records import DeployResult
    from squeezelab.design.summary import DesignResult, SummaryRow

    deploy = DeployResult(
        "tflite-micro",
        "model.c",
        "model.tflite",
        "model.c",
        70_112,
        69_000,
        48_000,
        40_000,
        8_000,
        47_000,
        524_288,
        2_097_152,
        0.8741,
        0.8752,
        10_000,
        0.01,
        1,
    )
    rows = (
        SummaryRow("fp32 model file (safetensors)", 290_000, 0.8752, 1.234, 3.2),
        SummaryRow(".sqz (67% pruned, 6-bit, entropy-coded)", 21_000, 0.8749, None, 44.4),
        SummaryRow("ONNX fp32 (from the .sqz)", 285_000, 0.8749, 0.456, 3.3),
        SummaryRow(
            "ONNX int8 (QDQ per-channel; accuracy on 10,000 test images)",
            90_000,
            0.8741,
            0.321,
            10.4,
        ),
        SummaryRow(
            "model.tflite int8 (tflite-micro; accuracy on 10,000 test images)",
            70_112,
            0.8741,
            None,
            13.3,
        ),
    )
    result = DesignResult(
        "squeezenet_small",
        None,
        71_234,
        932_000,
        "cortex-m7",
        2.5e6,
        12.3,
        48_000,
        rows,
        {"trained": 12, "infeasible": 3},
        3,
        None,
        deploy,
        True,
    )

    def render(width: int) -> list[str]:
        con = Console(file=io.StringIO(), width=width)
        render_summary(result, con)
        lines = con.file.getvalue().splitlines()
        return lines[: next(i for i, line in enumerate(lines) if line.startswith("On "))]

    narrow = render(80)
    assert narrow == render(200) and max(map(len, narrow)) <= 80
    assert any(line.startswith("ONNX int8 ") and "10x" in line for line in narrow)
    assert "ONNX int8: QDQ per-channel; accuracy on 10,000 test images" in narrow


def _tables(lines: list[str], between: tuple[str, str] = ("", "1. ")) -> list[str]:
    """The lines from the first that starts with ``between[0]`` to the next that starts with
    ``between[1]``: the tables, not the prose around them (advise's numbered suggestions,
    export's lines naming its files are wrapped text)."""
    start = next(i for i, line in enumerate(lines) if line.startswith(between[0]))
    stop = (i for i, line in enumerate(lines) if i > start and line.startswith(between[1]))
    return lines[start : next(stop, len(lines))]


def _check(monkeypatch, argv: list[str], between: tuple[str, str] = ("", "1. ")) -> list[str]:
    """Renders ``argv`` at 80 and 200 columns; returns the 80-column table lines."""
    narrow = _tables(_render(monkeypatch, argv, 80), between)
    roomy = _tables(_render(monkeypatch, argv, 200), between)
    assert narrow == roomy, "a line was folded at 80 columns"
    too_long = [line for line in narrow if len(line) > 80]
    assert not too_long, too_long
    # names are cut from the middle; only `models` cuts a cell's end (its descriptions)
    cut = [w for line in narrow for w in line.split() if w.endswith("…")]
    assert argv[0] == "models" or not cut, cut
    return narrow
