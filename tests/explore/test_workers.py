"""Several workers on one study: PostgreSQL (a real server started by the fixture) and
SQLite (the claim lock: two `explore` processes on one study directory train each point once)."""

import json
import multiprocessing as mp
import os
import signal
import time

import pytest

from squeezelab.explore import load_study_results, run_study, run_worker, space_from_dict
from squeezelab.explore.study import init_study
from tests.explore.fakes import fake_train, stuck_train

postgres = pytest.mark.postgres
TINY = {"base_e": 16, "incr_e": 16, "stem_channels": 16}


def _space(name, srs, sleep_s):
    return space_from_dict(
        {
            "name": name,
            "model": "squeezenet_small",
            "params": {"sr": srs, **TINY},
            "objectives": ["accuracy", "params"],
            "search": {"sampler": "grid"},
            "train": {"epochs": 1, "fake_sleep_s": sleep_s},
        }
    )


@postgres
@pytest.mark.slow
def test_two_workers_record_every_trial_exactly_once(postgres_url, tmp_path):
    srs = [0.125, 0.25, 0.5, 1.0]
    counts = run_study(
        _space("two", srs, 0.3), tmp_path, storage=postgres_url, workers=2, train_fn=fake_train
    )
    assert counts.trained == len(srs) and counts.failed == 0 and counts.running == 0
    res = load_study_results(postgres_url, "two")
    trained = [t for t in res.trials if t.state == "trained"]
    assert sorted(t.params["sr"] for t in trained) == srs  # each point once
    calls = [json.loads(x) for x in (tmp_path / "calls.jsonl").read_text().splitlines()]
    assert sorted(c["spec"]["sr"] for c in calls) == srs  # each trained once
    assert sorted(c["run_dir"] for c in calls) == sorted(t.run_dir for t in trained)
    assert len({c["pid"] for c in calls}) == 2  # both workers took trials


@postgres
@pytest.mark.slow
def test_killed_worker_trial_is_retried_and_study_completes(postgres_url, tmp_path):
    srs = [0.125, 0.25, 0.5]
    init_study(_space("kill", srs, 0.0), tmp_path, storage=postgres_url)
    ctx = mp.get_context("spawn")
    doomed = ctx.Process(
        target=run_worker,
        args=(postgres_url, "kill", str(tmp_path)),
        kwargs={"train_fn": stuck_train, "heartbeat_s": 1, "grace_s": 3},
    )
    doomed.start()
    marker = tmp_path / "stuck_started"
    deadline = time.time() + 120
    while not marker.exists() and time.time() < deadline:
        time.sleep(0.2)
    assert marker.exists(), "the first worker never started a trial"
    os.kill(doomed.pid, signal.SIGKILL)
    doomed.join()
    counts = run_worker(
        postgres_url, "kill", str(tmp_path), train_fn=fake_train, heartbeat_s=1, grace_s=3
    )
    assert counts.trained == 3 and counts.failed == 1 and counts.running == 0
    res = load_study_results(postgres_url, "kill")
    failed = [t for t in res.trials if t.state == "failed"]
    retry = [t for t in res.trials if t.retry_of is not None]
    assert len(failed) == 1 and len(retry) == 1
    assert retry[0].retry_of == failed[0].number and retry[0].state == "trained"
    assert retry[0].params == failed[0].params
    assert failed[0].run_dir == marker.read_text()
    assert sorted(t.params["sr"] for t in res.trials if t.state == "trained") == srs
    assert res.counts.failed == 1 and res.counts.trained == 3


def _explore(space_dict, study_dir, start):
    """What one `squeezelab explore SPACE -o DIR` process does (fake trainer)."""
    start.wait()  # both start at once: the race two users' commands would run
    run_study(space_from_dict(space_dict), study_dir, train_fn=fake_train)


def test_two_sqlite_explore_processes_train_each_point_once(tmp_path):
    srs = [0.125, 0.25, 0.375, 0.5, 0.625, 0.75, 0.875, 1.0]
    space = _space("lite", srs, 0.05).raw
    ctx = mp.get_context("spawn")
    start = ctx.Barrier(2)
    procs = [ctx.Process(target=_explore, args=(space, str(tmp_path), start)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    assert [p.exitcode for p in procs] == [0, 0]
    calls = [json.loads(x) for x in (tmp_path / "calls.jsonl").read_text().splitlines()]
    assert sorted(c["spec"]["sr"] for c in calls) == srs  # each point trained once
    res = load_study_results(str(tmp_path), "lite")
    trained = [t for t in res.trials if t.state == "trained"]
    assert sorted(t.params["sr"] for t in trained) == srs and res.counts.failed == 0
    assert len({c["pid"] for c in calls}) == 2  # both processes trained: claims, not a queue
