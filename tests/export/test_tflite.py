"""int8 .tflite export, the TFLite Micro check and the C array (issue 15, items 1-3, 7).

Conversions take seconds each, so the files are made once per module and shared.
"""

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from squeezelab.cli import main
from squeezelab.errors import ConfigError, FormatError
from squeezelab.export import check_tflite, export_tflite, write_c_array
from squeezelab.export.tflite import TFLM_BUILTIN_OPS, read_tflite
from squeezelab.models import ModelMeta, create_model

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained_tflite(trained, fmnist, tmp_path_factory):
    """The shared trained squeezenet_small as int8, calibrated on 256 train images."""
    _, model, meta = trained
    path = tmp_path_factory.mktemp("tflite") / "small.tflite"
    exp = export_tflite(model, meta, path, calib=fmnist["train_x"][:256])
    return exp, model, meta


@pytest.fixture(scope="module")
def trained_check(trained_tflite):
    """TFLM's check of the trained file on random inputs (the arena bisection)."""
    return check_tflite(trained_tflite[0].path)


def _assert_predicted_within_5_percent(model, meta, exp, check):
    """analysis.profile at 8 bits predicts TFLM's arena and the file's size within 5%."""
    from squeezelab.analysis import profile

    p = profile(model, meta.input_shape, "cortex-m7", weight_bits=8, activation_bits=8)
    arena, size = p.tflm_arena_bytes / check.arena_bytes - 1, p.tflite_bytes / exp.tflite_bytes - 1
    assert abs(arena) < 0.05, (meta.name, p.tflm_arena_bytes, check.arena_bytes)
    assert abs(size) < 0.05, (meta.name, p.tflite_bytes, exp.tflite_bytes)


def _fp32_top1(model, meta, x, y):
    import torch

    from squeezelab.export import normalize

    with torch.no_grad():
        logits = model(torch.from_numpy(normalize(x, meta)))
    return float((logits.argmax(1).numpy() == y).mean())


def test_trained_int8_in_tflm_equals_reference_kernels_and_keeps_accuracy(trained_tflite):
    """All 10,000 Fashion-MNIST test images: 0 LSB from LiteRT's reference, top-1 within 1 pt."""
    from squeezelab.data import load_dataset

    exp, model, meta = trained_tflite
    assert exp.int8 and set(exp.ops) <= TFLM_BUILTIN_OPS
    assert {"CONV_2D", "CONCATENATION", "MAX_POOL_2D"} <= set(exp.ops)
    assert exp.input_shape == (1, 28, 28, 1) and exp.input_scale > 0
    test = load_dataset("fashion-mnist", "test")
    x, y = test.images.numpy(), test.labels.numpy()
    r = check_tflite(exp.path, x, y)
    assert r.n_images == 10_000
    assert r.tflm_vs_reference_max_lsb == 0
    assert r.flash_bytes == Path(exp.path).stat().st_size == exp.tflite_bytes
    assert r.arena_head_bytes + r.arena_tail_bytes == r.arena_bytes
    # the arena holds at least the largest activation pair (int8), and is not absurd
    assert 16 * 14 * 14 < r.arena_bytes < 1 << 20
    fp32 = _fp32_top1(model, meta, x, y)
    assert fp32 > 0.3  # trained: far above chance, so the comparison means something
    assert abs(r.int8_top1 - fp32) <= 0.01
    # the metadata says how to feed the file
    rec = read_tflite(Path(exp.path).read_bytes()).record
    assert rec["mean"] == list(meta.mean) and rec["std"] == list(meta.std)
    assert rec["input"]["scale"] == exp.input_scale and rec["layout"] == "NHWC"


def test_trained_prediction_within_5_percent(trained_tflite, trained_check):
    """A trained net's biases are all distinct constants (an untrained one's share buffers)."""
    exp, model, meta = trained_tflite
    _assert_predicted_within_5_percent(model, meta, exp, trained_check)


def test_smallest_arena_is_the_smallest(trained_tflite, trained_check):
    from tflite_micro.python.tflite_micro import runtime

    exp = trained_tflite[0]
    arena = trained_check.arena_bytes
    data = Path(exp.path).read_bytes()
    x = np.zeros(exp.input_shape, np.int8)
    it = runtime.Interpreter.from_bytes(data, arena_size=arena)
    it.set_input(x, 0)
    it.invoke()
    with pytest.raises(RuntimeError):
        it = runtime.Interpreter.from_bytes(data, arena_size=arena - 1)
        it.set_input(x, 0)
        it.invoke()


@pytest.mark.parametrize(
    "name, overrides",
    [
        ("squeezenet_small", {}),
        ("squeezenet_small", {"bypass": "complex", "base_e": 16, "incr_e": 16}),
        ("mobilenet_v2", {"input_size": 28}),
        ("shufflenet_v2_x0_5", {"input_size": 32}),
    ],
)
def test_zoo_members_convert_to_int8_tflm_files_as_predicted(name, overrides, tmp_path):
    """Untrained zoo nets: int8 throughout (residual adds too), 0 LSB, prediction within 5%."""
    size = overrides.pop("input_size", 28)
    model = create_model(name, num_classes=10, in_chans=1, **overrides).eval()
    meta = ModelMeta(name, 10, 1, size)
    exp = export_tflite(model, meta, tmp_path / "m.tflite", calib="random", n_calib=8)
    assert exp.int8 and set(exp.ops) <= TFLM_BUILTIN_OPS
    assert "DEQUANTIZE" not in exp.ops  # no float islands: every add is an int8 ADD
    r = check_tflite(exp.path)
    assert r.tflm_vs_reference_max_lsb == 0 and r.arena_bytes > 0
    _assert_predicted_within_5_percent(model, meta, exp, r)


def test_c_array_compiles_and_holds_the_file(trained_tflite, tmp_path):
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("gcc is not installed")
    exp = trained_tflite[0]
    c, h = write_c_array(exp.path, tmp_path / "fm-model", 12345, exp.to_dict())
    subprocess.run(
        [gcc, "-c", "-std=c99", "-Wall", "-Werror", str(c), "-o", str(tmp_path / "m.o")],
        check=True,
    )
    text = h.read_text()
    assert "#define FM_MODEL_ARENA_BYTES 12345" in text
    assert f"#define FM_MODEL_INPUT_ZERO_POINT ({exp.input_zero_point})" in text
    assert "ops.AddConv2D();" in text
    # the array is the file, byte for byte: compile a main that writes it back out
    main_c = tmp_path / "dump.c"
    main_c.write_text(
        '#include <stdio.h>\n#include "fm-model.h"\nint main(void) {\n'
        "  fwrite(fm_model_tflite, 1, fm_model_tflite_len, stdout); return 0; }\n"
    )
    exe = tmp_path / "dump"
    subprocess.run(
        [gcc, "-std=c99", "-I", str(tmp_path), str(main_c), str(c), "-o", str(exe)], check=True
    )
    out = subprocess.run([str(exe)], capture_output=True, check=True).stdout
    assert out == Path(exp.path).read_bytes()


def test_int8_without_calibration_is_one_config_error(trained, tmp_path):
    _, model, meta = trained
    with pytest.raises(ConfigError, match="--data"):
        export_tflite(model, meta, tmp_path / "m.tflite")


def test_tflm_op_list_matches_the_installed_runtime():
    import tflite_micro

    so = next(Path(tflite_micro.__file__).parent.rglob("_runtime*.so")).read_bytes()
    missing = [op for op in sorted(TFLM_BUILTIN_OPS) if f"Register_{op}E".encode() not in so]
    assert not missing


# -- the CLI ---------------------------------------------------------------------------


def test_cli_check_reports_arena_and_accuracy(trained_tflite, capsys):
    exp = trained_tflite[0]
    assert main(["check", exp.path, "--data", "fashion-mnist", "--eval-size", "100", "--json"]) == 0
    import json

    d = json.loads(capsys.readouterr().out)
    assert d["tflm_vs_reference_max_lsb"] == 0 and d["n_images"] == 100
    assert d["arena_bytes"] > 0 and 0 <= d["int8_top1"] <= 1


@pytest.mark.parametrize("cut", [0, 7, 100, 0.5, 0.9])
def test_cli_check_truncated_file_is_one_line_exit_2(trained_tflite, tmp_path, capsys, cut):
    data = Path(trained_tflite[0].path).read_bytes()
    n = int(len(data) * cut) if isinstance(cut, float) else cut
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(data[:n])
    assert main(["check", str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "bad.tflite" in err[0]


def test_cli_check_survives_an_interpreter_crash(trained_tflite, monkeypatch, capsys):
    """A file that makes TFLM segfault costs the child process, not the CLI."""
    import squeezelab.export.tflm as tflm

    crash = "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)"
    monkeypatch.setattr(tflm, "child_command", lambda path, tmp: [sys.executable, "-c", crash])
    assert main(["check", trained_tflite[0].path]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "crashed" in err[0] and "signal 11" in err[0]


def test_cli_check_altered_bytes_never_crash_the_cli(trained_tflite, tmp_path):
    data = bytearray(Path(trained_tflite[0].path).read_bytes())
    rng = np.random.default_rng(0)
    for i, pos in enumerate(rng.integers(0, 64, 3)):
        bad = tmp_path / f"flip{i}.tflite"
        d = bytearray(data)
        d[pos] ^= 0xFF
        bad.write_bytes(bytes(d))
        r = subprocess.run(
            [sys.executable, "-m", "squeezelab", "check", str(bad)], capture_output=True, text=True
        )
        assert r.returncode in (0, 2), r.stderr
        if r.returncode == 2:
            assert len(r.stderr.strip().splitlines()) == 1


def test_cli_export_c_writes_tflite_c_and_h_with_the_measured_arena(trained, tmp_path, capsys):
    stem = tmp_path / "fm"
    args = ["export", str(trained[0]), "--format", "c", "--calib", "random", "-o", str(stem)]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "q = round(x /" in text and "mean [0.286]" in text
    arena = check_tflite(tmp_path / "fm.tflite").arena_bytes
    assert f"arena: {arena} bytes" in text and "[START]" not in text
    assert f"#define FM_ARENA_BYTES {arena}" in (tmp_path / "fm.h").read_text()
    assert (tmp_path / "fm.c").is_file()


def test_cli_export_int8_without_data_is_exit_2(capsys, tmp_path):
    assert (
        main(["export", "squeezenet_small", "--format", "tflite", "-o", str(tmp_path / "m.tflite")])
        == 2
    )
    err = capsys.readouterr().err
    assert "--data" in err and "--calib random" in err and len(err.strip().splitlines()) == 1


def test_cli_op_tflm_lacks_is_exit_2_naming_it(monkeypatch, capsys, tmp_path):
    import torch

    import squeezelab.models as models

    class Gelu(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(1, 4, 3)
            self.act = torch.nn.GELU(approximate="tanh")
            self.head = torch.nn.Linear(4, 10)

        def forward(self, x):
            return self.head(self.act(self.conv(x)).mean((2, 3)))

    meta = ModelMeta("gelu", 10, 1, 8)
    monkeypatch.setattr(models, "load_model", lambda ref: (Gelu().eval(), meta))
    out = tmp_path / "g.tflite"
    args = ["export", "x", "--format", "tflite", "--calib", "random", "-o", str(out)]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "GELU" in err[0] and "'act'" in err[0]
    assert not out.exists()


@pytest.mark.parametrize("verb", ["export", "check"])
def test_missing_deploy_extra_is_exit_2_naming_it(verb, monkeypatch, capsys, tmp_path):
    for mod in ("litert_torch", "tflite_micro"):
        monkeypatch.setitem(sys.modules, mod, None)  # import now raises ImportError
    if verb == "export":
        args = [
            "export",
            "squeezenet_small",
            "--format",
            "tflite",
            "--calib",
            "random",
            "-o",
            str(tmp_path / "m.tflite"),
        ]
    else:
        (tmp_path / "m.tflite").write_bytes(b"x" * 64)
        args = ["check", str(tmp_path / "m.tflite")]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pip install 'squeezelab[deploy]'" in err[0]


def test_read_tflite_rejects_foreign_bytes():
    with pytest.raises(FormatError, match="TFL3"):
        read_tflite(b"\0" * 64, "x.tflite")


def test_a_model_the_converter_cannot_lower_is_one_format_error(tmp_path):
    import torch
    from torch import nn

    class Svd(nn.Module):  # no TFLite lowering for aten._linalg_svd
        def forward(self, x):
            return torch.linalg.svd(x.flatten(1))[0]

    with pytest.raises(FormatError, match="LiteRT converter cannot convert") as e:
        export_tflite(
            Svd(), ModelMeta("alexnet_small", 10, 1, 8), tmp_path / "s.tflite", int8=False
        )
    assert "\n" not in str(e.value) and not (tmp_path / "s.tflite").exists()


def test_cli_export_int8_chooses_on_validation_and_scores_test_once(monkeypatch, capsys, tmp_path):
    """DESIGN.md: choices see the validation split; the test split is scored once, reported."""
    import json

    import squeezelab.export as export
    from squeezelab.data import load_dataset, split_train_val, subset

    seen = {}
    real = export.quantize_int8

    def spy(*args, **kw):
        seen["eval"] = kw["eval_data"]
        return real(*args, **kw)

    monkeypatch.setattr(export, "quantize_int8", spy)
    out = tmp_path / "s.onnx"
    args = ["export", "squeezenet_small", "-o", str(out), "--int8", "--data", "synthetic"]
    args += ["--calib-size", "8", "--eval-size", "30", "--settings", "U8S8/minmax", "--json"]
    assert main(args) == 0
    cap = capsys.readouterr()
    assert "choosing on" in cap.err and "validation images" in cap.err
    _, val = split_train_val(load_dataset("synthetic", "train"), 0.1, seed=0)
    assert np.array_equal(seen["eval"], subset(val, 30, seed=0).images.numpy())
    t = json.loads(cap.out)["int8"]["test"]
    assert t["images"] == 30 and 0 <= t["int8_top1"] <= 1 and 0 <= t["fp32_top1"] <= 1
