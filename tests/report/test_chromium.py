"""The report opened in headless Chromium shows its plots and its front table."""

import os
import re
import shutil
import signal
import subprocess
import tempfile

import numpy as np
import pytest
from PIL import Image

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
TIMEOUT_S = 120

pytestmark = [
    pytest.mark.chromium,
    pytest.mark.slow,
    pytest.mark.skipif(
        not os.access(CHROMIUM, os.X_OK),
        reason="needs Debian's chromium (apt-get install chromium) for the headless check",
    ),
]


def chromium(*args: str) -> subprocess.CompletedProcess:
    """Run headless Chromium with a fresh profile; kill its process group on timeout."""
    with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        cmd = [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            *args,
        ]
        proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
        )
        try:
            out, err = proc.communicate(timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            pytest.fail(f"chromium did not finish within {TIMEOUT_S} s: {' '.join(args)}")
    assert proc.returncode == 0, err[-2000:]
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def test_dom_shows_plots_and_front_table(report):
    results, path = report
    dom = chromium("--dump-dom", path.as_uri()).stdout
    images = re.findall(r'<img src="data:image/png;base64,([^"]*)"', dom)
    assert len(images) == 10 and min(len(i) for i in images) > 1000
    front = dom.split('<div id="front">')[1].split("</table>")[0]
    rows = re.findall(r'<tr class="front">', front)
    assert len(rows) == len(results.pareto) == 7
    assert "<h2>Pareto front</h2>" in dom and "90.90 %" in front


def test_screenshot_is_not_blank_and_shows_the_plots(report, tmp_path):
    _, path = report
    shot = tmp_path / "shot.png"
    chromium("--window-size=1280,2400", f"--screenshot={shot}", path.as_uri())
    im = Image.open(shot).convert("RGB")
    assert im.size == (1280, 2400)
    assert any(lo != hi for lo, hi in im.getextrema()), "screenshot is one uniform colour"
    # The red of the Pareto-front markers (#d62728) exists only inside the plots.
    rgb = np.asarray(im).astype(int)
    red = int(((rgb[..., 0] > 190) & (rgb[..., 1] < 70) & (rgb[..., 2] < 70)).sum())
    assert red > 50, f"only {red} red pixels: the plots did not render"
