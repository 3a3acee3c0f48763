import pytest

from squeezelab.errors import FormatError
from squeezelab.report import tables as tb
from tests.report.conftest import make_results


@pytest.mark.parametrize(
    ("name", "value", "text"),
    [
        ("model_bytes", 4_992_000, "4.76 MiB"),
        ("peak_activation_bytes", 262_144, "256 KiB"),
        ("model_bytes", 1023, "1,023 B"),
        ("params", 1_248_424, "1.25 M"),
        ("macs", 818_924_576, "819 M"),
        ("energy_pj", 2.5e6, "2.5 µJ"),
        ("latency_ms", 3.931, "3.93 ms"),
        ("accuracy", 0.8531, "85.31 %"),
        ("sr", 0.125, "0.125"),
        ("pool_after", [1, 4, 8], "[1, 4, 8]"),
        ("bypass", "simple", "simple"),
        ("batchnorm", True, "yes"),
        ("accuracy", None, "–"),
        ("model_bytes[8bit]", 1_048_576, "1 MiB"),
        ("latency_ms[cortex-m7]", 12.5, "12.5 ms"),
        ("final_accuracy", 0.9, "90.00 %"),
    ],
)
def test_fmt_uses_the_unit_in_the_name(name, value, text):
    assert tb.fmt(name, value) == text


def test_front_is_best_accuracy_first(results):
    numbers = [t.number for t in tb.front(results)]
    assert sorted(numbers) == sorted(results.pareto)
    accs = [t.accuracy for t in tb.front(results)]
    assert accs == sorted(accs, reverse=True)


def test_the_front_is_the_studys_not_recomputed(tmp_path):
    results = make_results(tmp_path)
    results["pareto"] = [3]  # dominated in fact; the report must not second-guess explore
    columns, rows = tb.front_table(tb.as_results(results))
    assert [r["trial"] for r in rows] == [3] and columns[:2] == ["trial", "sr"]


def test_groups_costs_and_varied_params(results):
    assert len(tb.trained(results)) == results.counts.trained
    assert len(tb.infeasible(results)) == results.counts.infeasible
    assert tb.cost_metrics(results)[0] == "model_bytes"  # the objective comes first
    assert set(tb.cost_metrics(results)) == set(tb.COST_METRICS)
    assert tb.varied_params(results) == ["sr", "pct_3x3"]  # bypass is fixed
    assert tb.constraint_limits(results) == {"model_bytes": 1 << 20}
    assert tb.label("model_bytes[8bit]") == "model size [8bit]"


def test_front_table_has_final_accuracy_when_retrained(results):
    columns, rows = tb.front_table(results)
    assert columns[:5] == ["trial", "sr", "pct_3x3", "accuracy", "final_accuracy"]
    assert rows[0]["final_accuracy"] > rows[0]["accuracy"] and rows[0]["final_run_dir"]
    assert rows[-1]["final_accuracy"] is None and rows[-1]["final_run_dir"] is None


def test_spec_table_marks_the_fields_that_differ(results):
    heads, rows = tb.spec_table(results)
    assert len(heads) == len(results.pareto)
    varies = {r["field"] for r in rows if r["varies"]}
    assert varies == {"sr", "pct_3x3"}


def test_results_without_trials_are_refused():
    with pytest.raises(FormatError, match="pareto"):
        tb.as_results({"trials": []})


def test_json_that_is_not_study_results_is_one_format_error(tmp_path):
    bad = make_results(tmp_path)
    del bad["trials"][0]["number"]
    with pytest.raises(FormatError, match="study results") as e:
        tb.as_results(bad)
    assert "\n" not in str(e.value)


def test_typed_results_and_their_json_give_the_same_views(results):
    again = tb.as_results(results.to_dict())
    assert tb.as_results(results) is results
    assert tb.front_table(again) == tb.front_table(results)
    assert tb.spec_table(again) == tb.spec_table(results)
