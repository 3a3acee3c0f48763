"""The data ``advise`` returns: ranked layers, suggestions with measured savings, the advice.

A saving is always ``before - after`` of two :func:`squeezelab.analysis.profile` totals
(positive: the change saves; negative: it costs), never a formula.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from squeezelab.analysis import Profile

# Totals a suggestion's saving reports, in the order they are shown.
SAVING_METRICS = (
    "params",
    "macs",
    "model_bytes",
    "dram_bytes",
    "energy_pj",
    "latency_ms",
    "peak_activation_bytes",
)
# Metrics whose heaviest layers the advice names.
RANKED_METRICS = ("params", "macs", "dram_bytes", "energy_pj")


@dataclass
class Ranked:
    name: str  # qualified module name, e.g. "classifier.1"
    op: str  # op class from the analyser: conv, conv1x1, dwconv, linear, ...
    value: float  # the layer's params, MACs, DRAM bytes or energy (pJ)
    share: float  # value / model total, 0..1

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class Suggestion:
    technique: str  # conv-head, kernel-reduction, channel-reduction, downsample-later, ...
    targets: list[str]  # qualified names of the layers it changes (empty: whole model)
    message: str  # one or two sentences with the figures, for people
    saving: dict[str, float]  # metric -> before - after (negative: the change costs)
    modified_spec: dict | None = None  # the SqueezeNetSpec to try, for spec-level changes
    weight_bits: int = 32  # bits per weight of the "after" profile
    activation_bits: int = 32  # bits per activation of the "after" profile
    # The modified module the "after" profile was taken of (None: no structural change
    # to measure, e.g. distillation). Shares the original's weights; not serialised.
    variant: nn.Module | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "variant"
        }


@dataclass
class Advice:
    model: str  # the name the model was given by
    input_shape: list[int]  # (C, H, W) profiled
    hardware: str  # hardware profile the energy and latency figures are for
    totals: dict[str, float]  # SAVING_METRICS of the model as given
    top: dict[str, list[Ranked]]  # RANKED_METRICS -> heaviest layers, heaviest first
    suggestions: list[Suggestion]  # in playbook order: head, kernels, channels, ...
    spec: dict | None = None  # the model's SqueezeNetSpec, when it has one
    limits: list[str] = field(default_factory=list)  # the target's limits it exceeds

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "input_shape": list(self.input_shape),
            "hardware": self.hardware,
            "totals": dict(self.totals),
            "top": {k: [r.to_dict() for r in v] for k, v in self.top.items()},
            "suggestions": [s.to_dict() for s in self.suggestions],
            "spec": self.spec,
            "limits": list(self.limits),
        }


def totals(p: Profile) -> dict[str, float]:
    """The SAVING_METRICS totals of a profile."""
    return {k: getattr(p, k) for k in SAVING_METRICS}


def saving(before: Profile, after: Profile) -> dict[str, float]:
    """``before - after`` for every metric in SAVING_METRICS."""
    return {k: getattr(before, k) - getattr(after, k) for k in SAVING_METRICS}


def top_layers(p: Profile, metric: str, n: int = 5) -> list[Ranked]:
    """The ``n`` layers with the largest ``metric``, with their share of the total."""
    total = getattr(p, metric)
    ranked = sorted(
        (x for x in p.layers if getattr(x, metric) > 0),
        key=lambda x: getattr(x, metric),
        reverse=True,
    )
    return [
        Ranked(x.name, x.op, getattr(x, metric), getattr(x, metric) / total) for x in ranked[:n]
    ]


_BYTES = ("model_bytes", "dram_bytes", "peak_activation_bytes")


def human(metric: str, value: float) -> str:
    """A short figure with its unit: ``human("params", 37752832) == "37.8M"``.

    Bytes read "4.76 MiB" (binary), MACs "819M MACs", energy "43.94 mJ", latency "21.2 ms".
    """
    from squeezelab.analysis.units import format_bytes, format_energy

    if metric == "latency_ms":
        return f"{value:,.0f} ms" if abs(value) >= 1000 else f"{value:.3g} ms"
    if metric == "energy_pj":  # the one energy and size formatters of the CLI and the report
        return format_energy(value)
    if metric in _BYTES:
        return format_bytes(value)
    else:
        unit = " MACs" if metric == "macs" else ""
        scales = ((1e9, "G" + unit), (1e6, "M" + unit), (1e3, "k" + unit), (1, unit))
    scale, suffix = next((s, u) for s, u in scales if abs(value) >= s or s == 1)
    return f"{value / scale:.3g}{suffix}"
