"""Figure 3 and Table 3 of Iandola et al. 2016 on Fashion-MNIST, at trained budgets.

Claim (squeezelab issue 20): the SR sweep, the pct_3x3 sweep and the bypass study of the
paper, each point trained with the time-to-accuracy recipe on the whole training split
with three seeds, say per claim whether it holds here, judged against the seed spread.

    .venv/bin/python benchmarks/paper_sweeps.py run [--runs DIR] [--threads N]
        [--no-new-after HH:MM] [--beside-other-work]   # train (resumable), then collect + plots
    .venv/bin/python benchmarks/paper_sweeps.py estimate     # the expected wall time only
    .venv/bin/python benchmarks/paper_sweeps.py collect      # study dirs -> the JSON
    .venv/bin/python benchmarks/paper_sweeps.py [plots] [--page docs/reproduction.md]

``run`` trains the three grid studies (presets ``paper-sr-sweep``, ``paper-pct3x3-sweep``,
``paper-bypass``, one ``squeezelab explore`` study each under ``runs/``) seed by seed:
every point of every study with seed 0, then seed 1, then seed 2. A killed run, rerun,
continues where it stopped: finished trials are kept in the studies and never retrained.
``plots`` reads only ``benchmarks/results/paper_sweeps.json``: the figures, the tables and
the verdicts of the page (``--page`` rewrites the page's generated blocks with them).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from deploy_targets import host, versions  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "paper_sweeps.json"
IMG = ROOT / "docs" / "img"


@dataclass(frozen=True)
class Sweep:
    """One of the paper's studies: its preset, the metaparameter it varies, its figure."""

    key: str  # key in the JSON
    preset: str  # squeezelab preset (squeezelab/presets/<preset>.yaml)
    param: str  # the varied metaparameter
    label: str  # its axis label
    image: str  # docs/img/<image>.png


SWEEPS = (
    Sweep("sr", "paper-sr-sweep", "sr", "squeeze ratio SR", "figure3_sr"),
    Sweep(
        "pct_3x3", "paper-pct3x3-sweep", "pct_3x3", "share of 3x3 expand filters", "figure3_pct_3x3"
    ),
    Sweep("bypass", "paper-bypass", "bypass", "bypass connections", "table3_bypass"),
)
ORDER = {"none": 0, "simple": 1, "complex": 2}  # Table 3's row order

# ImageNet figures from the paper (REFERENCES.md): Figure 3 as (top-5 %, MB), the points it
# states; Table 3 as (top-1 %, top-5 %)
PAPER = {
    "sr": {0.125: (80.3, 4.8), 0.75: (86.0, 19.0)},
    "pct_3x3": {0.5: (85.6, 13.0)},
    "bypass": {"none": (57.5, 80.3), "simple": (60.4, 82.5), "complex": (58.8, 82.0)},
}

# The pace the wall-time estimate starts from, until finished trials give a measured fit:
# the first epoch of this base network (SR 0.5, pct_3x3 0.5) on 60,000 images in
# benchmarks/time_to_accuracy.py, measured with nothing else running; scaled by each
# point's MACs.
PACE = {
    "s_per_epoch": 54.4,
    "macs": 9_997_568,
    "host": "AMD EPYC, 2 cores, AVX2, 2 threads, nothing else running",
    "source": "benchmarks/results/time_to_accuracy.json (ours, epoch 1: 54.38 s), 2026-12-01",
}


# --- running the studies ---------------------------------------------------------------
class _Stop(Exception):
    """Raised from the trial callback: this stage (or the allowed time) is over."""


def load_spaces(sweeps=SWEEPS) -> dict:
    """``{sweep key: Space}`` of the presets."""
    from squeezelab.explore import load_space

    return {s.key: load_space(s.preset) for s in sweeps}


def seeds_of(space) -> list[int]:
    """The training seeds a space's grid repeats every point with ([train.seed] without)."""
    p = space.params.get("seed")
    return sorted(p.grid()) if p is not None else [int(space.train.get("seed", 0))]


def points_up_to(space, seed: int) -> int:
    """Grid points whose seed is at most ``seed``."""
    return sum(int(v.get("seed", seeds_of(space)[0])) <= seed for v in space.enumerate())


def trained_count(study_dir: Path) -> int:
    """Trained trials of the study in ``study_dir`` (0 when there is none yet)."""
    if not (study_dir / "study.db").is_file():
        return 0
    from squeezelab.explore import load_study_results

    return load_study_results(study_dir).counts.trained


def run_sweeps(
    plan: list[tuple[str, object, Path]],
    train_fn=None,
    no_new_after: float | None = None,
    say=print,
    after_trial=None,
    config=None,
) -> bool:
    """Train the studies of ``plan`` (``(key, Space, study dir)``) seed by seed; resumable.

    Stage by stage (seed 0 of every study, then seed 1, ...), each study runs until it has
    trained as many trials as it has points with that seed or a lower one. ``no_new_after``
    (a ``time.time()``) starts no trial after that moment; ``config`` is the
    ``ExploreConfig`` of every study (tests: short heartbeats). Returns True when every
    point of every study is trained.
    """
    from squeezelab.explore import ExploreConfig, explore

    seeds = sorted({s for _, space, _ in plan for s in seeds_of(space)})
    for seed in seeds:
        for key, space, study_dir in plan:
            want = points_up_to(space, seed)
            have = trained_count(study_dir)
            if have >= want:
                continue
            if no_new_after is not None and time.time() >= no_new_after:
                say(f"{key}: not starting seed {seed} (past --no-new-after); {have} trained")
                return False
            say(f"{key}: seed {seed}, {have} of {want} trials trained so far")
            t0 = time.time()

            def on_trial(counts, key=key, want=want, t0=t0):
                say(f"{key}: {counts.trained} of {want} trained ({time.time() - t0:.0f} s)")
                if after_trial is not None:
                    after_trial()
                if counts.trained >= want:
                    raise _Stop
                if no_new_after is not None and time.time() >= no_new_after:
                    raise _Stop

            with contextlib.suppress(_Stop):
                cfg = config or ExploreConfig()
                explore(space, study_dir, cfg, on_trial=on_trial, train_fn=train_fn)
            if trained_count(study_dir) < want:  # stopped by the clock
                return False
    return all(trained_count(d) >= space.size() for _, space, d in plan)


# --- what the studies hold ------------------------------------------------------------
PROVENANCE = "provenance.json"  # per study: trial number -> how that run was made


def stamp(runs: Path, ran: dict) -> None:
    """Record ``ran`` (host, threads, other work) for every trained trial not yet recorded.

    Called after each trial, so a trial carries the settings of the run that trained it;
    trials trained before this record existed stay without one (``"ran": null``).
    """
    from squeezelab.explore import load_study_results
    from squeezelab.io import atomic_write_json

    for s in SWEEPS:
        study_dir = runs / s.preset
        if not (study_dir / "study.db").is_file():
            continue
        path = study_dir / PROVENANCE
        known = json.loads(path.read_text()) if path.is_file() else {}
        trained = [t.number for t in load_study_results(study_dir).trials if t.state == "trained"]
        new = {str(n): ran for n in trained if str(n) not in known}
        if new:
            atomic_write_json(path, {**known, **new})


def collect(runs: Path, spaces: dict, beside_other_work: bool, threads: int | None) -> dict:
    """The JSON of every finished trial of the three studies under ``runs``."""
    import torch

    from squeezelab.explore import load_study_results

    out = {
        "benchmark": "paper_sweeps",
        "host": host(),
        "threads": threads or torch.get_num_threads(),
        "ran_beside_other_work": beside_other_work,
        "versions": versions(("torch", "optuna")),
        "collected_utc": datetime.now(UTC).strftime("%Y-%m-%d %H:%M"),
        "pace": PACE,
        "paper": {k: {str(x): v for x, v in d.items()} for k, d in PAPER.items()},
        "sweeps": {},
    }
    for s in SWEEPS:
        space, study_dir = spaces[s.key], runs / s.preset
        trials = []
        prov = study_dir / PROVENANCE
        ran = json.loads(prov.read_text()) if prov.is_file() else {}
        if (study_dir / "study.db").is_file():
            for t in load_study_results(study_dir).trials:
                if t.state != "trained":
                    continue
                m = t.metrics
                trials.append(
                    {
                        "trial": t.number,
                        "seed": int(t.params.get("seed", seeds_of(space)[0])),
                        s.param: t.params.get(s.param),
                        "accuracy": m["accuracy"],
                        "epoch_accuracy": list(t.epoch_accuracy),
                        "params": m["params"],
                        "model_bytes": m["model_bytes"],
                        "macs": m["macs"],
                        "train_s": t.train_s,
                        "ran": ran.get(str(t.number)),  # host, threads, other work
                    }
                )
        out["sweeps"][s.key] = {
            "preset": s.preset,
            "param": s.param,
            "values": space.params[s.param].grid(),
            "seeds": seeds_of(space),
            "train": dict(space.train),
            "fixed": {n: p.choices[0] for n, p in space.params.items() if p.kind == "fixed"},
            "runs_total": space.size(),
            "trials": sorted(trials, key=lambda r: (r["seed"], _order(r[s.param]))),
        }
    return out


def _order(v):
    return ORDER.get(v, v)


# --- statistics and verdicts ----------------------------------------------------------
def points(sweep: dict) -> list[dict]:
    """One row per value of the varied metaparameter: accuracy mean and std over seeds."""
    param, rows = sweep["param"], []
    for v in sweep["values"]:
        runs = [t for t in sweep["trials"] if t[param] == v]
        accs = [100 * t["accuracy"] for t in runs]
        rows.append(
            {
                param: v,
                "n": len(accs),
                "of": len(sweep["seeds"]),
                "accs": accs,
                "mean": statistics.fmean(accs) if accs else None,
                "std": statistics.stdev(accs) if len(accs) > 1 else None,
                "params": runs[0]["params"] if runs else None,
                "model_bytes": runs[0]["model_bytes"] if runs else None,
                "macs": runs[0]["macs"] if runs else None,
            }
        )
    return rows


def _find(rows: list[dict], param: str, value) -> dict:
    return next(r for r in rows if r[param] == value)


def _done(rows: list[dict]) -> tuple[int, int]:
    return sum(r["n"] for r in rows), sum(r["of"] for r in rows)


def _unresolved(rows: list[dict]) -> str | None:
    n, m = _done(rows)
    return None if n == m else f"not resolved: {n} of {m} runs done"


def _gap(a: dict, b: dict) -> tuple[float, float]:
    """``a``'s mean minus ``b``'s, and the seed spread it is judged by: std_a + std_b."""
    return a["mean"] - b["mean"], (a["std"] or 0.0) + (b["std"] or 0.0)


def _pm(r: dict) -> str:
    return f"{r['mean']:.2f} +/- {r['std']:.2f}%" if r["std"] is not None else f"{r['mean']:.2f}%"


def beats(rows: list[dict], param: str, hi, lo) -> tuple[str, str]:
    """Verdict on "``hi`` is more accurate than ``lo``": held when the gap exceeds the seed
    spread (the +/- 1 std bars do not overlap), not held when it does the other way."""
    a, b = _find(rows, param, hi), _find(rows, param, lo)
    pending = _unresolved([a, b])
    if pending:
        return pending, ""
    d, spread = _gap(a, b)
    ev = f"{_fmt(hi)}: {_pm(a)}, {_fmt(lo)}: {_pm(b)}; gap {d:+.2f}, spread {spread:.2f} points"
    if d > spread:
        return "held", ev
    if -d > spread:
        return "not held (the reverse, beyond the seed spread)", ev
    return "not resolved: the gap is within the seed spread", ev


def no_better(rows: list[dict], param: str, more, base) -> tuple[str, str]:
    """Verdict on the plateau claim "``more`` is no more accurate than ``base``"."""
    a, b = _find(rows, param, more), _find(rows, param, base)
    pending = _unresolved([a, b])
    if pending:
        return pending, ""
    d, spread = _gap(a, b)
    ev = f"{_fmt(more)}: {_pm(a)}, {_fmt(base)}: {_pm(b)}; gap {d:+.2f}, spread {spread:.2f} points"
    return ("not held: it gains beyond the seed spread" if d > spread else "held"), ev


def plateau(rows: list[dict], param: str) -> tuple[str, str]:
    """Where the plateau begins: the lowest value whose mean is within the seed spread of
    the best point's, every higher value being so too."""
    pending = _unresolved(rows)
    if pending:
        return pending, ""
    best = max(rows, key=lambda r: r["mean"])
    within = [r for r in rows if _gap(best, r)[0] <= _gap(best, r)[1]]
    start = min(rows.index(r) for r in within)
    ev = f"best {_fmt(best[param])} ({_pm(best)}); within its spread: " + ", ".join(
        _fmt(r[param]) for r in within
    )
    where = _fmt(rows[start][param])
    if start == len(rows) - 1:
        return f"no plateau: the last point, {param} = {where}, is best beyond the spread", ev
    if not all(r in within for r in rows[start:]):
        return f"a peak, not a plateau: from {param} = {where} some points fall below it", ev
    return f"from {param} = {where}", ev


def grows(rows: list[dict], param: str) -> tuple[str, str]:
    """Model size against the varied metaparameter (measured parameter counts)."""
    sizes = [r["model_bytes"] for r in rows]
    if any(s is None for s in sizes):
        n, m = sum(s is not None for s in sizes), len(sizes)
        return f"not resolved: {n} of {m} points have a trained run", ""
    up = all(b > a for a, b in zip(sizes, sizes[1:], strict=False))
    ev = (
        f"{sizes[0] / 1e3:,.1f} KB at {_fmt(rows[0][param])} to {sizes[-1] / 1e3:,.1f} KB "
        f"at {_fmt(rows[-1][param])} ({sizes[-1] / sizes[0]:.1f}x), fp32"
    )
    return ("held" if up else "not held"), ev


def claims(data: dict) -> dict[str, list[tuple[str, str, str]]]:
    """Per section, ``(claim, verdict, evidence)``: every verdict from the measured runs."""
    out: dict[str, list[tuple[str, str, str]]] = {}
    sr = points(data["sweeps"]["sr"])
    out["figure3"] = [
        ("(a) Accuracy rises with SR: SR 0.75 above SR 0.125", *beats(sr, "sr", 0.75, 0.125)),
        ("(a) Plateau from SR 0.75: SR 1.0 no better than 0.75", *no_better(sr, "sr", 1.0, 0.75)),
        ("(a) Where the SR plateau begins (paper: 0.75)", *plateau(sr, "sr")),
        ("(a) Model size grows with SR", *grows(sr, "sr")),
    ]
    pct = points(data["sweeps"]["pct_3x3"])
    out["figure3"] += [
        (
            "(b) More 3x3 filters help up to 50%: pct_3x3 0.5 above 0",
            *beats(pct, "pct_3x3", 0.5, 0.0),
        ),
        (
            "(b) Plateau at 50%: pct_3x3 0.75 no better than 0.5",
            *no_better(pct, "pct_3x3", 0.75, 0.5),
        ),
        (
            "(b) Plateau at 50%: pct_3x3 1.0 no better than 0.5",
            *no_better(pct, "pct_3x3", 1.0, 0.5),
        ),
        ("(b) Where the pct_3x3 plateau begins (paper: 0.5)", *plateau(pct, "pct_3x3")),
        ("(b) Model size grows with pct_3x3", *grows(pct, "pct_3x3")),
    ]
    by = points(data["sweeps"]["bypass"])
    out["table3"] = [
        ("Simple bypass above none (paper +2.9 top-1)", *beats(by, "bypass", "simple", "none")),
        ("Complex bypass above none (paper +1.3)", *beats(by, "bypass", "complex", "none")),
        ("Simple bypass above complex (paper +1.6)", *beats(by, "bypass", "simple", "complex")),
        ("All three within 3 points (paper: 2.9)", *_within(by, 3.0)),
        ("Simple bypass adds no parameters, complex adds some", *_bypass_params(by)),
    ]
    return out


def _within(rows: list[dict], points_: float) -> tuple[str, str]:
    pending = _unresolved(rows)
    if pending:
        return pending, ""
    means = [r["mean"] for r in rows]
    span = max(means) - min(means)
    return ("held" if span <= points_ else "not held"), f"means span {span:.2f} points"


def _bypass_params(rows: list[dict]) -> tuple[str, str]:
    p = {r["bypass"]: r["params"] for r in rows}
    if None in p.values():
        return f"not resolved: {sum(v is not None for v in p.values())} of 3 trained", ""
    ok = p["simple"] == p["none"] < p["complex"]
    ev = " / ".join(f"{int(p[k]):,}" for k in ("none", "simple", "complex")) + " parameters"
    return ("held" if ok else "not held"), ev


# --- the wall-time estimate -----------------------------------------------------------
def estimate(spaces: dict, data: dict | None) -> dict:
    """Expected training seconds: runs x epochs x seconds per epoch (an estimate).

    Seconds per epoch are a least-squares line over MACs through the finished trials when
    two or more distinct points have finished, else :data:`PACE`, scaled by MACs.
    """
    from squeezelab.explore.costs import cost_candidate

    done_trials = [t for sw in (data or {}).get("sweeps", {}).values() for t in sw["trials"]]
    per_epoch = [(t["macs"], t["train_s"] / len(t["epoch_accuracy"])) for t in done_trials]
    per_epoch = [(m, s) for m, s in per_epoch if s]
    if len({m for m, _ in per_epoch}) >= 2:
        xs, ys = zip(*per_epoch, strict=True)
        mx, my = statistics.fmean(xs), statistics.fmean(ys)
        slope = sum((x - mx) * (y - my) for x, y in per_epoch) / sum((x - mx) ** 2 for x in xs)
        intercept = my - slope * mx
        h = data["host"]
        basis = (
            f"s/epoch against MACs fitted to the {len(per_epoch)} finished runs, measured on "
            f"{h['cpu']} ({h['cores']} cores, {data['threads']} threads"
            f"{', beside other work' if data['ran_beside_other_work'] else ''})"
        )

        def pace(macs):
            return max(intercept + slope * macs, 1.0)
    else:
        basis = (
            f"{PACE['s_per_epoch']:.0f} s/epoch at {PACE['macs'] / 1e6:.1f}M MACs on "
            f"{PACE['host']} ({PACE['source']}), scaled by MACs"
        )

        def pace(macs):
            return PACE["s_per_epoch"] * macs / PACE["macs"]

    done = {
        (sw["preset"], t["seed"], str(t[sw["param"]]))
        for sw in (data or {}).get("sweeps", {}).values()
        for t in sw["trials"]
    }
    total = left = 0.0
    runs = runs_left = epochs = 0
    for s in SWEEPS:
        space = spaces[s.key]
        epochs = int(space.train.get("epochs") or 1)
        for values in space.enumerate():
            macs = cost_candidate(space, space.candidate(values))["macs"]
            sec = epochs * pace(macs)
            total, runs = total + sec, runs + 1
            key = (s.preset, int(values.get("seed", 0)), str(values[s.param]))
            if key not in done:
                left, runs_left = left + sec, runs_left + 1
    return {
        "basis": basis,
        "runs": runs,
        "runs_left": runs_left,
        "epochs_per_run": epochs,
        "total_s": total,
        "left_s": left,
    }


def estimate_line(est: dict) -> str:
    return (
        f"expected wall time (an estimate): {est['runs']} runs x {est['epochs_per_run']} epochs, "
        f"{est['total_s'] / 3600:.1f} h in all, {est['left_s'] / 3600:.1f} h for the "
        f"{est['runs_left']} runs left; pace from {est['basis']}"
    )


# --- tables, page blocks and plots -----------------------------------------------------
def _fmt(value) -> str:
    return f"{value:g}" if isinstance(value, int | float) else str(value)


def sweep_table(sweep: dict) -> str:
    """The sweep as a markdown table: one row per point, mean +/- std over its seeds."""
    param = sweep["param"]
    paper = PAPER.get("bypass" if param == "bypass" else param, {})
    head = "paper top-1 / top-5 (%)" if param == "bypass" else "paper top-5 (%), size (MB)"
    lines = [
        f"| {param} | runs | val top-1 (%), mean +/- std | per seed (%) | params | "
        f"fp32 size (KB) | MACs (M) | {head} |",
        "| ---: | ---: | ---: | --- | ---: | ---: | ---: | --- |",
    ]
    for r in points(sweep):
        acc = "-" if r["mean"] is None else _pm(r).replace("%", "")
        seeds = ", ".join(f"{a:.2f}" for a in r["accs"]) or "-"
        size = "-" if r["model_bytes"] is None else f"{r['model_bytes'] / 1e3:,.1f}"
        n_params = "-" if r["params"] is None else f"{int(r['params']):,}"
        macs = "-" if r["macs"] is None else f"{r['macs'] / 1e6:.2f}"
        p = paper.get(r[param])
        ref = "-" if p is None else (f"{p[0]} / {p[1]}" if param == "bypass" else f"{p[0]}, {p[1]}")
        lines.append(
            f"| {_fmt(r[param])} | {r['n']} of {r['of']} | {acc} | {seeds} | {n_params} | "
            f"{size} | {macs} | {ref} |"
        )
    return "\n".join(lines)


def claims_list(items: list[tuple[str, str, str]]) -> str:
    return "\n".join(
        f"- **{claim}**: {verdict}" + (f" ({ev})" if ev else "") for claim, verdict, ev in items
    )


def budget_table(spaces: dict) -> str:
    """The presets' budgets as the page states them (tests/reproduce compares the two)."""
    lines = [
        "| preset | varies | values | seeds | recipe | epochs | training images | val_fraction |",
        "| --- | --- | --- | --- | --- | ---: | --- | ---: |",
    ]
    for s in SWEEPS:
        sp = spaces[s.key]
        t = sp.train
        images = "all" if t.get("train_subset") is None else str(t["train_subset"])
        lines.append(
            f"| {s.preset} | {s.param} | {', '.join(map(_fmt, sp.params[s.param].grid()))} | "
            f"{', '.join(map(str, seeds_of(sp)))} | {t.get('recipe')} | {t.get('epochs')} | "
            f"{images} | {t.get('val_fraction')} |"
        )
    return "\n".join(lines)


def page_blocks(data: dict, spaces: dict) -> dict[str, str]:
    """The generated blocks of docs/reproduction.md, by name."""
    verdicts = claims(data)
    return {
        "budgets": budget_table(spaces),
        "sr": sweep_table(data["sweeps"]["sr"]),
        "pct_3x3": sweep_table(data["sweeps"]["pct_3x3"]),
        "figure3-claims": claims_list(verdicts["figure3"]),
        "bypass": sweep_table(data["sweeps"]["bypass"]),
        "table3-claims": claims_list(verdicts["table3"]),
    }


def marker(name: str) -> tuple[str, str]:
    return f"<!-- paper_sweeps:{name} -->", f"<!-- /paper_sweeps:{name} -->"


def read_blocks(text: str) -> dict[str, str]:
    """The generated blocks a page holds, by name."""
    out = {}
    for name in ("budgets", "sr", "pct_3x3", "figure3-claims", "bypass", "table3-claims"):
        start, end = marker(name)
        if start in text and end in text:
            out[name] = text.split(start, 1)[1].split(end, 1)[0].strip("\n")
    return out


def write_blocks(text: str, blocks: dict[str, str]) -> str:
    """``text`` with each generated block replaced (a block without markers is left out)."""
    for name, body in blocks.items():
        start, end = marker(name)
        if start in text and end in text:
            head, rest = text.split(start, 1)
            text = f"{head}{start}\n{body}\n{end}{rest.split(end, 1)[1]}"
    return text


def plot_sweep(sweep: dict, s: Sweep, path: Path) -> None:
    """Accuracy mean +/- std over seeds (each seed a dot) and model size on a second axis;
    a sweep without runs gets a figure that says so (never one of an older budget)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from squeezelab.io import atomic_path

    rows = [r for r in points(sweep) if r["n"]]
    t = sweep["train"]
    n, m = sum(r["n"] for r in points(sweep)), sweep["runs_total"]
    fig, ax = plt.subplots(figsize=(6, 3.6), dpi=110)
    ax.set_title(
        f"{sweep['preset']}: {t.get('recipe')}, {t.get('epochs')} epochs on all training "
        f"images; {n} of {m} runs",
        fontsize=8,
    )
    if not rows:
        ax.text(0.5, 0.5, f"not run yet: 0 of {m} runs", ha="center", va="center")
        ax.set_axis_off()
    else:
        categorical = s.param == "bypass"
        xs = list(range(len(rows))) if categorical else [r[s.param] for r in rows]
        means = [r["mean"] for r in rows]
        stds = [r["std"] or 0.0 for r in rows]
        ax.errorbar(xs, means, yerr=stds, fmt="o-", color="tab:blue", capsize=4)
        for x, r in zip(xs, rows, strict=True):
            ax.plot([x] * len(r["accs"]), r["accs"], ".", color="tab:blue", alpha=0.4)
        ax.set_xlabel(s.label)
        ax.set_ylabel("val top-1 (%), mean +/- std over seeds", color="tab:blue")
        ax.grid(alpha=0.3)
        if categorical:
            ax.set_xticks(xs, [r[s.param] for r in rows])
        ax2 = ax.twinx()
        ax2.plot(xs, [r["model_bytes"] / 1e3 for r in rows], "s--", color="tab:gray")
        ax2.set_ylabel("model size, fp32 (KB)", color="tab:gray")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


def render(data: dict, img: Path, page: Path | None) -> dict[str, str]:
    """Plots and page blocks from the JSON alone; rewrites ``page``'s blocks if given."""
    from squeezelab.explore import load_space

    for s in SWEEPS:
        plot_sweep(data["sweeps"][s.key], s, img / f"{s.image}.png")
        print(f"wrote {img / (s.image + '.png')}")
    spaces = {s.key: load_space(s.preset) for s in SWEEPS}
    blocks = page_blocks(data, spaces)
    if page is not None:
        from squeezelab.io import atomic_write_bytes

        text = page.read_text()
        new = write_blocks(text, blocks)
        if new != text:
            atomic_write_bytes(page, new.encode())
            print(f"updated the generated blocks of {page}")
    return blocks


def _read(path: Path) -> dict | None:
    import json

    return json.loads(path.read_text()) if path.is_file() else None


def _clock(hhmm: str) -> float:
    """``"20:25"`` (UTC, today) as a ``time.time()``; an argparse type."""
    try:
        h, m = (int(x) for x in hhmm.split(":"))
        now = datetime.now(UTC)
        return now.replace(hour=h, minute=m, second=0, microsecond=0).timestamp()
    except ValueError:
        raise argparse.ArgumentTypeError(f"{hhmm!r} is invalid: allowed HH:MM (UTC)") from None


class _Parser(argparse.ArgumentParser):
    """A user error is one line (``paper_sweeps.py: error: ...``), exit status 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}\n")


def main(argv: list[str] | None = None) -> int:
    ap = _Parser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "action",
        nargs="?",
        default="plots",
        choices=("run", "estimate", "collect", "plots"),
        help="run: train the studies (resumable), then collect and plot; estimate: the "
        "expected wall time; collect: the studies' runs to the JSON; plots (default): the "
        "figures and the page's blocks from the JSON",
    )
    ap.add_argument("--runs", type=Path, default=ROOT / "runs", help="where the studies live")
    ap.add_argument("--out", type=Path, default=OUT, help="the JSON (read by plots)")
    ap.add_argument("--img", type=Path, default=IMG, help="where the PNG plots go")
    ap.add_argument("--page", type=Path, help="rewrite this page's generated blocks")
    from squeezelab.cli._flags import int_range

    ap.add_argument("--threads", type=int_range(1), default=2, help="CPU threads to train with")
    ap.add_argument("--no-new-after", type=_clock, help="HH:MM UTC: start no trial after this time")
    ap.add_argument(
        "--beside-other-work",
        action="store_true",
        help="record that other jobs shared the CPUs during the run",
    )
    args = ap.parse_args(argv)
    from squeezelab.io import atomic_write_json

    if args.action == "plots":
        data = _read(args.out)
        if data is None:
            ap.error(f"{args.out}: no such file; run `collect` (or `run`) first")  # exit 2
        blocks = render(data, args.img, args.page)
        print("\n\n".join(f"{k}:\n{v}" for k, v in blocks.items()))
        return 0
    import torch

    torch.set_num_threads(args.threads)
    spaces = load_spaces()
    plan = [(s.key, spaces[s.key], args.runs / s.preset) for s in SWEEPS]

    def save(ran: dict | None = None) -> dict:
        if ran is not None:  # during `run`: the trials just trained were made by this one
            stamp(args.runs, ran)
        data = collect(args.runs, spaces, args.beside_other_work, args.threads)
        atomic_write_json(args.out, data)
        return data

    if args.action == "estimate":
        print(estimate_line(estimate(spaces, _read(args.out))), flush=True)
        return 0
    if args.action == "collect":
        data = save()
        print(f"wrote {args.out}: {sum(len(s['trials']) for s in data['sweeps'].values())} runs")
        return 0
    stamp(args.runs, None)  # trials trained before this run: how is not known here
    print(estimate_line(estimate(spaces, save())), flush=True)  # runs done so far count
    ran = {"cpu": host()["cpu"], "threads": args.threads}
    ran["beside_other_work"] = args.beside_other_work
    complete = run_sweeps(
        plan,
        no_new_after=args.no_new_after,
        say=lambda s: print(s, flush=True),
        after_trial=lambda: save(ran),
    )
    data = save(ran)
    render(data, args.img, args.page)
    n = sum(len(s["trials"]) for s in data["sweeps"].values())
    m = sum(s["runs_total"] for s in data["sweeps"].values())
    print(f"{n} of {m} runs done" + ("" if complete else "; rerun the same command to go on"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
