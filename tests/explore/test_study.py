"""Studies on SQLite with a cheap stand-in trainer (training is not the point here)."""

import json

import pytest

from squeezelab.cli import main
from squeezelab.errors import ConfigError, InfeasibleError
from squeezelab.explore import load_study_results, run_study, space_from_dict
from squeezelab.explore.costs import cost_candidate
from tests.explore.fakes import fake_train

TINY = {"base_e": 16, "incr_e": 16, "stem_channels": 16}


def _space(**over):
    data = {
        "name": "tiny",
        "model": "squeezenet_small",
        "params": {"sr": [0.125, 0.25, 0.5, 1.0], **TINY},
        "objectives": ["accuracy", "params"],
        "search": {"sampler": "grid"},
        "train": {"epochs": 1},
    }
    data.update(over)
    return space_from_dict(data)


def _calls(study_dir):
    path = study_dir / "calls.jsonl"
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def _params(space, sr):
    return cost_candidate(space, space.candidate({"sr": sr}))["params"]


def test_infeasible_candidates_are_never_trained(tmp_path):
    probe = _space()
    limit = (_params(probe, 0.25) + _params(probe, 0.5)) / 2
    space = _space(
        constraints=[{"metric": "params", "max": limit}],
        search={"sampler": "nsga2", "trials": 3, "population": 4, "seed": 1},
    )
    counts = run_study(space, tmp_path, train_fn=fake_train)
    res = load_study_results(str(tmp_path))
    trained = [t for t in res.trials if t.state == "trained"]
    infeasible = [t for t in res.trials if t.state == "infeasible"]
    # only two points fit: each trained exactly once, however often the sampler redraws it
    assert counts.trained == len(trained) == 2 and infeasible, res.counts
    calls = _calls(tmp_path)
    assert len(calls) == len(trained)  # one training per trained trial, none for the others
    assert sorted(c["spec"]["sr"] for c in calls) == [0.125, 0.25]
    for t in res.trials:
        if t.state == "duplicate":
            twin = next(x for x in trained if x.number == t.duplicate_of)
            assert t.params == twin.params and t.metrics == twin.metrics
    for t in infeasible:
        assert t.params["sr"] in (0.5, 1.0) and t.run_dir is None
        assert t.metrics["accuracy"] is None and t.metrics["params"] > limit
        assert t.constraints[0] > 0 and not t.feasible
    for t in trained:
        assert t.feasible and t.constraints[0] <= 0 and len(t.epoch_accuracy) == 2
        assert all(
            k in t.metrics
            for k in (
                "params",
                "macs",
                "model_bytes",
                "energy_pj",
                "latency_ms",
                "peak_activation_bytes",
            )
        )
    # recorded through Optuna's constraints_func: the sampler's system attr matches
    import optuna

    study = optuna.load_study(study_name="tiny", storage=res.storage)
    for t in study.trials:
        assert list(t.system_attrs["constraints"]) == t.user_attrs["constraints"]
    assert set(res.pareto) <= {t.number for t in trained}
    assert len(list((tmp_path / "trials").iterdir())) == len(trained)


def test_no_feasible_point_names_the_tightest_constraint(tmp_path):
    space = _space(
        constraints=[
            {"metric": "params", "max": 1000},
            {"metric": "model_bytes", "max": "1 GB"},
        ]
    )
    smallest = min(_params(space, sr) for sr in (0.125, 0.25, 0.5, 1.0))
    with pytest.raises(InfeasibleError) as e:
        run_study(space, tmp_path, train_fn=fake_train)
    msg = str(e.value)
    assert "tightest constraint is params <= 1000" in msg
    assert f"smallest params the space reaches is {smallest:,.6g}" in msg
    assert "'sr': 0.125" in msg and "all 4 candidates" in msg
    assert not _calls(tmp_path) and not (tmp_path / "study.db").exists()
    assert main(["explore", _write(tmp_path, space), "-o", str(tmp_path / "cli")]) == 2


def _write(tmp_path, space):
    import yaml

    path = tmp_path / "space.yaml"
    path.write_text(yaml.safe_dump(space.to_dict()))
    return str(path)


def test_resume_trains_nothing_twice_and_refuses_another_space(tmp_path):
    space = _space(params={"sr": [0.125, 0.25], **TINY})
    run_study(space, tmp_path, train_fn=fake_train)
    assert len(_calls(tmp_path)) == 2
    run_study(space, tmp_path, train_fn=fake_train)
    assert len(_calls(tmp_path)) == 2
    with pytest.raises(ConfigError, match="different search space"):
        run_study(_space(params={"sr": [0.125, 0.5], **TINY}), tmp_path, train_fn=fake_train)


def test_invalid_points_are_recorded_not_trained(tmp_path):
    space = _space(params={"pct_3x3": [0.001, 0.5], **TINY})
    counts = run_study(space, tmp_path, train_fn=fake_train)
    assert (counts.trained, counts.invalid) == (1, 1)
    res = load_study_results(str(tmp_path))
    bad = [t for t in res.trials if t.state == "invalid"][0]
    assert "pct_3x3" in bad.invalid and bad.run_dir is None


def test_study_show_json_and_table(tmp_path, capsys):
    run_study(_space(params={"sr": [0.125, 0.25], **TINY}), tmp_path, train_fn=fake_train)
    capsys.readouterr()
    assert main(["study", "show", str(tmp_path), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["counts"]["trained"] == 2 and res["objectives"][1] == {
        "name": "params",
        "metric": "params",
        "direction": "minimize",
    }
    # accuracy grows with sr in the fake, params too: both points are on the front
    assert sorted(res["pareto"]) == [0, 1]
    assert main(["study", "show", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "Pareto front (2 trials)" in out and "2 trained" in out
    assert main(["study", "show", str(tmp_path / "nope")]) == 2


def test_second_stage_retrains_the_front_once(tmp_path):
    from squeezelab.explore.final import retrain_front

    space = _space(params={"sr": [0.125, 0.25], **TINY}, final={"epochs": 5})
    run_study(space, tmp_path, train_fn=fake_train)
    recs = list(retrain_front(None, "tiny", tmp_path, train_fn=fake_train))
    res = load_study_results(str(tmp_path))
    assert sorted(r.number for r in recs) == sorted(res.pareto)
    for tr in res.pareto_trials:
        assert tr.final.run_dir.endswith(f"final/{tr.number:05d}")
        assert len(tr.final.epoch_accuracy) == 2
    assert list(retrain_front(None, "tiny", tmp_path, train_fn=fake_train)) == []  # resumable
    run_study(_space(params={"sr": [0.125], **TINY}), tmp_path / "other", train_fn=fake_train)
    with pytest.raises(ConfigError, match="no 'final' section"):
        list(retrain_front(None, "tiny", tmp_path / "other", train_fn=fake_train))


@pytest.mark.parametrize("verb", [["explore", "space.yaml"], ["worker", "--storage", "s"]])
def test_out_is_a_deprecated_alias_of_output(verb, capsys):
    from squeezelab.cli import build_parser

    args = build_parser().parse_args([*verb, "--out", "runs/x"])
    assert args.output == "runs/x"
    assert "--out is deprecated" in capsys.readouterr().err
    assert build_parser().parse_args([*verb, "-o", "runs/y"]).output == "runs/y"


def test_a_train_fn_yielding_dicts_still_works_with_a_deprecation(tmp_path):
    def dict_train(candidate, train, run_dir):
        for rec in fake_train(candidate, train, run_dir):
            yield rec.to_dict()  # the record layout of the previous release

    space = _space(params={"sr": [0.25, 0.5], **TINY}, final={"epochs": 5})
    with pytest.warns(DeprecationWarning, match="EpochRecord"):
        counts = run_study(space, tmp_path, train_fn=dict_train)
    res = load_study_results(str(tmp_path))
    assert counts.trained == 2
    assert sorted(t.metrics["accuracy"] for t in res.trials) == [0.5 + 0.4 * 0.25, 0.5 + 0.4 * 0.5]
    from squeezelab.explore.final import retrain_front

    with pytest.warns(DeprecationWarning, match="EpochRecord"):  # the final stage too
        finals = list(retrain_front(None, "tiny", tmp_path, train_fn=dict_train))
    assert finals and all(f.accuracy == max(f.epoch_accuracy) for f in finals)
