"""docs/reproduction.md and what it stands on cannot drift apart: the presets' budgets and
seeds are the ones the page states, and its tables and verdicts are those of the JSON."""

import json
from pathlib import Path

import pytest

from benchmarks.paper_sweeps import OUT, SWEEPS, page_blocks, read_blocks, seeds_of
from squeezelab.explore import load_space

PAGE = Path(__file__).resolve().parents[2] / "docs" / "reproduction.md"


def stated_budgets() -> dict[str, dict[str, str]]:
    """The page's budget table, one dict of cells per preset."""
    lines = read_blocks(PAGE.read_text())["budgets"].splitlines()
    head = [c.strip() for c in lines[0].strip("|").split("|")]
    rows = [
        dict(zip(head, (c.strip() for c in ln.strip("|").split("|")), strict=True))
        for ln in lines[2:]
    ]
    return {r["preset"]: r for r in rows}


@pytest.mark.parametrize("sweep", SWEEPS, ids=lambda s: s.preset)
def test_page_states_the_presets_budget_and_seeds(sweep):
    row = stated_budgets()[sweep.preset]
    space = load_space(sweep.preset)
    train = space.train
    assert row["varies"] == sweep.param
    assert row["values"].split(", ") == [
        f"{v:g}" if isinstance(v, float) else str(v) for v in space.params[sweep.param].grid()
    ]
    assert [int(s) for s in row["seeds"].split(", ")] == seeds_of(space) == [0, 1, 2]
    assert row["recipe"] == train["recipe"] == "fmnist-tta"
    assert int(row["epochs"]) == train["epochs"]
    assert row["training images"] == "all" and train.get("train_subset") is None
    assert float(row["val_fraction"]) == train["val_fraction"]


def test_the_three_studies_share_one_budget():
    """Figure 3 and Table 3 at the same budget: the training sections are equal."""
    trains = [load_space(s.preset).train for s in SWEEPS]
    assert trains[0] == trains[1] == trains[2]


def test_page_tables_and_verdicts_are_the_committed_json():
    data = json.loads(OUT.read_text())
    spaces = {s.key: load_space(s.preset) for s in SWEEPS}
    want = page_blocks(data, spaces)
    have = read_blocks(PAGE.read_text())
    assert set(have) == set(want)
    for name in want:
        assert have[name] == want[name], (
            f"docs/reproduction.md block {name!r} differs from {OUT.name}: "
            "run `benchmarks/paper_sweeps.py plots --page docs/reproduction.md`"
        )
    for sw in data["sweeps"].values():  # what the page claims to stand on
        assert sw["seeds"] == [0, 1, 2] and sw["train"] == spaces["sr"].train
    assert "cpu_flags" in data["host"] and data["ran_beside_other_work"] is True
