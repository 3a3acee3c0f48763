"""The report's "What to ship" card built from a finished run's stage records."""

from pathlib import Path
from types import SimpleNamespace as NS

from squeezelab.compress.ladder import LadderResult, RungResult
from squeezelab.design import DesignConfig
from squeezelab.design.records import (
    BenchmarkResult,
    BestTrial,
    CompressResult,
    DeployResult,
    DesignState,
    ExploreResult,
    RetrainResult,
    TargetCost,
)
from squeezelab.design.ship import pick_command, ship_card
from squeezelab.export import Int8Score
from tests.report.conftest import make_results

LADDER = LadderResult(
    0.9,
    0.005,
    500,
    True,
    (
        RungResult(0.67, 4, True, 30_000, 0.88, False, "lost 2.00 points"),
        RungResult(0.5, 6, True, 52_000, 0.898, True, "chosen: within 0.5 points"),
    ),
)


def _int8(setting, score, ok, ms):
    return Int8Score(setting, *setting.split("/"), score, 0.9 - score, ok, 90_000, ms, ms, ms)


def _state(out: Path, chosen: int, pick=None) -> DesignState:
    deploy = DeployResult(
        runtime="tflite-micro",
        ship=str(out / "model.c"),
        tflite=str(out / "model.tflite"),
        c_source=str(out / "model.c"),
        tflite_bytes=300_000,
        predicted_tflite_bytes=310_000,
        arena_bytes=400_000,
        arena_head_bytes=1,
        arena_tail_bytes=2,
        predicted_arena_bytes=390_000,
        sram_bytes=524_288,
        flash_bytes=2_097_152,
        int8_accuracy=0.75,
        fp32_accuracy=0.8,
        eval_images=4,
        tolerance=0.02,
        tflm_vs_reference_max_lsb=0,
        classes=["a", "b"],
        confusion=[[2, 0], [1, 1]],
    )
    q = NS(
        tried=(_int8("U8S8/minmax", 0.9, True, 0.5), _int8("S8S8/minmax", 0.8, False, 0.4)),
        chosen="U8S8/minmax",
        tolerance=0.005,
        metric="top1",
        eval_images=2000,
        fp32=NS(score=0.9),
        within_tolerance=True,
    )
    return DesignState(
        {**DesignConfig(bits=4, pick=pick).to_dict()},
        {
            "explore": ExploreResult(BestTrial(chosen, None, {}, None), {}, None),
            "retrain": RetrainResult("r", "r/m", 1, 3, None),
            "compress": CompressResult("m.sqz", 1, {}, {}, ladder=LADDER),
            "export": NS(int8=q, onnx_int8=str(out / "model.int8.onnx"), int8_bytes=90_000),
            "deploy": deploy,
            "benchmark": BenchmarkResult(
                {"ort_int8": 0.5}, TargetCost(1, 1, 1, 2.5e6, 41.5, 380_000)
            ),
        },
    )


def test_card_from_records(tmp_path):
    from squeezelab.explore import StudyResults

    study = StudyResults.from_dict(make_results(tmp_path / "study"))
    front = [t.number for t in study.pareto_trials]
    card = ship_card(_state(tmp_path / "out", front[0]), study, tmp_path / "out")
    assert card.file == str(tmp_path / "out" / "model.c") and card.shipped
    assert card.runtime == "TFLite Micro" and card.trial == front[0]
    kinds = {c.figure: (c.kind, c.value, c.limit) for c in card.costs}
    assert kinds["flash: model.tflite"] == ("measured", 300_000, 2_097_152)
    assert kinds["SRAM: tensor arena"] == ("measured", 400_000, 524_288)
    assert kinds["latency per image on the cortex-m7"] == ("predicted", 41.5, None)
    assert kinds["energy per image on the cortex-m7"][0] == "predicted"
    assert kinds["latency per image here"] == ("host", 0.5, None)
    assert card.accuracy_label.startswith("test, final") and "3 epochs" in card.accuracy_label
    assert card.confusion == ((2, 0), (1, 1)) and card.test_images == 4
    comp, int8 = card.ladders
    assert [(r.setting, r.bytes, r.chosen) for r in comp.rungs] == [
        ("67% pruned, 4-bit, fine-tuned", 30_000, False),
        ("50% pruned, 6-bit, fine-tuned", 52_000, True),
    ]
    assert comp.rungs[0].why == "lost 2.00 points" and "500 images" in comp.accuracy_label
    assert "within 0.5 points of the fp32 validation accuracy (90.00 %)" in comp.rule
    assert [r.chosen for r in int8.rungs] == [True, False]
    assert "10.00 points below fp32" in int8.rungs[1].why
    assert [a.trial for a in card.alternatives] == front[1:]
    out = tmp_path / "out"
    assert card.alternatives[0].command == f"squeezelab design --bits 4 -o {out} --pick {front[1]}"


def test_a_pick_run_offers_commands_against_the_search_folder(tmp_path):
    from squeezelab.explore import StudyResults

    study = StudyResults.from_dict(make_results(tmp_path / "study"))
    front = [t.number for t in study.pareto_trials]
    out = tmp_path / "out"
    card = ship_card(
        _state(out / f"pick-{front[1]}", front[1], pick=front[1]), study, out / f"pick-{front[1]}"
    )
    assert "--pick" in card.note and str(out / "report.html") in card.note
    assert [a.trial for a in card.alternatives] == [front[0], *front[2:]]
    assert f"-o {out} --pick {front[0]}" in card.alternatives[0].command


def test_pick_command_lists_only_changed_settings():
    cfg = {**DesignConfig().to_dict(), "budget_minutes": 3.0, "data": "my data", "pick": 4}
    assert pick_command(cfg, "o") == (
        "squeezelab design --data 'my data' --budget-minutes 3 -o o --pick {}"
    )
