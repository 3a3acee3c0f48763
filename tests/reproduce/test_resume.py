"""`make reproduce` in miniature: the seed-by-seed order, and a killed run that resumes."""

import json
from pathlib import Path

import pytest

from benchmarks.paper_sweeps import (
    PROVENANCE,
    collect,
    points_up_to,
    run_sweeps,
    seeds_of,
    stamp,
)
from squeezelab.errors import ConfigError
from squeezelab.explore import ExploreConfig, load_study_results, space_from_dict, train_candidate

# two studies of two points x two seeds; a two-Fire SqueezeNet, 64 generated images, 1 epoch
BASE = {"base_e": 8, "incr_e": 8, "num_fire": 2, "stem_channels": 8, "pool_after": [1, 3]}
TRAIN = {
    "data": "synthetic",
    "recipe": "fmnist-tta",
    "epochs": 1,
    "train_subset": 64,
    "batch_size": 32,
    "val_fraction": 0.25,
    "amp": "off",
}
FAST = ExploreConfig(heartbeat_s=1, grace_s=2)  # a killed trial is found stale in 2 s


def space(name: str, param: str, values: list) -> object:
    return space_from_dict(
        {
            "name": name,
            "model": "squeezenet_small",
            "params": {"seed": [0, 1], param: values, **BASE},
            "objectives": ["accuracy", "model_bytes"],
            "search": {"sampler": "grid"},
            "train": TRAIN,
        }
    )


def plan(root: Path) -> list:
    return [
        ("sr", space("tiny-sr", "sr", [0.25, 0.5]), root / "sr"),
        ("pct", space("tiny-pct", "pct_3x3", [0.25, 0.75]), root / "pct"),
    ]


class Counting:
    """The real trainer, logging each training it starts; ``fail_at``: the n-th (1-based)
    raises KeyboardInterrupt after its first batch of work, as Ctrl-C would."""

    def __init__(self, fail_at: int | None = None):
        self.calls: list[tuple] = []
        self.fail_at = fail_at

    def __call__(self, candidate, train, run_dir):
        spec = candidate.spec
        self.calls.append((Path(run_dir).parts[-3], train["seed"], spec["sr"], spec["pct_3x3"]))
        if len(self.calls) == self.fail_at:
            raise KeyboardInterrupt
        yield from train_candidate(candidate, train, run_dir)


def results(root: Path) -> dict:
    out = {}
    for key, _, d in plan(root):
        for t in load_study_results(d).trials:
            if t.state == "trained":
                out[(key, *sorted(t.params.items()))] = (t.metrics["accuracy"], t.epoch_accuracy)
    return out


def test_seed_helpers():
    sp = space("s", "sr", [0.25, 0.5])
    assert seeds_of(sp) == [0, 1] and sp.size() == 4
    assert points_up_to(sp, 0) == 2 and points_up_to(sp, 1) == 4
    # the seed is a training field, not architecture: both seeds build the same network
    a, b = (sp.candidate({"seed": s, "sr": 0.25}) for s in (0, 1))
    assert a.to_dict() == b.to_dict() and sp.train_for({"seed": 1, "sr": 0.25})["seed"] == 1
    with pytest.raises(ConfigError, match=r"params\.seed=\[0\.5\] is invalid: allowed integers"):
        space_from_dict({"params": {"seed": [0.5]}, "search": {"sampler": "grid"}})


@pytest.mark.slow
def test_killed_run_resumes_without_retraining(tmp_path):
    ref = Counting()
    assert run_sweeps(plan(tmp_path / "ref"), train_fn=ref, say=lambda s: None, config=FAST)
    # every point once, seed 0 of both studies before seed 1 of either
    order = [(study, seed) for study, seed, *_ in ref.calls]
    assert order == [(s, seed) for seed in (0, 1) for s in ("sr", "pct") for _ in range(2)]

    killed = Counting(fail_at=2)  # the second training is interrupted
    with pytest.raises(KeyboardInterrupt):
        run_sweeps(plan(tmp_path / "run"), train_fn=killed, say=lambda s: None, config=FAST)
    assert len(killed.calls) == 2
    again = Counting()
    assert run_sweeps(plan(tmp_path / "run"), train_fn=again, say=lambda s: None, config=FAST)
    # the finished first trial is not trained again; the interrupted one is, and the rest
    assert killed.calls[0] not in again.calls and killed.calls[1] in again.calls
    assert sorted(killed.calls[:1] + again.calls) == sorted(ref.calls)
    # and the results equal the uninterrupted run's, point by point
    assert results(tmp_path / "run") == results(tmp_path / "ref")

    spaces = {key: sp for key, sp, _ in plan(tmp_path)}
    (tmp_path / "run" / "paper-sr-sweep").symlink_to(tmp_path / "run" / "sr")
    data = collect(tmp_path / "run", {"sr": spaces["sr"], **_other(spaces)}, True, 1)
    assert data["ran_beside_other_work"] is True and data["host"]["cpu_flags"]
    sr = data["sweeps"]["sr"]
    assert [(t["seed"], t["sr"]) for t in sr["trials"]] == [
        (0, 0.25),
        (0, 0.5),
        (1, 0.25),
        (1, 0.5),
    ]
    assert sr["seeds"] == [0, 1] and sr["train"]["epochs"] == 1
    assert all(t["ran"] is None for t in sr["trials"])  # trained before any stamp
    json.dumps(data)  # JSON as written

    # each trial keeps the settings of the run that trained it: stamped once, never again
    stamp(tmp_path / "run", None)
    prov = tmp_path / "run" / "paper-sr-sweep" / PROVENANCE
    first = json.loads(prov.read_text())
    assert first == dict.fromkeys(first, None) and len(first) == 4
    stamp(tmp_path / "run", {"threads": 2})
    assert json.loads(prov.read_text()) == first
    # and collect hands each trial its own record
    one = sorted(first, key=int)[1]
    prov.write_text(json.dumps({**first, one: {"threads": 2}}))
    sr = collect(tmp_path / "run", {"sr": spaces["sr"], **_other(spaces)}, True, 1)["sweeps"]["sr"]
    ran = {str(t["trial"]): t["ran"] for t in sr["trials"]}
    assert ran == {**first, one: {"threads": 2}}


def _other(spaces: dict) -> dict:
    """Stand-ins for the two studies the miniature does not have (no study dir: no trials)."""
    return {
        "pct_3x3": space("none-pct", "pct_3x3", [0.25, 0.75]),
        "bypass": space("none-by", "bypass", ["none", "simple"]),
    }
