import pytest
import torch

from squeezelab.train import TrainConfig

# A SqueezeNet of ~5k parameters: trains a few hundred 28x28 images in a second.
TINY_SPEC = dict(
    base_e=8,
    incr_e=8,
    stem_channels=8,
    stem_kernel=3,
    stem_stride=1,
    pool_after=[3, 6],
    batchnorm=True,
    dropout=0.2,
    num_classes=10,
    in_chans=1,
    input_size=28,
)


def train_argv(spec, run, *extra, subset: int = 64) -> list[str]:
    """``squeezelab train SPEC`` for one quick epoch on synthetic data into ``run``."""
    return [
        *("train", str(spec), "--data", "synthetic", "--epochs", "1", "--batch-size", "32"),
        *("--train-subset", str(subset), "-o", str(run), "--json", *extra),
    ]


def tiny_config(**kw) -> TrainConfig:
    base = dict(
        data="synthetic",
        spec=TINY_SPEC,
        epochs=2,
        batch_size=32,
        train_subset=192,
        lr=0.05,
        device="cpu",
    )
    return TrainConfig(**{**base, **kw})


@pytest.fixture(autouse=True)
def _one_thread():
    """One thread: on 2 shared cores, 2 threads per test process thrash."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
