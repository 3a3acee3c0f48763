"""The trainer's per-epoch record: what ``fit`` and ``finetune`` yield, one line of
``metrics.jsonl``, and an entry of the resume state's history.

Torch-free, so the CLI can read records without importing the loop.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from squeezelab.errors import ConfigError, FormatError


@dataclass(frozen=True)
class EpochRecord:
    """One finished epoch. Accuracies are fractions; ``val_*`` are None without a val split.

    Example:
        >>> rec = EpochRecord(1, 2.3, 0.1, None, None, 0.1, 500.0, 1.5)
        >>> EpochRecord.from_dict(rec.to_dict()) == rec
        True
    """

    epoch: int  # 1-based
    train_loss: float  # mean training loss over the epoch's images
    train_acc: float  # top-1 on the augmented training batches
    val_loss: float | None  # mean cross-entropy on the validation split
    val_acc: float | None  # top-1 on the validation split
    lr: float  # learning rate of the epoch's last step
    img_per_s: float  # training images per second, all ranks together
    seconds: float  # wall-clock of the epoch, validation included

    @property
    def score(self) -> float:
        """What ranks epochs for ``best.safetensors``: ``val_acc``, else ``-train_loss``."""
        return self.val_acc if self.val_acc is not None else -self.train_loss

    def to_dict(self) -> dict[str, Any]:
        """The JSON layout of ``metrics.jsonl`` and ``train --json`` (fields in this order)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Any, where: str = "epoch record") -> EpochRecord:
        """Read :meth:`to_dict`'s JSON back; ``FormatError`` naming the field otherwise."""
        if not isinstance(d, Mapping):
            raise FormatError(f"{where}: is a {type(d).__name__}, not a JSON object")
        values = {}
        for f in dataclasses.fields(cls):
            if f.name not in d:
                raise FormatError(f"{where}: lacks the field {f.name!r}")
            v = d[f.name]
            optional = f.name in ("val_loss", "val_acc")
            if f.name == "epoch":
                ok = type(v) is int and v >= 1
                allowed = "an integer >= 1"
            else:
                # NaN and inf pass: a diverged run's loss is written (and resumed) as it was
                ok = (v is None and optional) or type(v) in (int, float)
                allowed = "a number or null" if optional else "a number"
            if not ok:
                raise FormatError(f"{where}: {f.name}={v!r} is invalid: allowed {allowed}")
            values[f.name] = v if v is None or f.name == "epoch" else float(v)
        return cls(**values)


def read_metrics(run_dir: str | Path) -> list[EpochRecord]:
    """The records of a run directory's ``metrics.jsonl``; FormatError naming a bad line.

    Example:
        >>> [r.val_acc for r in read_metrics("runs/fm")]  # doctest: +SKIP
        [0.81, 0.86]
    """
    path = Path(run_dir) / "metrics.jsonl"
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        raise ConfigError(f"{run_dir}: no metrics.jsonl in it; allowed: a run directory") from None
    except (OSError, UnicodeDecodeError) as e:
        raise FormatError(f"{path}: not readable ({e})") from None
    records = []
    for i, line in enumerate(lines, 1):
        try:
            d = json.loads(line)
        except ValueError as e:
            raise FormatError(f"{path}:{i}: not JSON ({str(e).splitlines()[0]})") from None
        records.append(EpochRecord.from_dict(d, f"{path}:{i}"))
    return records
