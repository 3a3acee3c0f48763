"""The settings of a design run: one dataclass, whose fields the CLI turns into flags."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from squeezelab.errors import ConfigError

DEFAULT_SPACE = "design-small"  # for classification data
DETECTION_SPACE = "design-det-small"  # what the default becomes for detection data


def resolved_space(config: dict[str, Any]) -> str:
    """The space the settings ``config`` (``DesignConfig.to_dict()``) search: the one named,
    else the data's task default.

    A recorded ``design-small`` on detection data means ``design-det-small``: runs made
    before a named space was searched as named swapped that default silently.
    """
    from squeezelab.explore.tasks import data_task

    name = config.get("space")
    detection = data_task(config.get("data") or "fashion-mnist") == "detection"
    if name is None or (name == DEFAULT_SPACE and detection):
        return DETECTION_SPACE if detection else DEFAULT_SPACE
    return name


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
    space: str | None = _f(
        None,
        f"search-space preset name or YAML file (default: {DEFAULT_SPACE}, or for detection "
        f"data, fashion-mnist-det or a COCO folder, {DETECTION_SPACE}; a space given is "
        "searched as named, and refused on data of the other task)",
    )
    trials: int | None = _f(None, "trained trials at most (default: the space's)")
    sparsity: float | None = _f(
        None,
        "fraction of conv/linear weights pruned, 0..1 (default: the compression ladder "
        "chooses among 0.67/0.5/0.33/0 on validation accuracy; given: that level only, "
        "with dense 8-bit as the fallback that keeps accuracy)",
    )
    bits: int | None = _f(
        None,
        "codebook index bits, 2..8 (default: chosen by the ladder, 4/6 pruned, 5/6/8 "
        "dense; given: that width only, with dense 8-bit as the fallback)",
    )
    calib_size: int = _f(512, "training images that calibrate int8")
    seed: int = _f(0, "seed of the search, training and calibration")
    pick: int | None = field(
        default=None,
        metadata={
            "help": "finish this Pareto-front trial of OUTPUT's finished study instead of "
            "searching: retrain, compress, export and deploy it into OUTPUT/pick-TRIAL",
            "min": 0,
        },
    )

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
            value = getattr(self, name)
            ok = (isinstance(value, str) and value) or (name == "space" and value is None)
            need(ok, name, "a name")
        need(num(self.budget_minutes) and self.budget_minutes > 0, "budget_minutes", "a number > 0")
        need(
            self.trials is None or (integer(self.trials) and self.trials >= 1),
            "trials",
            "an integer >= 1",
        )
        need(
            self.sparsity is None or (num(self.sparsity) and 0 <= self.sparsity < 1),
            "sparsity",
            "a number in [0, 1)",
        )
        need(
            self.bits is None or (integer(self.bits) and 2 <= self.bits <= 8),
            "bits",
            "an integer in 2..8",
        )
        need(integer(self.calib_size) and self.calib_size >= 1, "calib_size", "an integer >= 1")
        need(integer(self.seed), "seed", "an integer")
        need(self.pick is None or (integer(self.pick) and self.pick >= 0), "pick", "a trial >= 0")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
