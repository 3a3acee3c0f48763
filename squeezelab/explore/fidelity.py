"""Multi-fidelity search: train many candidates briefly, promote the promising ones.

Asynchronous successive halving (ASHA; Li et al. 2020, arXiv 1810.05934): a trial trains
epoch by epoch up to ``train.epochs``; at each rung (``min_epochs * eta**k`` epochs) it
goes on only if at least ``min_at_rung`` trials (default ``eta``) have reached that rung
and it ranks in the top ``1/eta`` of them; otherwise it *pauses* there (checkpoint kept,
user attr ``paused``). Whenever a worker needs new work it first promotes a paused trial
that has become promotable, highest rung first (:func:`next_promotion`): a new Optuna
trial, ``promoted_from`` the paused one, resumes its run dir; only then does it start a
new candidate at the bottom rung. A paused trial that nobody promotes is a result at its
rung. One objective ranks through an Optuna pruner (:class:`RungPruner`, ``trial.report``
/ ``should_prune``; or Optuna's ``HyperbandPruner``, Li et al. 2018, which stops instead
of pausing); several by Pareto rank (non-dominated sorting, Deb et al. 2002) of (accuracy
at the rung, the analytic costs), accuracy breaking ties. Configured by the space's
``search.fidelity``; off when that key is absent. :func:`affordable_epochs` sizes the top
rung to a time share.
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
    min_at_rung: int | None = None  # trials at a rung before any goes on (None: eta)

    @property
    def quorum(self) -> int:
        """How many trials must reach a rung before one is promoted from it."""
        return self.min_at_rung or self.eta

    @property
    def pauses(self) -> bool:
        """Trials pause at a rung and are promoted later (ASHA); Hyperband stops them."""
        return self.pruner == "halving"

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
            "min_at_rung": self.quorum,
            "rungs": list(self.rungs),
        }


def parse_fidelity(raw: Any, train: dict[str, Any], n_objectives: int) -> Fidelity | None:
    """``search.fidelity`` checked against the space's ``train.epochs``; None when absent."""
    if raw is None:
        return None
    where = "search.fidelity"
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}={raw!r} is invalid: allowed a mapping {{min_epochs, eta}}")
    extra = set(raw) - {"min_epochs", "eta", "pruner", "min_at_rung"}
    if extra:
        raise ConfigError(
            f"{where}: unknown key(s) {sorted(extra)}; "
            "allowed ['eta', 'min_at_rung', 'min_epochs', 'pruner']"
        )
    ints = {k: raw.get(k, d) for k, d in (("min_epochs", 1), ("eta", 3), ("min_at_rung", 1))}
    for k, lo in (("min_epochs", 1), ("eta", 2), ("min_at_rung", 1)):
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
    return Fidelity(ints["min_epochs"], epochs, ints["eta"], pruner, raw.get("min_at_rung"))


def bracket_epochs(min_epochs: int, eta: int, top: int) -> int:
    """Epochs one full bracket trains: ``eta**s`` candidates at ``min_epochs``, the top
    ``1/eta`` of each rung promoted (resumed, not retrained) until one reaches ``top``.

    Example:
        >>> bracket_epochs(1, 3, 9)  # 9 candidates x 1 + 3 x 2 more + 1 x 6 more
        21
    """
    s = round(math.log(top / min_epochs, eta))
    total, prev = 0, 0
    for k in range(s + 1):
        rung = min_epochs * eta**k
        total += eta ** (s - k) * (rung - prev)
        prev = rung
    return total


def affordable_epochs(min_epochs: int, eta: int, share_epochs: float) -> int:
    """The top rung (``train.epochs``) a time share affords: the largest
    ``min_epochs * eta**s`` (s >= 1) whose full bracket (:func:`bracket_epochs`) fits in
    ``share_epochs`` (the share in seconds over the measured seconds per epoch). With a
    larger top rung no trial can earn it within the share: at least ``eta`` trials must
    reach each rung below it first.

    Example:
        >>> affordable_epochs(1, 3, 25.0), affordable_epochs(1, 3, 12.0)
        (9, 3)
    """
    top = min_epochs * eta
    while bracket_epochs(min_epochs, eta, top * eta) <= share_epochs:
        top *= eta
    return top


def make_pruner(fidelity: Fidelity | None, objectives):
    """The pruner of a single-objective fidelity study (``objectives``: the space's);
    None otherwise (the default)."""
    if fidelity is None or len(objectives) > 1:
        return None
    if fidelity.pruner == "hyperband":
        import optuna

        return optuna.pruners.HyperbandPruner(
            min_resource=fidelity.min_epochs,
            max_resource=fidelity.max_epochs,
            reduction_factor=fidelity.eta,
        )
    keys, dirs = rung_keys(objectives)
    return RungPruner(fidelity, keys, dirs)


def rung_keys(objectives) -> tuple[list[str], list[str]]:
    """Keys and directions a rung ranks by: the objectives known before training (the
    score at the rung and the analytic costs; compressed sizes need trained weights)."""
    objs = [o for o in objectives if not o.compression]
    return [o.key for o in objs], [o.direction for o in objs]


class RungPruner:
    """ASHA's rung decision as an Optuna pruner (``optuna.pruners.BasePruner``'s
    protocol): ``should_prune()`` is True at a rung the trial may not go on from yet
    (fewer than ``quorum`` trials there, or outside their top ``1/eta``): it pauses."""

    def __init__(self, fidelity: Fidelity, keys: list[str], directions: list[str]) -> None:
        self.fidelity, self.keys, self.directions = fidelity, keys, directions

    def prune(self, study, trial) -> bool:
        step = trial.last_step
        if step is None or step not in self.fidelity.rungs:
            return False
        acc = float(trial.intermediate_values[step])
        mine = rung_vector(acc, trial.user_attrs.get("metrics") or {}, self.keys, self.directions)
        if mine is None:  # a cost is missing: nothing to rank by, go on as without fidelity
            return False
        trials = study.get_trials(deepcopy=False)
        others = rung_points(trials, step, self.keys, self.directions, skip=trial.number)
        return not pareto_promotable(mine, acc, others, self.fidelity.eta, self.fidelity.quorum)


def rung_vector(
    accuracy: float, metrics: dict[str, Any], keys: list[str], directions: list[str]
) -> list[float] | None:
    """A trial's objective values at a rung, all to minimise (None: a cost is missing)."""
    from squeezelab.explore.space import SCORES  # lazy: space imports this module

    out = []
    for k, d in zip(keys, directions, strict=True):
        v = accuracy if k in SCORES else metrics.get(k)  # the score at the rung
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


def pareto_promotable(
    mine: list[float], accuracy: float, others: list[tuple], eta: int, quorum: int | None = None
) -> bool:
    """Whether a trial goes on from a rung: at least ``quorum`` trials (default ``eta``)
    reached it (the ``others``, each ``(vector, accuracy)``, and itself), and it is within
    the top ``max(1, n // eta)`` of them by Pareto rank, then accuracy (ties go on).

    Example:
        >>> pareto_promotable([-0.9, 5.0], 0.9, [([-0.5, 9.0], 0.5), ([-0.6, 8.0], 0.6)], 3)
        True
        >>> pareto_promotable([-0.9, 5.0], 0.9, [], 3)  # alone at its rung: it waits
        False
    """
    points = [mine, *(v for v, _ in others)]
    if len(points) < (quorum or eta):
        return False
    accs = [accuracy, *(a for _, a in others)]
    ranks = nondominated_ranks(points)
    key = [(r, -a) for r, a in zip(ranks, accs, strict=True)]
    ahead = sum(1 for k in key[1:] if k < key[0])
    return ahead < max(1, len(points) // eta)


def continuations(trials) -> dict[int, Any]:
    """Paused trials that were promoted: origin number -> the trial continuing it (the
    latest that has not failed; a retry of a killed continuation carries its attrs)."""
    from optuna.trial import TrialState

    out = {}
    for t in trials:
        origin = t.user_attrs.get("promoted_from")
        if origin is not None and t.state != TrialState.FAIL and "duplicate_of" not in t.user_attrs:
            out[origin] = t
    return out


def promotion_ends(trials) -> dict[int, int]:
    """Origins whose continuation has finished -> the last trial of their chain (the one
    that holds the point's result: the same run dir, trained further)."""
    from optuna.trial import TrialState

    cont = continuations(trials)
    done = {o: t for o, t in cont.items() if t.state in (TrialState.COMPLETE, TrialState.PRUNED)}
    out = {}
    for origin in done:
        end = origin
        while end in done:
            end = done[end].number
        out[origin] = end
    return out


def rung_points(trials, epoch: int, keys: list[str], directions: list[str], skip=None) -> list:
    """``(vector, accuracy)`` of every point that trained at least ``epoch`` epochs, once
    per point: failed trials, duplicates and promoted origins (their continuation holds
    the curve) are left out, and so is trial ``skip``."""
    from optuna.trial import TrialState

    gone = set(continuations(trials))
    out = []
    for t in trials:
        ua = t.user_attrs
        # a failed trial's curve is repeated by its retry
        if t.number == skip or "duplicate_of" in ua or t.state == TrialState.FAIL:
            continue
        curve = ua.get("epoch_accuracy") or ()
        if t.number in gone or len(curve) < epoch:
            continue
        vec = rung_vector(float(curve[epoch - 1]), ua.get("metrics") or {}, keys, directions)
        if vec is not None:
            out.append((vec, float(curve[epoch - 1])))
    return out


def rung_competitors(trial, epoch: int, keys: list[str], directions: list[str]) -> list[tuple]:
    """``(vector, accuracy)`` of the other trials of ``trial``'s study at ``epoch`` epochs
    (:func:`rung_points`): finished or running, of any worker."""
    return rung_points(
        trial.study.get_trials(deepcopy=False), epoch, keys, directions, trial.number
    )


def next_promotion(trials, fidelity: Fidelity, objectives):
    """The paused trial a worker continues before starting a new candidate (ASHA), or None.

    Paused trials not yet promoted, highest rung first, then best score: the first that
    was already going on when a budget stopped it, or that is now promotable from its rung
    (:func:`pareto_promotable` against the points that reached it).
    """
    from optuna.trial import TrialState

    keys, dirs = rung_keys(objectives)
    gone = set(continuations(trials))
    paused = [
        t
        for t in trials
        if t.state in (TrialState.COMPLETE, TrialState.PRUNED)
        and t.user_attrs.get("paused")
        and "duplicate_of" not in t.user_attrs
        and t.number not in gone
    ]

    def curve(t) -> tuple:
        return tuple(t.user_attrs.get("epoch_accuracy") or ())

    paused.sort(key=lambda t: (-len(curve(t)), -float(curve(t)[-1]) if curve(t) else 0.0))
    for t in paused:
        epochs = len(curve(t))
        if epochs == 0 or epochs >= fidelity.max_epochs:
            continue
        if t.user_attrs.get("promoted"):  # stopped by a budget on its way up: owed
            return t
        if epochs not in fidelity.rungs:
            continue
        acc = float(curve(t)[-1])
        mine = rung_vector(acc, t.user_attrs.get("metrics") or {}, keys, dirs)
        others = rung_points(trials, epochs, keys, dirs, skip=t.number)
        if mine is None or pareto_promotable(mine, acc, others, fidelity.eta, fidelity.quorum):
            return t
    return None
