"""Entropy coders: round trips of arbitrary streams, sizes near the entropy, bad blobs."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from squeezelab.errors import FormatError
from squeezelab.io.coding import (
    CODERS,
    HUFFMAN_MAX_LEN,
    canonical_codes,
    decode_stream,
    encode_stream,
    entropy_bits,
    huffman_lengths,
)


@st.composite
def streams(draw):
    alphabet = draw(st.integers(1, 256))
    symbols = draw(st.lists(st.integers(0, alphabet - 1), max_size=400))
    return np.array(symbols, dtype=np.int64), alphabet


@pytest.mark.parametrize("coder", CODERS, ids=lambda c: c.name)
@settings(max_examples=150, deadline=None)
@given(stream=streams())
def test_each_coder_round_trips_any_stream(coder, stream):
    symbols, alphabet = stream
    blob = coder.encode(symbols, alphabet)
    assert blob[0] == coder.tag
    assert coder.decode(blob, len(symbols), alphabet).tolist() == symbols.tolist()


@settings(max_examples=100, deadline=None)
@given(stream=streams())
def test_encode_stream_keeps_the_smaller_blob(stream):
    symbols, alphabet = stream
    coded = encode_stream(symbols, alphabet)
    sizes = [len(c.encode(symbols, alphabet)) for c in CODERS]
    assert len(coded.blob) == min(sizes)
    assert decode_stream(coded.blob, len(symbols), alphabet).tolist() == symbols.tolist()


@settings(max_examples=300, deadline=None)
@given(blob=st.binary(max_size=64), count=st.integers(0, 300), alphabet=st.integers(1, 256))
def test_garbage_blobs_give_format_error_or_symbols(blob, count, alphabet):
    try:
        out = decode_stream(blob, count, alphabet)
    except FormatError:
        return
    assert len(out) == count and (count == 0 or 0 <= out.min() <= out.max() < alphabet)


def test_skewed_long_stream_is_close_to_its_entropy():
    rng = np.random.default_rng(0)
    x = np.minimum(rng.geometric(0.15, 200_000) - 1, 63)
    coded = encode_stream(x, 64)
    assert coded.coder == "ans"
    assert 8 * len(coded.blob) <= 1.01 * entropy_bits(x, 64)
    assert decode_stream(coded.blob, len(x), 64).tolist() == x.tolist()


def test_huffman_lengths_are_limited_and_prefix_free():
    fib = [1, 1]
    while len(fib) < 40:
        fib.append(fib[-1] + fib[-2])
    lengths = huffman_lengths(np.array(fib))
    assert lengths.max() <= HUFFMAN_MAX_LEN
    assert (2.0 ** -lengths[lengths > 0]).sum() <= 1.0
    canonical_codes(lengths)  # raises if not a prefix code


def test_huffman_table_over_kraft_is_rejected():
    with pytest.raises(FormatError, match="Kraft"):
        canonical_codes(np.array([1, 1, 1]))


def test_entropy_of_uniform_and_constant_streams():
    assert entropy_bits(np.arange(8).repeat(4), 8) == pytest.approx(96.0)
    assert entropy_bits(np.zeros(10, dtype=np.int64), 4) == 0.0
