import pytest

from squeezelab.explore import hypervolume, pareto_front


def test_pareto_front_two_objectives():
    # (accuracy max, bytes min)
    pts = [[0.8, 100], [0.9, 200], [0.85, 300], [0.7, 50], [0.9, 200], [0.6, 60]]
    assert pareto_front(pts, ["maximize", "minimize"]) == [0, 1, 3]


def test_hypervolume_rectangles():
    dirs = ["maximize", "minimize"]
    # one point: (0.5 - 0) x (10 - 4)
    assert hypervolume([[0.5, 4]], dirs, [0.0, 10]) == pytest.approx(3.0)
    # two points: union of rectangles 0.5*6 + 0.8*8 - 0.5*6 = 6.4 ... computed exactly
    hv = hypervolume([[0.5, 4], [0.8, 2]], dirs, [0.0, 10])
    assert hv == pytest.approx(0.8 * 8)
    assert hypervolume([[0.5, 4], [0.9, 6]], dirs, [0.0, 10]) == pytest.approx(0.5 * 6 + 0.4 * 4)
    assert hypervolume([[0.5, 12]], dirs, [0.0, 10]) == 0.0  # beyond the reference


def test_trial_record_reads_studies_written_before_arch():
    from squeezelab.explore import TrialRecord

    args = {"width_mult": 0.5, "num_classes": 10, "in_chans": 1}
    old = {
        "number": 3,
        "state": "trained",
        "params": {},
        "model": "mobilenet_v2",
        "model_args": args,
    }
    tr = TrialRecord.from_dict(old)
    assert tr.arch.name == "mobilenet_v2" and dict(tr.arch.model_args) == {"width_mult": 0.5}
    assert (tr.arch.num_classes, tr.arch.in_chans) == (10, 1)
    assert TrialRecord.from_dict(tr.to_dict()) == tr


def test_study_results_round_trip(tmp_path):
    from squeezelab.explore import StudyResults, load_study_results, run_study, space_from_dict
    from tests.explore.fakes import fake_train

    params = {"sr": [0.125, 0.25], "base_e": 16, "incr_e": 16, "stem_channels": 16}
    space = space_from_dict(
        {
            "name": "rt",
            "params": params,
            "objectives": ["accuracy", "params"],
            "search": {"sampler": "grid"},
            "train": {"epochs": 1},
        }
    )
    run_study(space, tmp_path, train_fn=fake_train)
    res = load_study_results(tmp_path)
    assert isinstance(res, StudyResults) and res.counts.trained == 2
    assert all(t.arch is not None and t.arch.spec is not None for t in res.trials)
    back = StudyResults.from_dict(res.to_dict())
    assert back.to_dict() == res.to_dict() and back.trials == res.trials


def test_width_knob_candidate_compresses_and_decodes():
    from squeezelab.explore import space_from_dict
    from squeezelab.explore.costs import compressed_bytes
    from squeezelab.models.load import decode_sqz

    s = space_from_dict({"model": "squeezenext_23", "params": {"width_mult": [0.5]}})
    cand = s.candidate({"width_mult": 0.5})
    model = cand.build()
    assert compressed_bytes(model, cand, (0.5, 6)) > 0
    from squeezelab.compress import compress_model

    data = compress_model(model, cand.meta, sparsity=0.5, bits=6).data
    back, meta, _ = decode_sqz(data)
    assert meta.model_args["width_mult"] == 0.5
    assert sum(p.numel() for p in back.parameters()) == sum(p.numel() for p in model.parameters())
