"""`squeezelab design --pick TRIAL`: another front member of a finished run's study goes
through the stages after explore into OUT/pick-TRIAL, with no new search; a trial that
is unknown, not trained or not on the front is one line, exit 2.

The finished run is built by hand (its design.json and the report fixtures' study), and
the stages after explore are stand-ins that record what they were given: the stages
themselves are tested in test_design.py.
"""

import json

import pytest

from squeezelab.cli import main
from squeezelab.design import DesignConfig, design
from squeezelab.design.records import (
    BestTrial,
    DesignState,
    ExploreResult,
    RetrainResult,
    write_state,
)
from tests.report.conftest import make_results


@pytest.fixture
def searched(tmp_path, monkeypatch):
    """``(out, study, chosen)``: a run whose explore stage chose the most accurate member."""
    from squeezelab import explore
    from squeezelab.explore import StudyResults

    out = tmp_path / "out"
    out.mkdir()
    study = StudyResults.from_dict(make_results(out / "study"))
    monkeypatch.setattr(explore, "load_study_results", lambda *a, **k: study)

    def no_search(*a, **k):
        raise AssertionError("--pick must not search")

    monkeypatch.setattr(explore, "run_study", no_search)
    best = max(study.pareto_trials, key=lambda t: t.accuracy)
    state = DesignState(
        DesignConfig().to_dict(),
        {"explore": ExploreResult(BestTrial(best.number, best.arch, {}, best.run_dir), {}, 9.0)},
    )
    write_state(out / "design.json", state)
    return out, study, best.number


def _stand_ins(monkeypatch, seen: list):
    """The stages after explore replaced by one that records the context it ran in."""
    from squeezelab.design import run, stages

    def retrain(ctx):
        seen.append({"out": ctx.out, "study": ctx.study_dir, "best": ctx.result("explore").best})
        return RetrainResult(str(ctx.out / "final"), str(ctx.out / "final" / "m"), 1, 1, None)

    monkeypatch.setattr(run, "STAGES", [("explore", stages.explore), ("retrain", retrain)])
    monkeypatch.setattr(run, "summarize", lambda state: state)


def test_pick_finishes_another_front_member_into_its_own_folder(searched, monkeypatch):
    out, study, chosen = searched
    other = next(t for t in study.pareto_trials if t.number != chosen)
    before = (out / "design.json").read_bytes()
    seen: list = []
    _stand_ins(monkeypatch, seen)
    state = design(DesignConfig(pick=other.number), out)
    folder = out / f"pick-{other.number}"
    assert seen == [{"out": folder, "study": out / "study", "best": seen[0]["best"]}]
    best = seen[0]["best"]
    assert (best.number, best.arch, best.run_dir) == (other.number, other.arch, other.run_dir)
    assert best.metrics["accuracy"] == other.accuracy
    # the speed the study's trials measured plans the retraining, as in the search's run
    assert state.stages["explore"].img_per_s is not None
    saved = json.loads((folder / "design.json").read_text())
    assert saved["config"]["pick"] == other.number
    assert saved["stages"]["explore"]["best"]["number"] == other.number
    assert (out / "design.json").read_bytes() == before  # the search's run is untouched
    # the same command again resumes the pick run, it does not redo it
    events = []
    design(DesignConfig(pick=other.number), out, events.append)
    assert {"stage": "explore", "message": "done earlier; resuming after it"} in events
    assert len(seen) == 1


def _one_error_line(capsys, argv) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


def test_pick_errors_are_one_line_exit_2(searched, capsys):
    out, study, chosen = searched
    members = [t.number for t in study.pareto_trials if t.number != chosen]
    allowed = "allowed: a trained front member: " + ", ".join(map(str, members))
    base = ["design", "-o", str(out), "--pick"]

    err = _one_error_line(capsys, [*base, "99"])
    assert "pick=99" in err and "has no trial 99 (trials 0..19)" in err and allowed in err
    err = _one_error_line(capsys, [*base, "7"])  # the fixture's failed trial
    assert "trial 7 is failed, not trained" in err and allowed in err
    off = next(
        t.number for t in study.trials if t.state == "trained" and t.number not in study.pareto
    )
    err = _one_error_line(capsys, [*base, str(off)])
    assert f"trial {off} is not on the Pareto front" in err and allowed in err
    err = _one_error_line(capsys, [*base, str(chosen)])
    assert "finished already" in err and "another front member" in err
    assert not any(p.name.startswith("pick-") for p in out.iterdir())  # nothing started


def test_pick_needs_a_finished_search_with_the_same_settings(searched, tmp_path, capsys):
    out, study, chosen = searched
    other = next(t.number for t in study.pareto_trials if t.number != chosen)
    empty = tmp_path / "empty"
    empty.mkdir()
    err = _one_error_line(capsys, ["design", "-o", str(empty), "--pick", str(other)])
    assert "holds no finished search" in err and f"squeezelab design -o {empty}" in err
    err = _one_error_line(capsys, ["design", "-o", str(out), "--bits", "4", "--pick", str(other)])
    assert "searched with other settings (bits)" in err
    err = _one_error_line(capsys, ["design", "-o", str(out), "--pick", "-1"])
    assert "--pick" in err
