import os
import tempfile

import pytest
import torch

# decoded-dataset caches of the whole run go to one temporary folder, never the user's
# ~/.cache (tests/data/conftest.py gives each of its tests its own)
os.environ["SQUEEZELAB_CACHE"] = tempfile.mkdtemp(prefix="squeezelab-test-cache-")

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))

FMNIST_DIR = "/usr/share/datasets/fashion-mnist"


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def n_params(model) -> int:
    return sum(p.numel() for p in model.parameters())
