"""Multi-fidelity search (explore/fidelity.py): which trials are promoted to longer
training and which pause at a rung (ASHA), for one objective (RungPruner; Hyperband stops)
and several (Pareto rank); promoted and killed trials resume from their checkpoint."""

import json
import multiprocessing as mp
import os
import signal
import time
from pathlib import Path

import pytest

from squeezelab.errors import ConfigError
from squeezelab.explore import load_study_results, run_study, run_worker, space_from_dict
from squeezelab.explore.fidelity import (
    Fidelity,
    affordable_epochs,
    bracket_epochs,
    nondominated_ranks,
    pareto_promotable,
)
from squeezelab.explore.study import init_study
from tests.explore.fakes import epoch

TINY = {"base_e": 16, "incr_e": 16, "stem_channels": 16}
# validation accuracy per squeeze ratio; params grow with sr (the multi-objective case)
ACC = {0.125: 0.5, 0.25: 0.9, 0.5: 0.7, 1.0: 0.65}


def resumable_train(candidate, train, run_dir: Path):
    """Like fit(): one metrics.jsonl line per epoch, written before the epoch is yielded,
    and a run dir that holds some epochs continues after them. Hangs before the epoch
    ``train['hang_at']`` (a worker to kill)."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    log = run_dir / "metrics.jsonl"
    done = [x for x in log.read_text().splitlines() if x] if log.is_file() else []
    with open(run_dir.parent.parent / "calls.jsonl", "a") as f:
        f.write(json.dumps({"run_dir": str(run_dir), "from_epoch": len(done) + 1}) + "\n")
    base = ACC[candidate.spec["sr"]]
    for n in range(len(done) + 1, train["epochs"] + 1):
        if n == train.get("hang_at"):
            (run_dir.parent.parent / "hung").write_text(str(run_dir))
            time.sleep(600)
        rec = epoch(n, base * (0.5 + 0.05 * n))  # ranks are the same at every epoch
        with open(run_dir / "metrics.jsonl", "a") as f:
            f.write(json.dumps(rec.to_dict()) + "\n")
        yield rec


def _space(name, srs, objectives, eta, epochs, **train):
    return space_from_dict(
        {
            "name": name,
            "model": "squeezenet_small",
            "params": {"sr": srs, **TINY},
            "objectives": objectives,
            "search": {"sampler": "grid", "fidelity": {"min_epochs": 1, "eta": eta}},
            "train": {"epochs": epochs, **train},
        }
    )


def _epochs(res):
    return {t.params["sr"]: len(t.epoch_accuracy) for t in res.trials if t.state == "trained"}


def test_fidelity_keys_are_checked_and_rungs_derived():
    assert Fidelity(1, 9, 3).rungs == (1, 3) and Fidelity(2, 16, 2).rungs == (2, 4, 8)
    space = _space("ok", [0.25], ["accuracy"], 3, 9)
    assert space.fidelity == Fidelity(1, 9, 3, "halving") and space.fidelity.quorum == 3
    assert _space_without_fidelity().fidelity is None
    bad = [
        ({"eta": 1}, 9, "search.fidelity.eta=1 is invalid: allowed an integer >= 2"),
        ({"min_epochs": 0}, 9, "search.fidelity.min_epochs=0"),
        ({"min_at_rung": 0}, 9, "search.fidelity.min_at_rung=0 is invalid"),
        ({"rungs": [1, 3]}, 9, "unknown key(s) ['rungs']"),
        ({"pruner": "median"}, 9, "allowed ['halving', 'hyperband']"),
        ({"min_epochs": 3}, 3, "train.epochs=3 is invalid with search.fidelity.min_epochs=3"),
    ]
    for fid, epochs, msg in bad:
        raw = {**_space("x", [0.25], ["accuracy"], 3, epochs).raw}
        raw["search"] = {"sampler": "grid", "fidelity": fid}
        with pytest.raises(ConfigError) as e:
            space_from_dict(raw)
        assert msg in str(e.value)
    raw = _space("x", [0.25], ["accuracy", "params"], 3, 9).raw
    raw["search"]["fidelity"] = {"pruner": "hyperband"}
    with pytest.raises(ConfigError, match="needs a single objective"):
        space_from_dict(raw)


def _space_without_fidelity():
    raw = _space("off", [0.25], ["accuracy"], 3, 9).raw
    raw["search"] = {"sampler": "grid"}
    return space_from_dict(raw)


def _calls(study_dir) -> list[tuple[str, int]]:
    lines = (Path(study_dir) / "calls.jsonl").read_text().splitlines()
    return [(Path(c["run_dir"]).name, c["from_epoch"]) for c in map(json.loads, lines)]


def test_lone_first_trial_pauses_then_is_promoted_when_worse_trials_arrive(tmp_path):
    """ASHA, rungs at 1 and 3 of 9 epochs, eta 3: the first trial is alone at rung 1, so
    it pauses (no top third of one); once eta - 1 = 2 worse trials reached the rung, the
    next work is its promotion (trial 3 resumes its run dir at epoch 2); at rung 3 it is
    alone again and pauses. The worse two stay paused at 1 epoch; nothing reaches 9."""
    steps = []
    counts = run_study(
        _space("one", [0.25, 0.5, 0.125], ["accuracy"], 3, 9),
        tmp_path,
        train_fn=resumable_train,
        on_trial=steps.append,
    )
    at = [(p.step.number, p.step.epochs, p.step.rung, p.step.promoted) for p in steps if p.step]
    assert at == [(0, 1, 1, False), (1, 1, 1, False), (2, 1, 1, False), (3, 2, 1, True)] + [
        (3, 3, 2, False)
    ]
    res = load_study_results(str(tmp_path))
    assert _epochs(res) == {0.25: 3, 0.5: 1, 0.125: 1}
    first, cont = res.trial(0), res.trial(3)
    assert first.state == "duplicate" and first.duplicate_of == 3  # lives on in trial 3
    assert cont.run_dir == first.run_dir and cont.stopped and len(cont.epoch_accuracy) == 3
    assert _calls(tmp_path) == [("00000", 1), ("00001", 1), ("00002", 1), ("00000", 2)]
    assert counts.trained == 3 and counts.stopped == 3 and counts.duplicate == 1
    assert res.pareto_trials[0].number == 3  # the promoted one is the best


def test_budget_stop_on_the_way_up_is_resumed_first(tmp_path):
    """A caller's budget check in on_trial (the design stage's) stops a trial within an
    epoch: stored with what it trained, then the error reaches the caller. That trial was
    promoted (on its way to rung 3): resuming the study continues it before anything."""

    class Spent(Exception):
        pass

    def on_trial(p):
        if p.step is not None and p.step.epochs == 2:
            raise Spent

    space = _space("stop", [0.25, 0.5, 0.125], ["accuracy"], 3, 9)
    with pytest.raises(Spent):
        run_study(space, tmp_path, train_fn=resumable_train, on_trial=on_trial)
    res = load_study_results(str(tmp_path))
    t = res.trial(3)
    assert t.stopped and len(t.epoch_accuracy) == 2 and res.counts.running == 0
    run_study(space, tmp_path, train_fn=resumable_train)
    assert _calls(tmp_path)[3:] == [("00000", 2), ("00000", 3)]
    assert _epochs(load_study_results(str(tmp_path))) == {0.25: 3, 0.5: 1, 0.125: 1}


def test_min_at_rung_one_promotes_the_first_trial_unopposed(tmp_path):
    """``min_at_rung: 1`` is the old rule: the lone first trial goes on to the full budget,
    a worse later one pauses behind it."""
    raw = _space("old", [0.25, 0.5], ["accuracy"], 3, 9).raw
    raw["search"]["fidelity"]["min_at_rung"] = 1
    run_study(space_from_dict(raw), tmp_path, train_fn=resumable_train)
    assert _epochs(load_study_results(str(tmp_path))) == {0.25: 9, 0.5: 1}


def test_multi_objective_promotes_by_pareto_rank(tmp_path):
    """(accuracy, params), eta 2, rungs 1 and 2 of 4 epochs. sr 0.25 pauses alone, then
    is promoted once sr 0.5 (dominated by it) arrives. sr 0.125 has the lowest accuracy of
    the four but the fewest params: on the first front with 0.25, within the top half, it
    goes on where accuracy alone would stop it; at rung 2 it is alone (pauses), then
    second of two behind 0.25's continuation (stays paused). 0.5 and 1.0 stay at rung 1."""
    counts = run_study(
        _space("multi", [0.25, 0.5, 1.0, 0.125], ["accuracy", "params"], 2, 4),
        tmp_path,
        train_fn=resumable_train,
    )
    res = load_study_results(str(tmp_path))
    assert _epochs(res) == {0.25: 4, 0.5: 1, 1.0: 1, 0.125: 2}
    assert counts.stopped == 3 and counts.trained == 4 and counts.duplicate == 1
    # paused ones stay COMPLETE here (NSGA-II learns from them); trial 0 lives on in 4
    assert [t.state for t in res.trials] == ["duplicate"] + ["trained"] * 4
    assert {t.params["sr"] for t in res.pareto_trials} == {0.25, 0.125}


def test_pareto_rule_and_ranks():
    assert nondominated_ranks([[0, 0], [1, 1], [0, 2], [2, 2]]) == [0, 1, 1, 2]
    others = [([-0.9, 5.0], 0.9), ([-0.7, 7.0], 0.7), ([-0.6, 8.0], 0.6)]
    assert pareto_promotable([-0.5, 1.0], 0.5, others, 2)  # first front, second of 4
    assert not pareto_promotable([-0.5, 9.0], 0.5, others, 2)  # dominated by all
    assert not pareto_promotable([-0.1, 9.0], 0.1, [], 3)  # alone at its rung: waits
    assert pareto_promotable([-0.1, 9.0], 0.1, [], 3, quorum=1)  # min_at_rung: 1
    two = others[:2]  # 3 at the rung with eta 3: only the best goes on
    assert pareto_promotable([-0.95], 0.95, [([-0.9], 0.9), ([-0.7], 0.7)], 3)
    assert not pareto_promotable([-0.8], 0.8, [([-0.9], 0.9), ([-0.7], 0.7)], 3)
    assert not pareto_promotable([-0.95, 1.0], 0.95, two, 3, quorum=4)  # quorum not met


def test_top_rung_fits_the_share():
    """One full bracket (eta**s candidates, the top third promoted rung by rung, resumed)
    must fit the share for its top rung to be reachable: 21 epochs for 1-3-9."""
    assert bracket_epochs(1, 3, 3) == 5 and bracket_epochs(1, 3, 9) == 21
    assert bracket_epochs(2, 2, 8) == 4 * 2 + 2 * 2 + 1 * 4
    assert [affordable_epochs(1, 3, n) for n in (3, 20, 21, 80, 81)] == [3, 3, 9, 9, 27]


def _first_worker(study_dir):
    run_worker(None, None, study_dir, train_fn=resumable_train, heartbeat_s=1, grace_s=2)


@pytest.mark.slow
def test_killed_workers_promoted_trial_resumes_from_its_checkpoint(tmp_path):
    """eta 2, rungs 1 and 2 of 4 epochs, 4 points: sr 0.25 pauses at rung 1 and at rung 2
    and is promoted from each (trials 4 and 6 continue its run dir); the worker is killed
    during trial 6, before epoch 3. The next worker retries trial 6 (trial 7) in the same
    run dir from epoch 3, to the full budget; the rest stay paused where they were."""
    space = _space("kill", [0.25, 0.5, 1.0, 0.125], ["accuracy"], 2, 4, hang_at=3)
    init_study(space, tmp_path)
    doomed = mp.get_context("spawn").Process(target=_first_worker, args=(str(tmp_path),))
    doomed.start()
    deadline = time.time() + 120
    while not (tmp_path / "hung").exists() and time.time() < deadline:
        time.sleep(0.2)
    assert (tmp_path / "hung").exists(), "the first worker never reached epoch 3"
    os.kill(doomed.pid, signal.SIGKILL)
    doomed.join()
    # past the grace period: the trial is stale. SQLite's CURRENT_TIMESTAMP (Optuna's clock
    # for heartbeats) has whole seconds, so 2 s of grace needs 3 s of real time to show
    time.sleep(4)
    done = space.with_overrides(train={"hang_at": None})
    init_study(done, tmp_path)  # resuming explore: the training fields may change
    counts = run_worker(None, None, str(tmp_path), train_fn=resumable_train, grace_s=2)
    assert counts.trained == 4 and counts.failed == 1 and counts.duplicate == 3
    res = load_study_results(str(tmp_path))
    failed = next(t for t in res.trials if t.state == "failed")
    retry = res.trial(7)
    assert failed.number == 6 and retry.retry_of == 6 and retry.state == "trained"
    assert retry.run_dir == failed.run_dir == res.trial(0).run_dir
    assert len(retry.epoch_accuracy) == 4 and not retry.stopped
    assert _epochs(res) == {0.25: 4, 0.5: 2, 1.0: 1, 0.125: 1}
    calls = _calls(tmp_path)  # resumed at every promotion and after the kill, never retrained
    assert calls[4:] == [("00000", 2), ("00001", 2), ("00000", 3), ("00000", 3)]


def test_hyperband_pruner_stops_trials_in_its_brackets(tmp_path):
    raw = _space("hb", [0.25, 0.5, 1.0, 0.125], ["accuracy"], 3, 9).raw
    raw["search"]["fidelity"]["pruner"] = "hyperband"
    counts = run_study(space_from_dict(raw), tmp_path, train_fn=resumable_train)
    res = load_study_results(str(tmp_path))
    epochs = _epochs(res)
    assert counts.trained == 4 and epochs[0.25] == 9  # the first and best is never stopped
    for t in res.trials:  # stopped means fewer epochs, at a rung; the rest went to 9
        assert len(t.epoch_accuracy) in ((1, 3) if t.stopped else (9,))
    assert counts.stopped == sum(t.stopped for t in res.trials) >= 1
