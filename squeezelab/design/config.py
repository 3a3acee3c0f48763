"""The settings of a design run: one dataclass, whose fields the CLI turns into flags."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from squeezelab.errors import ConfigError


def _f(default, help: str):
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class DesignConfig:
    """What ``squeezelab design`` searches, for which device, on which data.

    Each field's ``metadata["help"]`` is the help text of its ``--flag`` (units included).
    """

    data: str = _f("fashion-mnist", "dataset name or directory")
    data_dir: str | None = _f(None, "where to look for a named dataset first")
    hardware: str = _f("cortex-m7", "hardware profile: its flash and SRAM bound the search")
    budget_minutes: float = _f(10.0, "wall-clock minutes the stages plan for (approximate)")
    space: str = _f("design-small", "search-space preset name or YAML file")
    trials: int | None = _f(None, "trained trials at most (default: the space's)")
    sparsity: float = _f(0.67, "fraction of conv/linear weights pruned, 0..1 (paper: 0.67)")
    bits: int = _f(6, "codebook index bits, 2..8 (paper: 6 for SqueezeNet)")
    calib_size: int = _f(512, "training images that calibrate int8")
    seed: int = _f(0, "seed of the search, training and calibration")

    def __post_init__(self) -> None:
        def need(ok: bool, name: str, allowed: str) -> None:
            if not ok:
                value = getattr(self, name)
                raise ConfigError(f"{name}={value!r} is invalid: allowed {allowed}")

        def num(v) -> bool:
            return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)

        def integer(v) -> bool:
            return isinstance(v, int) and not isinstance(v, bool)

        for name in ("data", "hardware", "space"):
            need(isinstance(getattr(self, name), str) and getattr(self, name), name, "a name")
        need(num(self.budget_minutes) and self.budget_minutes > 0, "budget_minutes", "a number > 0")
        need(
            self.trials is None or (integer(self.trials) and self.trials >= 1),
            "trials",
            "an integer >= 1",
        )
        need(num(self.sparsity) and 0 <= self.sparsity < 1, "sparsity", "a number in [0, 1)")
        need(integer(self.bits) and 2 <= self.bits <= 8, "bits", "an integer in 2..8")
        need(integer(self.calib_size) and self.calib_size >= 1, "calib_size", "an integer >= 1")
        need(integer(self.seed), "seed", "an integer")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
