"""Fuzz target: structured mutations of ``.sqz`` headers and model-file metadata.

Hypothesis changes one or more fields of a valid file's JSON (types, huge or negative
numbers, NaN, deep nesting, missing keys, extra or reshaped tensors) and the decoder must
either load a model or raise ``FormatError``; never another exception, never more than
the deadline, and never much memory (the process's peak is checked after the run).
"""

import json
import math
import re
import struct
import zlib

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.torch import save_file

from squeezelab.compress import compress_model
from squeezelab.errors import FormatError
from squeezelab.io import save_model_file
from squeezelab.models import ModelMeta, load_model
from squeezelab.models.load import decode_sqz
from squeezelab.models.squeezenet import SqueezeNet
from tests.conftest import TINY_SPEC, peak_rss_mib

TINY = TINY_SPEC
FUZZ = settings(
    max_examples=60,
    deadline=2000,  # ms per case: a decode that loops or allocates blows through this
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    database=None,
)

# values a hostile writer puts where a field belongs
HOSTILE = st.one_of(
    st.none(),
    st.booleans(),
    st.sampled_from([0, -1, -5, 1, 2**31, 2**63, 10**12, 10**100]),
    st.sampled_from([0.0, -0.0, 1e-300, 1e300, math.nan, math.inf, -math.inf, 0.5]),
    st.text(max_size=8),
    st.sampled_from(["[/oops]", "x" * 10_000, "\x00", "../../etc/passwd"]),
    # fresh containers per draw (st.just would hand out one shared object: a mutation that
    # appends it into itself makes a cycle, and it leaks between test cases)
    st.builds(list),
    st.lists(st.integers(-3, 10**6), max_size=9),
    st.builds(dict),
    st.builds(lambda: {"a": {"b": [1]}}),
    st.sampled_from([40, 1000, 100_000]).map(lambda n: f"__DEEP_{n}__"),  # see _dumps
)


def _dumps(doc) -> str:
    """JSON text of ``doc`` with each ``"__DEEP_n__"`` made n nested arrays.

    Built as text: the json module itself cannot write (or read) 100,000 levels.
    """
    text = json.dumps(doc)
    return re.sub(r'"__DEEP_(\d+)__"', lambda m: "[" * int(m[1]) + "]" * int(m[1]), text)


def _paths(value, prefix=()):
    """Every path into a JSON value (dict keys and list indices), the root excluded."""
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return
    for k, v in items:
        yield (*prefix, k)
        yield from _paths(v, (*prefix, k))


def _mutate(doc, data) -> None:
    """Apply 1-3 structured changes to ``doc`` in place: set, delete, or add a field."""
    for _ in range(data.draw(st.integers(1, 3), label="changes")):
        paths = list(_paths(doc))
        if not paths:
            return
        path = data.draw(st.sampled_from(paths), label="path")
        parent = doc
        for k in path[:-1]:
            parent = parent[k]
        op = data.draw(st.sampled_from(["set", "delete", "add"]), label="op")
        if op == "set":
            parent[path[-1]] = data.draw(HOSTILE, label="value")
        elif op == "delete":
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[data.draw(st.text(min_size=1, max_size=6), label="key")] = data.draw(HOSTILE)
        else:
            parent.append(data.draw(HOSTILE, label="item"))


def _reseal(data: bytes) -> bytes:
    return data[:-4] + struct.pack("<I", zlib.crc32(data[:-4]))


@pytest.fixture(scope="module")
def tiny_sqz() -> bytes:
    torch.manual_seed(0)
    return compress_model(SqueezeNet(TINY), None, 0.67, 3).data


@FUZZ
@given(data=st.data())
def test_sqz_header_mutations_load_or_raise_format_error(tiny_sqz, data):
    peak_before = peak_rss_mib(reset=True)  # each case measures its own peak
    hlen = struct.unpack_from("<I", tiny_sqz, 10)[0]
    header = json.loads(tiny_sqz[14 : 14 + hlen])
    extra = data.draw(st.sampled_from(["none", "tensor", "shape"]), label="tensors")
    if extra == "tensor":  # a tensor the body does not hold
        header["tensors"].append(["evil", data.draw(st.lists(st.integers(0, 10**6), max_size=4))])
    elif extra == "shape":
        i = data.draw(st.integers(0, len(header["tensors"]) - 1))
        header["tensors"][i][1] = data.draw(st.lists(st.integers(0, 10**9), max_size=4))
    _mutate(header, data)
    text = _dumps(header).encode()  # NaN and Infinity pass through as JSON tokens
    blob = tiny_sqz[:10] + struct.pack("<I", len(text)) + text + tiny_sqz[14 + hlen :]
    _loads_or_refuses_in_one_line(decode_sqz, _reseal(blob), peak_before)


@FUZZ
@given(data=st.data())
def test_model_file_metadata_mutations_load_or_raise_format_error(tmp_path_factory, data):
    peak_before = peak_rss_mib(reset=True)  # each case measures its own peak
    torch.manual_seed(0)
    model = SqueezeNet(TINY)
    meta = ModelMeta.for_spec(TINY, "tiny").replace(classes=("a", "b", "c")).to_dict()
    meta["metrics"] = {"val_acc": 0.5}
    _mutate(meta, data)
    path = tmp_path_factory.mktemp("fuzz") / "m.safetensors"
    state = model.state_dict()
    if data.draw(st.booleans(), label="drop a tensor"):
        state.pop(data.draw(st.sampled_from(sorted(state))))
    save_file(state, str(path), metadata={"squeezelab": _dumps(meta)})
    _loads_or_refuses_in_one_line(load_model, path, peak_before)


@FUZZ
@given(data=st.data())
def test_safetensors_index_mutations_raise_format_error(tmp_path_factory, data):
    """The tensor index in the safetensors header (dtype, shape, offsets) lied about."""
    path = tmp_path_factory.mktemp("fuzz") / "m.safetensors"
    torch.manual_seed(0)
    save_model_file(path, SqueezeNet(TINY).state_dict(), ModelMeta.for_spec(TINY).to_dict())
    raw = path.read_bytes()
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8 : 8 + n])
    name = data.draw(st.sampled_from(sorted(k for k in header if k != "__metadata__")))
    field = data.draw(st.sampled_from(["dtype", "shape", "data_offsets"]))
    header[name][field] = data.draw(HOSTILE)
    text = _dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(text)) + text + raw[8 + n :])
    with pytest.raises(FormatError):
        load_model(path)


def _loads_or_refuses_in_one_line(load, arg, peak_before: float) -> None:
    """``load(arg)`` works or raises a one-line FormatError, growing memory < 400 MiB."""
    try:
        load(arg)
    except FormatError as e:
        assert "\n" not in str(e)
    assert peak_rss_mib() - peak_before < 400
