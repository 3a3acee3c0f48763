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
