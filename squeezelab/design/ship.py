"""The report's first section, "What to ship", built from a finished run's records.

Reads only the stage results in ``design.json`` (deploy, benchmark, export, compress,
retrain) and the study's front; :func:`squeezelab.report.ship.render_ship` draws it.
"""

from __future__ import annotations

import dataclasses
import shlex
from pathlib import Path
from typing import Any

from squeezelab.design.config import DesignConfig
from squeezelab.design.records import DesignState
from squeezelab.report.ship import Alternative, CostLine, Ladder, Rung, ShipCard

RUNTIME_NAMES = {
    "tflite-micro": "TFLite Micro",
    "litert": "LiteRT",
    "onnxruntime": "ONNX Runtime",
}


def pick_command(config: dict[str, Any], out: str | Path) -> str:
    """The ``squeezelab design`` command of ``config`` writing to ``out``, with ``--pick {}``.

    Lists the settings that differ from the defaults, so the study's settings match.

    Example:
        >>> pick_command({**DesignConfig().to_dict(), "bits": 4}, "out")
        'squeezelab design --bits 4 -o out --pick {}'
    """
    from squeezelab.design.config import resolved_space

    words = ["squeezelab", "design"]
    for f in dataclasses.fields(DesignConfig):
        value = config.get(f.name, f.default)
        if f.name == "space":  # named only where it is not the data's default
            value = resolved_space(config)
            if value == resolved_space({**config, "space": None}):
                continue
        if f.name == "pick" or value == f.default:
            continue
        words += [
            f"--{f.name.replace('_', '-')}",
            shlex.quote(f"{value:g}" if isinstance(value, float) else str(value)),
        ]
    return " ".join([*words, "-o", shlex.quote(str(out)), "--pick", "{}"])


def _int8_ladder(exp) -> Ladder:
    """The int8 ONNX forms quantize_int8 tried on the validation split."""
    q = exp.int8
    rungs = []
    for t in q.tried:
        chosen = t.setting == q.chosen
        if chosen:
            why = "chosen"
        elif not t.within_tolerance:
            why = f"{100 * t.score_drop:.2f} points below fp32 (tolerance {100 * q.tolerance:g})"
        else:
            why = f"within tolerance, slower than {q.chosen}"
        rungs.append(Rung(t.setting, t.bytes, t.score, chosen, why, t.latency_ms))
    metric = {"top1": "top-1", "map50": "mAP@0.5"}.get(q.metric, "top-1 agreement with fp32")
    return Ladder(
        "int8 forms (model.int8.onnx)",
        f"validation, {q.eval_images:,} images, {metric}",
        f"The fastest setting within {100 * q.tolerance:g} points of fp32 "
        f"({100 * q.fp32.score:.2f} %) on the validation images wins"
        + ("." if q.within_tolerance else "; none was, so the most accurate one was kept."),
        tuple(rungs),
    )


def _compress_ladder(comp) -> Ladder | None:
    """The compression settings tried (``CompressResult.ladder``), smallest file first."""
    lad = comp.ladder
    if lad is None:  # a fixed setting, no ladder
        return None
    rungs = tuple(
        Rung(
            r.setting,
            r.bytes,
            r.val_accuracy,
            r.chosen,
            r.why,
        )
        for r in lad.rungs
    )
    rule = (
        f"The smallest file within {100 * lad.tolerance:g} points of the fp32 validation "
        f"accuracy ({100 * lad.fp32_val_accuracy:.2f} %) wins"
        + ("." if lad.within_tolerance else "; none was, so the most accurate one was kept.")
    )
    label = f"validation, {lad.val_images:,} images, after fine-tuning"
    if lad.metric == "map50":  # a detector's rungs (design/detection.py)
        label = f"validation, {lad.val_images:,} canvases, mAP@0.5, after fine-tuning"
        rule = rule.replace("accuracy", "mAP@0.5")
    return Ladder("Compression ladder (.sqz)", label, rule, rungs)


def _runtime_ladder(d) -> Ladder | None:
    if not d.runtimes:
        return None
    rungs = []
    for r in d.runtimes:
        chosen = r["runtime"] == d.runtime
        why = (
            "chosen"
            if chosen
            else "within tolerance, slower"
            if r["within_tolerance"]
            else f"more than {100 * d.tolerance:g} points below fp32"
        )
        rungs.append(Rung(r["runtime"], None, r["int8_val_accuracy"], chosen, why, r["latency_ms"]))
    return Ladder(
        "Runtimes",
        f"validation, {d.val_images:,} images",
        f"The fastest runtime at batch 1 on {d.threads} thread(s) within "
        f"{100 * d.tolerance:g} points of fp32 ({100 * (d.val_fp32_accuracy or 0):.2f} %) wins.",
        tuple(rungs),
    )


def _costs(state: DesignState) -> tuple[CostLine, ...]:
    s, hw = state.stages, state.config["hardware"]
    d, bench, exp = s["deploy"], s["benchmark"], s["export"]
    t = bench.target
    on_tflite = d.tflite_bytes is not None and d.runtime in ("tflite-micro", "litert")
    name = RUNTIME_NAMES.get(d.runtime, d.runtime)
    lines = []
    if on_tflite:
        pred = f"; {d.predicted_tflite_bytes:,} B predicted" if d.predicted_tflite_bytes else ""
        lines.append(
            CostLine(
                f"flash: {Path(d.tflite).name}",
                "flash_bytes",
                d.tflite_bytes,
                "measured",
                f"the file's size, {d.tflite_bytes:,} B{pred}",
                d.flash_bytes,
            )
        )
    else:
        lines.append(
            CostLine(
                f"flash: {Path(exp.onnx_int8).name}",
                "flash_bytes",
                exp.int8_bytes,
                "measured",
                "the file's size",
                d.flash_bytes,
            )
        )
    if d.arena_bytes is not None:
        pred = f"; {d.predicted_arena_bytes:,} B predicted" if d.predicted_arena_bytes else ""
        lines.append(
            CostLine(
                "SRAM: tensor arena",
                "sram_bytes",
                d.arena_bytes,
                "measured",
                f"{name}'s host interpreter, {d.arena_bytes:,} B{pred}",
                d.sram_bytes,
            )
        )
    else:
        lines.append(
            CostLine(
                "SRAM: peak activations (int8)",
                "sram_bytes",
                t.peak_activation_bytes,
                "predicted",
                f"the {hw} profile",
                d.sram_bytes,
            )
        )
    lines.append(
        CostLine(
            f"latency per image on the {hw}",
            "latency_ms",
            t.latency_ms,
            "predicted",
            f"the {hw} profile, int8",
        )
    )
    lines.append(
        CostLine(
            f"energy per image on the {hw}",
            "energy_pj",
            t.energy_pj,
            "predicted",
            f"the {hw} profile, int8",
        )
    )
    chosen = next((r for r in d.runtimes if r["runtime"] == d.runtime), None)
    if chosen is not None:
        host = chosen["latency_ms"], f"{name} int8, batch 1, {d.threads} thread(s)"
    else:
        host = (
            bench.latency_ms.get("ort_int8"),
            "ONNX Runtime int8 (model.int8.onnx), batch 1, 1 thread",
        )
    if host[0] is not None:
        lines.append(CostLine("latency per image here", "latency_ms", host[0], "host", host[1]))
    return tuple(lines)


def _per_class_ap(score) -> list[tuple[str, float]]:
    """A detector's AP@0.5 per class on the test split (none for a classifier)."""
    return list(score.per_class.items()) if score is not None else []


def ship_card(state: DesignState, study, out: str | Path) -> ShipCard:
    """The "What to ship" card of the run in ``out`` (``OUT/pick-N`` for a --pick run)."""
    from squeezelab.design.stages import front_members

    s, cfg = state.stages, state.config
    d, retrain, exp = s["deploy"], s["retrain"], s["export"]
    chosen = s["explore"].best.number
    name = RUNTIME_NAMES.get(d.runtime, d.runtime)
    images = f"{retrain.train_subset:,} images" if retrain.train_subset else "the training split"
    epochs = f"{retrain.epochs} epoch{'s' * (retrain.epochs != 1)}"
    label = f"test, final: {name} int8 of the design retrained {epochs} on {images}"
    detector = d.metric == "map50"
    if detector and d.runtime == "tflite-micro":  # design/detection.py scores it in LiteRT
        lsb = d.tflm_vs_reference_max_lsb
        label = (
            f"test, final: the shipped .tflite in LiteRT (TFLite Micro within {lsb} LSB of "
            f"LiteRT's reference kernels) of the design retrained {epochs} on {images}"
        )
    picked = cfg.get("pick") is not None
    search_out = Path(out).parent if picked else Path(out)
    command = pick_command(cfg, search_out)
    alternatives = tuple(
        Alternative(t.number, command.format(t.number))
        for t in front_members(study)
        if t.number != chosen
    )
    ladders = [_compress_ladder(s["compress"]), _int8_ladder(exp), _runtime_ladder(d)]
    note = (
        f"Front member #{chosen}, finished with --pick from the study in {search_out}; "
        f"the search's own choice is in {search_out / 'report.html'}."
        if picked
        else f"The most accurate trained front member, trial #{chosen}, of the study below."
    )
    scores = d.test_scores
    return ShipCard(
        file=d.ship,
        runtime=name,
        target=cfg["hardware"],
        shipped=d.shipped,
        trial=chosen,
        costs=_costs(state),
        test_accuracy=d.int8_accuracy,
        test_images=d.eval_images,
        accuracy_label=label,
        fp32_test_accuracy=d.fp32_accuracy,
        classes=scores.classes if scores else (),
        confusion=scores.confusion if scores else (),
        problems=tuple(d.problems),
        ladders=tuple(lad for lad in ladders if lad is not None),
        alternatives=alternatives,
        note=note,
        metric="mAP@0.5" if detector else "top-1",
        per_class=tuple((c, v) for c, v in _per_class_ap(s.get("score")) if v >= 0),
    )
