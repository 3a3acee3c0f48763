"""The progress display every verb uses: plain lines off a terminal, a bar on one, stderr
under --json, and the fields a person reads (what, images/s, ETA, budget left)."""

import io
import json
import re

import pytest
import yaml

from squeezelab.cli import _progress, main
from squeezelab.cli._progress import Display, TrainProgress, design_event, open_display

STAMP = re.compile(r"^\d\d:\d\d:\d\d ")


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


def test_plain_lines_off_a_terminal_at_most_one_per_interval(capsys):
    clock = Clock()
    with open_display(json=False, now=clock) as show:
        assert not show.live  # capsys is no terminal
        for t, k in ((0, 10), (1, 20), (4, 30)):  # before the first interval: quiet
            clock.t = 1000 + t
            show.update("evaluate", what=f"image {k} of 100", done=k, total=100, images=k)
        assert capsys.readouterr().out == ""
        clock.t = 1005
        show.update(done=50, what="image 50 of 100", images=50)
        clock.t = 1007  # within the interval of the last line: not printed
        show.update(done=60, what="image 60 of 100", images=60)
        show.message("a result line always prints")
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and all(STAMP.match(line) for line in lines)
    assert "evaluate: image 50 of 100" in lines[0]
    # 40 images in the 5 s since the first count; 50 left at that pace: 6.25 s
    assert "8 img/s" in lines[0] and "ETA 0:06" in lines[0]
    assert lines[1].endswith("evaluate: a result line always prints")


def test_fields_of_a_design_event_stream():
    """Explore trials and rungs, retrain batches, ladder rungs and the budget's clock."""
    clock = Clock()
    show = Display(io_console(), live=False, interval=1e9, now=clock)
    design_event(show, {"stage": "design", "budget_left_s": 300.0})
    design_event(show, {"stage": "explore", "message": "started"})
    counts = {"trained": 1, "infeasible": 2, "failed": 0}
    clock.t += 10
    design_event(show, {"stage": "explore", "progress": counts, "of": 4, "step": None})
    clock.t += 10
    step = {"number": 3, "rung": 1, "rungs": [1, 3], "epochs": 1, "max_epochs": 3}
    ev = {"stage": "explore", "progress": {**counts, "trained": 2}, "of": 4, "step": step}
    design_event(show, {**ev, "step": {**step, "promoted": True}})
    f = show.status.fields()
    assert f["what"] == "trial 3: rung 1 of 2 (1 of 3 epochs), promoted; trial 2 of 4"
    assert f["note"] == "2 infeasible, 0 failed" and f["budget"] == "budget 4:40 left"
    assert f["eta"] == "ETA 0:20"  # one trial in 10 s, two to go

    batch = {"stage": "retrain", "epochs": 2, "batches": 10, "batch_size": 32}
    design_event(show, {**batch, "epoch": 1, "batch": 1})
    clock.t += 2
    design_event(show, {**batch, "epoch": 1, "batch": 5})
    s = show.status
    assert s.stage == "retrain" and s.what == "epoch 1 of 2, batch 5 of 10"
    assert s.img_per_s == pytest.approx(4 * 32 / 2) and s.eta_s == pytest.approx(7.5)
    assert s.fields()["budget"] == "budget 4:38 left"

    design_event(
        show, {"stage": "compress", "message": "rung 2/5 67%/4b: lost", "rung": 2, "rungs": 5}
    )
    assert show.status.what == "rung 2 of 5" and show.status.total == 5


def test_a_bar_on_a_terminal_shows_the_fields():
    from rich.console import Console

    out = io.StringIO()
    con = Console(file=out, force_terminal=True, width=160)
    clock = Clock()
    with Display(con, now=clock) as show:
        assert show.live
        show.budget(192)
        show.update("train", what="epoch 2 of 10, batch 40 of 468", done=508, total=4680)
        column = show._bar.columns[-1]
        text = column.render(show._bar.tasks[0]).plain
    assert "epoch 2 of 10, batch 40 of 468" in text and "budget 3:12 left" in text


def test_train_batch_progress_and_json_keeps_stdout_clean(tmp_path, capsys, monkeypatch):
    from tests.train.conftest import TINY_SPEC, train_argv

    monkeypatch.setattr(_progress, "INTERVAL_S", 0.0)  # every update a line
    spec = tmp_path / "tiny.yaml"
    spec.write_text(yaml.safe_dump(TINY_SPEC))
    assert main(train_argv(spec, tmp_path / "run", "--epochs", "2", subset=96)) == 0
    cap = capsys.readouterr()
    records = [json.loads(line) for line in cap.out.splitlines()]  # JSON alone on stdout
    assert [r["epoch"] for r in records] == [1, 2]
    # 96 images less the validation share, batch 32: every batch of both epochs shown
    batches = int(re.search(r"batch 1 of (\d+)", cap.err).group(1))
    assert batches >= 2
    for e in (1, 2):
        for b in range(1, batches + 1):
            assert f"train: epoch {e} of 2, batch {b} of {batches}" in cap.err
    assert "img/s" in cap.err and "ETA" in cap.err and "epoch 2/2" in cap.err


def test_train_progress_counts_batches_of_a_resumed_run():
    clock = Clock()
    show = Display(io_console(), live=False, interval=1e9, now=clock)
    tp = TrainProgress(show, epochs=4, batch_size=64)
    tp.on_batch(3, 1, 10)  # resumed at epoch 3
    clock.t += 1
    tp.on_batch(3, 3, 10)
    assert show.status.what == "epoch 3 of 4, batch 3 of 10"
    assert show.status.img_per_s == pytest.approx(128) and show.status.eta_s == pytest.approx(8.5)


def io_console():
    from rich.console import Console

    return Console(file=io.StringIO())
