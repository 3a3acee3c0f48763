import torch

from squeezelab.data import augment, normalize, random_crop, random_flip


def batch(n=16):
    return torch.randint(0, 256, (n, 1, 28, 28), generator=torch.Generator().manual_seed(0)).to(
        torch.uint8
    )


def test_shapes_dtype_and_determinism():
    x = batch()
    a = augment(x, ("crop", "flip"), torch.Generator().manual_seed(5), padding=2)
    b = augment(x, ("crop", "flip"), torch.Generator().manual_seed(5), padding=2)
    c = augment(x, ("crop", "flip"), torch.Generator().manual_seed(6), padding=2)
    assert a.shape == x.shape and a.dtype == torch.uint8
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_crop_is_a_shift_with_zero_fill():
    x = batch(64)
    y = random_crop(x, 3, torch.Generator().manual_seed(1))
    for i in range(64):  # each output equals the padded input at some offset
        padded = torch.nn.functional.pad(x[i], (3, 3, 3, 3))
        assert any(
            torch.equal(padded[:, dy : dy + 28, dx : dx + 28], y[i])
            for dy in range(7)
            for dx in range(7)
        )


def test_flip_mirrors_about_half():
    x = batch(200)
    y = random_flip(x, torch.Generator().manual_seed(2))
    flipped = [torch.equal(y[i], x[i].flip(2)) for i in range(200)]
    kept = [torch.equal(y[i], x[i]) for i in range(200)]
    assert all(f or k for f, k in zip(flipped, kept, strict=True))
    assert 60 < sum(flipped) < 140


def test_normalize_matches_formula_and_layout():
    x = batch(4)
    out = normalize(x, (0.3,), (0.2,), torch.channels_last)
    assert out.is_contiguous(memory_format=torch.channels_last)
    assert torch.allclose(out, (x.float() / 255 - 0.3) / 0.2, atol=1e-5)
