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
    ],
)
def test_fmt_uses_the_unit_in_the_name(name, value, text):
    assert tb.fmt(name, value) == text


def test_front_accepts_trial_numbers_or_trial_dicts(tmp_path):
    as_dicts = make_results(tmp_path)
    as_numbers = make_results(tmp_path, pareto_as_numbers=True)
    numbers = [t["number"] for t in tb.front(as_dicts)]
    assert numbers == [t["number"] for t in tb.front(as_numbers)]
    accs = [t["metrics"]["accuracy"] for t in tb.front(as_numbers)]
    assert accs == sorted(accs, reverse=True) and len(numbers) == len(as_dicts["pareto"])


def test_the_front_is_the_dicts_not_recomputed(tmp_path):
    results = make_results(tmp_path, pareto_as_numbers=True)
    results["pareto"] = [3]  # dominated in fact; the report must not second-guess explore
    columns, rows = tb.front_table(results)
    assert [r["trial"] for r in rows] == [3] and columns[:2] == ["trial", "accuracy"]


def test_groups_costs_and_varied_params(results):
    assert len(tb.trained(results)) == results["counts"]["trained"]
    assert len(tb.infeasible(results)) == results["counts"]["infeasible"]
    assert tb.cost_metrics(results)[0] == "model_bytes"  # the objective comes first
    assert set(tb.cost_metrics(results)) == set(tb.COST_METRICS)
    assert tb.varied_params(results) == ["sr", "pct_3x3"]  # bypass is fixed
    assert tb.constraint_limits(results) == {"model_bytes": 1 << 20}


def test_spec_table_marks_the_fields_that_differ(results):
    heads, rows = tb.spec_table(results)
    assert len(heads) == len(results["pareto"])
    varies = {r["field"] for r in rows if r["varies"]}
    assert varies == {"sr", "pct_3x3"}


def test_results_without_trials_are_refused():
    with pytest.raises(FormatError, match="pareto"):
        tb.check_results({"trials": []})
