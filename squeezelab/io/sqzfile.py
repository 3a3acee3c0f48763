"""The ``.sqz`` container: bytes <-> per-tensor records, and records -> dense arrays.

Layout (docs/sqz-format.md): magic, version, a JSON header that rebuilds the module and
lists every tensor, a body of records (plain values, or Deep Compression's codebook plus
entropy-coded indices and relative-position gaps with filler zeros, Han et al. 2016
section 2), and a CRC32 over everything. Only numpy here: building the module is
``squeezelab.models.load_model``'s job, choosing what to store is ``squeezelab.compress``'s.
The reader trusts nothing: every length is bounded by the file size and the tensor sizes
in the header before anything is allocated, and the tensors together may hold at most
``squeezelab.io.limits.element_limit`` elements (4096 per file byte, 300M at most).
"""

from __future__ import annotations

import json
import math
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from squeezelab.errors import FormatError
from squeezelab.io.coding import decode_stream, encode_stream, read_varint, write_varint
from squeezelab.io.limits import SQZ_ELEMENTS_PER_BYTE, element_limit, how_to_raise

MAGIC = b"\x89SQZ\r\n\x1a\n"
VERSION = 1
_PREFIX = struct.Struct("<8sHI")  # magic, version, header length
_CRC = struct.Struct("<I")
MAX_HEADER_BYTES = 1 << 24
MAX_GAP_BITS = 8
MIN_BITS, MAX_BITS = 2, 8  # codebook index widths a record may hold
PLAIN_DTYPES = {"float32": "<f4", "float16": "<f2", "int64": "<i8"}  # record codes 0, 1, 2
KIND_PLAIN, KIND_SHARED = 0, 1


def is_sqz(path: str | os.PathLike) -> bool:
    """Whether ``path`` names a ``.sqz`` file: by its suffix, else by its magic number."""
    path = Path(path)
    if path.suffix == ".sqz":
        return True
    with open(path, "rb") as f:
        return f.read(len(MAGIC)) == MAGIC


# ---------------------------------------------------------------- gap coding


def gap_symbols(positions: np.ndarray, gap_bits: int) -> np.ndarray:
    """Relative positions as gap symbols in ``[0, 2**gap_bits)`` with filler zeros.

    Gap d (from the previous survivor, the first from position -1) becomes
    ``(d - 1) // M`` fillers 0 (each advancing M = 2**gap_bits - 1 positions) and then the
    symbol ``(d - 1) % M + 1``, as Deep Compression's filler zero with a bound of M.

    Example:
        >>> gap_symbols(np.array([0, 2, 10]), 2).tolist()
        [1, 2, 0, 0, 2]
    """
    m = (1 << gap_bits) - 1
    d = np.diff(np.asarray(positions, dtype=np.int64), prepend=-1)
    fillers = (d - 1) // m
    out = np.zeros(len(d) + int(fillers.sum()), dtype=np.int64)
    out[np.cumsum(fillers + 1) - 1] = (d - 1) % m + 1
    return out


def positions_from_gaps(symbols: np.ndarray, gap_bits: int) -> np.ndarray:
    """Inverse of :func:`gap_symbols`."""
    m = (1 << gap_bits) - 1
    advance = np.where(symbols == 0, m, symbols)
    return (np.cumsum(advance) - 1)[symbols != 0]


def best_gap_bits(positions: np.ndarray) -> int:
    """The gap width (1..8) whose stream has the least entropy plus code-table bits.

    Counted from the gaps without building each candidate stream: gap d gives
    ``(d - 1) // M`` fillers and one symbol ``(d - 1) % M + 1``.
    """
    if not len(positions):
        return 1
    d1 = np.diff(np.asarray(positions, dtype=np.int64), prepend=-1) - 1

    def cost(b: int) -> float:
        m = (1 << b) - 1
        counts = np.bincount(d1 % m + 1, minlength=m + 1).astype(np.float64)
        counts[0] = float((d1 // m).sum())
        nz = counts[counts > 0]
        return float(-(nz * np.log2(nz / nz.sum())).sum()) + 4 * (m + 1)

    return min(range(1, MAX_GAP_BITS + 1), key=cost)


# ---------------------------------------------------------------- encoding


@dataclass
class EncodedTensor:
    """A tensor's body record and its figures (``entry``: what accounting reads)."""

    entry: dict[str, Any]
    record: bytes


def _varint(value: int) -> bytes:
    out = bytearray()
    write_varint(value, out)
    return bytes(out)


def encode_shared(
    name: str,
    shape: tuple[int, ...],
    bits: int,
    codebook: np.ndarray,
    index: np.ndarray,
    positions: np.ndarray,
) -> EncodedTensor:
    """The record of a weight-shared tensor: widths, counts, codebook, coded streams."""
    gap_bits = best_gap_bits(positions)
    k = len(codebook)
    index_s = encode_stream(index, max(k, 1))
    gaps = encode_stream(gap_symbols(positions, gap_bits), 1 << gap_bits)
    counts = (len(positions), gaps.count, len(index_s.blob), len(gaps.blob))
    record = b"".join(
        [
            struct.pack("<BBBH", KIND_SHARED, bits, gap_bits, k),
            *(_varint(v) for v in counts),
            np.asarray(codebook).astype("<f4").tobytes(),
            index_s.blob,
            gaps.blob,
        ]
    )
    entry = {
        "name": name,
        "kind": "shared",
        "shape": list(shape),
        "bits": bits,
        "nnz": len(positions),
        "codebook": k,
        "gap_bits": gap_bits,
        "index": index_s.to_dict(),
        "gaps": gaps.to_dict(),
        "bytes": len(record),
    }
    return EncodedTensor(entry, record)


def encode_plain(name: str, values: np.ndarray, fp16: bool = False) -> EncodedTensor:
    """A bias, BatchNorm parameter or buffer stored as is (floats optionally at 16 bits)."""
    values = np.asarray(values)
    if values.dtype.kind == "f":
        dtype = "float16" if fp16 else "float32"
    elif values.dtype == np.int64:
        dtype = "int64"
    else:
        raise ValueError(f"{name}: cannot store dtype {values.dtype}")
    code = list(PLAIN_DTYPES).index(dtype)
    record = struct.pack("<BB", KIND_PLAIN, code) + values.astype(PLAIN_DTYPES[dtype]).tobytes()
    entry = {
        "name": name,
        "kind": "plain",
        "shape": list(values.shape),
        "dtype": dtype,
        "bytes": len(record),
    }
    return EncodedTensor(entry, record)


def encode_sqz(header: dict[str, Any], tensors: list[EncodedTensor]) -> bytes:
    """Assemble a ``.sqz`` file: prefix, header JSON (plus the tensor list), body, CRC32."""
    header = {**header, "tensors": [[t.entry["name"], t.entry["shape"]] for t in tensors]}
    text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    data = b"".join([_PREFIX.pack(MAGIC, VERSION, len(text)), text, *(t.record for t in tensors)])
    return data + _CRC.pack(zlib.crc32(data))


# ---------------------------------------------------------------- decoding


def _bad(msg: str) -> FormatError:
    return FormatError(f".sqz file: {msg}")


def _split(data: bytes) -> tuple[dict[str, Any], memoryview]:
    if len(data) < len(MAGIC) or data[: len(MAGIC)] != MAGIC:
        raise FormatError("not a .sqz file (wrong magic number)")
    if len(data) < _PREFIX.size + _CRC.size:
        raise FormatError(f"truncated .sqz file ({len(data)} bytes)")
    _, version, hlen = _PREFIX.unpack_from(data)
    if version != VERSION:
        raise FormatError(f"unsupported .sqz version {version} (this reader knows {VERSION})")
    if hlen > MAX_HEADER_BYTES or _PREFIX.size + hlen + _CRC.size > len(data):
        raise FormatError(f"truncated .sqz file: header of {hlen} bytes does not fit")
    (crc,) = _CRC.unpack_from(data, len(data) - _CRC.size)
    if zlib.crc32(memoryview(data)[: len(data) - _CRC.size]) != crc:
        raise FormatError("checksum mismatch: the .sqz file is truncated or altered")
    try:
        header = json.loads(bytes(data[_PREFIX.size : _PREFIX.size + hlen]).decode("utf-8"))
    except (ValueError, RecursionError) as e:
        raise FormatError(f".sqz header is not valid JSON ({e.__class__.__name__})") from e
    if not isinstance(header, dict):
        raise FormatError(".sqz header is not a JSON object")
    body = memoryview(data)[_PREFIX.size + hlen : len(data) - _CRC.size]
    return header, body


def read_sqz_bytes(path: str | os.PathLike) -> bytes:
    """The bytes of a ``.sqz`` file; ``FormatError`` if there is no such file."""
    path = Path(path)
    if not path.exists():
        raise FormatError(f".sqz file {str(path)!r} does not exist")
    if not path.is_file():  # a FIFO or device would block or never end
        raise FormatError(f".sqz file {str(path)!r} is not a regular file")
    return path.read_bytes()


def parse_sqz_header(data: bytes) -> dict[str, Any]:
    """The JSON header of ``.sqz`` bytes (checked: magic, version, checksum)."""
    return _split(data)[0]


def read_sqz_header(path: str | os.PathLike) -> dict[str, Any]:
    """The JSON header of a ``.sqz`` file (checked: magic, version, checksum), no weights.

    Example:
        >>> read_sqz_header("model.sqz")["meta"]["model"]  # doctest: +SKIP
        'squeezenet_small'
    """
    return parse_sqz_header(read_sqz_bytes(path))


def _tensor_list(
    header: dict[str, Any], limit: int, nbytes: int
) -> list[tuple[str, tuple[int, ...]]]:
    tensors = header.get("tensors")
    if not isinstance(tensors, list):
        raise _bad("header lacks the tensor list")
    out, total = [], 0
    for item in tensors:
        ok = isinstance(item, list) and len(item) == 2 and isinstance(item[0], str)
        ok = ok and isinstance(item[1], list) and len(item[1]) <= 8
        ok = ok and all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in item[1])
        if not ok:
            raise _bad(f"tensor list entry {str(item)[:80]} is not [name, [dims]]")
        shape = tuple(item[1])
        total += math.prod(shape) if all(d <= limit for d in shape) else limit + 1
        if total > limit:
            raise _bad(
                f"tensors claim more than {limit} elements, more than a {nbytes}-byte file may "
                f"decode to; {how_to_raise()}"
            )
        out.append((item[0], shape))
    if len({name for name, _ in out}) != len(out):
        raise _bad("tensor list names a tensor twice")
    return out


class _Reader:
    """Bounded reads from the body; every overrun is a FormatError naming the tensor."""

    def __init__(self, body: memoryview) -> None:
        self.body, self.pos = body, 0

    def take(self, n: int, what: str) -> bytes:
        if n < 0 or self.pos + n > len(self.body):
            raise _bad(f"{what} ({n} bytes at body offset {self.pos}) runs past the end")
        self.pos += n
        return bytes(self.body[self.pos - n : self.pos])

    def varint(self, what: str, hi: int) -> int:
        value, self.pos = read_varint(self.body, self.pos, f".sqz file: {what}", max_bytes=9)
        if value > hi:
            raise _bad(f"{what}={value} exceeds its bound {hi}")
        return value


def _read_record(r: _Reader, name: str, shape: tuple[int, ...]) -> dict[str, Any]:
    """One record's fields and blobs, checked against the tensor's size; nothing decoded."""
    numel = math.prod(shape)
    kind = r.take(1, f"{name} kind")[0]
    if kind == KIND_PLAIN:
        code = r.take(1, f"{name} dtype")[0]
        if code >= len(PLAIN_DTYPES):
            raise _bad(f"{name}: plain dtype code {code} (allowed 0 float32, 1 float16, 2 int64)")
        dtype = list(PLAIN_DTYPES)[code]
        raw = r.take(numel * np.dtype(PLAIN_DTYPES[dtype]).itemsize, f"{name} values")
        return {
            "name": name,
            "kind": "plain",
            "shape": list(shape),
            "dtype": dtype,
            "bytes": 2 + len(raw),
            "raw": raw,
        }
    if kind != KIND_SHARED:
        raise _bad(f"{name}: record kind {kind} (allowed 0 plain, 1 shared)")
    bits, gap_bits, k = struct.unpack("<BBH", r.take(4, f"{name} widths"))
    if not MIN_BITS <= bits <= MAX_BITS or not 1 <= gap_bits <= MAX_GAP_BITS:
        raise _bad(
            f"{name}: bits={bits} (allowed {MIN_BITS}..{MAX_BITS}), "
            f"gap_bits={gap_bits} (allowed 1..{MAX_GAP_BITS})"
        )
    start = r.pos - 5
    nnz = r.varint(f"{name} nnz", numel)
    if k > min(1 << bits, nnz) or (nnz and not k):
        raise _bad(f"{name}: codebook of {k} for {nnz} weights at {bits} bits")
    n_gaps = r.varint(f"{name} gap count", nnz + numel // ((1 << gap_bits) - 1))
    if n_gaps < nnz:
        raise _bad(f"{name}: {n_gaps} gaps for {nnz} weights")
    index_bytes = r.varint(f"{name} index bytes", len(r.body))
    gaps_bytes = r.varint(f"{name} gap bytes", len(r.body))
    codebook = r.take(4 * k, f"{name} codebook")
    index, gaps = r.take(index_bytes, f"{name} indices"), r.take(gaps_bytes, f"{name} gaps")
    coder = {0: "huffman", 1: "ans"}
    return {
        "name": name,
        "kind": "shared",
        "shape": list(shape),
        "bits": bits,
        "nnz": nnz,
        "codebook": k,
        "gap_bits": gap_bits,
        "bytes": r.pos - start,
        "index": {
            "coder": coder.get(index[:1] and index[0], "?"),
            "count": nnz,
            "alphabet": max(k, 1),
            "bytes": index_bytes,
        },
        "gaps": {
            "coder": coder.get(gaps[:1] and gaps[0], "?"),
            "count": n_gaps,
            "alphabet": 1 << gap_bits,
            "bytes": gaps_bytes,
        },
        "raw": (codebook, index, gaps),
    }


def sqz_element_limit(nbytes: int, max_params: int | None = None) -> int:
    """Elements ``nbytes`` of ``.sqz`` may decode to (``max_params`` raises the ceiling)."""
    return element_limit(nbytes, SQZ_ELEMENTS_PER_BYTE, max_params)


def read_records(data: bytes, max_params: int | None = None):
    """``(header, records)`` of ``.sqz`` bytes: each record's fields and undecoded blobs.

    The tensor list may claim at most :func:`sqz_element_limit` elements in all.
    """
    header, body = _split(data)
    r = _Reader(body)
    tensors = _tensor_list(header, sqz_element_limit(len(data), max_params), len(data))
    records = [_read_record(r, n, s) for n, s in tensors]
    if r.pos != len(body):
        raise _bad(f"{len(body) - r.pos} bytes left over after the last tensor")
    return header, records


def read_sqz_layout(path: str | os.PathLike, max_params: int | None = None):
    """``(header, entries)``: per tensor its widths, counts, coders and byte sizes.

    Reads the record headers only; no stream is decoded (what ``squeezelab inspect`` shows).
    """
    header, records = read_records(read_sqz_bytes(path), max_params)
    return header, [{k: v for k, v in e.items() if k != "raw"} for e in records]


def decode_record(e: dict[str, Any]) -> np.ndarray:
    """The dense array a record stands for: float32 for shared and float records, else int64."""
    shape = tuple(e["shape"])
    if e["kind"] == "plain":
        arr = np.frombuffer(e["raw"], dtype=PLAIN_DTYPES[e["dtype"]])
        return arr.astype(np.int64 if e["dtype"] == "int64" else np.float32).reshape(shape)
    name, nnz, gap_bits = e["name"], e["nnz"], e["gap_bits"]
    codebook_raw, index_blob, gaps_blob = e["raw"]
    codebook = np.frombuffer(codebook_raw, dtype="<f4").astype(np.float32)
    idx = decode_stream(index_blob, nnz, max(e["codebook"], 1))
    if nnz and idx.max() >= e["codebook"]:
        raise _bad(f"{name}: index {int(idx.max())} outside the codebook of {e['codebook']}")
    sym = decode_stream(gaps_blob, e["gaps"]["count"], 1 << gap_bits)
    if len(sym) and sym[-1] == 0:
        raise _bad(f"{name}: gap stream ends in a filler")
    positions = positions_from_gaps(sym, gap_bits)
    numel = math.prod(shape)
    if len(positions) != nnz or (nnz and positions[-1] >= numel):
        last = positions[-1] if len(positions) else -1
        raise _bad(
            f"{name}: gaps give {len(positions)} positions up to {last}, "
            f"expected {nnz} below {numel}"
        )
    out = np.zeros(numel, dtype=np.float32)
    out[positions] = codebook[idx]
    return out.reshape(shape)
