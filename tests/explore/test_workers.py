"""Several workers on one study: PostgreSQL (a real server started by the fixture) and
SQLite (the claim lock and the claim check: two workers on one study directory train each
point once, whatever the sampler; the races are forced, not left to timing)."""

import contextlib
import json
import multiprocessing as mp
import os
import signal
import threading
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


class _Worker(threading.Thread):
    """``run_worker`` on the SQLite study in ``study_dir``, in a thread (errors kept)."""

    def __init__(self, study_dir, train_fn, seed):
        super().__init__(daemon=True)
        self.args, self.error = (None, None, str(study_dir)), None
        self.kw = {"train_fn": train_fn, "seed": seed, "heartbeat_s": 1, "grace_s": 60}

    def run(self):
        try:
            run_worker(*self.args, **self.kw)
        except BaseException as e:  # the test reports it
            self.error = e

    def finish(self):
        self.join(timeout=60)
        assert not self.is_alive(), "a worker hung"
        if self.error is not None:
            raise self.error


def _calls(study_dir):
    return [json.loads(x) for x in (study_dir / "calls.jsonl").read_text().splitlines()]


def _rendezvous_on_waiting_reads(monkeypatch, timeout_s=0.5) -> dict:
    """Hold every worker that read a WAITING trial while claiming it, until a second
    worker read the same trial (or ``timeout_s``): the claim race, always lost when two
    workers can claim at the same time (no claim lock), never when they cannot. Returns
    the barriers per trial id, so a test can check that the hook fired at all."""
    from optuna.storages._rdb.models import TrialModel
    from optuna.trial import TrialState

    find = TrialModel.find_or_raise_by_id.__func__
    meets: dict[int, threading.Barrier] = {}
    guard = threading.Lock()

    def find_and_meet(cls, trial_id, session, for_update=False):
        trial = find(cls, trial_id, session, for_update)
        if for_update and trial.state == TrialState.WAITING:
            with guard:
                meet = meets.setdefault(trial_id, threading.Barrier(2))
            # a broken barrier: no second worker came, as the claim lock made it wait
            with contextlib.suppress(threading.BrokenBarrierError):
                meet.wait(timeout_s)
        return trial

    monkeypatch.setattr(TrialModel, "find_or_raise_by_id", classmethod(find_and_meet))
    return meets


def test_two_sqlite_grid_workers_claiming_at_once_train_each_point_once(tmp_path, monkeypatch):
    srs = [0.25, 0.5, 0.75, 1.0]
    init_study(_space("grid", srs, 0.0), tmp_path)
    meets = _rendezvous_on_waiting_reads(monkeypatch)
    both = threading.Barrier(2)

    def train_in_pairs(candidate, train, run_dir):  # proves the two train in parallel
        recs = list(fake_train(candidate, train, run_dir))
        both.wait(10)
        yield from recs

    workers = [_Worker(tmp_path, train_in_pairs, seed) for seed in (1, 2)]
    for w in workers:
        w.start()
    for w in workers:
        w.finish()
    assert sorted(c["spec"]["sr"] for c in _calls(tmp_path)) == srs  # each point trained once
    res = load_study_results(str(tmp_path), "grid")
    assert sorted(t.params["sr"] for t in res.trials if t.state == "trained") == srs
    assert res.counts.failed == 0 and res.counts.trained == len(srs)
    assert len(meets) >= len(srs), "the claim hook never fired: Optuna claims trials otherwise"


@pytest.mark.parametrize("sampler", ["tpe", "nsga2"])
def test_a_point_another_worker_is_training_is_recorded_duplicate_not_trained(tmp_path, sampler):
    """TPE and NSGA-II redraw points: a tiny space makes the second worker draw the point
    the first is training (held until the second is done), every time."""
    srs = [0.25, 0.5, 0.75]
    raw = {
        **_space("tiny", srs, 0.0).raw,
        "objectives": ["accuracy"] if sampler == "tpe" else ["accuracy", "params"],
        "search": {"sampler": sampler, "trials": 10, "seed": 0},
    }
    init_study(space_from_dict(raw), tmp_path)
    holding, release = threading.Event(), threading.Event()

    def held_train(candidate, train, run_dir):
        recs = list(fake_train(candidate, train, run_dir))
        holding.set()
        assert release.wait(30)
        yield from recs

    first = _Worker(tmp_path, held_train, seed=1)
    first.start()
    assert holding.wait(30), "the first worker never started training"
    try:
        run_worker(None, None, str(tmp_path), train_fn=fake_train, seed=2)
    finally:
        release.set()
    first.finish()
    calls = _calls(tmp_path)
    assert sorted(c["spec"]["sr"] for c in calls) == srs  # each point trained once
    res = load_study_results(str(tmp_path), "tiny")
    trained = {t.number: t for t in res.trials if t.state == "trained"}
    assert sorted(t.params["sr"] for t in trained.values()) == srs and res.counts.failed == 0
    held = next(t for t in trained.values() if t.run_dir == calls[0]["run_dir"])
    dups = [t for t in res.trials if t.duplicate_of == held.number]
    assert dups and all(t.state == "duplicate" for t in dups)
    # drawn while the twin trained, so stored without a result; read from the twin
    assert all(t.accuracy == held.accuracy is not None and t.feasible for t in dups)
    assert all(t.run_dir == held.run_dir for t in dups)
