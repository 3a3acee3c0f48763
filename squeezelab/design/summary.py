"""The summary of a finished design run: one row per artefact, headline figures, and the
file to ship with its measured figures beside the predicted ones."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from squeezelab.analysis.units import format_bytes, format_energy
from squeezelab.compress.ladder import LadderResult
from squeezelab.design.records import DeployResult, DesignState


def baseline_fp32_bytes(num_classes: int, in_chans: int) -> int:
    """fp32 bytes of the AlexNet-style baseline for the same task (the 50x reference)."""
    from squeezelab.compress.accounting import reference_fp32_bytes

    return reference_fp32_bytes("alexnet_small", num_classes, in_chans)


@dataclass(frozen=True)
class SummaryRow:
    artefact: str
    bytes: int
    test_accuracy: float | None
    latency_ms: float | None  # median batch-1 on this host, one thread
    reduction_vs_alexnet_small: float  # the baseline's fp32 bytes over this file's bytes


@dataclass(frozen=True)
class DesignResult:
    """What ``design()`` returns and ``summary.json`` holds."""

    model: str
    spec: dict[str, Any] | None
    params: int
    baseline_fp32_bytes: int
    hardware: str
    target_energy_pj: float  # predicted per image at int8 on ``hardware``
    target_latency_ms: float
    target_peak_activation_bytes: int
    rows: tuple[SummaryRow, ...]
    trials: dict[str, int]  # trial counts per state
    retrain_epochs: int
    retrain_images: int | None  # the training subset when one epoch did not fit
    deploy: DeployResult  # the file the target's runtime runs, measured there
    shipped: bool  # False: a check failed (deploy.problems), the design is infeasible
    trial: int | None = None  # the study trial the design was built from
    picked: bool = False  # True: a --pick run finished this front member (not the search's choice)
    compression: LadderResult | None = None  # the ladder the .sqz setting was chosen from
    metric: str = "top-1"  # what the rows' test_accuracy is: top-1, or a detector's mAP@0.5
    test_map: dict[str, float] | None = None  # detectors: mAP@[.5:.95] per file (test)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self) | {"rows": [dataclasses.asdict(r) for r in self.rows]}
        return d | {"compression": self.compression and self.compression.to_dict()}

    def figure(self, value: float) -> str:
        """A test figure as written: top-1 in percent, mAP@0.5 as the 0..1 it is."""
        return f"{value:.3f}" if self.metric == "mAP@0.5" else f"{value:.2%}"

    def ship_line(self) -> str:
        """One sentence: which file to flash and how it measured, or why it is not shipped."""
        d = self.deploy
        if not self.shipped:
            return f"NOT SHIPPED: infeasible on {self.hardware}: {'; '.join(d.problems)}."
        what = f"Ship {d.ship} ({d.runtime})"
        if d.tflite_bytes is None and d.metric == "map50" and d.int8_accuracy is not None:
            return (
                f"{what}: int8 {self.metric} {self.figure(d.int8_accuracy)} vs fp32 "
                f"{self.figure(d.fp32_accuracy)} on {d.eval_images:,} test images."
            )
        if d.tflite_bytes is None:
            return what + "."
        figures = []
        if d.runtimes:  # the choice among the target's runtimes, on validation images
            each = [
                f"{r['runtime']} {r['latency_ms']:.3f} ms, int8 top-1 "
                f"{r['int8_val_accuracy']:.2%}" + ("" if r["within_tolerance"] else " (too low)")
                for r in d.runtimes
            ]
            figures.append(
                f"fastest within {d.tolerance * 100:g} points of fp32 ({d.val_fp32_accuracy:.2%}) on "
                f"{d.val_images:,} validation images at {d.threads} thread(s): {'; '.join(each)}"
            )
        if d.arena_bytes is not None:
            figures.append(
                f"arena {_b(d.arena_bytes)} measured ({_b(d.predicted_arena_bytes)} predicted)"
                + (f" of {format_bytes(d.sram_bytes)} SRAM" if d.sram_bytes else "")
            )
        # a phone may ship the ONNX file; the size measured (and predicted) is the .tflite's
        label = "file" if d.runtime in ("tflite-micro", "litert") else "model.tflite"
        figures.append(
            f"{label} {_b(d.tflite_bytes)} ({_b(d.predicted_tflite_bytes)} predicted)"
            + (f" of {format_bytes(d.flash_bytes)} flash" if d.flash_bytes else "")
        )
        if d.int8_accuracy is not None and d.fp32_accuracy is not None:
            # a detector's .tflite is scored in LiteRT (design/detection.py)
            where = "the .tflite in LiteRT" if d.metric == "map50" and d.tflite else d.runtime
            figures.append(
                f"{where} int8 {self.metric} {self.figure(d.int8_accuracy)} vs fp32 "
                f"{self.figure(d.fp32_accuracy)} on {d.eval_images:,} test images"
            )
        fw = d.firmware
        if fw:  # a Cortex-M target: the generated firmware, run in QEMU
            from squeezelab.export.firmware_build import FirmwareCheck

            figures.append(FirmwareCheck.from_dict(fw).summary())
        return f"{what}: {', '.join(figures)}."

    def deploy_section(self) -> dict[str, Any]:
        """The deployment section of the HTML report: measured beside predicted, per check."""
        d = self.deploy

        def row(figure, measured, predicted, limit, ok):
            return {
                "figure": figure,
                "measured": measured,
                "predicted": predicted,
                "limit": limit,
                "check": "-" if ok is None else "ok" if ok else "FAILED",
            }

        def within(figure, measured, predicted, limit, checked=True):
            ok = None if not limit or not checked else measured <= limit
            return row(figure, measured, predicted, limit, ok)

        rows = []
        if d.arena_bytes is not None:  # the SRAM limit binds TFLite Micro's arena only
            tflm = d.runtime == "tflite-micro"
            arena = d.arena_bytes, d.predicted_arena_bytes, d.sram_bytes
            rows.append(within("tensor arena (bytes)", *arena, checked=tflm))
        if d.tflite_bytes is not None:
            size = d.tflite_bytes, d.predicted_tflite_bytes, d.flash_bytes
            rows.append(within(".tflite file (bytes)", *size))
        for r in d.runtimes:
            chosen = " (shipped)" if r["runtime"] == d.runtime else ""
            rows.append(
                row(
                    f"{r['runtime']} int8{chosen}: batch-1 ms at {d.threads} thread(s)",
                    round(r["latency_ms"], 4),
                    None,
                    None,
                    None,
                )
            )
            rows.append(
                row(
                    f"{r['runtime']} int8{chosen}: top-1 ({d.val_images} validation images)",
                    round(r["int8_val_accuracy"], 4),
                    None,
                    f"fp32 {d.val_fp32_accuracy:.4f} - {d.tolerance}",
                    r["within_tolerance"],
                )
            )
        if d.metric == "map50" and d.val_int8_accuracy is not None:  # a detector's check
            rows.append(
                row(
                    # on TFLite Micro targets the .tflite form was scored in LiteRT
                    f"{'LiteRT' if d.runtime == 'tflite-micro' else 'ONNX'} int8 {self.metric} "
                    f"({d.val_images} validation canvases)",
                    round(d.val_int8_accuracy, 4),
                    None,
                    f"fp32 {d.val_fp32_accuracy:.4f} - {d.tolerance}",
                    d.val_int8_accuracy >= d.val_fp32_accuracy - d.tolerance - 1e-12,
                )
            )
        if d.int8_accuracy is not None and d.fp32_accuracy is not None:
            # the test figure, scored once after the choice: reported, not checked
            rows.append(
                row(
                    f"int8 {self.metric} ({d.eval_images} test images)",
                    round(d.int8_accuracy, 4),
                    None,
                    f"fp32 {d.fp32_accuracy:.4f}",
                    None,
                )
            )
        fw = d.firmware
        if fw and fw.get("machine"):  # measured from the firmware's ELF, run in QEMU
            flash = fw["flash_bytes"], fw["predicted_flash_bytes"], fw["flash_limit_bytes"]
            rows.append(within("firmware flash (bytes, ELF)", *flash))
            sram = fw["sram_bytes"], fw.get("predicted_sram_bytes"), fw["sram_limit_bytes"]
            rows.append(within("firmware SRAM (bytes, ELF: data + bss + stack)", *sram))
            rows.append(
                row(
                    f"firmware outputs equal to TFLite Micro ({fw['n_host']} images)",
                    fw["host_equal"],
                    None,
                    fw["n_host"],
                    fw["host_equal"] == fw["n_host"],
                )
            )
            rows.append(
                row(
                    f"instructions per inference (QEMU {fw['machine']} -icount; not cycles)",
                    fw["instructions_per_inference"],
                    None,
                    None,
                    None,
                )
            )
        title = "Deployment" if self.shipped else "Deployment: infeasible, not shipped"
        return {"title": title, "rows": rows, "text": self.ship_line()}

    def section(self) -> dict[str, Any]:
        """The summary section of the HTML report."""
        which = (
            f"Front member #{self.trial} (--pick)"
            if self.picked
            else "Chosen design" + (f" (trial #{self.trial})" if self.trial is not None else "")
        )
        images = f"{self.retrain_images:,} images" if self.retrain_images else "the training split"
        text = (
            f"{which}: {self.model} ({self.params:,} params) on "
            f"{self.hardware}: predicted {self.target_latency_ms:.2f} ms and "
            f"{format_energy(self.target_energy_pj)} per image at int8; the AlexNet-style "
            f"baseline's fp32 weights take {self.baseline_fp32_bytes:,} bytes. "
            f"test_accuracy: {self.metric} on the test split, final scoring of each file, "
            f"after retraining {self.retrain_epochs} epoch(s) on {images}."
        )
        if self.test_map:  # a detector: COCO's primary metric beside mAP@0.5
            each = ", ".join(f"{k} {v:.4f}" for k, v in self.test_map.items())
            text += f" mAP@[.5:.95] on the test split: {each}."
        rows = [dataclasses.asdict(r) for r in self.rows]
        return {"title": "Summary", "rows": rows, "text": text}


def _b(n: int | None) -> str:
    """Exact bytes: an arena is sized to the byte."""
    return "?" if n is None else f"{n:,} B"


def summarize(state: DesignState) -> DesignResult:
    """The summary of a run whose stages up to ``benchmark`` have finished."""
    from squeezelab.io import read_model_meta
    from squeezelab.models import ModelMeta

    s = state.stages
    explore, retrain, comp = s["explore"], s["retrain"], s["compress"]
    exp, bench, scored = s["export"], s["benchmark"], s["score"]
    meta = ModelMeta.from_dict(read_model_meta(retrain.model_file), where=retrain.model_file)
    base = baseline_fp32_bytes(meta.num_classes, meta.in_chans)
    lat = bench.latency_ms
    cfg = state.config
    rows = [
        (
            "fp32 model file (safetensors)",
            retrain.model_file_bytes,
            scored.fp32,
            lat.get("torch_channels_last"),
        ),
        (
            f".sqz ({comp.ladder.chosen.setting if comp.ladder else 'compressed'}, entropy-coded)",
            comp.bytes,
            scored.sqz,
            None,
        ),
        (
            "ONNX fp32 (from the .sqz)",
            exp.fp32_bytes,
            scored.sqz,
            lat.get("ort_fp32"),
        ),
        (
            f"ONNX int8 ({exp.int8_form}; accuracy on {exp.eval_images:,} test images)",
            exp.int8_bytes,
            exp.int8_accuracy,
            lat.get("ort_int8"),
        ),
    ]
    dep = s["deploy"]
    if dep.tflite is not None:
        on_tflite = dep.runtime in ("tflite-micro", "litert")  # else its test top-1 is ORT's
        rows.append(
            (
                f"model.tflite int8 ({dep.runtime if on_tflite else 'litert, not shipped'}; "
                f"accuracy on {dep.eval_images:,} test images)",
                dep.tflite_bytes,
                dep.int8_accuracy if on_tflite else None,
                None,
            )
        )
    t, arch = bench.target, explore.best.arch
    return DesignResult(
        model=arch.name,
        spec=arch.spec.to_dict() if arch.spec is not None else None,
        params=t.params,
        baseline_fp32_bytes=base,
        hardware=cfg["hardware"],
        target_energy_pj=t.energy_pj,
        target_latency_ms=t.latency_ms,
        target_peak_activation_bytes=t.peak_activation_bytes,
        rows=tuple(SummaryRow(*r, base / r[1]) for r in rows),
        deploy=dep,
        shipped=dep.shipped,
        trials=dict(explore.counts),
        retrain_epochs=retrain.epochs,
        retrain_images=retrain.train_subset,
        trial=explore.best.number,
        picked=cfg.get("pick") is not None,
        compression=comp.ladder,
        metric="mAP@0.5" if scored.metric == "map50" else "top-1",
        test_map=dict(scored.map) or None,
    )
