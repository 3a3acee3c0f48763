"""A squeezelab study as optuna-dashboard reads it (its HTTP API, on loopback)."""

import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from squeezelab.explore import load_study_results, run_study, space_from_dict
from squeezelab.explore.costs import COST_FIELDS, cost_candidate
from tests.explore.fakes import fake_train

TINY = {"base_e": 16, "incr_e": 16, "stem_channels": 16}


def _space(**over):
    data = {
        "name": "dash",
        "model": "squeezenet_small",
        "params": {"sr": [0.125, 0.25, 0.5, 1.0], **TINY},
        "objectives": ["accuracy", "params"],
        "train": {"epochs": 1},
    }
    return space_from_dict({**data, **over})


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str):
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.loads(r.read())


@pytest.fixture
def study_dir(tmp_path):
    """An NSGA-II study where two of four points break the constraint and points recur."""
    probe = _space()
    params = [cost_candidate(probe, probe.candidate({"sr": sr}))["params"] for sr in (0.25, 0.5)]
    space = _space(
        constraints=[{"metric": "params", "max": sum(params) / 2}],
        search={"sampler": "nsga2", "trials": 2, "population": 4, "seed": 1},
    )
    run_study(space, tmp_path, train_fn=fake_train)
    return tmp_path


def test_dashboard_api_shows_names_costs_and_the_reports_front(study_dir):
    pytest.importorskip("optuna_dashboard", reason="optuna-dashboard is in the test extra")
    res = load_study_results(study_dir)
    assert res.counts.duplicate > 0  # the sampler redrew points: the case that matters here
    port = _free_port()
    exe = Path(sys.executable).with_name("optuna-dashboard")
    cmd = [str(exe), f"sqlite:///{study_dir / 'study.db'}", "--host", "127.0.0.1"]
    proc = subprocess.Popen(
        [*cmd, "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    base = f"http://127.0.0.1:{port}/api/studies"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                studies = _get(base)["study_summaries"]
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    pytest.fail("optuna-dashboard did not answer on loopback within 30 s")
                time.sleep(0.2)
        (summary,) = studies
        detail = _get(f"{base}/{summary['study_id']}")
    finally:
        proc.terminate()
        proc.wait(timeout=10)

    # axes named by metric, not "Objective 0/1"
    assert detail["objective_names"] == [o.key for o in res.objectives]
    # every cost metric is its own sortable attribute
    attrs = {a["key"]: a["sortable"] for a in detail["union_user_attrs"]}
    assert all(attrs.get(k) is True for k in (*COST_FIELDS, "accuracy")), attrs
    # the trials the report counts, duplicates among them, listed and pointing at their twin
    trials = detail["trials"]
    assert len(trials) == res.counts.total
    dups = [t for t in trials if t["state"] == "Pruned" and "duplicate_of" in _attrs(t)]
    assert len(dups) == res.counts.duplicate
    # the dashboard's feasible best trials are exactly the report's Pareto front
    best = {t["number"] for t in detail["best_trials"] if all(c <= 0 for c in t["constraints"])}
    assert best == set(res.pareto) and res.pareto
    # run dirs are relative to the study dir, and resolve to real folders from anywhere
    for t in trials:
        rd = _attrs(t).get("run_dir")
        assert rd is None or not Path(rd).is_absolute()
    assert all(Path(t.run_dir).is_dir() for t in res.trials if t.state == "trained")


def _attrs(trial: dict) -> dict:
    return {a["key"]: a["value"] for a in trial["user_attrs"]}


def test_single_objective_study_reports_learning_curves(tmp_path):
    import optuna

    space = _space(objectives=["accuracy"], search={"sampler": "grid"}, params={"sr": [0.25, 0.5]})
    run_study(space, tmp_path, train_fn=fake_train)
    study = optuna.load_study(study_name="dash", storage=f"sqlite:///{tmp_path / 'study.db'}")
    assert study.metric_names == ["accuracy"]
    for t in study.trials:
        assert sorted(t.intermediate_values) == [0, 1]  # fake_train's two epochs
        assert list(t.intermediate_values.values()) == t.user_attrs["epoch_accuracy"]


@pytest.mark.postgres
def test_study_dir_of_a_postgresql_study_opens_from_anywhere(postgres_url, tmp_path, monkeypatch):
    from squeezelab.cli import main

    run_study(_space(search={"sampler": "grid"}), tmp_path / "s", postgres_url, train_fn=fake_train)
    monkeypatch.chdir(tmp_path.parent)  # elsewhere than where it ran
    res = load_study_results(tmp_path / "s")  # the dir points to its PostgreSQL study
    assert res.storage.startswith("postgresql") and res.counts.trained == 4
    assert all(Path(t.run_dir).is_dir() for t in res.trials)
    assert main(["study", "show", str(tmp_path / "s")]) == 0
    assert main(["report", str(tmp_path / "s"), "-o", str(tmp_path / "r.html")]) == 0
