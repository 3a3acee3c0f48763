"""ExploreConfig: the one record of what ``squeezelab explore`` configures.

Its fields are the verb's flags (same defaults, same bounds), a library caller meets the
same checks, and ``explore()`` applies its overrides to the space it runs.
"""

import argparse
import dataclasses

import pytest

from squeezelab.cli import build_parser, main
from squeezelab.errors import ConfigError
from squeezelab.explore import ExploreConfig, explore, space_from_dict
from tests.explore.fakes import fake_train

SPACE = {
    "name": "tiny",
    "model": "squeezenet_small",
    "params": {"sr": [0.125, 0.25, 0.5], "base_e": 16, "incr_e": 16, "stem_channels": 16},
    "objectives": ["accuracy", "params"],
    "search": {"sampler": "random", "trials": 3},
    "train": {"epochs": 4},
    "final": {"epochs": 1},
}


def _sub(name):
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices[name]


@pytest.mark.parametrize("verb", ["explore", "worker"])
def test_flags_are_the_fields_with_their_defaults(verb):
    argv = ["space.yaml"] if verb == "explore" else ["--storage", "s"]
    args = _sub(verb).parse_args(argv)
    fields = dataclasses.fields(ExploreConfig)
    names = [f.name for f in fields] if verb == "explore" else ["heartbeat_s", "grace_s"]
    for f in fields:
        if f.name in names:
            assert getattr(args, f.name) == f.default, f.name


@pytest.mark.parametrize(
    ("kw", "word"),
    [
        ({"workers": 0}, "workers=0"),
        ({"trials": 0}, "trials=0"),
        ({"epochs": -1}, "epochs=-1"),
        ({"train_subset": 1.5}, "train_subset=1.5"),
        ({"heartbeat_s": 0}, "heartbeat_s=0"),
        ({"grace_s": True}, "grace_s=True"),
        ({"sampler": "annealing"}, "'auto', 'nsga2'"),
        ({"final": "yes"}, "final='yes'"),
        ({"storage": ""}, "storage=''"),
    ],
)
def test_library_callers_meet_the_flags_checks(kw, word):
    with pytest.raises(ConfigError, match="is invalid: allowed") as e:
        ExploreConfig(**kw)
    assert word in str(e.value) and "\n" not in str(e.value)


def test_flag_bounds_come_from_the_fields(capsys):
    for flag in ("--workers", "--trials", "--epochs", "--train-subset", "--heartbeat-s"):
        with pytest.raises(SystemExit):
            _sub("explore").parse_args(["s.yaml", flag, "0"])
        assert (
            f"argument {flag}: '0' is invalid: allowed an integer >= 1" in capsys.readouterr().err
        )


def test_explore_applies_the_overrides_and_returns_results(tmp_path):
    finals = []
    config = ExploreConfig(trials=2, epochs=1, sampler="grid", final=True)
    res = explore(
        space_from_dict(SPACE), tmp_path, config, on_final=finals.append, train_fn=fake_train
    )
    assert res.space.sampler == "grid" and res.space.trials == 2
    assert res.space.train["epochs"] == 1  # the YAML said 4
    assert res.counts.trained >= 2
    assert sorted(r.number for r in finals) == sorted(res.pareto)
    assert all(t.final is not None for t in res.pareto_trials)


def test_cli_and_library_build_the_same_config(tmp_path, monkeypatch):
    seen = {}

    def fake_explore(space, study_dir, config, **kw):
        seen.update(space=space, config=config)
        raise ConfigError("stop here")

    monkeypatch.setattr("squeezelab.explore.explore", fake_explore)
    argv = ["explore", "s.yaml", "-o", str(tmp_path), "--trials", "3", "--final", "--grace-s", "9"]
    assert main(argv) == 2
    assert seen["config"] == ExploreConfig(trials=3, final=True, grace_s=9)
