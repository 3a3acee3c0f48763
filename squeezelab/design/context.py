"""One design run's context: its settings, folder, state, and everything computed once.

The searched space, the hardware profile, the data splits, the study's results and the
decoded ``.sqz`` model are computed on first use and cached, so no stage repeats them: the
training and test splits are each read from disk once per run.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from squeezelab.design.config import DesignConfig
from squeezelab.design.records import STATE_FILE, DesignState, Record, write_state

Event = Callable[[dict[str, Any]], None]


@dataclass
class RunContext:
    """What every stage reads: ``fn(ctx) -> Record``."""

    config: DesignConfig
    out: Path
    state: DesignState
    emit: Event
    study_dir: Path | None = None  # the study's folder (default OUT/study; --pick: the parent's)
    started: float = 0.0  # time.monotonic() at which the budget's clock started (resumes: earlier)

    def result(self, stage: str) -> Record:
        """The result of a finished earlier stage."""
        return self.state.stages[stage]

    def save(self) -> None:
        write_state(self.out / STATE_FILE, self.state)

    @functools.cached_property
    def hardware(self):
        from squeezelab.analysis import load_hardware

        return load_hardware(self.config.hardware)

    @functools.cached_property
    def space(self):
        """The searched space with the data set, the hardware and its memory limits applied."""
        from squeezelab.explore import space_from_dict

        c, hw = self.config, self.hardware
        raw = dict(self._raw_space)  # top-level keys are replaced below, never mutated
        # every candidate is costed at the geometry it is trained and deployed at: the
        # data's channels, side and classes, not the preset's (unless the space searches them)
        chans, side, _ = self.train_split.shape
        dims = {"in_chans": chans, "input_size": side, "num_classes": len(self.train_split.classes)}
        raw["params"] = {**dims, **(raw.get("params") or {})}
        raw["costing"] = {**(raw.get("costing") or {}), "hardware": c.hardware}
        if hw.tflm:  # the file shipped is int8: cost it so (TFLM's arena and file need it)
            raw["costing"] |= {"weight_bits": 8, "activation_bits": 8}
        # TFLite Micro targets: the .tflite file in flash and TFLM's arena in SRAM, as
        # predicted (within about 1%); other targets: int8 weights and peak activations
        if hw.tflm:
            limits = {"tflite_bytes": hw.flash_bytes, "tflm_arena_bytes": hw.sram_bytes}
        else:
            limits = {"model_bytes": hw.flash_bytes, "peak_activation_bytes": hw.sram_bytes}
        own = [k for k in raw.get("constraints") or [] if k.get("metric") not in limits]
        raw["constraints"] = own + [{"metric": m, "max": v} for m, v in limits.items() if v]
        data = {"data": c.data, "data_dir": c.data_dir, "seed": c.seed}
        raw["train"] = {**(raw.get("train") or {}), **data}
        if c.trials is not None:
            raw["search"] = {**(raw.get("search") or {}), "trials": c.trials}
        space = space_from_dict(raw, raw.get("name", "design"))
        from squeezelab.explore.tasks import check_data

        check_data(space, c.data)  # a classifier space on detection data, or the reverse
        return space

    @functools.cached_property
    def is_detection(self) -> bool:
        """Whether the data is a detection dataset (fashion-mnist-det or a COCO folder)."""
        from squeezelab.explore.tasks import data_task

        return data_task(self.config.data) == "detection"

    @functools.cached_property
    def _raw_space(self) -> dict:
        """The space file's mapping, as written (the default space follows the data's task)."""
        from squeezelab.design.config import DEFAULT_SPACE, DETECTION_SPACE
        from squeezelab.explore import load_space

        name = self.config.space
        if name is None:  # not given: the data's task chooses
            name = DETECTION_SPACE if self.is_detection else DEFAULT_SPACE
            if self.is_detection:
                why = f"detection data: searching {name} ({DEFAULT_SPACE} is for classifiers)"
                self.emit({"stage": "design", "message": why})
        return load_space(name).to_dict()

    @functools.cached_property
    def train_split(self):
        """The whole training split, read once: trials, retraining and fine-tuning carve
        their validation share and subsets from it (``fit(..., data=ctx.train_split)``)."""
        from squeezelab.train import TrainConfig, load_training_split

        c = self.config
        size = (self._raw_space.get("train") or {}).get("input_size")
        # the seed draws a generated detection benchmark's canvases, as the trials' own
        config = TrainConfig(data=c.data, data_dir=c.data_dir, input_size=size, seed=c.seed)
        return load_training_split(config)

    @functools.cached_property
    def splits(self):
        """``(train, val)``: the training split less the validation share, as ``fit`` sees it
        (a detection dataset: the training split and its own validation split)."""
        from squeezelab.data import split_train_val
        from squeezelab.train import TrainConfig

        share = self.space.train.get("val_fraction", TrainConfig.val_fraction)
        if self.is_detection:
            from squeezelab.design.detection import detection_split

            n_val = max(1, round(share * len(self.train_split)))
            return self.train_split, detection_split(self, "val", n_val)
        return split_train_val(self.train_split, share, seed=0)

    @property
    def train(self):
        return self.splits[0]

    @property
    def val(self):
        return self.splits[1]

    @functools.cached_property
    def test(self):
        from squeezelab.data import load_dataset

        if self.is_detection:  # every canvas of the test split
            from squeezelab.design.detection import detection_split

            return detection_split(self, "test")
        # at the training split's side: a mixed-size folder's test split resizes the same way
        side = self.train_split.shape[1]
        return load_dataset(self.config.data, "test", self.config.data_dir, side)

    @functools.cached_property
    def study(self):
        """The study's results (after the explore stage)."""
        from squeezelab.explore import load_study_results

        return load_study_results(str(self.study_dir or self.out / "study"))

    @functools.cached_property
    def sqz_model(self):
        """``(module, ModelMeta)`` decoded from the run's ``.sqz`` file."""
        from squeezelab.models import load_model

        return load_model(self.result("compress").sqz_file)
