"""The page's verdicts follow from the runs alone: pending runs say so, spreads decide."""

import pytest

from benchmarks.paper_sweeps import claims, estimate_line, points, sweep_table


def sweep(param, values, accs_by_value, seeds=(0, 1, 2), sizes=None):
    trials = []
    for i, v in enumerate(values):
        for seed, acc in zip(seeds, accs_by_value.get(v, ()), strict=False):
            size = (sizes or {}).get(v, 1000 * (i + 1))
            trials.append(
                {
                    "seed": seed,
                    param: v,
                    "accuracy": acc / 100,
                    "epoch_accuracy": [acc / 100],
                    "params": size // 4,
                    "model_bytes": size,
                    "macs": 10 * size,
                    "train_s": 60.0,
                }
            )
    return {
        "preset": f"p-{param}",
        "param": param,
        "values": list(values),
        "seeds": list(seeds),
        "train": {"recipe": "fmnist-tta", "epochs": 3},
        "runs_total": len(values) * len(seeds),
        "trials": trials,
    }


SR = (0.125, 0.25, 0.5, 0.75, 1.0)
PCT = (0.0, 0.25, 0.5, 0.75, 1.0)
BY = ("none", "simple", "complex")


def data(sr=None, pct=None, by=None):
    by_sizes = {"none": 4000, "simple": 4000, "complex": 5000}
    return {
        "sweeps": {
            "sr": sweep("sr", SR, sr or {}),
            "pct_3x3": sweep("pct_3x3", PCT, pct or {}),
            "bypass": sweep("bypass", BY, by or {}, sizes=by_sizes),
        }
    }


def verdicts(d):
    return {c: v for items in claims(d).values() for c, v, _ in items}


def test_nothing_run_is_not_resolved_with_counts():
    v = verdicts(data())
    assert (
        v["(a) Accuracy rises with SR: SR 0.75 above SR 0.125"] == "not resolved: 0 of 6 runs done"
    )
    assert v["(a) Where the SR plateau begins (paper: 0.75)"] == "not resolved: 0 of 15 runs done"
    assert v["All three within 3 points (paper: 2.9)"] == "not resolved: 0 of 9 runs done"


def test_partial_seeds_are_not_resolved():
    v = verdicts(data(sr={0.75: [91, 91.2], 0.125: [85, 85.1, 84.9]}))
    assert (
        v["(a) Accuracy rises with SR: SR 0.75 above SR 0.125"] == "not resolved: 5 of 6 runs done"
    )


def test_a_plateau_beyond_and_within_the_spread():
    sr = {
        0.125: [85, 85.4, 84.6],
        0.25: [88, 88.3, 87.7],
        0.5: [90, 90.5, 89.5],
        0.75: [91, 91.5, 90.5],
        1.0: [91.2, 90.7, 91.6],
    }
    v = verdicts(data(sr=sr))
    assert v["(a) Accuracy rises with SR: SR 0.75 above SR 0.125"] == "held"
    assert v["(a) Plateau from SR 0.75: SR 1.0 no better than 0.75"] == "held"
    assert v["(a) Where the SR plateau begins (paper: 0.75)"] == "from sr = 0.75"
    assert v["(a) Model size grows with SR"] == "held"
    rows = points(data(sr=sr)["sweeps"]["sr"])
    assert (
        rows[0]["n"] == 3
        and abs(rows[0]["mean"] - 85.0) < 1e-9
        and abs(rows[0]["std"] - 0.4) < 1e-9
    )


def test_gains_beyond_the_plateau_and_reversed_orderings():
    pct = {
        0.0: [92, 92.1, 91.9],
        0.5: [90, 90.1, 89.9],
        0.75: [90, 90.2, 89.8],
        1.0: [93, 93.1, 92.9],
        0.25: [90, 90, 90],
    }
    v = verdicts(data(pct=pct))
    assert v["(b) More 3x3 filters help up to 50%: pct_3x3 0.5 above 0"].startswith("not held")
    assert v["(b) Plateau at 50%: pct_3x3 0.75 no better than 0.5"] == "held"
    assert v["(b) Plateau at 50%: pct_3x3 1.0 no better than 0.5"].startswith("not held")
    assert v["(b) Where the pct_3x3 plateau begins (paper: 0.5)"].startswith("no plateau")


def test_bypass_gaps_inside_the_spread_are_not_an_ordering():
    by = {"none": [91, 92, 90], "simple": [91.5, 92.5, 90.5], "complex": [95, 95.1, 94.9]}
    v = verdicts(data(by=by))
    assert v["Simple bypass above none (paper +2.9 top-1)"] == (
        "not resolved: the gap is within the seed spread"
    )
    assert v["Complex bypass above none (paper +1.3)"] == "held"
    assert v["All three within 3 points (paper: 2.9)"] == "not held"
    assert v["Simple bypass adds no parameters, complex adds some"] == "held"


def test_table_marks_missing_points_and_shows_the_paper():
    table = sweep_table(sweep("sr", SR, {0.75: [91.0]}))
    assert "| 0.75 | 1 of 3 | 91.00 | 91.00 |" in table and "86.0, 19.0" in table
    assert "| 0.125 | 0 of 3 | - | - | - |" in table


def test_estimate_line_states_it_is_an_estimate():
    est = {
        "basis": "the probe",
        "runs": 39,
        "runs_left": 30,
        "epochs_per_run": 3,
        "total_s": 39 * 3 * 60.0,
        "left_s": 30 * 3 * 60.0,
    }
    line = estimate_line(est)
    assert (
        "estimate" in line and "39 runs x 3 epochs" in line and "1.5 h for the 30 runs left" in line
    )


@pytest.mark.parametrize(
    "argv, says",
    [
        (["plots", "--out", "{tmp}/none.json"], "none.json: no such file"),  # nothing yet
        (["run", "--no-new-after", "25h"], "'25h' is invalid: allowed HH:MM"),
        (["run", "--threads", "0"], "'0' is invalid: allowed an integer >= 1"),
    ],
)
def test_user_errors_exit_2_in_one_line(argv, says, tmp_path, capsys):
    from benchmarks.paper_sweeps import main

    with pytest.raises(SystemExit) as e:
        main([a.replace("{tmp}", str(tmp_path)) for a in argv])
    err = capsys.readouterr().err
    assert e.value.code == 2 and len(err.strip().splitlines()) == 1 and says in err, err
