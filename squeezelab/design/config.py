"""The settings of a design run: one dataclass, whose fields the CLI turns into flags."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any


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

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DesignConfig:
        return cls(**{f.name: d[f.name] for f in dataclasses.fields(cls)})
