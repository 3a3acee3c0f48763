"""Every CLI table fits 80 columns (what any pipe gets): no line longer, no row folded.

A table row that rich folds takes more lines at 80 columns than at 200; so each verb is
rendered at both widths (COLUMNS, as a terminal or a pipe sets it) and the table lines
must be the same and at most 80 wide. Prose that follows tables is not checked here.
"""

import io
from contextlib import redirect_stdout

import pytest

from squeezelab.cli import main
from squeezelab.explore import run_study, space_from_dict
from tests.explore.fakes import fake_train


def _render(monkeypatch, argv: list[str], columns: int) -> list[str]:
    monkeypatch.setenv("COLUMNS", str(columns))
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


def _tables(lines: list[str]) -> list[str]:
    """The lines before the prose: advise's numbered suggestions are wrapped text."""
    end = next((i for i, line in enumerate(lines) if line[:3] == "1. "), len(lines))
    return lines[:end]


def _check(monkeypatch, argv: list[str]) -> list[str]:
    """Renders ``argv`` at 80 and 200 columns; returns the 80-column table lines."""
    narrow = _tables(_render(monkeypatch, argv, 80))
    roomy = _tables(_render(monkeypatch, argv, 200))
    assert narrow == roomy, "a line was folded at 80 columns"
    too_long = [line for line in narrow if len(line) > 80]
    assert not too_long, too_long
    # names are cut from the middle; only `models` cuts a cell's end (its descriptions)
    cut = [w for line in narrow for w in line.split() if w.endswith("…")]
    assert argv[0] == "models" or not cut, cut
    return narrow
