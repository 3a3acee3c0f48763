"""Pruning masks, 1-D k-means, weight sharing and its gradients, gap streams."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from squeezelab.compress.prune import apply_masks, keep_pruned, magnitude_masks, prunable
from squeezelab.compress.share import (
    SharedWeight,
    bake,
    kmeans_1d,
    share_weights,
    shared_tensors,
)
from squeezelab.errors import ConfigError
from squeezelab.io.sqzfile import gap_symbols, positions_from_gaps
from squeezelab.models import create_model


def test_layer_masks_remove_the_fraction_of_smallest_weights():
    model = create_model("squeezenet_small")
    masks = magnitude_masks(model, 0.67)
    for name, w in prunable(model).items():
        kept = masks[name]
        assert kept.sum().item() == pytest.approx(w.numel() * 0.33, abs=1)
        if (~kept).any() and kept.any():
            assert w[~kept].abs().max() <= w[kept].abs().min()


def test_global_masks_use_one_threshold():
    model = nn.Sequential(nn.Linear(10, 10), nn.Linear(10, 10))
    with torch.no_grad():
        model[1].weight.add_(model[1].weight.sign())  # every |w| of layer 1 above layer 0's
    masks = magnitude_masks(model, 0.5, scope="global")
    assert masks["0.weight"].sum() == 0 and masks["1.weight"].sum() == 100


def test_bad_sparsity_and_scope_are_config_errors():
    with pytest.raises(ConfigError, match="sparsity"):
        magnitude_masks(nn.Linear(2, 2), 1.0)
    with pytest.raises(ConfigError, match="scope"):
        magnitude_masks(nn.Linear(2, 2), 0.5, scope="row")


def test_hook_keeps_pruned_weights_zero_through_sgd():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 8, 3), nn.Flatten(), nn.Linear(8 * 6 * 6, 3))
    masks = magnitude_masks(model, 0.8)
    apply_masks(model, masks)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-3)
    hook = keep_pruned(masks)
    for _ in range(5):
        loss = model(torch.randn(4, 1, 8, 8)).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        hook(model)
    for name, w in prunable(model).items():
        assert (w[~masks[name]] == 0).all()


def test_kmeans_1d_matches_lloyd_and_linear_init():
    rng = np.random.default_rng(0)
    x = rng.normal(size=5000).astype(np.float32)
    c, lab = kmeans_1d(x, 8)
    assert np.all(np.diff(c) > 0)
    nearest = np.abs(x[:, None] - c[None, :]).argmin(1)
    assert (nearest == lab).mean() > 0.999  # ties at midpoints may go either way
    for j in range(8):  # converged: each centroid is its members' mean
        assert c[j] == pytest.approx(x[lab == j].mean(), abs=1e-5)
    c1, _ = kmeans_1d(x, 8, iters=0)
    assert np.allclose(c1, np.linspace(x.min(), x.max(), 8))


def test_kmeans_step_on_millions_of_weights_matches_the_direct_lloyd_step():
    # the sorted prefix-sum iteration against assignments and means computed the direct way
    x = np.random.default_rng(0).normal(size=4_000_000).astype(np.float32)
    c0 = np.linspace(float(x.min()), float(x.max()), 256)
    lab = np.searchsorted((c0[1:] + c0[:-1]) / 2, x, side="right")  # nearest centroid
    counts = np.bincount(lab, minlength=256)
    means = np.bincount(lab, weights=x.astype(np.float64), minlength=256) / np.maximum(counts, 1)
    c1, lab1 = kmeans_1d(x, 256, iters=1)
    assert np.allclose(c1, np.sort(np.where(counts > 0, means, c0)), atol=1e-5)
    assert len(lab1) == len(x) and lab1.max() < 256


@pytest.mark.parametrize("bits", [2, 5, 8])
def test_sharing_leaves_at_most_2_to_the_bits_values_per_layer(bits):
    model = create_model("squeezenet_small")
    apply_masks(model, magnitude_masks(model, 0.5))
    share_weights(model, bits)
    bake(model)
    for w in prunable(model).values():
        assert len(torch.unique(w[w != 0])) <= 2**bits
        assert (w == 0).float().mean() >= 0.49


def test_centroid_gradient_is_the_sum_of_member_gradients():
    torch.manual_seed(0)
    lin = nn.Linear(6, 4)
    model = nn.Sequential(lin)
    apply_masks(model, magnitude_masks(model, 0.5))
    share_weights(model, 2)
    p = lin.parametrizations["weight"][0]
    assert isinstance(p, SharedWeight)
    x = torch.randn(5, 6)
    lin(x).sum().backward()
    dense_grad = torch.ones(5, 4).T @ x  # d(sum)/dW
    for j in range(len(p.centroids)):
        members = (p.index.long() == j) & p.mask
        assert p.centroids.grad[j].item() == pytest.approx(
            dense_grad[members].sum().item(), abs=1e-5
        )
    assert (lin.weight[~p.mask] == 0).all()


def test_shared_tensors_rebuild_the_baked_weights():
    model = create_model("squeezenet_small")
    apply_masks(model, magnitude_masks(model, 0.6))
    widths = share_weights(model, 4)
    tensors = shared_tensors(model, widths)
    bake(model)
    state = model.state_dict()
    for t in tensors:
        assert torch.equal(t.dense().view(torch.int32), state[t.name].view(torch.int32))


@settings(max_examples=200, deadline=None)
@given(
    positions=st.sets(st.integers(0, 3000), max_size=60).map(sorted),
    gap_bits=st.integers(1, 8),
)
def test_gap_symbols_round_trip(positions, gap_bits):
    pos = np.array(positions, dtype=np.int64)
    sym = gap_symbols(pos, gap_bits)
    assert sym.max(initial=0) < 2**gap_bits
    assert (sym != 0).sum() == len(pos)
    assert positions_from_gaps(sym, gap_bits).tolist() == positions
