"""The demo that ``make demo`` runs: the main job on a small budget.

It shows the zoo and SqueezeNet's headline (AlexNet-level layouts with 50x fewer
parameters), then runs ``squeezelab design`` on Fashion-MNIST for a Cortex-M7 into
``out/demo``: search, retrain, compress, export, time, report. Run it again to resume.
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m squeezelab.demo", description=__doc__)
    parser.add_argument(
        "-o",
        "--output",
        "--out",
        dest="output",
        default="out/demo",
        help="output directory (default: out/demo)",
    )
    parser.add_argument(
        "--budget-minutes", type=float, default=8.0, help="design budget in minutes (default: 8)"
    )
    args = parser.parse_args(argv)

    from squeezelab.cli import main as cli
    from squeezelab.models import create_model

    def count(name: str) -> int:
        return sum(p.numel() for p in create_model(name).parameters())

    print("== SqueezeNet against AlexNet (ImageNet layout, 1000 classes) ==")
    a = count("alexnet")
    for name in ("squeezenet1_0", "squeezenet1_1"):
        s = count(name)
        print(
            f"{name}: {s:,} params, {a / s:.1f}x fewer than alexnet ({a:,}); fp32 {s * 4 / 1e6:.2f} MB"
        )
    a_small, s_small = count("alexnet_small"), count("squeezenet_small")
    print(
        f"squeezenet_small: {s_small:,} params, {a_small / s_small:.0f}x fewer than alexnet_small ({a_small:,})"
    )
    print("\n== The design run: Fashion-MNIST, target cortex-m7 ==", flush=True)
    return cli(
        [
            "design",
            "--data",
            "fashion-mnist",
            "--hardware",
            "cortex-m7",
            "--budget-minutes",
            str(args.budget_minutes),
            "-o",
            args.output,
        ]
    )


if __name__ == "__main__":
    sys.exit(main())
