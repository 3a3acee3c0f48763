import base64
import io
import re
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from squeezelab.errors import FormatError
from squeezelab.report import render_html, render_report, render_section
from tests.report.conftest import make_results

IMG = re.compile(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"')


@pytest.fixture(scope="module")
def rendered(report):
    results, out = report
    return results, out, out.read_text(encoding="utf-8")


def test_one_self_contained_file(rendered):
    _, out, page = rendered
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    for needle in ("<script", "<link", "@import", "url(", "http://", "https://"):
        assert needle not in page
    assert all(src.startswith("data:image/png") for src in re.findall(r'src="([^"]*)"', page))
    assert [p.name for p in out.parent.iterdir()] == ["report.html"]  # no temporary left


def test_every_plot_is_a_non_blank_png(rendered):
    results, _, page = rendered
    images = IMG.findall(page)
    # 6 costs + sweeps of sr and pct_3x3 + parallel coordinates + learning curves
    assert len(images) == 6 + 2 + 2
    for data in images:
        im = Image.open(io.BytesIO(base64.b64decode(data))).convert("RGB")
        assert im.width >= 400 and im.height >= 250
        assert any(lo != hi for lo, hi in im.getextrema())  # not one uniform colour


def test_front_table_links_each_run_directory(rendered):
    results, out, page = rendered
    front = page.split('<div id="front">')[1].split("</table>")[0]
    rows = re.findall(r'<tr class="front">(.*?)</tr>', front)
    assert len(rows) == len(results.pareto)
    hrefs = re.findall(r'<a href="([^"]+)"', front)
    assert not any(h.startswith(("/", "file:")) for h in hrefs)
    members = results.pareto_trials
    wanted = {Path(t.run_dir) for t in members}
    wanted |= {Path(t.final.run_dir) for t in members if t.final}
    assert len(hrefs) == len(wanted) == len(rows) + 2
    assert {(out.parent / h).resolve() for h in hrefs} == wanted
    best = max(members, key=lambda t: t.accuracy)
    assert f'<td class="num">{best.number}</td>' in rows[0]


def test_counts_objectives_constraints_and_no_password(rendered):
    _, _, page = rendered
    for text in ("<b>13</b> trained", "<b>4</b> infeasible", "<b>1</b> failed", "<b>20</b> total"):
        assert text in page
    assert "20 candidate(s) costed, 16 feasible, 0 invalid, 250 candidates/s" in page
    assert "model_bytes (minimise)" in page and "model_bytes ≤ 1 MiB" in page
    assert "s3cret" not in page and "lab:***@127.0.0.1" in page


def test_extra_section_comes_first_with_units(rendered):
    _, _, page = rendered
    assert page.index("Design summary") < page.index("<h2>Trials</h2>")
    assert '<td class="num">627 KiB</td>' in page and '<td class="num">1.2 ms</td>' in page


def test_render_section_alone():
    html = render_section({"title": "<b>x</b>", "rows": [{"stage": "a", "energy_pj": 3e6}]})
    assert html.startswith("<h2>&lt;b&gt;x&lt;/b&gt;</h2>") and "3 µJ" in html


def test_a_study_without_trained_trials(tmp_path):
    results = make_results(tmp_path)
    for t in results["trials"]:
        t["metrics"].pop("accuracy", None)
    results["pareto"] = []
    page = render_html(results, title="<Study>")
    assert "the front is empty" in page and "nothing to plot" in page and "<img" not in page
    assert "<title>&lt;Study&gt;</title>" in page


def test_results_of_the_wrong_shape_are_refused(tmp_path):
    with pytest.raises(FormatError, match="trials"):
        render_report({"study": "x"}, tmp_path / "r.html")
    assert not (tmp_path / "r.html").exists()


def test_importing_the_report_stays_light():
    code = "import squeezelab.report, squeezelab.cli.cmd_report, sys; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
