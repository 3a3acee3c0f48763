"""The design report's first section (what to ship), the chosen design highlighted in
every table and plot, and every accuracy labelled with its split and training budget."""

import re
from pathlib import Path

import pytest

from squeezelab.report import render_report
from squeezelab.report.ship import (
    Alternative,
    CostLine,
    Ladder,
    Rung,
    ShipCard,
    headroom,
    render_ship,
)
from tests.report.conftest import make_results

CLASSES = ("shirt", "shoe", "bag")
CONFUSION = ((8, 2, 0), (1, 9, 0), (0, 0, 10))  # 27 of 30 right


def _card(root: Path, chosen: int, others: list[int]) -> ShipCard:
    return ShipCard(
        file=str(root / "out" / "model.c"),
        runtime="TFLite Micro",
        target="cortex-m7",
        shipped=True,
        trial=chosen,
        costs=(
            CostLine("flash: model.tflite", "flash_bytes", 300_000, "measured", "the file", 2**21),
            CostLine("SRAM: tensor arena", "sram_bytes", 400 * 1024, "measured", "TFLM", 2**19),
            CostLine("latency on the cortex-m7", "latency_ms", 41.5, "predicted", "profile"),
            CostLine("energy on the cortex-m7", "energy_pj", 2.5e6, "predicted", "profile"),
            CostLine("latency per image here", "latency_ms", 0.42, "host", "ORT int8"),
        ),
        test_accuracy=0.9,
        test_images=30,
        accuracy_label="test, final: TFLite Micro int8 retrained 3 epochs on 54,000 images",
        fp32_test_accuracy=0.9333,
        classes=CLASSES,
        confusion=CONFUSION,
        ladders=(
            Ladder(
                "Compression ladder (.sqz)",
                "validation, after fine-tuning",
                "smallest within 0.5 points wins",
                (
                    Rung("67% pruned, 4-bit", 30_000, 0.88, False, "1.20 points below fp32"),
                    Rung("50% pruned, 6-bit", 52_000, 0.898, True, "chosen"),
                ),
            ),
            Ladder(
                "int8 forms (model.int8.onnx)",
                "validation, 2,000 images, top-1",
                "fastest within tolerance wins",
                (
                    Rung("U8S8/minmax", 90_000, 0.90, True, "chosen", 0.4),
                    Rung("S8S8/minmax", 90_000, 0.85, False, "5.00 points below fp32", 0.38),
                ),
            ),
        ),
        alternatives=tuple(Alternative(n, f"squeezelab design -o out --pick {n}") for n in others),
    )


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    from squeezelab.explore import StudyResults

    root = tmp_path_factory.mktemp("ship")
    results = StudyResults.from_dict(make_results(root / "study"))
    front = [t.number for t in sorted(results.pareto_trials, key=lambda t: -t.accuracy)]
    chosen = front[1]  # not the most accurate: the highlight follows the card, not the order
    card = _card(root, chosen, [n for n in front if n != chosen])
    out = render_report(results, root / "out" / "report.html", ship=card)
    return results, card, out, out.read_text(encoding="utf-8")


def test_first_section_names_the_file_with_a_relative_link(page):
    _, card, out, html = page
    first = html.index("<h2>")
    assert html[first:].startswith("<h2>What to ship</h2>")
    ship = html.split('<section id="ship">')[1].split("</section>")[0]
    href = re.search(r'<a href="([^"]+)"><code>model.c</code></a>', ship).group(1)
    assert href == "model.c" and (out.parent / href) == Path(card.file)
    assert f"study trial #{card.trial}" in ship


def test_costs_against_limits_with_headroom_and_kind_labels(page):
    html = page[3].split('<section id="ship">')[1].split("</section>")[0]
    costs = html.split('<table class="costs">')[1].split("</table>")[0]
    rows = re.findall(r"<tr>(.*?)</tr>", costs)[1:]
    assert len(rows) == 5
    flash, sram, lat, energy, host = rows
    assert "measured" in flash and "2 MiB" in flash and "1.71 MiB free (14 % used)" in flash
    assert "400 KiB" in sram and "112 KiB free (78 % used)" in sram
    assert "predicted" in lat and "41.5 ms" in lat and "predicted" in energy
    assert "host" in host and "0.42 ms" in host and "predicted" not in host
    assert "host: timed on this machine" in html


def test_headroom_over_the_limit_says_so():
    assert headroom(600 * 1024, 512 * 1024) == "OVER by 88 KiB"
    assert headroom(5, None) == "no limit"


def test_test_accuracy_per_class_and_confusion_matrix(page):
    html = page[3].split('<section id="ship">')[1].split("</section>")[0]
    assert "<b>90.00 %</b> top-1" in html
    assert "test, final: TFLite Micro int8 retrained 3 epochs on 54,000 images" in html
    assert "30 test images, scored once" in html
    matrix = html.split('<table class="confusion">')[1].split("</table>")[0]
    rows = re.findall(r"<tr><th>(\w+)</th>(.*?)</tr>", matrix)
    assert [name for name, _ in rows] == list(CLASSES)
    for (name, cells), counts, acc in zip(
        rows, CONFUSION, ("80.00 %", "90.00 %", "100.00 %"), strict=True
    ):
        values = re.findall(r'<td class="num[^"]*"[^>]*>([^<]+)</td>', cells)
        assert values == [acc, *map(str, counts)], name


def test_both_ladders_with_the_chosen_rung_and_why_not(page):
    html = page[3]
    comp = html.split("<h3>Compression ladder (.sqz)</h3>")[1].split("</table>")[0]
    assert "accuracy (validation, after fine-tuning)" in comp
    chosen = re.findall(r'<tr class="chosen">(.*?)</tr>', comp)
    assert len(chosen) == 1 and "50% pruned, 6-bit" in chosen[0] and "<b>chosen</b>" in chosen[0]
    assert "1.20 points below fp32" in comp
    int8 = html.split("<h3>int8 forms (model.int8.onnx)</h3>")[1].split("</table>")[0]
    assert "host latency" in int8 and "5.00 points below fp32" in int8


def test_chosen_design_is_highlighted_and_alternatives_have_commands(page):
    results, card, _, html = page
    front = html.split('<div id="front">')[1].split("</table>")[0]
    chosen = re.findall(r'<tr class="chosen">(.*?)</tr>', front)
    assert len(chosen) == 1 and f'<td class="num">{card.trial}</td>' in chosen[0]
    assert "<b>chosen</b>" in chosen[0]
    others = re.findall(r'<tr class="front">(.*?)</tr>', front)
    assert len(others) == len(results.pareto) - 1
    for row in others:
        n = re.search(r'<td class="num">(\d+)</td>', row).group(1)
        assert f"<code>squeezelab design -o out --pick {n}</code>" in row
    assert "Smaller alternatives: #" in html
    every = html.split("<h2>Every trial</h2>")[1]
    assert len(re.findall(r'<tr class="chosen">', every)) == 1


def test_every_accuracy_names_its_split_and_budget(page):
    html = page[3]
    # the conftest study: 5 epochs on 10,000 training images per trial
    assert "accuracy (validation, 5 epochs on 10,000 images)" in html.split('<div id="front">')[1]
    assert "final_<wbr>accuracy (validation, retrained 5 epochs on 10,000 images)" in html
    every = html.split("<h2>Every trial</h2>")[1]
    assert "accuracy (validation, 5 epochs on 10,000 images)" in every
    captions = re.findall(r"<figcaption>(.*?)</figcaption>", html)
    assert captions and all("validation, 5 epochs on 10,000 images" in c for c in captions)
    # the ship section's accuracies: test, final
    for table in re.findall(r"<h3>.*?</table>", html.split('<section id="ship">')[1]):
        if "accuracy" in table:
            assert "validation" in table or "test, final" in table


def test_multi_fidelity_budgets_are_per_trial():
    from squeezelab.explore import StudyResults
    from squeezelab.report import tables as tb

    raw = make_results(Path("/tmp/x"))
    done = [t for t in raw["trials"] if t["state"] == "trained"]
    done[0]["epoch_accuracy"] = [0.5]  # stopped at the first rung
    results = StudyResults.from_dict(raw)
    assert tb.trial_budget(results) == "validation, 1–5 epochs on 10,000 images"
    first = next(t for t in results.trials if t.number == done[0]["number"])
    assert tb.trial_budget(results, first) == "validation, 1 epoch on 10,000 images"


def _labelled(fig, label: str):
    ax = fig.axes[0]
    return [a for a in [*ax.collections, *ax.lines] if a.get_label() == label]


def test_every_plot_marks_the_chosen_design(page):
    from squeezelab.report import plots
    from squeezelab.report import tables as tb

    results, card, _, _ = page
    n = card.trial
    trial = next(t for t in results.trials if t.number == n)
    label = f"chosen design #{n}"
    for cost in tb.cost_metrics(results):
        fig = plots.accuracy_vs_cost(results, cost, n)
        (star,) = _labelled(fig, label)
        div, _ = tb.display_unit(cost, [tb.metric(t, cost) or 0 for t in results.trials])
        x, y = star.get_offsets()[0]
        assert y == pytest.approx(trial.accuracy), cost
        assert _labelled(plots.accuracy_vs_cost(results, cost), label) == []
    for param in tb.varied_params(results):
        (star,) = _labelled(plots.sweep(results, param, n), label)
        assert star.get_offsets()[0][1] == pytest.approx(trial.accuracy)
    (line,) = _labelled(plots.parallel_coordinates(results, n), label)
    assert line.get_linewidth() > 3
    (curve,) = _labelled(plots.learning_curves(results, n), label)
    assert list(curve.get_ydata()) == list(trial.epoch_accuracy)


def test_not_shipped_card_says_why(tmp_path):
    import dataclasses

    card = dataclasses.replace(
        _card(tmp_path, 1, []), shipped=False, problems=("arena 600 KiB exceeds the SRAM",)
    )
    html = render_ship(card, tmp_path / "out")
    assert "NOT SHIPPED" in html and "arena 600 KiB exceeds the SRAM" in html
    assert ShipCard.from_dict(card.to_dict()) == card
