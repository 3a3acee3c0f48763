"""Figure 3 and Table 3 of Iandola et al. 2016 on Fashion-MNIST: SR, pct_3x3 and bypass.

Reads the grid studies made by

    squeezelab explore paper-sr-sweep -o runs/paper-sr-sweep [--epochs E --train-subset N]
    squeezelab explore paper-pct3x3-sweep -o runs/paper-pct3x3-sweep [...]
    squeezelab explore paper-bypass -o runs/paper-bypass [...]

and writes their tables to ``benchmarks/results/figure3_sweeps.json`` and one plot per
study (accuracy and model size against the varied metaparameter) to ``docs/img/``.
A study directory that does not exist is skipped.

    .venv/bin/python benchmarks/figure3_sweeps.py [--sr DIR] [--pct DIR] [--bypass DIR]
        [--img DIR] [--out PATH]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from squeezelab.explore import load_study_results
from squeezelab.io import atomic_path, atomic_write_json

# ImageNet figures from the paper (REFERENCES.md): Figure 3 as (top-5 %, MB), the points it
# states; Table 3 as (top-1 %, top-5 %)
PAPER = {
    "sr": {0.125: (80.3, 4.8), 0.75: (86.0, 19.0)},
    "pct_3x3": {0.5: (85.6, 13.0)},
    "bypass": {"none": (57.5, 80.3), "simple": (60.4, 82.5), "complex": (58.8, 82.0)},
}
ORDER = {"none": 0, "simple": 1, "complex": 2}  # Table 3's row order


def sweep_rows(study_dir: str, param: str) -> dict:
    res = load_study_results(study_dir)
    rows = sorted(
        (
            {
                "trial": t.number,
                param: t.params[param],
                "accuracy": t.metrics["accuracy"],
                "epoch_accuracy": list(t.epoch_accuracy),
                "params": t.metrics["params"],
                "model_bytes": t.metrics["model_bytes"],
                "macs": t.metrics["macs"],
                "train_s": t.train_s,
            }
            for t in res.trials
            if t.state == "trained"
        ),
        key=lambda r: ORDER.get(r[param], r[param]),
    )
    return {
        "study": res.study,
        "train": res.space.train,
        "counts": res.counts.to_dict(),
        "rows": rows,
    }


def plot(sweep: dict, param: str, label: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = sweep["rows"]
    x = [r[param] for r in rows]
    fig, ax = plt.subplots(figsize=(6, 3.6), dpi=110)
    ax.plot(x, [100 * r["accuracy"] for r in rows], "o-", color="tab:blue")
    ax.set_xlabel(label)
    ax.set_ylabel("Fashion-MNIST val top-1 (%)", color="tab:blue")
    ax.grid(alpha=0.3)
    ax2 = ax.twinx()
    ax2.plot(x, [r["model_bytes"] / 1e6 for r in rows], "s--", color="tab:gray")
    ax2.set_ylabel("model size, fp32 (MB)", color="tab:gray")
    t = sweep["train"] or {}
    ax.set_title(
        f"{sweep['study']}: {t.get('epochs')} epochs x {t.get('train_subset')} images, "
        f"{t.get('optimizer')}",
        fontsize=8,
    )
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sr", default="runs/paper-sr-sweep", help="study dir of paper-sr-sweep")
    ap.add_argument(
        "--pct", default="runs/paper-pct3x3-sweep", help="study dir of paper-pct3x3-sweep"
    )
    ap.add_argument("--bypass", default="runs/paper-bypass", help="study dir of paper-bypass")
    ap.add_argument("--img", default="docs/img", help="where the PNG plots go")
    ap.add_argument("--out", default="benchmarks/results/figure3_sweeps.json")
    args = ap.parse_args(argv)
    result = {
        "paper_imagenet_top5_pct_and_mb": {
            k: {str(x): v for x, v in d.items()} for k, d in PAPER.items()
        }
    }
    for key, study_dir, param, label in (
        ("sr", args.sr, "sr", "squeeze ratio SR"),
        ("pct_3x3", args.pct, "pct_3x3", "share of 3x3 expand filters pct_3x3"),
        ("bypass", args.bypass, "bypass", "bypass connections"),
    ):
        if not (Path(study_dir) / "study.db").is_file():
            continue
        sweep = sweep_rows(study_dir, param)
        result[key] = sweep
        if sweep["rows"]:
            name = "table3_bypass" if key == "bypass" else f"figure3_{key}"
            plot(sweep, param, label, Path(args.img) / f"{name}.png")
    atomic_write_json(args.out, result)
    for key in ("sr", "pct_3x3", "bypass"):
        if key in result:
            print(markdown_table(result[key], key))
    return result


def markdown_table(sweep: dict, param: str) -> str:
    """The sweep as a markdown table: one row per trained point."""
    lines = [
        f"| {param} | val top-1 (%) | per epoch (%) | params | fp32 size (KB) | MACs (M) |",
        "| ---: | ---: | --- | ---: | ---: | ---: |",
    ]
    for r in sweep["rows"]:
        per_epoch = ", ".join(f"{100 * a:.1f}" for a in r["epoch_accuracy"])
        lines.append(
            f"| {_fmt(r[param])} | {100 * r['accuracy']:.1f} | {per_epoch} | {r['params']:,.0f} | "
            f"{r['model_bytes'] / 1e3:,.1f} | {r['macs'] / 1e6:.2f} |"
        )
    return "\n".join(lines)


def _fmt(value) -> str:
    return f"{value:g}" if isinstance(value, int | float) else str(value)


if __name__ == "__main__":
    main()
