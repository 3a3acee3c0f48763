"""What each stage of a design run returns, and the ``design.json`` that holds them.

Every stage result is a frozen dataclass with ``to_dict``/``from_dict``; ``design.json``
stores the run's config, the retraining budget once planned, and the finished stages,
so a killed run resumes after its last finished stage.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from squeezelab.compress.ladder import LadderResult
from squeezelab.errors import FormatError
from squeezelab.export import Int8Result, OnnxExport
from squeezelab.io import atomic_write_json
from squeezelab.models import ModelMeta

STATE_FILE = "design.json"
STATE_FORMAT = "squeezelab-design"
# 1: the untyped state before issue 13; 2: before the deploy stage; 3: before int8 forms
# and runtimes were chosen on the validation split (test scored once, for the report);
# 4: before the score stage (test scored on all its images, after every choice) and the
# compression ladder (CompressResult.ladder)
STATE_VERSION = 5


class Record:
    """A frozen dataclass that is stored as a flat JSON object."""

    nested: ClassVar[dict[str, type]] = {}  # fields holding another Record

    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        return {k: v.to_dict() if k in self.nested and v is not None else v for k, v in d.items()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]):
        if not isinstance(d, dict):
            raise TypeError(f"{cls.__name__} must be an object, got {type(d).__name__}")
        names = [f.name for f in dataclasses.fields(cls)]
        missing = [n for n in names if n not in d and _required(cls, n)]
        if missing:
            raise KeyError(f"{cls.__name__} lacks {', '.join(missing)}")
        kw = {n: d[n] for n in names if n in d}
        for n, sub in cls.nested.items():
            if kw.get(n) is not None:  # an optional record may be None
                kw[n] = sub.from_dict(kw[n])
        return cls(**kw)


def _required(cls, name: str) -> bool:
    f = next(f for f in dataclasses.fields(cls) if f.name == name)
    return f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING


@dataclass(frozen=True)
class BestTrial(Record):
    """The trained trial the rest of the run builds on."""

    nested: ClassVar[dict[str, type]] = {"arch": ModelMeta}

    number: int
    arch: ModelMeta  # its architecture
    metrics: dict[str, Any]  # the study's metrics of the trial: accuracy, model_bytes, ...
    run_dir: str | None


@dataclass(frozen=True)
class ExploreResult(Record):
    nested: ClassVar[dict[str, type]] = {"best": BestTrial}

    best: BestTrial
    counts: dict[str, int]  # trials per state: trained, infeasible, ...
    img_per_s: float | None  # a full retraining epoch's speed (validation included)
    seconds: float = 0.0


@dataclass(frozen=True)
class RetrainBudget(Record):
    """Epochs (and a subset when one epoch does not fit) of the final training."""

    epochs: int
    train_subset: int | None = None


@dataclass(frozen=True)
class RetrainResult(Record):
    run_dir: str
    model_file: str
    model_file_bytes: int
    epochs: int
    train_subset: int | None
    seconds: float = 0.0


@dataclass(frozen=True)
class CompressResult(Record):
    """The .sqz written, and the compression ladder its setting was chosen from."""

    nested: ClassVar[dict[str, type]] = {"ladder": LadderResult}

    sqz_file: str
    bytes: int
    accuracy: dict[str, float]  # validation top-1 of the "fp32" model and the chosen "sqz"
    accounting: dict[str, Any]  # bytes per stage (compress.Accounting.to_dict())
    # every setting tried on the validation split, smallest file first (None: a fixed one)
    ladder: LadderResult | None = None
    seconds: float = 0.0

    @property
    def tolerance(self) -> float | None:
        """The most validation top-1 the chosen setting was allowed to lose (a fraction)."""
        return None if self.ladder is None else self.ladder.tolerance


@dataclass(frozen=True)
class ExportResult(Record):
    nested: ClassVar[dict[str, type]] = {"onnx": OnnxExport, "int8": Int8Result}

    onnx_fp32: str
    onnx_int8: str
    fp32_bytes: int
    int8_bytes: int
    int8_form: str  # the chosen quantization, e.g. "U8S8/minmax"
    int8_accuracy: float | None  # test top-1 of the chosen int8 file (set by the score stage)
    eval_images: int  # test images it was scored on (0 until the score stage)
    onnx: OnnxExport  # the fp32 export and its parity check
    int8: Int8Result  # the int8 choice, on the validation split (every setting tried)
    seconds: float = 0.0


@dataclass(frozen=True)
class DeployResult(Record):
    """The file the target's runtime runs, checked in that runtime against the target.

    For a TFLite Micro target: ``model.tflite`` (int8) and ``model.c``/``.h``, run in TFLM's
    host interpreter (arena measured against ``sram_bytes``, file against ``flash_bytes``,
    int8 accuracy against fp32 on validation images; the score stage adds the test
    figures). For a target with several runtimes (a phone: LiteRT and ONNX Runtime) ``runtimes`` holds each one's int8 file,
    batch-1 latency at ``threads`` and validation accuracy; ``runtime`` is the fastest
    one within ``tolerance`` of fp32 there. ``problems`` lists the checks that failed; a
    design with any is not shipped.
    """

    runtime: str  # the target's runtime (a key of analysis.hardware.DEPLOY_RUNTIMES)
    ship: str  # the file to put on the device
    tflite: str | None  # the int8 .tflite (None: the runtime takes ONNX)
    c_source: str | None  # model.c holding the .tflite as a const array (TFLM targets)
    tflite_bytes: int | None  # measured: the file = the flash it takes
    predicted_tflite_bytes: int | None  # analysis.profile at 8 bits
    arena_bytes: int | None  # measured: TFLM's smallest tensor arena (head + tail)
    arena_head_bytes: int | None
    arena_tail_bytes: int | None
    predicted_arena_bytes: int | None  # analysis.profile at 8 bits (TFLM's planner)
    sram_bytes: int | None  # the target's limits (None: unlimited)
    flash_bytes: int | None
    # the test figures, set by the score stage (None/0 until then)
    int8_accuracy: float | None  # test top-1 of the runtime's outputs on eval_images
    fp32_accuracy: float | None  # test top-1 of the decoded fp32 model on the same images
    eval_images: int
    tolerance: float  # int8 may lose at most this much top-1 against fp32
    tflm_vs_reference_max_lsb: int | None  # TFLM against LiteRT's reference kernels
    # the choice among the target's runtimes, on the validation split (a single runtime: [])
    runtimes: list[dict[str, Any]] = field(default_factory=list)  # RuntimeChoice.to_dict()s
    val_fp32_accuracy: float | None = None  # fp32 top-1 on the validation images
    val_images: int = 0
    threads: int | None = None  # the profile's threads the latencies were timed with
    problems: list[str] = field(default_factory=list)  # failed checks; any: not shipped
    # Cortex-M targets: the generated firmware's check (export.firmware_build.FirmwareCheck
    # .to_dict(): host == TFLM, QEMU == host, flash / SRAM from the ELF, instructions)
    firmware: dict[str, Any] | None = None
    # the final scoring on the test split, class by class (export.ClassScores.to_dict());
    # empty where the runtime's predictions were not kept
    classes: list[str] = field(default_factory=list)
    confusion: list[list[int]] = field(default_factory=list)  # rows: true, columns: predicted
    # what the *_accuracy figures are: "top1", or "map50" (COCO mAP@0.5) for a detector
    metric: str = "top1"
    val_int8_accuracy: float | None = None  # detectors: ONNX int8 mAP@0.5 on validation
    seconds: float = 0.0

    @property
    def shipped(self) -> bool:
        return not self.problems

    @property
    def test_scores(self):
        """The shipped file's :class:`~squeezelab.export.scores.ClassScores` on the test
        images, or None when not recorded."""
        from squeezelab.export.scores import ClassScores

        if not self.confusion:
            return None
        return ClassScores.from_dict(
            {"classes": self.classes, "confusion": self.confusion}, "deploy confusion"
        )


@dataclass(frozen=True)
class ScoreResult(Record):
    """The final scoring: every file once on the whole test split, after every choice."""

    images: int  # test images, all of the split
    fp32: float  # top-1 (detectors: mAP@0.5) of the retrained fp32 model file
    sqz: float  # of the decoded .sqz
    onnx_int8: float  # of the chosen ONNX int8 file (ONNX Runtime)
    shipped: float | None  # of the shipped file, in the runtime that runs it (None: not scored)
    runtime: str  # that runtime
    shipped_images: int = 0  # test images the shipped file ran (TFLite Micro: fewer)
    metric: str = "top1"  # "top1", or "map50" (COCO mAP@0.5) for a detector
    map: dict[str, float] = field(default_factory=dict)  # detectors: mAP@[.5:.95] per file
    per_class: dict[str, float] = field(default_factory=dict)  # detectors: AP@0.5 per class
    seconds: float = 0.0


@dataclass(frozen=True)
class RuntimeChoice(Record):
    """One runtime a target could ship with: its int8 file, speed and validation accuracy."""

    runtime: str  # a key of analysis.hardware.DEPLOY_RUNTIMES ("litert", "onnxruntime")
    file: str  # the int8 file that runtime runs
    latency_ms: float  # median batch-1 latency on this host at the profile's threads
    int8_val_accuracy: float  # top-1 on the validation images
    within_tolerance: bool  # int8_val_accuracy >= fp32 - tolerance


@dataclass(frozen=True)
class TargetCost(Record):
    """Predicted int8 costs of the decoded model on the run's hardware profile."""

    params: int
    macs: int
    model_bytes: int
    energy_pj: float
    latency_ms: float
    peak_activation_bytes: int


@dataclass(frozen=True)
class BenchmarkResult(Record):
    nested: ClassVar[dict[str, type]] = {"target": TargetCost}

    latency_ms: dict[str, float]  # median batch-1 ms on this host, one thread, per backend
    target: TargetCost
    rows: list[dict[str, Any]] = field(default_factory=list)  # export.BenchRow.to_dict()s
    seconds: float = 0.0


@dataclass(frozen=True)
class ReportResult(Record):
    report: str
    summary: str
    seconds: float = 0.0


RESULTS: dict[str, type[Record]] = {
    "explore": ExploreResult,
    "retrain": RetrainResult,
    "compress": CompressResult,
    "export": ExportResult,
    "deploy": DeployResult,
    "score": ScoreResult,
    "benchmark": BenchmarkResult,
    "report": ReportResult,
}


@dataclass
class DesignState:
    """``design.json``: the config, the planned retraining budget, the finished stages."""

    config: dict[str, Any]
    stages: dict[str, Record] = field(default_factory=dict)
    retrain_budget: RetrainBudget | None = None
    started_in: str | None = None  # the working folder the stages' relative paths start from

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": STATE_FORMAT,
            "version": STATE_VERSION,
            "config": self.config,
            "started_in": self.started_in,
            "retrain_budget": self.retrain_budget and self.retrain_budget.to_dict(),
            "stages": {k: v.to_dict() for k, v in self.stages.items()},
        }


def write_state(path: Path, state: DesignState) -> None:
    atomic_write_json(path, state.to_dict())


def read_state(path: Path) -> DesignState:
    """Read ``design.json``; anything this version did not write is one ``FormatError``."""
    fix = "start a new output folder, or pass --restart to run every stage again in this one"
    try:
        raw = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise FormatError(f"{path}: not a readable design state ({e}); {fix}") from None
    version = raw.get("version", 1) if isinstance(raw, dict) else None
    if not isinstance(raw, dict) or raw.get("format", STATE_FORMAT) != STATE_FORMAT:
        raise FormatError(f"{path}: not a squeezelab design state; {fix}")
    if version != STATE_VERSION:
        raise FormatError(
            f"{path}: design state version {version} (from an older squeezelab); this one reads "
            f"version {STATE_VERSION}: {fix}"
        )
    try:
        if not isinstance(raw["config"], dict) or not isinstance(raw["stages"], dict):
            raise TypeError("config and stages must be objects")
        unknown = sorted(set(raw["stages"]) - set(RESULTS))
        if unknown:
            raise KeyError(f"unknown stage(s) {', '.join(unknown)}")
        stages = {k: RESULTS[k].from_dict(v) for k, v in raw["stages"].items()}
        budget = raw.get("retrain_budget")
        started_in = raw.get("started_in")
        if started_in is not None and not isinstance(started_in, str):
            raise TypeError("started_in must be a string")
        return DesignState(
            raw["config"],
            stages,
            None if budget is None else RetrainBudget.from_dict(budget),
            started_in,
        )
    except (KeyError, TypeError, ValueError) as e:
        raise FormatError(f"{path}: damaged design state ({e}); {fix}") from None
