"""Every error a user can cause is one line on stderr: bad flag values (exit 2, before any
work), unwritable outputs, strings from files printed as text, and the last-resort handler
for everything else (one line and the path of a full log, exit 1)."""

import os

import pytest
import yaml

from squeezelab.cli import main

SPEC = {"base_e": 8, "incr_e": 8, "stem_channels": 8, "num_classes": 10, "in_chans": 1}
SPEC.update(input_size=28)

# (argv, a word the one line must hold): each is refused before any work starts
BAD = [
    (["design", "--budget-minutes", "0", "-o", "{d}/x"], "budget_minutes"),
    (["design", "--budget-minutes", "-1", "-o", "{d}/x"], "budget_minutes"),
    (["design", "--budget-minutes", "nan", "-o", "{d}/x"], "--budget-minutes"),
    (["design", "--sparsity", "2", "-o", "{d}/x"], "sparsity"),
    (["design", "--bits", "99", "-o", "{d}/x"], "bits"),
    (["design", "--trials", "0", "-o", "{d}/x"], "trials"),
    (["design", "--calib-size", "x", "-o", "{d}/x"], "--calib-size"),
    (["explore", "paper-sr-sweep", "--trials", "0", "-o", "{d}/s"], "--trials"),
    (["explore", "paper-sr-sweep", "--epochs", "0", "-o", "{d}/s"], "--epochs"),
    (["explore", "paper-sr-sweep", "--train-subset", "-1", "-o", "{d}/s"], "--train-subset"),
    (["explore", "paper-sr-sweep", "--workers", "0", "-o", "{d}/s"], "--workers"),
    (["explore", "paper-sr-sweep", "--heartbeat-s", "0", "-o", "{d}/s"], "--heartbeat-s"),
    (["worker", "--storage", "{d}/s", "--grace-s", "-5"], "--grace-s"),
    (["export", "squeezenet_small", "-o", "{d}/m.onnx", "--threads", "0"], "--threads"),
    (["export", "squeezenet_small", "-o", "{d}/m.onnx", "--opset", "5"], "--opset"),
    (["export", "squeezenet_small", "-o", "{d}/m.onnx", "--tolerance", "inf"], "--tolerance"),
    (["evaluate", "squeezenet_small", "--batch-size", "0"], "--batch-size"),
    (["evaluate", "squeezenet_small", "--batch-size", "-1"], "--batch-size"),
    (["measure", "squeezenet_small", "--hardware", "nosuchhw"], "nosuchhw"),
    (["measure", "squeezenet_small", "--runs", "0"], "--runs"),
    (["measure", "squeezenet_small", "--threads", "-2"], "--threads"),
    (["compress", "squeezenet_small", "-o", "{d}/m.sqz", "--sparsity", "1.5"], "--sparsity"),
    (["compress", "squeezenet_small", "-o", "{d}/m.sqz", "--bits", "99"], "--bits"),
    (["compress", "squeezenet_small", "-o", "{d}/m.sqz", "--lr", "nan"], "--lr"),
    (["compress", "squeezenet_small", "-o", "{d}/m.sqz", "--prune-steps", "0"], "--prune-steps"),
    (["profile", "squeezenet_small", "--input", "3x1x1"], "--input"),
    (["profile", "squeezenet_small", "--input", "0x28x28"], "--input"),
    (["profile", "squeezenet_small", "--weight-bits", "0"], "--weight-bits"),
    (["advise", "squeezenet_small", "--top", "0"], "--top"),
    (["predict", "squeezenet_small", "x.png", "--top-k", "0"], "--top-k"),
    (["bench", "squeezenet_small", "--rounds", "0"], "--rounds"),
    (["train", "squeezenet_small", "-o", "{d}/r", "--epochs", "0"], "epochs"),
    (["train", "squeezenet_small", "-o", "{d}/r", "--lr", "nan"], "--lr"),
    (["train", "squeezenet_small", "-o", "{d}/r", "--lr", "-1"], "lr"),
    (["train", "squeezenet_small", "-o", "{d}/r", "--momentum", "inf"], "--momentum"),
    (["train", "squeezenet_small", "-o", "{d}/r", "--val-fraction", "1"], "val_fraction"),
    (["train", "squeezenet_small", "-o", "{d}/r", "--optimizer", "nope"], "--optimizer"),
    (["nosuchverb"], "nosuchverb"),
]


def _one_line(capsys) -> str:
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1, err
    return err[0]


@pytest.mark.parametrize(("argv", "word"), BAD, ids=[" ".join(a[:3]) for a, _ in BAD])
def test_bad_value_is_one_line_exit_2(argv, word, tmp_path, capsys):
    argv = [a.format(d=tmp_path) for a in argv]
    try:
        code = main(argv)
    except SystemExit as e:  # argparse refuses while parsing
        code = e.code
    line = _one_line(capsys)
    assert code == 2 and word in line, line
    assert "Traceback" not in line
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # nothing was written


@pytest.fixture
def spec_file(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(SPEC))
    return path


@pytest.mark.parametrize("kind", ["directory", "parent is a file", "read-only"])
def test_unwritable_output_is_one_line(kind, tmp_path, capsys, spec_file):
    if kind == "directory":
        out = tmp_path
    elif kind == "parent is a file":
        (tmp_path / "f").write_text("x")
        out = tmp_path / "f" / "m.sqz"
    else:
        if os.geteuid() == 0:
            pytest.skip("root writes into read-only folders")
        ro = tmp_path / "ro"
        ro.mkdir(mode=0o555)
        out = ro / "m.sqz"
    assert main(["compress", str(spec_file), "-o", str(out)]) == 2
    assert "-o=" in _one_line(capsys)


def test_run_directory_output_that_is_a_file(tmp_path, capsys, spec_file):
    (tmp_path / "run").write_text("x")
    argv = ["train", str(spec_file), "--data", "synthetic", "-o", str(tmp_path / "run")]
    assert main(argv) == 2
    assert "is a file" in _one_line(capsys)


def test_markup_in_metadata_is_printed_as_text(tmp_path, capsys, spec_file):
    from squeezelab.models import load_model, save_model

    model, meta = load_model(spec_file)
    hostile = tmp_path / "oops.safetensors"
    save_model(hostile, model, meta.replace(name="[/oops]"))
    assert main(["profile", str(hostile)]) == 0
    assert "[/oops]" in capsys.readouterr().out
    sqz = tmp_path / "oops.sqz"
    assert main(["compress", str(hostile), "-o", str(sqz)]) == 0
    capsys.readouterr()
    assert main(["inspect", str(sqz)]) == 0
    assert "[/oops]" in capsys.readouterr().out
    assert main(["decompress", str(sqz), "-o", str(tmp_path / "back.safetensors")]) == 0
    assert "[/oops]" in capsys.readouterr().out


def test_last_resort_handler_one_line_and_a_log(tmp_path, capsys, monkeypatch):
    def broken(args):
        raise RuntimeError("kaboom\nsecond line of a long dump")

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    import squeezelab.cli as cli

    parser = cli.build_parser()
    real = parser.parse_args

    def parse(argv=None):
        args = real(argv)
        args.func = broken
        return args

    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    monkeypatch.setattr(parser, "parse_args", parse)
    assert main(["models"]) == 1
    line = _one_line(capsys)
    assert "RuntimeError: kaboom" in line and "second line" not in line
    logs = list((tmp_path / "squeezelab" / "logs").iterdir())
    assert len(logs) == 1 and str(logs[0]) in line
    text = logs[0].read_text()
    assert "Traceback" in text and "second line of a long dump" in text
