"""The compression ladder: the setting is chosen on validation data, not fixed.

Rungs (sparsity, bits, fine-tuned or not) are climbed from the smallest file up; the first
whose decoded module stays within ``tolerance`` of the fp32 validation accuracy wins, as
the int8 form is chosen in ``squeezelab.export.quantize``. Every rung is recorded (bytes,
validation accuracy, chosen or why not). Fine-tuning is planned against a seconds budget
from the measured speed; when it is spent, only rungs without fine-tuning are tried, and
the last rung (dense, 8-bit, no fine-tuning) is always tried, so the ladder never ships a
loss it could have avoided. No rung within tolerance: the most accurate one, and it says so.

Which rungs pay, measured on the demo's squeezenet_small (87.17 % validation accuracy on
6,000 Fashion-MNIST images; figures in docs/compression.md): without
fine-tuning, dense 8-bit sharing loses nothing (-0.05 points, 300 kB), 6- and 5-bit lose a
quarter point (221 / 191 kB), 4-bit two points (163 kB); any pruning without fine-tuning
is ruinous (33 %: -27 points, 50 %: -70, 67 %: chance), and one epoch on 5,000 images after
67 % pruning still left 6-8 points. So pruned rungs are always fine-tuned (after pruning
and of the centroids), dense rungs never are, and 4 bits is tried pruned only.
"""

from __future__ import annotations

import copy
import dataclasses
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from squeezelab.analysis.units import format_score  # noqa: F401 (re-exported)
from squeezelab.compress.pipeline import Compressed, compress_steps
from squeezelab.compress.prune import prune_iterative
from squeezelab.compress.records import DoneStep, FinetuneStep
from squeezelab.errors import ConfigError, FormatError

TOLERANCE = 0.005  # a rung may lose at most half a point of fp32 validation top-1
# what a score is, for the lines: a classifier's top-1, a detector's COCO mAP@0.5 (both
# fractions, so a tolerance of 0.005 is half a point of either)
METRICS = {"top1": "validation top-1", "map50": "validation mAP@0.5"}

PRUNE_LEVELS = (0.67, 0.5, 0.33)  # fraction removed; the SqueezeNet paper's 33 % kept first
PRUNED_BITS = (4, 6)  # index widths tried after pruning (with centroid fine-tuning)
DENSE_BITS = (5, 6, 8)  # index widths tried without pruning or fine-tuning; 8: the fallback


@dataclass(frozen=True)
class Rung:
    """One compression setting of the ladder."""

    sparsity: float  # fraction of conv/linear weights removed (0: dense)
    bits: int  # codebook index bits of conv and linear layers
    finetune: bool  # fine-tuned after pruning and of the centroids (costs training time)

    @property
    def setting(self) -> str:
        """``"67% pruned, 4-bit, fine-tuned"``: the label tables show."""
        what = f"{self.sparsity:.0%} pruned" if self.sparsity else "dense"
        return f"{what}, {self.bits}-bit" + (", fine-tuned" if self.finetune else "")


def ladder_rungs(
    sparsity: float | None = None, bits: int | None = None, finetune: bool = True
) -> tuple[Rung, ...]:
    """The default ladder, or the rungs that keep a setting the user fixed.

    Args:
        sparsity: fixes the pruning level (0: dense only); None: the ladder's levels.
        bits: fixes the index width; None: the ladder's widths.
        finetune: False (no training data): only dense rungs, which need none.

    The dense 8-bit rung without fine-tuning is always last: the fallback that keeps
    accuracy. Rungs are in the order of their files on the measured model (smallest first);
    :func:`ladder_steps` re-sorts them by the sizes it probes on the actual model.

    Example:
        >>> [r.setting for r in ladder_rungs(sparsity=0.5, bits=6)]
        ['50% pruned, 6-bit, fine-tuned', 'dense, 8-bit']
    """
    levels = PRUNE_LEVELS if sparsity is None else ((sparsity,) if sparsity else ())
    pruned_bits = PRUNED_BITS if bits is None else (bits,)
    dense_bits = DENSE_BITS if bits is None else (bits,)
    rungs = [Rung(s, b, True) for s in levels for b in pruned_bits] if finetune else []
    if sparsity is None or not sparsity:
        rungs += [Rung(0.0, b, False) for b in dense_bits]
    fallback = Rung(0.0, 8, False)
    return tuple(r for r in rungs if r != fallback) + (fallback,)


@dataclass(frozen=True)
class RungResult:
    """A rung as the ladder left it: tried (bytes, accuracy) or why it was not."""

    sparsity: float
    bits: int
    finetuned: bool
    bytes: int | None  # the .sqz file; a size probe (no fine-tuning) where not tried
    val_accuracy: float | None  # top-1 of the decoded module on the validation images
    chosen: bool
    why: str  # "chosen: within 0.5 points", "lost 1.30 points", "out of time", ...
    seconds: float = 0.0  # fine-tuning, coding and scoring of this rung

    @property
    def setting(self) -> str:
        return Rung(self.sparsity, self.bits, self.finetuned).setting

    @property
    def tried(self) -> bool:
        return self.val_accuracy is not None

    def to_dict(self) -> dict[str, Any]:
        return {"setting": self.setting, **dataclasses.asdict(self)}

    @classmethod
    def from_dict(cls, d: Any) -> RungResult:
        names = [f.name for f in dataclasses.fields(cls)]
        try:
            return cls(**{k: d[k] for k in names if k in d or k != "seconds"})
        except (KeyError, TypeError) as e:
            raise FormatError(f"compression ladder rung: malformed ({e})") from None


@dataclass(frozen=True)
class LadderResult:
    """Every rung of the ladder, smallest file first, and which one won.

    Iterating a ladder gives its rungs.
    """

    fp32_val_accuracy: float  # the uncompressed module on the same validation images
    tolerance: float  # a rung may lose at most this much top-1 (a fraction)
    val_images: int
    within_tolerance: bool  # False: no rung was; the most accurate one was chosen
    rungs: tuple[RungResult, ...]
    budget_s: float | None = None  # the seconds the ladder planned for (None: no limit)
    seconds: float = 0.0
    out_of_time: bool = False  # the budget stopped fine-tuning before a rung passed
    metric: str = "top1"  # what val_accuracy holds: a key of METRICS

    @property
    def chosen(self) -> RungResult:
        return next(r for r in self.rungs if r.chosen)

    def __iter__(self) -> Iterator[RungResult]:
        return iter(self.rungs)

    def __len__(self) -> int:
        return len(self.rungs)

    def line(self) -> str:
        """One sentence: what was chosen, on what, and what it cost."""
        c, m = self.chosen, self.metric
        head = (
            f"compression: {c.setting}, {c.bytes:,} bytes, {METRICS.get(m, m)} "
            f"{format_score(c.val_accuracy, m)} (fp32 {format_score(self.fp32_val_accuracy, m)}, "
            f"{self.val_images:,} images)"
        )
        if not self.within_tolerance:
            return (
                head + f"; NO setting stayed within {100 * self.tolerance:g} points of fp32: "
                "this is the most accurate one"
            )
        return head + f", the smallest within {100 * self.tolerance:g} points"

    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        return d | {"rungs": [r.to_dict() for r in self.rungs]}

    @classmethod
    def from_dict(cls, d: Any, where: str = "compression ladder") -> LadderResult:
        try:
            kw = {f.name: d[f.name] for f in dataclasses.fields(cls) if f.name in d}
            kw["rungs"] = tuple(RungResult.from_dict(r) for r in d["rungs"])
            if sum(r.chosen for r in kw["rungs"]) != 1:
                raise ValueError("not exactly one rung is chosen")
            return cls(**kw)
        except (KeyError, TypeError, ValueError) as e:
            raise FormatError(f"{where}: malformed ({e.__class__.__name__}: {e})") from None


@dataclass(frozen=True)
class RungStep:
    """Progress: rung ``index`` of ``total`` finished (or skipped)."""

    index: int  # 1-based, in ladder order
    total: int
    rung: RungResult
    metric: str = "top1"  # a key of METRICS
    stage: ClassVar[str] = "rung"

    def to_dict(self) -> dict[str, Any]:
        return {"stage": self.stage, "index": self.index, "total": self.total} | (
            self.rung.to_dict()
        )

    def line(self) -> str:
        """``rung 2/9 67% pruned, 6-bit, fine-tuned: lost 6.75 points ..., validation top-1 74.17%``."""
        r, m = self.rung, self.metric
        acc = (
            ""
            if r.val_accuracy is None
            else f", {METRICS.get(m, m)} {format_score(r.val_accuracy, m)}"
        )
        return f"rung {self.index}/{self.total} {r.setting}: {r.why}{acc}"


@dataclass(frozen=True)
class LadderDone:
    """The last record of :func:`ladder_steps`: the ladder and the chosen file."""

    ladder: LadderResult
    compressed: Compressed
    stage: ClassVar[str] = "ladder"

    def to_dict(self) -> dict[str, Any]:
        return {"stage": self.stage, "ladder": self.ladder.to_dict()}


def top1(model, dataset) -> float:
    """The default scorer: top-1 of ``model`` on ``dataset`` (``squeezelab.train.evaluate``)."""
    from squeezelab.train import evaluate

    return evaluate(model, dataset).top1


def map50(meta) -> Callable[[Any, Any], float]:
    """A detector's scorer: ``(module, DetectionSplit) -> COCO mAP@0.5`` (``meta``: its anchors)."""

    def score(model, split) -> float:
        from squeezelab.train.detect import evaluate_detection

        return evaluate_detection(model, meta, split).map50

    score.metric = "map50"  # what a .sqz header's "accuracy" then holds
    return score


def within(accuracy: float, reference: float, tolerance: float) -> bool:
    """``accuracy`` loses at most ``tolerance`` against ``reference`` (slack for equal counts)."""
    return accuracy >= reference - tolerance - 1e-12


def ladder_steps(
    model,
    meta,
    val,
    rungs: Sequence[Rung] | None = None,
    tolerance: float = TOLERANCE,
    finetune=None,
    finetune_data=None,
    budget_s: float | None = None,
    img_per_s: float | None = None,
    score: Callable[[Any, Any], float] = top1,
    clock: Callable[[], float] = time.monotonic,
    metric: str = "top1",
    **kwargs,
) -> Iterator[FinetuneStep | RungStep | LadderDone]:
    """Climb the ladder on ``val``; yield fine-tuning epochs, rungs, and :class:`LadderDone`.

    Args:
        model, meta: the trained module and its metadata (as for ``compress_model``).
        val: the validation split every rung is scored on (never the test split).
        rungs: default :func:`ladder_rungs` (``finetune`` given) or its dense rungs.
        tolerance: the most top-1 (a fraction) a rung may lose against fp32.
        finetune: the ``TrainConfig`` of each fine-tuning (after pruning, of the centroids);
            None: rungs that need it are skipped ("no training data").
        finetune_data: its training split, already loaded; it must not hold ``val``.
        budget_s: seconds for the whole ladder; a fine-tuned rung is started only when its
            planned time (measured epoch seconds, or ``img_per_s`` before any) fits.
        score: ``(module, dataset) -> score``, a fraction; the default runs
            ``train.evaluate`` (top-1); a detector's is :func:`map50`.
        metric: what ``score`` measures, a key of :data:`METRICS` (for the lines).
        **kwargs: passed to ``compress_steps`` (``fc_bits``, ``scope``, ``prune_steps``,
            ``fp16_plain``, ``reference``).

    Example:
        >>> for rec in ladder_steps(model, meta, val, finetune=cfg):  # doctest: +SKIP
        ...     pass
        >>> rec.ladder.chosen.setting  # doctest: +SKIP
        '50% pruned, 4-bit, fine-tuned'
    """
    if not isinstance(tolerance, int | float) or not 0 <= tolerance < 1:
        raise ConfigError(f"tolerance={tolerance!r} is invalid: allowed a fraction in [0, 1)")
    if budget_s is not None and not budget_s >= 0:  # 0: only the rungs without fine-tuning
        raise ConfigError(f"budget_s={budget_s!r} is invalid: allowed seconds >= 0 or None")
    start = clock()
    deadline = None if budget_s is None else start + budget_s
    if rungs is None:
        rungs = ladder_rungs(finetune=finetune is not None)
    rungs = list(dict.fromkeys(rungs))
    if not rungs:
        raise ConfigError("the compression ladder has no rungs: allowed one Rung at least")
    scope = kwargs.get("scope", "layer")
    prune_steps = kwargs.get("prune_steps", 1)
    if finetune is not None and finetune_data is None:
        from squeezelab.train import load_training_split

        finetune_data = load_training_split(finetune)

    t0 = clock()
    fp32 = score(model.eval(), val)
    t1 = clock()
    # sizes probed without fine-tuning (a fraction of a second each): with one pruning
    # step the masks, hence the positions, do not change when fine-tuning, so the order is
    # the files' order (iterative pruning: about it). A rung without fine-tuning is its probe.
    plain: dict[Rung, Compressed] = {}
    probe: dict[Rung, int] = {}
    for r in rungs:
        c = _compress(model, meta, r.sparsity or None, r.bits, **kwargs)
        probe[r] = len(c.data)
        if not r.finetune:
            plain[r] = c
    rungs.sort(key=lambda r: (probe[r], r.finetune))
    # what a rung costs besides training, coding and scoring: first one scoring and one
    # probe, then the most a tried rung took
    overhead = (t1 - t0) + (clock() - t1) / len(rungs)
    epoch_s: list[float] = []  # measured seconds of fine-tuning epochs
    pruned: dict[float, Any] = {}  # sparsity -> the pruned, fine-tuned module
    done: list[RungResult] = []
    best: tuple[float, int, Compressed] | None = None  # most accurate so far
    chosen: Compressed | None = None
    out_of_time = False

    def planned(r: Rung) -> float:
        if not r.finetune:
            return overhead
        epochs = finetune.epochs * (1 + (0 if r.sparsity in pruned else prune_steps))
        if epoch_s:
            per = sum(epoch_s) / len(epoch_s)
        elif img_per_s:
            per = _epoch_images(finetune, finetune_data) / img_per_s
        else:
            per = 0.0  # nothing to plan from: the first fine-tuning measures it
        return epochs * per + overhead

    for i, r in enumerate(rungs, 1):
        t0, n0 = clock(), len(epoch_s)
        # fine-tuning leaves time for the rungs without it that follow (the fallback)
        reserve = overhead * sum(not x.finetune for x in rungs[i:])
        res = RungResult(r.sparsity, r.bits, r.finetune, probe[r], None, False, "")
        if chosen is not None:
            res = dataclasses.replace(res, why="not needed: a smaller file passed")
        elif r.finetune and finetune is None:
            res = dataclasses.replace(res, why="not tried: needs fine-tuning data")
        elif r.finetune and deadline is not None and clock() + planned(r) + reserve > deadline:
            out_of_time = True
            res = dataclasses.replace(res, why=f"out of time: needs about {planned(r):.0f} s")
        else:
            source, prune = model, r.sparsity or None  # no fine-tuning: pruned in the pipeline
            if r.finetune and r.sparsity:  # pruned and fine-tuned once per level
                if r.sparsity not in pruned:
                    pruned[r.sparsity] = copy.deepcopy(model).cpu()
                    steps = prune_iterative(
                        pruned[r.sparsity], r.sparsity, scope, prune_steps, finetune, finetune_data
                    )
                    for rec in steps:
                        if isinstance(rec, FinetuneStep):
                            epoch_s.append(rec.record.seconds)
                            yield rec
                source, prune = pruned[r.sparsity], None
            compressed = plain.get(r)  # the probe: the same pipeline, already run
            if compressed is None:  # fine-tunes the centroids
                steps = compress_steps(
                    source,
                    meta,
                    prune,
                    r.bits,
                    finetune=finetune,
                    finetune_data=finetune_data,
                    **kwargs,
                )
                for rec in steps:
                    if isinstance(rec, FinetuneStep):
                        epoch_s.append(rec.record.seconds)
                        yield rec
                    elif isinstance(rec, DoneStep):
                        compressed = rec.result
            acc = score(compressed.model, val)
            size = len(compressed.data)
            if best is None or (acc, -size) > (best[0], -best[1]):
                best = (acc, size, compressed)
            lost = 100 * (fp32 - acc)
            if within(acc, fp32, tolerance):
                chosen = compressed
                why = f"chosen: within {100 * tolerance:g} points ({-lost:+.2f})"
            else:
                why = f"lost {lost:.2f} points (allowed {100 * tolerance:g})"
            res = RungResult(r.sparsity, r.bits, r.finetune, size, acc, chosen is compressed, why)
            overhead = max(overhead, clock() - t0 - sum(epoch_s[n0:]))
        res = dataclasses.replace(res, seconds=round(clock() - t0, 3))
        done.append(res)
        yield RungStep(i, len(rungs), res, metric)

    within_tol = chosen is not None
    if best is None:
        raise ConfigError(
            "no rung of the compression ladder could be tried "
            f"({'; '.join(r.why for r in done)}): allowed a rung without fine-tuning, or finetune"
        )
    if chosen is None:  # none within tolerance: the most accurate (then smallest) one
        chosen = best[2]
        pick = max((r for r in done if r.tried), key=lambda r: (r.val_accuracy, -r.bytes))
        why = f"chosen: the most accurate ({pick.why}); none was within tolerance"
        done = [dataclasses.replace(r, chosen=True, why=why) if r is pick else r for r in done]
    result = LadderResult(
        fp32_val_accuracy=fp32,
        tolerance=tolerance,
        val_images=len(val),
        within_tolerance=within_tol,
        rungs=tuple(done),
        budget_s=budget_s,
        seconds=round(clock() - start, 3),
        out_of_time=out_of_time,
        metric=metric,
    )
    yield LadderDone(result, chosen)


def _compress(model, meta, sparsity, bits, **kwargs) -> Compressed:
    for rec in compress_steps(model, meta, sparsity, bits, **kwargs):
        if isinstance(rec, DoneStep):
            return rec.result
    raise AssertionError("compress_steps ended without a result")


def _epoch_images(finetune, data) -> int:
    """Images one fine-tuning epoch trains on: the subset, else the split less validation."""
    if finetune.train_subset:
        return int(finetune.train_subset)
    return int(len(data) * (1 - finetune.val_fraction))


def choose_compression(model, meta, val, **kwargs) -> tuple[Compressed, LadderResult]:
    """:func:`ladder_steps` to its end: ``(the chosen Compressed, the ladder)``.

    Example:
        >>> c, ladder = choose_compression(model, meta, val, finetune=cfg)  # doctest: +SKIP
        >>> print(ladder.line())  # doctest: +SKIP
    """
    for rec in ladder_steps(model, meta, val, **kwargs):
        if isinstance(rec, LadderDone):
            return rec.compressed, rec.ladder
    raise AssertionError("ladder_steps ended without a result")
