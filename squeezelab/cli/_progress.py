"""Progress a person can watch, one display for every verb (issue 14, point 5).

A live ``rich.progress`` bar when the output is a terminal; plain timestamped lines, at
most one every :data:`INTERVAL_S` seconds, when it is not (a pipe, CI, a log file). Under
``--json`` the display writes to stderr, so stdout holds the JSON alone. Library code
yields records or calls back; the verbs turn them into :meth:`Display.update` calls.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

INTERVAL_S = 5.0  # plain lines: the fewest seconds between two progress lines


def count(word: str, k: int, n: int | None = None) -> str:
    """``"epoch 3 of 10"`` (``"trial 4"`` when the total is unknown)."""
    return f"{word} {k}" if not n else f"{word} {k} of {n}"


def clock(seconds: float) -> str:
    """``192`` -> ``"3:12"``, ``3725`` -> ``"1:02:05"``; negative is ``"0:00"``."""
    s = max(0, round(seconds))
    h, m = divmod(s // 60, 60)
    return f"{h}:{m:02d}:{s % 60:02d}" if h else f"{m}:{s % 60:02d}"


@dataclass(frozen=True)
class Status:
    """What the display shows now: the columns of the bar, or one plain line."""

    stage: str = ""  # the verb or the design stage
    what: str = ""  # "trial 3 of 8, rung 1" / "epoch 2 of 10, batch 40 of 468" / ...
    done: float | None = None  # units done of ``total`` (None: not known)
    total: float | None = None
    img_per_s: float | None = None
    eta_s: float | None = None  # seconds until ``done`` reaches ``total`` at the pace so far
    budget_left_s: float | None = None  # design: seconds left of --budget-minutes
    note: str = ""  # a figure the caller adds (val acc, loss, ...)

    def fields(self) -> dict[str, str]:
        """The columns as text, empty where there is nothing to show."""
        return {
            "what": self.what,
            "rate": "" if self.img_per_s is None else f"{self.img_per_s:,.0f} img/s",
            "eta": "" if self.eta_s is None else f"ETA {clock(self.eta_s)}",
            "budget": ""
            if self.budget_left_s is None
            else f"budget {clock(self.budget_left_s)} left",
            "note": self.note,
        }

    def line(self) -> str:
        """One plain line: ``"train: epoch 2 of 10  1,234 img/s  ETA 0:42"``."""
        parts = [v for v in self.fields().values() if v]
        return f"{self.stage}: " + "  ".join(parts) if self.stage else "  ".join(parts)


class Display:
    """A progress display over a rich console; a context manager.

    ``live`` (default: ``con.is_terminal``) draws a bar; otherwise updates become plain
    lines, at most one every ``interval`` seconds (the first after ``interval``: a quick
    verb prints none), and :meth:`message` lines always print.

    Example:
        >>> with open_display(json=False) as show:  # doctest: +SKIP
        ...     for e in range(1, 11):
        ...         show.update("train", what=count("epoch", e, 10), done=e, total=10)
    """

    def __init__(
        self,
        con,
        live: bool | None = None,
        interval: float | None = None,  # default INTERVAL_S
        now: Callable[[], float] = time.monotonic,
    ):
        self.con = con
        self.live = con.is_terminal if live is None else live
        self.interval = INTERVAL_S if interval is None else interval
        self.now = now
        self.status = Status()
        self.deadline: float | None = None  # now() at which the budget ends
        self._start: tuple[float, float | None, float | None] | None = None  # t, done, images
        # the first line waits ``interval`` too: a verb done (or failed) sooner prints none
        self._last_line = now()
        self._bar = None
        self._task = None

    def __enter__(self) -> Display:
        if self.live:
            from rich.progress import BarColumn, Progress, TextColumn

            self._bar = Progress(
                TextColumn("[bold]{task.fields[stage]}"),
                BarColumn(bar_width=24),
                _status_column(self),
                console=self.con,
                transient=True,  # the messages stay; the bar goes when the work ends
            )
            self._bar.start()
            self._task = self._bar.add_task("", total=None, stage="")
        return self

    def __exit__(self, *exc) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None

    def budget(self, seconds_left: float) -> None:
        """Count down ``seconds_left`` from now (design's --budget-minutes)."""
        self.deadline = self.now() + seconds_left

    def update(
        self,
        stage: str | None = None,
        *,
        what: str | None = None,
        done: float | None = None,
        total: float | None = None,
        images: float | None = None,
        rate: float | None = None,
        note: str | None = None,
    ) -> Status:
        """Show where the work stands; returns the :class:`Status` shown.

        ``done`` of ``total`` gives the bar and the ETA (the pace since this stage's first
        update); ``images`` (cumulative in the stage) gives images/s unless ``rate`` is
        given. A new ``stage`` starts the pace afresh; ``what`` and ``note`` persist until
        replaced.
        """
        t, s = self.now(), self.status
        if stage is not None and stage != s.stage:
            s, self._start = Status(stage=stage), None
        if self._start is None:
            self._start = (t, done, images)
        t0, done0, images0 = self._start
        if done0 is None and done is not None:  # the first count: the pace starts here
            self._start = (t, done, images0 if images0 is not None else images)
            t0, done0, images0 = self._start
        if images0 is None and images is not None:
            self._start = (t0, done0, images)
            images0 = images
        eta = None
        total = total if total is not None else s.total
        if done is not None and total and done0 is not None and done > done0 and t > t0:
            eta = (t - t0) * (total - done) / (done - done0)
        if rate is None and images is not None and images0 is not None and t > t0:
            rate = (images - images0) / (t - t0) if images > images0 else None
        self.status = Status(
            stage=s.stage,
            what=s.what if what is None else what,
            done=done if done is not None else s.done,
            total=total,
            img_per_s=rate if rate is not None else s.img_per_s,
            eta_s=eta if eta is not None or done is not None else s.eta_s,
            budget_left_s=None if self.deadline is None else self.deadline - t,
            note=s.note if note is None else note,
        )
        self._show(t)
        return self.status

    def message(self, text: str, stage: str | None = None, style: str | None = None) -> None:
        """A line that always prints (an epoch's figures, a stage's result), never markup."""
        from rich.text import Text

        stage = self.status.stage if stage is None else stage
        line = Text()
        if not self.live:
            line.append(time.strftime("%H:%M:%S "))
        if stage:
            line.append(f"{stage}: ", style="bold")
        line.append(text, style=style)
        (self._bar.console if self._bar is not None else self.con).print(line, soft_wrap=True)

    def _show(self, t: float) -> None:
        s = self.status
        if self._bar is not None:
            total = s.total if s.total else None
            done = s.done or 0
            self._bar.update(self._task, total=total, completed=done, stage=s.stage)
        elif t - self._last_line >= self.interval:
            self._last_line = t
            line = time.strftime("%H:%M:%S ") + s.line()
            self.con.print(line, markup=False, highlight=False, soft_wrap=True)


class _NoDisplay(Display):
    """A display that shows nothing (DDP's other ranks)."""

    def __init__(self):
        super().__init__(None, live=False)

    def _show(self, t: float) -> None:
        pass

    def message(self, text: str, stage: str | None = None, style: str | None = None) -> None:
        pass


def open_display(json: bool = False, enabled: bool = True, **kw) -> Display:
    """The display a verb uses: on stdout, on stderr under ``--json``; a bar on a terminal."""
    if not enabled:
        return _NoDisplay()
    from squeezelab.cli._common import console

    return Display(console(stderr=json), **kw)


def _status_column(display: Display):
    from rich.progress import ProgressColumn
    from rich.text import Text

    class StatusColumn(ProgressColumn):
        """The status fields; the budget counts down between updates."""

        def render(self, task) -> Text:
            s = display.status
            fields = s.fields()
            if display.deadline is not None:
                left = display.deadline - display.now()
                fields["budget"] = f"budget {clock(left)} left"
            return Text("  ".join(v for v in fields.values() if v))

    return StatusColumn()


# --- the verbs' record streams, turned into updates -------------------------------------


class TrainProgress:
    """``train``'s epochs and batches: ``fit(..., on_batch=tp.on_batch)``, then
    :meth:`epoch` for every record."""

    def __init__(self, show: Display, epochs: int, batch_size: int, stage: str = "train"):
        self.show, self.epochs, self.batch_size, self.stage = show, epochs, batch_size, stage

    def on_batch(self, epoch: int, batch: int, batches: int) -> None:
        done = (epoch - 1) * batches + batch  # of the run: a resumed run's pace starts here
        self.show.update(
            self.stage,
            what=f"{count('epoch', epoch, self.epochs)}, {count('batch', batch, batches)}",
            done=done,
            total=self.epochs * batches,
            images=done * self.batch_size,
        )

    def epoch(self, r) -> None:
        """An :class:`~squeezelab.train.EpochRecord`: its figures as a line, the bar moved."""
        val = f"  val acc {r.val_acc:.4f}" if r.val_acc is not None else ""
        self.show.message(
            f"epoch {r.epoch}/{self.epochs}  loss {r.train_loss:.4f}  acc {r.train_acc:.4f}"
            f"{val}  {r.img_per_s:.0f} img/s  lr {r.lr:.4g}",
            self.stage,
        )
        self.show.update(self.stage, what=count("epoch", r.epoch, self.epochs), rate=r.img_per_s)


def trial_what(counts: Mapping[str, Any], of: int = 0, step: Mapping[str, Any] | None = None):
    """``"trial 3 of 8, rung 1 of 3"``: the trial counts of an explore study (to_dict form)."""
    what = count("trial", int(counts.get("trained", 0)), of)
    if step:
        rungs = step.get("rungs") or ()
        what = (
            f"trial {step['number']}: {count('rung', step['rung'], len(rungs))} "
            f"({step['epochs']} of {step['max_epochs']} epochs), "
            f"{'promoted' if step.get('promoted') else 'stopped'}; " + what
        )
    return what


def trial_note(counts: Mapping[str, Any]) -> str:
    return f"{counts.get('infeasible', 0)} infeasible, {counts.get('failed', 0)} failed"


def design_event(show: Display, ev: Mapping[str, Any]) -> None:
    """One event of :func:`squeezelab.design.design` on the display (stages, trials,
    epochs and batches, ladder rungs, messages; the budget's clock)."""
    stage = ev["stage"]
    if "budget_left_s" in ev:
        show.budget(float(ev["budget_left_s"]))
    if "batch" in ev:  # retrain: a step of an epoch
        b, n, epochs = ev["batch"], ev["batches"], ev.get("epochs")
        done = (ev["epoch"] - 1) * n + b
        show.update(
            stage,
            what=f"{count('epoch', ev['epoch'], epochs)}, {count('batch', b, n)}",
            done=done,
            total=(epochs or ev["epoch"]) * n,
            images=None if "batch_size" not in ev else done * ev["batch_size"],
        )
    elif "message" in ev:
        if "rung" in ev:  # the compression ladder: rung k of n
            show.update(
                stage,
                what=count("rung", ev["rung"], ev.get("rungs")),
                done=ev["rung"],
                total=ev.get("rungs"),
            )
        elif stage != show.status.stage:
            show.update(stage, what="")
        show.message(str(ev["message"]), stage)
    elif "progress" in ev:
        p, of = ev["progress"], int(ev.get("of") or 0)
        show.update(
            stage,
            what=trial_what(p, of, ev.get("step")),
            done=p.get("trained", 0),
            total=of or None,
            note=trial_note(p),
        )
    elif "record" in ev:
        _design_record(show, stage, ev)
    elif stage != show.status.stage:
        show.update(stage)


def _design_record(show: Display, stage: str, ev: Mapping[str, Any]) -> None:
    """A retrain EpochRecord or a compress step record (FinetuneStep, EvaluateStep, ...)."""
    from squeezelab.compress import EncodeStep, EvaluateStep, FinetuneStep
    from squeezelab.train import EpochRecord

    r = ev["record"]
    r = r.record if isinstance(r, FinetuneStep) else r
    if isinstance(r, EpochRecord):
        epochs = ev.get("epochs")
        which, acc = ("val", r.val_acc) if r.val_acc is not None else ("train", r.train_acc)
        show.update(stage, what=count("epoch", r.epoch, epochs), rate=r.img_per_s)
        show.message(
            f"{count('epoch', r.epoch, epochs)} {which} acc {100 * acc:.2f}% "
            f"({r.img_per_s:.0f} img/s)",
            stage,
        )
    elif isinstance(r, EvaluateStep):
        show.message(f"validation accuracy after {r.of}: {r.top1:.2%}", stage)
    elif isinstance(r, EncodeStep):
        show.update(stage, what=count("tensor", r.done, r.total), done=r.done, total=r.total)
