"""Multi-fidelity search (explore/fidelity.py): which trials are promoted to longer
training and which are stopped, for one objective (Optuna's SuccessiveHalvingPruner) and
several (Pareto rank); a killed worker's promoted trial resumes from its checkpoint."""

import json
import multiprocessing as mp
import os
import signal
import time
from pathlib import Path

import pytest

from squeezelab.errors import ConfigError
from squeezelab.explore import load_study_results, run_study, run_worker, space_from_dict
from squeezelab.explore.fidelity import Fidelity, nondominated_ranks, pareto_promotable
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
    assert space.fidelity == Fidelity(1, 9, 3, "halving")
    assert _space_without_fidelity().fidelity is None
    bad = [
        ({"eta": 1}, 9, "search.fidelity.eta=1 is invalid: allowed an integer >= 2"),
        ({"min_epochs": 0}, 9, "search.fidelity.min_epochs=0"),
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


def test_single_objective_promotes_the_better_and_stops_the_worse(tmp_path):
    """ASHA through Optuna's SuccessiveHalvingPruner, rungs at 1 and 3 of 9 epochs: the
    first trial is alone at its rungs (goes on); the second and third are behind it at
    rung 1, and the top third of 2 or 3 trials is the best one (stopped, epoch kept)."""
    steps = []
    counts = run_study(
        _space("one", [0.25, 0.5, 0.125], ["accuracy"], 3, 9),
        tmp_path,
        train_fn=resumable_train,
        on_trial=steps.append,
    )
    res = load_study_results(str(tmp_path))
    assert _epochs(res) == {0.25: 9, 0.5: 1, 0.125: 1}
    stopped = {t.params["sr"] for t in res.trials if t.stopped}
    assert stopped == {0.5, 0.125} and counts.trained == 3 and counts.stopped == 2
    assert res.pareto_trials[0].params["sr"] == 0.25  # the promoted one is the best
    at = [(p.step.number, p.step.epochs, p.step.rung, p.step.promoted) for p in steps if p.step]
    first = [(0, e, 1 if e < 3 else 2, True) for e in range(1, 9)]  # every epoch but the 9th
    assert at == [*first, (1, 1, 1, False), (2, 1, 1, False)]
    assert all(p.of == 3 for p in steps)


def test_on_trial_raising_stops_the_trial_at_that_epoch_stored(tmp_path):
    """A caller's budget check in on_trial (the design stage's) stops a trial within an
    epoch: the trial is stored stopped with what it trained, then the error reaches it."""

    class Spent(Exception):
        pass

    def on_trial(p):
        if p.step is not None and p.step.epochs == 2:
            raise Spent

    with pytest.raises(Spent):
        run_study(
            _space("stop", [0.25, 0.5], ["accuracy"], 3, 9),
            tmp_path,
            train_fn=resumable_train,
            on_trial=on_trial,
        )
    res = load_study_results(str(tmp_path))
    (t,) = [t for t in res.trials if t.state == "trained"]
    assert t.stopped and len(t.epoch_accuracy) == 2 and res.counts.running == 0


def test_single_objective_later_better_trial_is_promoted(tmp_path):
    counts = run_study(
        _space("later", [0.125, 0.25, 0.5], ["accuracy"], 3, 9), tmp_path, train_fn=resumable_train
    )
    res = load_study_results(str(tmp_path))
    # 0.25 beats the first at rungs 1 and 3 (goes to 9); 0.5 is behind 0.25 at rung 1
    assert _epochs(res) == {0.125: 9, 0.25: 9, 0.5: 1}
    assert counts.stopped == 1
    calls = [json.loads(x) for x in (tmp_path / "calls.jsonl").read_text().splitlines()]
    assert len(calls) == 3  # each candidate trained once, never retrained from scratch


def test_multi_objective_promotes_by_pareto_rank(tmp_path):
    """(accuracy, params), eta 2, rungs 1 and 2 of 4 epochs. sr 0.5 and 1.0 have more
    params and less accuracy than 0.25 (dominated: stopped at rung 1); sr 0.125 has the
    lowest accuracy of the four but the fewest params (first front, within the top half:
    promoted by Pareto rank where accuracy alone would stop it), then at rung 2 it is
    second of two (stopped)."""
    counts = run_study(
        _space("multi", [0.25, 0.5, 1.0, 0.125], ["accuracy", "params"], 2, 4),
        tmp_path,
        train_fn=resumable_train,
    )
    res = load_study_results(str(tmp_path))
    assert _epochs(res) == {0.25: 4, 0.5: 1, 1.0: 1, 0.125: 2}
    assert counts.stopped == 3 and counts.trained == 4
    assert {t.state for t in res.trials} == {"trained"}  # stopped ones stay COMPLETE here
    assert {t.params["sr"] for t in res.pareto_trials} == {0.25, 0.125}


def test_pareto_rule_and_ranks():
    assert nondominated_ranks([[0, 0], [1, 1], [0, 2], [2, 2]]) == [0, 1, 1, 2]
    others = [([-0.9, 5.0], 0.9), ([-0.7, 7.0], 0.7), ([-0.6, 8.0], 0.6)]
    assert pareto_promotable([-0.5, 1.0], 0.5, others, 2)  # first front, second of 4
    assert not pareto_promotable([-0.5, 9.0], 0.5, others, 2)  # dominated by all
    assert pareto_promotable([-0.1, 9.0], 0.1, [], 3)  # alone at its rung: goes on


def _first_worker(study_dir):
    run_worker(None, None, study_dir, train_fn=resumable_train, heartbeat_s=1, grace_s=2)


@pytest.mark.slow
def test_killed_workers_promoted_trial_resumes_from_its_checkpoint(tmp_path):
    """The worker is killed after its trial passed both rungs (epoch 3 of 4, promoted at
    1 and 2); the next worker retries the trial in the same run dir, from epoch 3."""
    space = _space("kill", [0.25], ["accuracy"], 2, 4, hang_at=3)
    init_study(space, tmp_path)
    doomed = mp.get_context("spawn").Process(target=_first_worker, args=(str(tmp_path),))
    doomed.start()
    deadline = time.time() + 120
    while not (tmp_path / "hung").exists() and time.time() < deadline:
        time.sleep(0.2)
    assert (tmp_path / "hung").exists(), "the first worker never reached epoch 3"
    os.kill(doomed.pid, signal.SIGKILL)
    doomed.join()
    time.sleep(2.5)  # past the grace period: the trial is stale
    done = space.with_overrides(train={"hang_at": None})
    init_study(done, tmp_path)  # resuming explore: the training fields may change
    counts = run_worker(None, None, str(tmp_path), train_fn=resumable_train, grace_s=2)
    assert counts.trained == 1 and counts.failed == 1
    res = load_study_results(str(tmp_path))
    failed = next(t for t in res.trials if t.state == "failed")
    retry = next(t for t in res.trials if t.state == "trained")
    assert retry.retry_of == failed.number and retry.run_dir == failed.run_dir
    assert len(retry.epoch_accuracy) == 4 and not retry.stopped
    calls = [json.loads(x) for x in (tmp_path / "calls.jsonl").read_text().splitlines()]
    assert [c["from_epoch"] for c in calls] == [1, 3]  # resumed, not retrained
    assert len({c["run_dir"] for c in calls}) == 1


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
