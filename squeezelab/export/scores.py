"""Top-1, per-class accuracy and the confusion matrix from a runtime's predicted classes.

The final score of a shipped file: whichever runtime ran it (TFLite Micro, LiteRT, ONNX
Runtime) gives one predicted class per image; :func:`class_scores` turns those and the
labels into one record, so the report shows the same figures for every runtime.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from squeezelab.errors import ConfigError, FormatError


@dataclass(frozen=True)
class ClassScores:
    """Accuracy of one artefact on one split, class by class (accuracies are fractions)."""

    classes: tuple[str, ...]  # class names, in output order
    confusion: tuple[tuple[int, ...], ...]  # rows: true class, columns: predicted class

    @property
    def n(self) -> int:
        """Images scored."""
        return sum(map(sum, self.confusion))

    @property
    def top1(self) -> float:
        return sum(self.confusion[i][i] for i in range(len(self.classes))) / max(self.n, 1)

    @property
    def per_class(self) -> dict[str, float | None]:
        """Top-1 per class name; None for a class with no image in the split."""
        out: dict[str, float | None] = {}
        for i, name in enumerate(self.classes):
            total = sum(self.confusion[i])
            out[name] = self.confusion[i][i] / total if total else None
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"classes": list(self.classes), "confusion": [list(r) for r in self.confusion]}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], where: str = "class scores") -> ClassScores:
        """Read :meth:`to_dict`'s JSON back; a malformed matrix is a FormatError naming it."""
        try:
            classes = tuple(str(c) for c in d["classes"])
            rows = tuple(tuple(int(v) for v in row) for row in d["confusion"])
        except (KeyError, TypeError, ValueError) as e:
            raise FormatError(f"{where}: not a class-scores record ({e})") from None
        k = len(classes)
        if len(rows) != k or any(len(r) != k or min(r, default=0) < 0 for r in rows):
            raise FormatError(
                f"{where}: confusion must be {k}x{k} non-negative counts for {k} classes"
            )
        return cls(classes, rows)


def class_scores(labels, predictions, classes: Sequence[str]) -> ClassScores:
    """The confusion matrix (true x predicted) and per-class top-1 of ``predictions``.

    Args:
        labels: true class index per image.
        predictions: predicted class index per image (argmax of the runtime's output).
        classes: the class names, in output order.

    Example:
        >>> s = class_scores([0, 0, 1, 1], [0, 1, 1, 1], ["cat", "dog"])
        >>> s.top1, s.per_class, s.confusion
        (0.75, {'cat': 0.5, 'dog': 1.0}, ((1, 1), (0, 2)))
    """
    y = np.asarray(labels).astype(np.int64).reshape(-1)
    p = np.asarray(predictions).astype(np.int64).reshape(-1)
    k = len(classes)
    if len(y) != len(p):
        raise ConfigError(f"labels has {len(y)} entries but predictions has {len(p)}")
    for name, v in (("labels", y), ("predictions", p)):
        if len(v) and (v.min() < 0 or v.max() >= k):
            raise ConfigError(f"{name} must be class indices in 0..{k - 1} for {k} classes")
    counts = np.bincount(y * k + p, minlength=k * k).reshape(k, k)
    return ClassScores(tuple(str(c) for c in classes), tuple(tuple(map(int, r)) for r in counts))
