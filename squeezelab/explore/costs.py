"""Analytic costing of a candidate before any training: the screen of a search.

Every metric but accuracy comes from :func:`squeezelab.analysis.profile` (params,
MACs, model bytes, energy, predicted latency, peak activations), or from
:func:`squeezelab.analysis.measure_latency` for measured latency.
"""

from __future__ import annotations

import json
from typing import Any

from squeezelab.errors import ConfigError
from squeezelab.explore.space import SCORES, Candidate, Constraint, Objective, Space

_MEMO: dict[str, dict[str, float]] = {}  # the screen revisits points (NSGA-II, retries)
COST_FIELDS = ("params", "macs", "model_bytes", "energy_pj", "latency_ms", "peak_activation_bytes")


def cost_candidate(space: Space, candidate: Candidate, model=None) -> dict[str, float]:
    """Every cost metric of ``candidate``: the base set at the space's costing defaults
    plus one entry per objective/constraint key with its own options.

    Example:
        >>> from squeezelab.explore import load_space
        >>> s = load_space("paper-sr-sweep")
        >>> cost_candidate(s, s.candidate({"sr": 0.25}))["params"] > 0  # doctest: +SKIP
        True
    """
    from squeezelab.analysis import profile

    raw = space.raw
    key = [candidate.to_dict(), raw.get("costing"), raw.get("objectives"), raw.get("constraints")]
    key = json.dumps(key, sort_keys=True, default=str)
    if key in _MEMO:
        return dict(_MEMO[key])
    model = candidate.build() if model is None else model
    profiles: dict[tuple, Any] = {}

    def prof(hardware: str, bits: int):
        key = (hardware, bits)
        if key not in profiles:
            profiles[key] = profile(
                model,
                input_shape=candidate.input_shape,
                hardware=hardware,
                weight_bits=bits,
                activation_bits=space.activation_bits,
            )
        return profiles[key]

    base = prof(space.hardware, space.weight_bits)
    out = {f: float(getattr(base, f)) for f in COST_FIELDS}
    for o in space.metric_list():
        if o.metric in SCORES or o.key in out:  # scores come from training
            continue
        if o.measured:
            out[o.key] = _measured_latency_ms(model, candidate.input_shape)
        elif o.compression:
            out[o.key] = compressed_bytes(model, candidate, o.compression)
        else:
            p = prof(o.hardware or space.hardware, o.bits or space.weight_bits)
            value = getattr(p, o.metric)
            if value is None:  # TFLite Micro's figures exist at int8 only
                raise ConfigError(
                    f"{o.key} is costed at 8-bit weights and activations only; allowed: "
                    "costing weight_bits: 8 and activation_bits: 8"
                )
            out[o.key] = float(value)
    if not any(o.measured for o in space.metric_list()):  # measurements are not memoised
        _MEMO[key] = dict(out)
    return out


def compressed_bytes(model, candidate: Candidate, compression: tuple[float, int]) -> float:
    """Bytes of the real ``.sqz`` file of ``model`` (Deep Compression, Han et al. 2016).

    Before training this is the file of the initial weights: pruning and the codebook
    fix most of the size, entropy coding the rest, which training changes a little.
    """
    from squeezelab.compress import compress_model

    sparsity, bits = compression
    out = compress_model(model, candidate.meta, sparsity=sparsity, bits=bits)
    return float(out.accounting.file_bytes)


def _measured_latency_ms(model, input_shape) -> float:
    from squeezelab.analysis import measure_latency

    return float(measure_latency(model, input_shape, batch=1, threads=1)["median_ms"])


def violations(constraints: list[Constraint], metrics: dict[str, float]) -> list[float]:
    """One number per constraint, Optuna's convention: > 0 violated, <= 0 satisfied.

    A constraint on a score (accuracy, map50) is not known before training and counts as
    satisfied here.
    """
    return [c.violation(metrics[c.key]) if c.key in metrics else 0.0 for c in constraints]


def objective_values(objectives: list[Objective], metrics: dict[str, float]) -> list[float]:
    """The objective vector; an untrained candidate's score is 0 (the worst)."""
    return [float(metrics.get(o.key) or 0.0) for o in objectives]
