import os
import tempfile

import pytest
import torch

from squeezelab.models import SqueezeNetSpec

# decoded-dataset caches of the whole run go to one temporary folder, never the user's
# ~/.cache (tests/data/conftest.py gives each of its tests its own)
os.environ["SQUEEZELAB_CACHE"] = tempfile.mkdtemp(prefix="squeezelab-test-cache-")

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))

FMNIST_DIR = "/usr/share/datasets/fashion-mnist"

# the smallest SqueezeNet the tests build: two Fire modules on an 8x8 input, 3 classes
TINY_SPEC = SqueezeNetSpec(
    base_e=8,
    incr_e=8,
    num_fire=2,
    stem_channels=4,
    stem_kernel=3,
    stem_stride=1,
    pool_after=(1,),
    num_classes=3,
    in_chans=1,
    input_size=8,
)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def n_params(model) -> int:
    return sum(p.numel() for p in model.parameters())


def peak_rss_mib(reset: bool = False) -> float:
    """This process's peak resident memory since exec (or the last reset), in MiB.

    Reads ``VmHWM`` from /proc: unlike ``ru_maxrss``, it does not inherit the parent's
    peak across fork and exec, and writing 5 to ``clear_refs`` resets it.
    """
    if reset:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    with open("/proc/self/status") as f:
        kib = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
    return kib / 1024
