"""A second .sqz decoder written from docs/sqz-format.md alone, checked against the library.

It uses only struct, json, zlib and numpy: if the page and the code ever disagree, this
test fails.
"""

import bisect
import json
import struct
import zlib

import numpy as np
import torch

from squeezelab.compress import compress_model
from squeezelab.models import load_model
from squeezelab.models.load import decode_sqz


def read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, pos


def huffman(blob: bytes, count: int, alphabet: int) -> list[int]:
    nib = blob[1 : 1 + (alphabet + 1) // 2]
    lengths = [(nib[s // 2] >> (0 if s % 2 else 4)) & 15 for s in range(alphabet)]
    codes, code, prev = {}, 0, 0
    for s in sorted((s for s in range(alphabet) if lengths[s]), key=lambda s: (lengths[s], s)):
        code <<= lengths[s] - prev
        prev = lengths[s]
        codes[(lengths[s], code)] = s
        code += 1
    payload = blob[1 + len(nib) :]
    bits = [(byte >> (7 - i)) & 1 for byte in payload for i in range(8)]
    out, pos = [], 0
    for _ in range(count):
        length = code = 0
        while (length, code) not in codes:
            code = (code << 1) | bits[pos]
            pos += 1
            length += 1
        out.append(codes[(length, code)])
    return out


def rans(blob: bytes, count: int, alphabet: int) -> list[int]:
    precision, pos, freq = blob[1], 2, []
    for _ in range(alphabet):
        f, pos = read_varint(blob, pos)
        freq.append(f)
    used = [s for s in range(alphabet) if freq[s]]
    if len(used) == 1:
        return used * count
    big = [freq[s] << (24 - precision) for s in used]
    cum = [sum(big[:i]) for i in range(len(big))]
    words = list(struct.unpack(f"<{(len(blob) - pos) // 4}I", blob[pos:]))
    state = 0
    if len(words) >= 2:
        state = (words.pop() << 32) | words.pop()
    elif words:
        state = words.pop()
    out = []
    for _ in range(count):
        q = state & ((1 << 24) - 1)
        i = bisect.bisect_right(cum, q) - 1
        out.append(used[i])
        state = big[i] * (state >> 24) + q - cum[i]
        if state < (1 << 32) and words:
            state = (state << 32) | words.pop()
    return out


def stream(blob: bytes, count: int, alphabet: int) -> list[int]:
    return (huffman if blob[0] == 0 else rans)(blob, count, alphabet)


def doc_decode(data: bytes) -> tuple[dict, dict[str, np.ndarray], set[str]]:
    assert data[:8] == b"\x89SQZ\r\n\x1a\n"
    version, hlen = struct.unpack_from("<HI", data, 8)
    assert version == 1
    assert zlib.crc32(data[:-4]) == struct.unpack("<I", data[-4:])[0]
    header = json.loads(data[14 : 14 + hlen])
    pos, state, coders = 14 + hlen, {}, set()
    for name, shape in header["tensors"]:
        numel = int(np.prod(shape))
        kind = data[pos]
        if kind == 0:
            dtype = ["<f4", "<f2", "<i8"][data[pos + 1]]
            size = numel * np.dtype(dtype).itemsize
            state[name] = np.frombuffer(data, dtype, numel, pos + 2).reshape(shape)
            pos += 2 + size
            continue
        bits, g, k = struct.unpack_from("<BBH", data, pos + 1)
        pos += 5
        nnz, pos = read_varint(data, pos)
        n_gaps, pos = read_varint(data, pos)
        size_i, pos = read_varint(data, pos)
        size_g, pos = read_varint(data, pos)
        codebook = np.frombuffer(data, "<f4", k, pos)
        pos += 4 * k
        index_blob, gap_blob = data[pos : pos + size_i], data[pos + size_i : pos + size_i + size_g]
        pos += size_i + size_g
        coders.update({index_blob[0], gap_blob[0]})
        out = np.zeros(numel, np.float32)
        m, p, positions = (1 << g) - 1, -1, []
        for s in stream(gap_blob, n_gaps, 1 << g):
            p += m if s == 0 else s
            if s:
                positions.append(p)
        out[positions] = codebook[stream(index_blob, nnz, max(k, 1))]
        state[name] = out.reshape(shape)
    assert pos == len(data) - 4
    return header, state, coders


def test_doc_decoder_matches_the_library_bit_for_bit():
    torch.manual_seed(0)
    c = compress_model(*load_model("squeezenet_small"), 0.67, 5, fp16_plain=True)
    header, state, coders = doc_decode(c.data)
    assert coders == {0, 1}  # both coders are exercised
    model, _, _ = decode_sqz(c.data)
    for name, value in model.state_dict().items():
        ours = torch.from_numpy(np.array(state[name])).to(value.dtype)
        if value.is_floating_point():
            assert torch.equal(ours.view(torch.int32), value.view(torch.int32)), name
        else:
            assert torch.equal(ours, value), name
    assert header["meta"]["model"] == "squeezenet_small"
