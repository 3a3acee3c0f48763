"""The demo that ``make demo`` runs: the main job on a small budget.

Until training and search land it lists the zoo and compares AlexNet's parameter
count with SqueezeNet's, the paper's headline.
"""

from __future__ import annotations

import sys


def main() -> int:
    from squeezelab.cli import main as cli

    print("== The model zoo ==")
    cli(["models"])
    from squeezelab.models import create_model

    def count(name: str) -> int:
        return sum(p.numel() for p in create_model(name).parameters())

    print("\n== SqueezeNet against AlexNet (ImageNet layout, 1000 classes) ==")
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
