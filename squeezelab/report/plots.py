"""Report plots from a study's StudyResults, rendered to PNG with matplotlib's Agg canvas.

Accuracy against each cost with the Pareto front highlighted and infeasible candidates
marked; sweeps of each varied metaparameter in the shape of SqueezeNet's Figure 3
(Iandola et al. 2016, arXiv 1602.07360: accuracy and model size vs SR / pct_3x3); a
parallel-coordinates view; per-epoch accuracy of the front. The chosen design (``chosen``,
a trial number) is a green star or line in each; accuracy axes name their split and
budget. Figures never touch pyplot.
"""

from __future__ import annotations

import io
import statistics
from typing import TYPE_CHECKING

from squeezelab.report import tables as tb

if TYPE_CHECKING:
    from squeezelab.explore import StudyResults

FRONT = "#d62728"
TRIAL = "#1f77b4"
INFEASIBLE = "#ff7f0e"
SIZE = "#555555"
CHOSEN = "#2ca02c"


def _mark_chosen(ax, x, y, number: int) -> None:
    """The chosen design: a large green star above every other mark, labelled."""
    ax.scatter(
        [x],
        [y],
        s=240,
        marker="*",
        color=CHOSEN,
        edgecolor="black",
        linewidth=0.8,
        zorder=5,
        label=f"chosen design #{number}",
    )


def _accuracy_axis(ax, results: StudyResults, **kw) -> None:
    ax.set_ylabel(f"{tb.score_label(results)}\n({tb.trial_budget(results)})", fontsize=8, **kw)


def _figure(width: float = 5.2, height: float = 3.5):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    return fig, fig.add_subplot()


def to_png(fig) -> bytes:
    """Render a Figure to PNG bytes (Agg canvas; no pyplot, no global backend)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _scale(name: str, values: list[float]) -> tuple[float, str]:
    """Divisor and axis label for ``name`` so that ticks read in one unit (KiB, M, µJ...)."""
    divisor, unit = tb.display_unit(name, values)
    label = f"{tb.label(name)} ({name}" + (f", {unit})" if unit else ")")
    return divisor, label


def _log_if_wide(ax, which: str, values: list[float]) -> None:
    """Log scale when positive values span more than a decade; plain tick numbers."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    axis = ax.xaxis if which == "x" else ax.yaxis
    positive = [v for v in values if v > 0]
    if positive and len(positive) == len(values) and max(positive) / min(positive) > 10:
        (ax.set_xscale if which == "x" else ax.set_yscale)("log")
        if max(positive) / min(positive) < 300:  # few decades: label 1, 2, 5 of each
            axis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        axis.set_minor_formatter(NullFormatter())
    else:
        axis.get_major_formatter().set_useOffset(False)


def _percent(ax) -> None:
    """Accuracy (0..1) ticks as percent, one decimal when the range is narrow."""
    from matplotlib.ticker import PercentFormatter

    lo, hi = ax.get_ylim()
    ax.yaxis.set_major_formatter(PercentFormatter(xmax=1, decimals=0 if hi - lo > 0.05 else 1))


def _legend_below(fig, *axes) -> None:
    handles, labels = [], []
    for ax in axes:
        h, lab = ax.get_legend_handles_labels()
        handles += h
        labels += lab
    if handles:
        fig.legend(
            handles,
            labels,
            loc="outside lower center",
            ncols=min(4, len(handles)),
            fontsize=7,
            frameon=False,
        )


def _accuracy_floor(ax, results: StudyResults) -> None:
    floor = tb.constraint_limits(results, "min").get("accuracy")
    if floor is not None:
        ax.axhline(
            floor,
            color="black",
            linestyle=":",
            linewidth=1,
            label=f"accuracy ≥ {tb.fmt('accuracy', floor)}",
        )


def accuracy_vs_cost(results: StudyResults, cost: str, chosen: int | None = None):
    """Accuracy of every trained trial against ``cost``; front in red, infeasible as x,
    the ``chosen`` trial as a green star."""
    fig, ax = _figure()
    on_front = tb.front_numbers(results)
    rest = [t for t in tb.trained(results) if t.number not in on_front]
    front = [t for t in tb.front(results) if tb.metric(t, cost) is not None]
    front = [t for t in front if tb.metric(t, "accuracy") is not None]
    bad = [tb.metric(t, cost) for t in tb.infeasible(results)]
    bad = [x for x in bad if x is not None]
    limit = tb.constraint_limits(results).get(cost)
    every = [tb.metric(t, cost) for t in results.trials]
    div, label = _scale(cost, [x for x in every if x is not None] + [limit or 0])

    pts = [(tb.metric(t, cost), tb.metric(t, "accuracy")) for t in rest]
    pts = [(x / div, y) for x, y in pts if x is not None]
    if pts:
        ax.scatter(*zip(*pts, strict=True), s=22, color=TRIAL, alpha=0.6, label="trained")
    accs = [y for _, y in pts]
    if front:
        fx = [tb.metric(t, cost) / div for t in front]
        fy = [tb.metric(t, "accuracy") for t in front]
        accs += fy
        if set(tb.objective_names(results)) == {"accuracy", cost}:
            order = sorted(range(len(fx)), key=lambda i: fx[i])
            ax.step([fx[i] for i in order], [fy[i] for i in order], where="post", color=FRONT)
        ax.scatter(fx, fy, s=46, color=FRONT, edgecolor="black", zorder=3, label="Pareto front")
        for t, x, y in zip(front, fx, fy, strict=True):
            ax.annotate(
                f"#{t.number}", (x, y), xytext=(4, 3), textcoords="offset points", fontsize=7
            )
    if bad:
        # Never trained, so no accuracy: a mark on the bottom edge at their cost.
        ax.scatter(
            [x / div for x in bad],
            [0.03] * len(bad),
            marker="x",
            color=INFEASIBLE,
            transform=ax.get_xaxis_transform(),
            label="infeasible (not trained)",
        )
        ax.update_datalim([(x / div, min(accs or [0.5])) for x in bad])
        ax.autoscale_view()
    if limit is not None:
        ax.axvline(
            limit / div,
            color="black",
            linestyle="--",
            linewidth=1,
            label=f"limit {tb.fmt(cost, limit)}",
        )
    pick = _trial(results, chosen)
    if pick is not None and tb.metric(pick, cost) is not None:
        _mark_chosen(ax, tb.metric(pick, cost) / div, tb.metric(pick, "accuracy"), chosen)
    _accuracy_floor(ax, results)
    _log_if_wide(ax, "x", [x / div for x in every if x is not None])
    _percent(ax)
    ax.set_xlabel(label)
    _accuracy_axis(ax, results)
    ax.set_title(f"accuracy vs {tb.label(cost)}", fontsize=10)
    ax.grid(alpha=0.3)
    _legend_below(fig, ax)
    return fig


def _trial(results: StudyResults, number: int | None):
    """The trained trial ``number``, or None."""
    return next((t for t in tb.trained(results) if t.number == number), None)


def _mapper(values: list):
    """``(position_of, labels)``: numbers stay; anything else maps to a category index."""
    if all(tb.is_number(v) for v in values):
        return float, None
    labels = sorted({tb.fmt("", v) for v in values})
    return (lambda v: float(labels.index(tb.fmt("", v)))), labels


def sweep(results: StudyResults, param: str, chosen: int | None = None):
    """Accuracy (and model size) against one metaparameter, as the paper's Figure 3.

    Dots are trained trials; the line joins the best accuracy at each value. The dashed
    line on the right axis is the median model size (``model_bytes``, else ``params``) of
    every costed candidate, infeasible ones too, so the sweep shows where the limit cuts.
    Returns None when no trained trial has the parameter.
    """
    done = [t for t in tb.trained(results) if param in t.params]
    if not done:
        return None
    every = [t for t in results.trials if param in t.params]
    pos, labels = _mapper([t.params[param] for t in every])
    fig, ax = _figure()
    xs = [pos(t.params[param]) for t in done]
    ys = [tb.metric(t, "accuracy") for t in done]
    ax.scatter(xs, ys, s=18, color=TRIAL, alpha=0.45, label="trained trial")
    levels = sorted(set(xs))
    best = [max(y for x, y in zip(xs, ys, strict=True) if x == lv) for lv in levels]
    ax.plot(levels, best, "o-", color=TRIAL, label="best accuracy")
    pick = _trial(results, chosen)
    if pick is not None and param in pick.params:
        _mark_chosen(ax, pos(pick.params[param]), tb.metric(pick, "accuracy"), chosen)
    _accuracy_floor(ax, results)
    _percent(ax)
    _accuracy_axis(ax, results, color=TRIAL)
    costs = tb.cost_metrics(results)
    sizes = [c for c in costs if tb.base_metric(c) == "model_bytes"] + ["params"] * (
        "params" in costs
    )
    size_name = sizes[0] if sizes else None
    axes = [ax]
    if size_name:
        # Sizes of every costed candidate, infeasible ones too: the size axis is the space's.
        costed = [t for t in every if tb.metric(t, size_name) is not None]
        cx = [pos(t.params[param]) for t in costed]
        sizes = [tb.metric(t, size_name) for t in costed]
        div, label = _scale(size_name, sizes)
        size_levels = sorted(set(cx))
        med = [
            statistics.median(v for x, v in zip(cx, sizes, strict=True) if x == lv) / div
            for lv in size_levels
        ]
        ax2 = ax.twinx()
        ax2.plot(size_levels, med, "s--", color=SIZE, label="median model size")
        limit = tb.constraint_limits(results).get(size_name)
        if limit is not None:
            ax2.axhline(
                limit / div,
                color=SIZE,
                linestyle=(0, (1, 3)),
                linewidth=1,
                label=f"size limit {tb.fmt(size_name, limit)}",
            )
        ax2.set_ylabel(label, color=SIZE)
        axes.append(ax2)
    if labels:
        ax.set_xticks(range(len(labels)), labels)
    ax.set_xlabel(param)
    ax.set_title(f"accuracy and model size vs {param}", fontsize=10)
    ax.grid(alpha=0.3)
    _legend_below(fig, *axes)
    return fig


def parallel_coordinates(results: StudyResults, chosen: int | None = None):
    """One line per trained trial across varied parameters, objectives and limits.

    Each axis is scaled to its own min..max; colour is accuracy; the front is red, the
    ``chosen`` trial a thick green line.
    Returns None when fewer than two axes or no trained trial exist.
    """
    from matplotlib import colormaps
    from matplotlib.colors import Normalize

    done = tb.trained(results)
    costs = tb.cost_metrics(results)
    wanted = set(tb.objective_names(results)) | set(tb.constraint_limits(results))
    axes = tb.varied_params(results) + [c for c in costs if c in wanted] + ["accuracy"]
    if len(axes) < 2 or not done:
        return None
    cols, ticks = [], []
    for name in axes:
        if name in costs or name == "accuracy":
            raw = [tb.metric(t, name) for t in done]
            pos, labels = [float("nan") if v is None else v for v in raw], None
        else:
            vals = [t.params.get(name) for t in done]
            to_pos, labels = _mapper(vals)
            pos = [to_pos(v) for v in vals]
        finite = [v for v in pos if v == v]
        lo, hi = (min(finite), max(finite)) if finite else (0.0, 1.0)
        span = hi - lo or 1.0
        cols.append([(v - lo) / span for v in pos])
        if labels:
            ticks.append([((i - lo) / span, lab) for i, lab in enumerate(labels)])
        else:
            ticks.append([(0.0, tb.fmt(name, lo)), (1.0, tb.fmt(name, hi))])
    fig, ax = _figure(width=max(5.2, 1.3 * len(axes)), height=3.8)
    acc = [tb.metric(t, "accuracy") for t in done]
    norm = Normalize(min(acc), max(acc) if max(acc) > min(acc) else min(acc) + 1e-9)
    cmap = colormaps["viridis"]
    on_front = tb.front_numbers(results)
    xs = list(range(len(axes)))
    for i, t in enumerate(done):
        line = [c[i] for c in cols]
        if t.number == chosen:
            ax.plot(xs, line, color=CHOSEN, linewidth=4, zorder=4, label=f"chosen design #{chosen}")
        elif t.number in on_front:
            ax.plot(xs, line, color=FRONT, linewidth=2.2, zorder=3)
        else:
            ax.plot(xs, line, color=cmap(norm(acc[i])), linewidth=1, alpha=0.7)
    for x, axis_ticks in zip(xs, ticks, strict=True):
        ax.axvline(x, color="black", linewidth=0.8)
        for y, label in axis_ticks:
            ax.text(x + 0.03, y, label, fontsize=7, va="center")
    ax.set_xticks(xs, axes, fontsize=8)
    ax.set_yticks([])
    ax.set_xlim(-0.2, len(axes) - 0.5)
    ax.set_ylim(-0.08, 1.08)
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    title = "parallel coordinates (red: Pareto front; colour: accuracy"
    title += f"; green: chosen #{chosen})" if _trial(results, chosen) else ")"
    ax.set_title(title, fontsize=10)
    ax.text(len(axes) - 1, -0.08, tb.trial_budget(results), fontsize=6, ha="right", va="top")
    return fig


def learning_curves(results: StudyResults, chosen: int | None = None):
    """Per-epoch accuracy of every trained trial (grey), the front (red) and the ``chosen``
    trial (thick green); None if none."""
    done = [t for t in tb.trained(results) if t.epoch_accuracy]
    if not done:
        return None
    fig, ax = _figure()
    on_front = tb.front_numbers(results)
    for t in done:
        ys = [y for y in t.epoch_accuracy if tb.is_number(y)]
        member = t.number in on_front
        if t.number == chosen:
            ax.plot(
                range(1, len(ys) + 1),
                ys,
                color=CHOSEN,
                linewidth=3,
                zorder=4,
                label=f"chosen design #{chosen}",
            )
            continue
        ax.plot(
            range(1, len(ys) + 1),
            ys,
            color=FRONT if member else "#999999",
            linewidth=1.6 if member else 0.8,
            zorder=3 if member else 1,
        )
    _percent(ax)
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_xlabel("epoch")
    images = tb.images_label(results.space.train.get("train_subset"))
    ax.set_ylabel(f"accuracy\n(validation, per epoch on {images})", fontsize=8)
    ax.set_title(
        "accuracy per epoch (red: Pareto front; green: chosen)"
        if _trial(results, chosen)
        else "accuracy per epoch (red: Pareto front)",
        fontsize=10,
    )
    _legend_below(fig, ax)
    ax.grid(alpha=0.3)
    return fig
