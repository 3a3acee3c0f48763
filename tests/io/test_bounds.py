"""Tiny crafted files that claim huge outputs are refused fast, in little memory.

Each case runs in a fresh interpreter so its peak resident memory (``VmHWM``, reset after the imports) can be
compared with the same interpreter's before the decode; the decoders must refuse before
they allocate (docs/security.md).
"""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from squeezelab.errors import ConfigError, FormatError
from squeezelab.io.limits import ENV_MAX_ELEMENTS, MIN_ELEMENTS
from squeezelab.io.sqzfile import decode_record, encode_shared, encode_sqz, read_records
from squeezelab.models.load import decode_sqz

from .crafted import empty_sqz, safetensors_bytes, skeleton_tensors

NONE = np.zeros(0, dtype=np.int64)
ALEXNET = {"model": "alexnet", "num_classes": 1000, "in_chans": 3, "input_size": 224}
# a 2-Fire SqueezeNet with a few hundred weights whose metadata claims an 8000x8000 input
WIDE_INPUT = {
    "model": "x",
    "spec": {
        "base_e": 2,
        "incr_e": 0,
        "num_fire": 2,
        "stem_channels": 1,
        "stem_kernel": 3,
        "stem_stride": 1,
        "pool_after": [],
        "num_classes": 2,
        "in_chans": 1,
        "input_size": 8000,
    },
}


def _claim(shape) -> bytes:
    """One all-zero shared tensor of ``shape``: ~10 body bytes whatever its size."""
    return encode_sqz(
        {"meta": ALEXNET}, [encode_shared("w", shape, 2, np.zeros(0, np.float32), NONE, NONE)]
    )


CASES = {
    # 819 bytes whose records are all nnz=0: alexnet's 61M weights, 0.98 GB dense
    "sqz_alexnet_all_zero": ("sqz", lambda: empty_sqz(ALEXNET, skeleton_tensors(ALEXNET))),
    "sqz_tensor_list_300m": ("sqz", lambda: _claim((10_000, 10_000, 3))),
    "sqz_model_args_20000_fires": (
        "sqz",
        lambda: empty_sqz({"model": "squeezenet_small", "model_args": {"num_fire": 20_000}}, {}),
    ),
    "sqz_width_mult_huge": (
        "sqz",
        lambda: empty_sqz({"model": "squeezenext_23", "model_args": {"width_mult": 60_000.0}}, {}),
    ),
    "safetensors_alexnet_meta": ("safetensors", lambda: safetensors_bytes(ALEXNET)),
    "safetensors_8000px_input": ("safetensors", lambda: safetensors_bytes(WIDE_INPUT)),
}

PROBE = """
import json, sys, time
from squeezelab.errors import FormatError
from squeezelab.models import load_model
def peak_kib():  # VmHWM: ru_maxrss would inherit the parent's peak
    return [int(x.split()[1]) for x in open("/proc/self/status") if x.startswith("VmHWM")][0]
load_model("squeezenet_small")  # warm the imports the decode would otherwise pay for
open("/proc/self/clear_refs", "w").write("5")  # reset VmHWM to the current RSS
before = peak_kib()
t = time.perf_counter()
try:
    load_model(sys.argv[1])
    outcome = "accepted"
except FormatError as e:
    outcome = str(e)
print(json.dumps({"seconds": time.perf_counter() - t, "outcome": outcome,
                  "grew_mb": (peak_kib() - before) / 1024}))
"""


@pytest.mark.parametrize("case", sorted(CASES))
def test_crafted_file_is_refused_fast_in_little_memory(case, tmp_path):
    suffix, make = CASES[case]
    path = tmp_path / f"{case}.{suffix}"
    path.write_bytes(make())
    assert path.stat().st_size < 1000
    out = subprocess.run(
        [sys.executable, "-c", PROBE, str(path)], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr[-2000:]
    r = json.loads(out.stdout.strip().splitlines()[-1])
    assert r["outcome"] != "accepted" and "\n" not in r["outcome"]
    # the first meta-device pass of a process compiles pooling kernels (~1 s on CI CPUs)
    assert r["seconds"] < 3.0, r
    assert r["grew_mb"] < 200, r


def test_refusal_names_the_bound_and_how_to_raise_it():
    with pytest.raises(FormatError, match=rf"\d+-byte file.*{ENV_MAX_ELEMENTS}"):
        decode_sqz(_claim((2000, 1000)))
    with pytest.raises(FormatError, match="num_fire=20000 exceeds 256"):
        decode_sqz(empty_sqz({"model": "squeezenet_small", "model_args": {"num_fire": 20_000}}, {}))


def test_a_raised_ceiling_decodes_what_the_default_refuses(monkeypatch):
    data = _claim((2000, 1000))  # 2M elements from ~140 bytes: over the 1M floor
    assert 2_000_000 > MIN_ELEMENTS > 4096 * len(data)
    with pytest.raises(FormatError, match="more than 1048576 elements"):
        read_records(data)
    _, [rec] = read_records(data, max_params=2_000_000)
    assert decode_record(rec).shape == (2000, 1000) and not decode_record(rec).any()
    monkeypatch.setenv(ENV_MAX_ELEMENTS, "2_000_000")
    assert read_records(data)[1][0]["shape"] == [2000, 1000]
    monkeypatch.setenv(ENV_MAX_ELEMENTS, "lots")
    with pytest.raises(ConfigError, match=ENV_MAX_ELEMENTS):
        read_records(data)


def test_a_fifo_is_refused_not_read(tmp_path):
    import os

    from squeezelab.io import read_model_meta, read_sqz_header

    fifo = tmp_path / "x.sqz"
    os.mkfifo(fifo)
    with pytest.raises(FormatError, match="not a regular file"):
        read_sqz_header(fifo)
    with pytest.raises(FormatError, match="not a regular file"):
        read_model_meta(Path(fifo))
