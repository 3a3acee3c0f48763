"""Multi-fidelity search: train many candidates briefly, promote the promising ones.

Asynchronous successive halving (ASHA; Li et al. 2020, arXiv 1810.05934): a trial trains
epoch by epoch up to ``train.epochs``; at each rung (``min_epochs * eta**k`` epochs) it
goes on only if it ranks in the top ``1/eta`` of the trials that reached that rung so far,
else it stops there, its checkpoint kept. A single-objective study ranks by Optuna's
pruners (``SuccessiveHalvingPruner``, or ``HyperbandPruner``, Li et al. 2018) through
``trial.report``/``should_prune``; a multi-objective one by Pareto rank (non-dominated
sorting, Deb et al. 2002) of (accuracy at the rung, the analytic costs), accuracy breaking
ties. Configured by the space's ``search.fidelity``; off when that key is absent.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from squeezelab.errors import ConfigError

PRUNERS = ("halving", "hyperband")


@dataclass(frozen=True)
class Fidelity:
    """When trials are compared, and how many go on (``search.fidelity`` of a space)."""

    min_epochs: int  # the first rung: every trained candidate gets this many epochs
    max_epochs: int  # the full budget, train.epochs: a trial promoted past every rung
    eta: int = 3  # reduction factor: the top 1/eta at a rung go on
    pruner: str = "halving"  # single-objective studies: halving | hyperband

    @property
    def rungs(self) -> tuple[int, ...]:
        """Epoch counts at which a trial is compared with the others (below the full budget).

        Example:
            >>> Fidelity(1, 9, eta=3).rungs
            (1, 3)
        """
        out, r = [], self.min_epochs
        while r < self.max_epochs:
            out.append(r)
            r *= self.eta
        return tuple(out)

    def to_dict(self) -> dict[str, Any]:
        return {
            "min_epochs": self.min_epochs,
            "max_epochs": self.max_epochs,
            "eta": self.eta,
            "pruner": self.pruner,
            "rungs": list(self.rungs),
        }


def parse_fidelity(raw: Any, train: dict[str, Any], n_objectives: int) -> Fidelity | None:
    """``search.fidelity`` checked against the space's ``train.epochs``; None when absent."""
    if raw is None:
        return None
    where = "search.fidelity"
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}={raw!r} is invalid: allowed a mapping {{min_epochs, eta}}")
    extra = set(raw) - {"min_epochs", "eta", "pruner"}
    if extra:
        raise ConfigError(
            f"{where}: unknown key(s) {sorted(extra)}; allowed ['eta', 'min_epochs', 'pruner']"
        )
    ints = {k: raw.get(k, d) for k, d in (("min_epochs", 1), ("eta", 3))}
    for k, lo in (("min_epochs", 1), ("eta", 2)):
        v = ints[k]
        if not isinstance(v, int) or isinstance(v, bool) or v < lo:
            raise ConfigError(f"{where}.{k}={v!r} is invalid: allowed an integer >= {lo}")
    pruner = raw.get("pruner", "halving")
    if pruner not in PRUNERS:
        raise ConfigError(f"{where}.pruner={pruner!r} is invalid: allowed {list(PRUNERS)}")
    if pruner == "hyperband" and n_objectives > 1:
        raise ConfigError(
            f"{where}.pruner='hyperband' needs a single objective (Optuna prunes those only); "
            "allowed for several objectives: 'halving' (promotion by Pareto rank)"
        )
    epochs = train.get("epochs")
    if not isinstance(epochs, int) or isinstance(epochs, bool) or epochs <= ints["min_epochs"]:
        raise ConfigError(
            f"train.epochs={epochs!r} is invalid with {where}.min_epochs={ints['min_epochs']}: "
            "allowed an integer above min_epochs (the full budget a promoted trial reaches)"
        )
    return Fidelity(ints["min_epochs"], epochs, ints["eta"], pruner)


def make_pruner(fidelity: Fidelity | None, n_objectives: int):
    """Optuna's pruner for a single-objective fidelity study; None otherwise (the default)."""
    if fidelity is None or n_objectives > 1:
        return None
    import optuna

    if fidelity.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(
            min_resource=fidelity.min_epochs,
            max_resource=fidelity.max_epochs,
            reduction_factor=fidelity.eta,
        )
    return optuna.pruners.SuccessiveHalvingPruner(
        min_resource=fidelity.min_epochs, reduction_factor=fidelity.eta
    )


def rung_vector(
    accuracy: float, metrics: dict[str, Any], keys: list[str], directions: list[str]
) -> list[float] | None:
    """A trial's objective values at a rung, all to minimise (None: a cost is missing)."""
    out = []
    for k, d in zip(keys, directions, strict=True):
        v = accuracy if k == "accuracy" else metrics.get(k)
        if not isinstance(v, int | float) or not math.isfinite(v):
            return None
        out.append(-float(v) if d == "maximize" else float(v))
    return out


def nondominated_ranks(points: list[list[float]]) -> list[int]:
    """Pareto rank of each point, all objectives minimised (0: the first front)."""

    def dominates(a, b):
        return all(x <= y for x, y in zip(a, b, strict=True)) and a != b

    ranks, left, rank = [0] * len(points), set(range(len(points))), 0
    while left:
        front = {i for i in left if not any(dominates(points[j], points[i]) for j in left)}
        for i in front:
            ranks[i] = rank
        left -= front
        rank += 1
    return ranks


def pareto_promotable(mine: list[float], accuracy: float, others: list[tuple], eta: int) -> bool:
    """Whether a trial goes on from a rung: among the ``others`` that reached it (each
    ``(vector, accuracy)``) and itself, it is within the top ``max(1, n // eta)`` ordered by
    Pareto rank, then accuracy (ties go on, as in Optuna's SuccessiveHalvingPruner).

    Example:
        >>> pareto_promotable([-0.9, 5.0], 0.9, [([-0.5, 9.0], 0.5), ([-0.6, 8.0], 0.6)], 3)
        True
    """
    points = [mine, *(v for v, _ in others)]
    accs = [accuracy, *(a for _, a in others)]
    ranks = nondominated_ranks(points)
    key = [(r, -a) for r, a in zip(ranks, accs, strict=True)]
    ahead = sum(1 for k in key[1:] if k < key[0])
    return ahead < max(1, len(points) // eta)


def rung_competitors(trial, epoch: int, keys: list[str], directions: list[str]) -> list[tuple]:
    """``(vector, accuracy)`` of the other trials of ``trial``'s study at ``epoch`` epochs.

    Every trial (finished or running, of any worker) that trained at least ``epoch``
    epochs counts, once per point: duplicates and failed trials are left out.
    """
    from optuna.trial import TrialState

    out = []
    for t in trial.study.get_trials(deepcopy=False):
        ua = t.user_attrs
        # a failed trial's curve is repeated by its retry
        if t.number == trial.number or "duplicate_of" in ua or t.state == TrialState.FAIL:
            continue
        curve = ua.get("epoch_accuracy") or ()
        if len(curve) < epoch:
            continue
        vec = rung_vector(float(curve[epoch - 1]), ua.get("metrics") or {}, keys, directions)
        if vec is not None:
            out.append((vec, float(curve[epoch - 1])))
    return out
