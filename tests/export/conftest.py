"""A small SqueezeNet trained a few hundred steps on real Fashion-MNIST, shared by the tests.

A plain loop over the IDX files (gzip + numpy), so these tests need nothing but the
Debian dataset package.
"""

import gzip
from pathlib import Path

import numpy as np
import pytest
import torch

from squeezelab.data import dataset_info
from squeezelab.models import SQUEEZENET_SMALL, ModelMeta, SqueezeNet, save_model

FASHION = dataset_info("fashion-mnist")  # the same names and statistics the CLI uses
FMNIST = Path(FASHION.default_dir)
CLASSES = list(FASHION.classes)
NORM = {"mean": list(FASHION.mean), "std": list(FASHION.std)}


def read_idx(name: str) -> np.ndarray:
    with gzip.open(FMNIST / name) as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(dims).copy()


@pytest.fixture(scope="session")
def fmnist():
    if not (FMNIST / "train-images-idx3-ubyte.gz").is_file():
        pytest.skip("Debian package dataset-fashion-mnist is not installed")
    return {
        "train_x": read_idx("train-images-idx3-ubyte.gz")[:3000, None],
        "train_y": read_idx("train-labels-idx1-ubyte.gz")[:3000].astype(np.int64),
        "test_x": read_idx("t10k-images-idx3-ubyte.gz")[:1000, None],
        "test_y": read_idx("t10k-labels-idx1-ubyte.gz")[:1000].astype(np.int64),
    }


@pytest.fixture(scope="session")
def trained(fmnist, tmp_path_factory):
    """(model file path, module, ModelMeta) of a narrow squeezenet_small (13k params) after 200 Adam steps."""
    torch.manual_seed(0)
    spec = SQUEEZENET_SMALL.replace(base_e=16, incr_e=16, stem_channels=16, stem_stride=2)
    model = SqueezeNet(spec)
    mean, std = NORM["mean"][0], NORM["std"][0]
    x = (torch.from_numpy(fmnist["train_x"]).float() / 255 - mean) / std
    y = torch.from_numpy(fmnist["train_y"])
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    gen = torch.Generator().manual_seed(0)
    model.train()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny convolutions: one thread beats two on a shared host
    for _ in range(200):
        idx = torch.randint(0, len(x), (64,), generator=gen)
        loss = torch.nn.functional.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    torch.set_num_threads(threads)
    model.eval()
    meta = ModelMeta.for_spec(spec, "squeezenet_small").replace(
        classes=tuple(CLASSES), mean=tuple(NORM["mean"]), std=tuple(NORM["std"])
    )
    path = tmp_path_factory.mktemp("trained") / "fmnist.safetensors"
    save_model(path, model, meta)
    return path, model, meta
