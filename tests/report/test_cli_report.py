"""``squeezelab report`` on a real (tiny) study made by squeezelab.explore.

Training is replaced by the stand-in of tests/explore/fakes.py (two epochs at once): the
study, its storage, its screen and load_study_results are the real ones.
"""

import re

import pytest

from squeezelab.cli import main
from squeezelab.explore import load_study_results, run_study, space_from_dict
from tests.explore.fakes import fake_train


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    root = tmp_path_factory.mktemp("study")
    space = space_from_dict(
        {
            "name": "tiny-sr",
            "model": "squeezenet_small",
            "params": {
                "sr": [0.125, 0.25, 0.5, 1.0],
                "base_e": 16,
                "incr_e": 16,
                "stem_channels": 16,
            },
            "objectives": ["accuracy", "params"],
            "constraints": [{"metric": "params", "max": 20_000}],
            "search": {"sampler": "grid"},
            "train": {"epochs": 2},
        }
    )
    run_study(space, root / "tiny", train_fn=fake_train)
    return root / "tiny"


def test_report_of_a_study_directory(study, tmp_path, capsys):
    out = tmp_path / "site" / "report.html"
    assert main(["report", str(study), "-o", str(out), "--title", "Tiny SR"]) == 0
    res = load_study_results(study)
    assert res.counts.trained >= 1 and res.counts.infeasible >= 1, res.counts
    page = out.read_text()
    assert "<title>Tiny SR</title>" in page
    front = page.split('<div id="front">')[1].split("</table>")[0]
    assert len(re.findall(r'<tr class="front">', front)) == len(res.pareto) >= 1
    for href in re.findall(r'<a href="([^"]+)"', front):
        assert (out.parent / href).resolve().is_dir()  # the trained run directories
    line = capsys.readouterr().out
    assert f"{res.counts.trained} trained" in line and "on the front" in line


def test_report_renders_typed_results_and_their_json_alike(study, tmp_path):
    from squeezelab.report import render_html

    res = load_study_results(study)
    assert render_html(res, base_dir=tmp_path) == render_html(res.to_dict(), base_dir=tmp_path)


def test_report_with_a_storage_url(study, tmp_path):
    url = f"sqlite:///{study.resolve() / 'study.db'}"
    out = tmp_path / "r.html"
    assert main(["report", "tiny-sr", "--storage", url, "-o", str(out)]) == 0
    assert "<h1>Study tiny-sr</h1>" in out.read_text()


def test_a_directory_without_a_study_exits_2(tmp_path, capsys):
    assert main(["report", str(tmp_path), "-o", str(tmp_path / "r.html")]) == 2
    err = capsys.readouterr().err
    assert "no study at" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "r.html").exists()
