"""The TFLM arena and .tflite size prediction: the planner's rules, and against TFLM itself."""

from __future__ import annotations

import itertools
import random

import numpy as np
import pytest

from squeezelab.analysis import profile
from squeezelab.analysis.tflm_plan import greedy_plan, tflm_plan
from squeezelab.models import create_model, load_model


def test_greedy_plan_reuses_memory_of_dead_buffers():
    # a 32-byte buffer alive in scopes 0-1 and one in 2-3 share offset 0
    size, offsets = greedy_plan([(32, 0, 1), (16, 1, 2), (32, 2, 3)])
    assert (size, offsets) == (48, [0, 32, 0])


def test_greedy_plan_never_overlaps_buffers_alive_together():
    rng = random.Random(0)
    for _ in range(50):
        bufs = []
        for _ in range(rng.randint(1, 12)):
            a = rng.randint(0, 8)
            bufs.append((16 * rng.randint(1, 8), a, a + rng.randint(0, 4)))
        size, off = greedy_plan(bufs)
        for (i, (si, ai, bi)), (j, (sj, aj, bj)) in itertools.combinations(enumerate(bufs), 2):
            if ai <= bj and aj <= bi:  # alive at the same time: disjoint in memory
                assert off[i] + si <= off[j] or off[j] + sj <= off[i]
        assert size == max(o + s for o, (s, _, _) in zip(off, bufs, strict=True))
        assert size >= max(sum(s for s, a, b in bufs if a <= t <= b) for t in range(13))


def test_plan_is_more_than_the_bare_sum_of_live_activations():
    model = create_model("squeezenet_small")
    p = profile(model, (1, 28, 28), "cortex-m7", weight_bits=8, activation_bits=8)
    plan = tflm_plan(model, (1, 28, 28))
    assert p.tflm_arena_bytes == plan.arena_bytes
    assert plan.arena_head_bytes >= p.peak_activation_bytes  # fragmentation, alignment
    assert plan.arena_tail_bytes > 0 and "CONCATENATION" in plan.ops
    assert p.tflite_bytes > p.model_bytes  # int32 biases, quantisation, tables
    assert profile(model, (1, 28, 28)).tflm_arena_bytes is None  # only at 8 bits


# (ref, create_model overrides): small inputs, converted in the test. The plain
# squeezenet_small's arena and file size are checked by tests/export/test_tflite.py's zoo
# test on its own conversion; the bypass variant has every op of it and the ADDs
MODELS = [("squeezenet_small", {"bypass": "simple"})]


@pytest.mark.slow
@pytest.mark.parametrize(("name", "overrides"), MODELS, ids=["bypass"])
def test_prediction_within_5_percent_of_tflm(tmp_path, name, overrides):
    pytest.importorskip("litert_torch")
    from squeezelab.export.tflite import export_tflite
    from squeezelab.export.tflm import check_tflite

    _, meta = load_model(name)
    model = create_model(name, **overrides).eval()
    exp = export_tflite(model, meta, tmp_path / "m.tflite", calib="random", n_calib=16)
    got = check_tflite(exp.path)
    plan = tflm_plan(model, meta.input_shape)
    assert abs(plan.arena_bytes / got.arena_bytes - 1) < 0.05, (plan, got)
    assert abs(plan.tflite_bytes / exp.tflite_bytes - 1) < 0.05, (plan, exp.tflite_bytes)
    assert set(plan.ops) == set(exp.ops)  # the file lists each operator code once


@pytest.mark.slow
def test_squeezenext_at_28_predicted_op_for_op(tmp_path):
    """Activated residual ADDs, distinct biases, ``x.mean((2, 3))``'s layout op: one file.

    SqueezeNext-23's layers with 2/1/1/1 blocks per stage (not 6/6/8/1): every kind of
    block and shortcut (identity, 1x1 conv, strided) at a fifth of the conversion time."""
    pytest.importorskip("litert_torch")
    from squeezelab.export.tflite import export_tflite, read_tflite
    from squeezelab.export.tflm import check_tflite
    from squeezelab.models import ModelMeta
    from squeezelab.models.squeezenext import HEAD, STAGE_WIDTHS, STEM, SqueezeNext

    model = SqueezeNext((2, 1, 1, 1), STAGE_WIDTHS, STEM, HEAD, 10, 1).eval()
    meta = ModelMeta("squeezenext_23", 10, 1, 28)
    exp = export_tflite(model, meta, tmp_path / "m.tflite", calib="random", n_calib=2)
    got = check_tflite(exp.path, np.zeros((1, 1, 28, 28), np.uint8))  # one input: quick
    info = read_tflite((tmp_path / "m.tflite").read_bytes(), "m.tflite")
    plan = tflm_plan(model, meta.input_shape)
    assert len(plan.ops) == info.n_operators
    # the converter writes this global pool as a SUM (the 1/N in its output scale); the
    # plan names every global pool MEAN: the same reduce kernel, the same op data
    assert set(plan.ops) == set(exp.ops) - {"SUM"} | {"MEAN"}
    assert plan.ops[plan.ops.index("MEAN") - 1] == "RESHAPE"  # 1x1 map: NHWC -> NC
    assert abs(plan.arena_bytes / got.arena_bytes - 1) < 0.05, (plan, got)
    assert abs(plan.tflite_bytes / exp.tflite_bytes - 1) < 0.05, (plan, exp.tflite_bytes)
