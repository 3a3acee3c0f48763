"""The analytic screen over a whole space, and the no-feasible-point diagnosis.

Before any training, the space is enumerated (finite, small) or sampled and every
point costed with :mod:`squeezelab.analysis`; when none satisfies the constraints the
user learns which constraint is tightest and the smallest value the space reaches.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from typing import Any

from squeezelab.errors import InfeasibleError, SpecError
from squeezelab.explore.costs import cost_candidate, violations
from squeezelab.explore.space import Space

ENUMERATE_MAX = 1024  # enumerate finite spaces up to this size, sample beyond
SAMPLES = 64


@dataclass
class ScreenReport:
    """What the screen saw: how many points, how many feasible, the best reach per constraint."""

    checked: int
    feasible: int
    invalid: int
    seconds: float
    enumerated: bool
    best: dict[str, float] = field(default_factory=dict)  # constraint key -> smallest value
    best_values: dict[str, dict[str, Any]] = field(default_factory=dict)  # ... at these params

    @property
    def candidates_per_s(self) -> float:
        return self.checked / self.seconds if self.seconds > 0 else float("inf")

    def to_dict(self) -> dict[str, Any]:
        return {
            "checked": self.checked,
            "feasible": self.feasible,
            "invalid": self.invalid,
            "seconds": self.seconds,
            "enumerated": self.enumerated,
            "candidates_per_s": self.candidates_per_s,
            "best": dict(self.best),
            "best_values": dict(self.best_values),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ScreenReport:
        """Read :meth:`to_dict`'s JSON (a study's ``screen`` user attr) back."""
        return cls(
            int(d.get("checked") or 0),
            int(d.get("feasible") or 0),
            int(d.get("invalid") or 0),
            float(d.get("seconds") or 0.0),
            bool(d.get("enumerated")),
            dict(d.get("best") or {}),
            dict(d.get("best_values") or {}),
        )


def _points(space: Space, samples: int, seed: int):
    size = space.size()
    if size is not None and size <= ENUMERATE_MAX:
        return list(space.enumerate()), True
    rng = random.Random(seed)
    return [space.sample(rng) for _ in range(samples)], False


def screen_space(
    space: Space, samples: int = SAMPLES, seed: int = 0, stop_at_feasible: bool = False
) -> ScreenReport:
    """Cost every point of a small finite space, or ``samples`` random points otherwise
    (until the first feasible one with ``stop_at_feasible``)."""
    points, enumerated = _points(space, samples, seed)
    report = ScreenReport(0, 0, 0, 0.0, enumerated)
    t0 = time.perf_counter()
    for values in points:
        try:
            metrics = cost_candidate(space, space.candidate(values))
        except SpecError:
            report.invalid += 1
            continue
        report.checked += 1
        viol = violations(space.constraints, metrics)
        report.feasible += all(v <= 0 for v in viol)
        for c in space.constraints:
            if (
                c.key in metrics
                and c.max is not None
                and metrics[c.key] < report.best.get(c.key, float("inf"))
            ):
                report.best[c.key] = metrics[c.key]
                report.best_values[c.key] = values
        if stop_at_feasible and report.feasible:
            break
    report.seconds = time.perf_counter() - t0
    return report


def check_feasible(space: Space, samples: int = SAMPLES, seed: int = 0) -> ScreenReport:
    """Screen the space; raise InfeasibleError naming the tightest constraint if nothing fits.

    The tightest constraint is the one whose smallest reachable value exceeds its limit by
    the largest factor.
    """
    report = screen_space(space, samples, seed, stop_at_feasible=True)
    if report.checked == 0:
        raise InfeasibleError(
            f"search space {space.name!r}: none of the {report.invalid} candidates checked is a "
            "valid architecture (see `squeezelab spec`); widen the params"
        )
    if report.feasible or not space.constraints:
        return report
    ratios = {
        c.key: (report.best[c.key] / c.max if c.max else float("inf"), c)
        for c in space.constraints
        if c.key in report.best
    }
    key, (ratio, c) = max(ratios.items(), key=lambda kv: kv[1][0])
    jointly = " (each limit is reachable alone, not all at once)" if ratio <= 1 else ""
    how = "all" if report.enumerated else "a sample of"
    others = [
        f"{k} reaches {report.best[k]:,.6g} (limit {cc.max:,.6g})"
        for k, (_, cc) in ratios.items()
        if k != key
    ]
    raise InfeasibleError(
        f"no feasible candidate in search space {space.name!r} ({how} {report.checked} "
        f"candidates checked): the tightest constraint is {c.describe()}; the smallest "
        f"{key} the space reaches is {report.best[key]:,.6g} ({ratio:.2f}x the limit) at "
        f"{report.best_values[key]}{jointly}"
        + (f"; also {'; '.join(others)}" if others else "")
        + f". Allowed: raise the {key} limit to at least {report.best[key]:,.6g}, or widen the "
        "params toward smaller models"
    )
