"""``squeezelab report``: STUDY directory or --storage, one line and exit 2 on bad input.

squeezelab.explore is replaced by a stand-in that records its call and returns the
synthetic results, so this tests the verb alone; the study.db files are real Optuna ones.
"""

import sys
import types

import optuna
import pytest

from squeezelab.cli import main
from tests.report.conftest import make_results


@pytest.fixture
def calls(monkeypatch, tmp_path):
    seen = []

    def load_study_results(storage, study_name):
        seen.append((storage, study_name))
        results = make_results(tmp_path / "runs")
        if study_name != "sr-sweep":  # no trained trial: no plots, a quick render
            results["trials"], results["pareto"] = results["trials"][15:], []
        return results

    fake = types.ModuleType("squeezelab.explore")
    fake.load_study_results = load_study_results
    monkeypatch.setitem(sys.modules, "squeezelab.explore", fake)
    return seen


def _study_dir(path, *names):
    path.mkdir()
    url = f"sqlite:///{path / 'study.db'}"
    for name in names:
        optuna.create_study(storage=url, study_name=name, directions=["maximize", "minimize"])
    return path, url


def test_report_from_a_study_directory(calls, tmp_path, capsys):
    study, url = _study_dir(tmp_path / "sweep", "sr-sweep")
    out = tmp_path / "site" / "report.html"
    assert main(["report", str(study), "-o", str(out), "--title", "SR sweep"]) == 0
    assert calls == [(url, "sr-sweep")]
    assert "<title>SR sweep</title>" in out.read_text()
    assert "15 trained, 4 infeasible, 1 failed, 7 on the front" in capsys.readouterr().out


def test_report_with_storage_url_takes_study_as_name(calls, tmp_path):
    url = "postgresql://lab@127.0.0.1:5433/studies"
    assert main(["report", "mcu", "--storage", url, "-o", str(tmp_path / "r.html")]) == 0
    assert calls == [(url, "mcu")] and "front is empty" in (tmp_path / "r.html").read_text()


def test_directory_without_study_db_exits_2(calls, tmp_path, capsys):
    assert main(["report", str(tmp_path), "-o", str(tmp_path / "r.html")]) == 2
    err = capsys.readouterr().err
    assert "holds no study.db" in err and len(err.strip().splitlines()) == 1 and not calls


def test_several_studies_need_study_name(calls, tmp_path, capsys):
    study, url = _study_dir(tmp_path / "two", "a", "b")
    assert main(["report", str(study), "-o", str(tmp_path / "r.html")]) == 2
    assert "pick one with --study-name" in capsys.readouterr().err
    out = tmp_path / "r.html"
    assert main(["report", str(study), "--study-name", "b", "-o", str(out)]) == 0
    assert calls == [(url, "b")]
