"""The progress records of compression: what ``compress_steps`` and ``prune_iterative`` yield.

Each has a ``stage`` and a ``to_dict()`` in the layout these records had as dicts.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from squeezelab.train.records import EpochRecord

if TYPE_CHECKING:
    import torch

    from squeezelab.compress.pipeline import Compressed


@dataclass(frozen=True)
class FinetuneStep:
    """One fine-tuning epoch: after pruning round ``round`` ("prune") or of the centroids."""

    stage: str  # "prune" (after a pruning round) or "share" (centroids, biases, BatchNorm)
    record: EpochRecord  # the trainer's record of the epoch
    round: int | None = None  # the pruning round (1-based); None for "share"

    def to_dict(self) -> dict[str, Any]:
        head: dict[str, Any] = {"stage": self.stage}
        if self.round is not None:
            head["round"] = self.round
        return {**head, **self.record.to_dict()}


@dataclass(frozen=True)
class PrunedStep:
    """The last record of ``prune_iterative``: the keep-masks of the final round."""

    masks: dict[str, torch.Tensor]  # per prunable weight: True where the weight is kept
    stage: ClassVar[str] = "pruned"

    def to_dict(self) -> dict[str, Any]:
        return {"stage": self.stage, "masks": self.masks}


@dataclass(frozen=True)
class EvaluateStep:
    """Test accuracy after a stage (with ``eval_dataset``)."""

    of: str  # "dense", "pruned" or "shared"
    top1: float  # top-1 on eval_dataset, a fraction
    stage: ClassVar[str] = "evaluate"

    def to_dict(self) -> dict[str, Any]:
        return {"stage": self.stage, **dataclasses.asdict(self)}


@dataclass(frozen=True)
class EncodeStep:
    """One tensor entropy-coded."""

    tensor: str  # its state_dict name
    done: int  # tensors coded so far
    total: int  # tensors in the model
    stage: ClassVar[str] = "encode"

    def to_dict(self) -> dict[str, Any]:
        return {"stage": self.stage, **dataclasses.asdict(self)}


@dataclass(frozen=True)
class DoneStep:
    """The last record of ``compress_steps``: the result."""

    result: Compressed
    stage: ClassVar[str] = "done"

    def to_dict(self) -> dict[str, Any]:
        """``{"stage": "done", "result": Compressed}``: the object, not its JSON."""
        return {"stage": self.stage, "result": self.result}


# what compress_steps yields: fine-tuning epochs, accuracies, encoding progress, the result
StepRecord = FinetuneStep | EvaluateStep | EncodeStep | DoneStep
