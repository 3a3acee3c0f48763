"""Entropy coding of symbol streams: canonical Huffman and rANS, chosen per stream by size.

Deep Compression (Han et al. 2016, arXiv 1510.00149, section 4) Huffman-codes the weight
indices and the sparse position gaps; an ANS coder (``constriction``'s ``AnsCoder``) comes
closer to the streams' empirical entropy. Every coded stream is one self-describing blob;
its byte layout is in docs/sqz-format.md. Decoders raise ``FormatError`` on any bad blob.
"""

from __future__ import annotations

import heapq
import math
from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

from squeezelab.errors import FormatError

MAX_ALPHABET = 256  # symbols are codebook indices (<= 8 bits) or gap symbols (<= 8 bits)
HUFFMAN_MAX_LEN = 15  # code lengths fit one nibble in the table
ANS_PRECISIONS = (8, 10, 12, 14, 16)  # frequency totals tried for the ANS table (2**P)
_CHUNK_BITS = 1 << 20  # Huffman decoding works on this many bit positions at a time
_CHUNK_SYMBOLS = 1 << 21  # Huffman encoding works on this many symbols at a time
_ESTIMATE_SLACK = 16  # bytes: ANS blobs differ from their estimate by less than this


def entropy_bits(symbols: np.ndarray, alphabet: int) -> float:
    """Empirical entropy of a stream in bits: ``-sum c_s log2(c_s / n)``."""
    counts = np.bincount(symbols, minlength=alphabet)[:alphabet].astype(np.float64)
    n = counts.sum()
    nz = counts[counts > 0]
    return max(0.0, float(-(nz * np.log2(nz / n)).sum())) if n else 0.0


def write_varint(value: int, out: bytearray) -> None:
    """Append ``value`` as a little-endian base-128 varint (the one varint of every format)."""
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return


def read_varint(data, pos: int, what: str = "coded stream", max_bytes: int = 5) -> tuple[int, int]:
    """``(value, next position)`` of the varint at ``pos``; ``FormatError`` naming ``what``."""
    value = shift = 0
    for _ in range(max_bytes):
        if pos >= len(data):
            raise FormatError(f"{what}: ends inside a varint (at offset {pos})")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, pos
    raise FormatError(f"{what}: varint longer than {max_bytes} bytes (at offset {pos})")


class EntropyCoder(ABC):
    """One way to turn a stream of symbols in ``[0, alphabet)`` into bytes and back."""

    tag: int  # first byte of every blob this coder writes
    name: str

    @abstractmethod
    def encode(self, symbols: np.ndarray, alphabet: int) -> bytes:
        """The blob (tag byte, table, payload) for ``symbols``."""

    @abstractmethod
    def decode(self, blob: bytes, count: int, alphabet: int) -> np.ndarray:
        """``count`` symbols (int64) from a blob; ``FormatError`` if it is malformed."""

    @abstractmethod
    def estimate(self, counts: np.ndarray) -> float:
        """Blob bytes for a stream with these symbol counts (ANS: within a few bytes)."""


def huffman_lengths(counts: np.ndarray, max_len: int = HUFFMAN_MAX_LEN) -> np.ndarray:
    """Huffman code lengths of each symbol (0 for unused), limited to ``max_len`` bits.

    A too-long code is avoided by halving the counts (keeping used symbols >= 1) and
    rebuilding, which converges because equal counts give a balanced tree.
    """
    counts = np.asarray(counts, dtype=np.int64).copy()
    used = np.flatnonzero(counts)
    lengths = np.zeros(len(counts), dtype=np.int64)
    if len(used) == 1:
        lengths[used[0]] = 1
        return lengths
    while True:
        heap = [(int(counts[s]), int(s), (int(s),)) for s in used]
        heapq.heapify(heap)
        depth = dict.fromkeys(map(int, used), 0)
        while len(heap) > 1:
            c1, t1, m1 = heapq.heappop(heap)
            c2, t2, m2 = heapq.heappop(heap)
            for s in m1 + m2:
                depth[s] += 1
            heapq.heappush(heap, (c1 + c2, min(t1, t2), m1 + m2))
        for s, d in depth.items():
            lengths[s] = d
        if lengths.max(initial=0) <= max_len:
            return lengths
        counts[used] = np.maximum(1, counts[used] // 2)


def canonical_codes(lengths: np.ndarray) -> np.ndarray:
    """Canonical (DEFLATE-order) codes: by length, then by symbol; raises if not prefix-free."""
    lengths = np.asarray(lengths, dtype=np.int64)
    codes = np.zeros(len(lengths), dtype=np.int64)
    code = 0
    prev = 0
    for s in sorted(np.flatnonzero(lengths), key=lambda s: (lengths[s], s)):
        code <<= int(lengths[s]) - prev
        prev = int(lengths[s])
        if code >> prev:
            raise FormatError("Huffman table: code lengths are not a prefix code (Kraft sum > 1)")
        codes[s] = code
        code += 1
    return codes


class HuffmanCoder(EntropyCoder):
    """Canonical Huffman: a nibble of code length per symbol, then MSB-first code bits."""

    tag = 0
    name = "huffman"

    def estimate(self, counts: np.ndarray) -> float:
        bits = int((huffman_lengths(counts) * counts).sum())
        return 1 + (len(counts) + 1) // 2 + (bits + 7) // 8

    def encode(self, symbols: np.ndarray, alphabet: int) -> bytes:
        symbols = np.asarray(symbols, dtype=np.int64)
        lengths = huffman_lengths(np.bincount(symbols, minlength=alphabet)[:alphabet])
        codes = canonical_codes(lengths)
        nib = np.zeros(alphabet + (alphabet & 1), dtype=np.uint8)
        nib[:alphabet] = lengths
        table = (nib[0::2] << 4) | nib[1::2]
        # each code left-aligned in 16 bits, unpacked, and its first `length` bits kept
        aligned = (codes << (16 - lengths)).astype(">u2")
        parts = []
        for lo in range(0, len(symbols), _CHUNK_SYMBOLS):
            chunk = symbols[lo : lo + _CHUNK_SYMBOLS]
            bits = np.unpackbits(aligned[chunk].view(np.uint8)).reshape(-1, 16)
            parts.append(bits[np.arange(16) < lengths[chunk][:, None]])
        bits = np.concatenate(parts) if parts else np.zeros(0, dtype=np.uint8)
        return bytes([self.tag]) + table.tobytes() + np.packbits(bits).tobytes()

    def decode(self, blob: bytes, count: int, alphabet: int) -> np.ndarray:
        tsize = (alphabet + 1) // 2
        if len(blob) < 1 + tsize:
            raise FormatError("Huffman stream: shorter than its code-length table")
        nib = np.frombuffer(blob, dtype=np.uint8, count=tsize, offset=1)
        lengths = np.stack([nib >> 4, nib & 15], 1).reshape(-1)[:alphabet].astype(np.int64)
        if count == 0:
            return np.zeros(0, dtype=np.int64)
        if not lengths.any():
            raise FormatError("Huffman stream: table has no symbols but the stream is not empty")
        codes = canonical_codes(lengths)
        payload = np.frombuffer(blob, dtype=np.uint8, offset=1 + tsize)
        nbits = 8 * len(payload)
        if count > nbits:
            raise FormatError(f"Huffman stream: {count} symbols cannot fit in {nbits} bits")
        width = int(lengths.max())
        sym_tab = np.full(1 << width, -1, dtype=np.int64)
        len_tab = np.zeros(1 << width, dtype=np.int64)
        for s in np.flatnonzero(lengths):
            shift = width - int(lengths[s])
            lo = int(codes[s]) << shift
            sym_tab[lo : lo + (1 << shift)] = s
            len_tab[lo : lo + (1 << shift)] = lengths[s]
        bits = np.concatenate([np.unpackbits(payload), np.zeros(width, dtype=np.uint8)])
        out = np.empty(count, dtype=np.int64)
        i = p = 0
        for base in range(0, nbits, _CHUNK_BITS):  # bounded memory: one chunk of windows
            end = min(base + _CHUNK_BITS, nbits)
            window = np.zeros(end - base, dtype=np.int64)
            for j in range(width):
                window = (window << 1) | bits[base + j : end + j]
            starts, k = _chase(len_tab[window], p - base, count - i)
            if np.any(len_tab[window[starts]] == 0):
                raise FormatError("Huffman stream: bit pattern matches no code")
            out[i : i + len(starts)] = sym_tab[window[starts]]
            i, p = i + len(starts), base + k
        if i < count or p > nbits or (p + 7) // 8 != len(payload):
            raise FormatError(
                f"Huffman stream: {count} symbols do not fill its {len(payload)}-byte payload"
            )
        return out


def _chase(length: np.ndarray, k: int, need: int) -> tuple[np.ndarray, int]:
    """Start offsets of up to ``need`` codes from offset ``k``, given each offset's code length.

    Decoding is sequential only in where each code starts. Pointer doubling gives the offset
    32 codes ahead, so the Python loop takes one step per 32 codes; the 31 starts in between
    are filled in by vectorised gathers. A length of 0 (no code) stalls the chain; the
    caller rejects it.
    """
    n = len(length)
    nxt = np.append(np.minimum(np.arange(n) + length, n), n)  # n: past this chunk
    far = nxt
    for _ in range(5):
        far = far[far]
    coarse = []
    while need >= 32 and far[k] < n:
        coarse.append(k)
        k = int(far[k])
        need -= 32
    block = np.empty((len(coarse), 32), dtype=np.int64)
    if coarse:
        block[:, 0] = coarse
        for j in range(1, 32):
            block[:, j] = nxt[block[:, j - 1]]
    tail = []
    while need and k < n:  # the last < 32 codes of the chunk
        tail.append(k)
        k += int(length[k])
        need -= 1
        if not length[tail[-1]]:
            break
    return np.concatenate([block.reshape(-1), np.asarray(tail, dtype=np.int64)]), k


def _ans_frequencies(counts: np.ndarray, precision: int) -> np.ndarray:
    """Counts scaled to sum exactly ``2**precision``, each used symbol keeping >= 1."""
    total = 1 << precision
    used = counts > 0
    if counts.sum() <= 0 or used.sum() > total:
        return np.zeros(0, dtype=np.int64)
    scaled = counts * (total / counts.sum())
    freq = np.where(used, np.maximum(1, np.floor(scaled)), 0).astype(np.int64)
    rest = total - int(freq.sum())
    order = np.argsort(-(scaled - freq) * used, kind="stable")
    while rest != 0:  # hand out (or take back) the rounding remainder, largest share first
        for s in order:
            if rest == 0:
                break
            if rest > 0 and used[s]:
                freq[s] += 1
                rest -= 1
            elif rest < 0 and freq[s] > 1:
                freq[s] -= 1
                rest += 1
    return freq


class AnsCoder(EntropyCoder):
    """rANS (``constriction``'s ``AnsCoder``) over the used symbols with a stored table."""

    tag = 1
    name = "ans"

    @staticmethod
    def _model(freq_used: np.ndarray, precision: int):
        import constriction

        probs = freq_used.astype(np.float64) / float(1 << precision)  # exact dyadic values
        return constriction.stream.model.Categorical(probs, perfect=True)

    def _plan(self, counts: np.ndarray) -> tuple[float, int, np.ndarray, bytes]:
        """The table precision with the least table + payload bits, and that table."""
        counts = np.asarray(counts, dtype=np.float64)
        best = (math.inf, ANS_PRECISIONS[0], np.zeros(len(counts), np.int64), b"")
        for precision in ANS_PRECISIONS:
            freq = _ans_frequencies(counts, precision)
            if not len(freq):
                continue
            table = bytearray([self.tag, precision])
            for f in freq:
                write_varint(int(f), table)
            used = freq > 0
            payload = -float((counts[used] * np.log2(freq[used] / 2.0**precision)).sum())
            if used.sum() > 1:
                payload = 32 * math.ceil((payload + 64) / 32)  # whole words, state flush
            if 8 * len(table) + payload < best[0]:
                best = (8 * len(table) + payload, precision, freq, bytes(table))
        return best

    def estimate(self, counts: np.ndarray) -> float:
        return self._plan(counts)[0] / 8

    def encode(self, symbols: np.ndarray, alphabet: int) -> bytes:
        import constriction

        symbols = np.asarray(symbols, dtype=np.int64)
        counts = np.bincount(symbols, minlength=alphabet)[:alphabet]
        best = self._plan(counts)
        if not best[3]:
            return bytes([self.tag, ANS_PRECISIONS[0]]) + b"\x00" * alphabet
        _, precision, freq, table = best
        used = np.flatnonzero(freq)
        if len(used) < 2:
            return table  # one symbol: the table says it all
        remap = np.zeros(alphabet, dtype=np.int32)
        remap[used] = np.arange(len(used), dtype=np.int32)
        coder = constriction.stream.stack.AnsCoder()
        coder.encode_reverse(remap[symbols], self._model(freq[used], precision))
        return table + coder.get_compressed().astype("<u4").tobytes()

    def decode(self, blob: bytes, count: int, alphabet: int) -> np.ndarray:
        import constriction

        if len(blob) < 2:
            raise FormatError("ANS stream: shorter than its header")
        precision = blob[1]
        if precision not in ANS_PRECISIONS:
            raise FormatError(f"ANS stream: precision {precision} (allowed {list(ANS_PRECISIONS)})")
        pos = 2
        freq = np.zeros(alphabet, dtype=np.int64)
        for s in range(alphabet):
            freq[s], pos = read_varint(blob, pos, "coded stream table")
        if count == 0:
            return np.zeros(0, dtype=np.int64)
        if int(freq.sum()) != 1 << precision:
            raise FormatError(
                f"ANS stream: frequencies sum to {int(freq.sum())}, not 2**{precision}"
            )
        used = np.flatnonzero(freq)
        payload = blob[pos:]
        if len(used) == 1:
            if payload:
                raise FormatError("ANS stream: one-symbol stream carries a payload")
            return np.full(count, used[0], dtype=np.int64)
        if len(payload) % 4 or not payload:
            raise FormatError(
                f"ANS stream: payload of {len(payload)} bytes is not whole 32-bit words"
            )
        try:
            words = np.frombuffer(payload, dtype="<u4").astype(np.uint32)
            coder = constriction.stream.stack.AnsCoder(words)
            out = coder.decode(self._model(freq[used], precision), count)
        except (ValueError, RuntimeError, AssertionError) as e:
            raise FormatError(f"ANS stream: {e}") from e
        return used[np.asarray(out, dtype=np.int64)]


CODERS: tuple[EntropyCoder, ...] = (HuffmanCoder(), AnsCoder())


@dataclass(frozen=True)
class CodedStream:
    """One coded stream and its figures (sizes in bytes, entropy in bits)."""

    blob: bytes
    coder: str
    count: int
    alphabet: int
    entropy_bits: float

    def to_dict(self) -> dict:
        return {
            "coder": self.coder,
            "count": self.count,
            "alphabet": self.alphabet,
            "bytes": len(self.blob),
            "entropy_bits": round(self.entropy_bits, 3),
        }


def encode_stream(symbols: np.ndarray, alphabet: int) -> CodedStream:
    """Code ``symbols`` with every coder and keep the smallest blob.

    Example:
        >>> s = encode_stream(np.array([0, 1, 1, 2, 1]), 3)
        >>> decode_stream(s.blob, 5, 3).tolist()
        [0, 1, 1, 2, 1]
    """
    if not 1 <= alphabet <= MAX_ALPHABET:
        raise ValueError(f"alphabet must be in 1..{MAX_ALPHABET}, got {alphabet}")
    symbols = np.asarray(symbols, dtype=np.int64)
    if len(symbols) and (symbols.min() < 0 or symbols.max() >= alphabet):
        raise ValueError(f"symbols must lie in [0, {alphabet})")
    counts = np.bincount(symbols, minlength=alphabet)
    estimates = sorted((c.estimate(counts), i) for i, c in enumerate(CODERS))
    # encode only the clear winner; ANS estimates are good to a few bytes, so near ties
    # are settled by encoding both
    near = [i for e, i in estimates if e <= estimates[0][0] * 1.001 + _ESTIMATE_SLACK]
    blobs = [
        (len(b), CODERS[i].name, b) for i in near for b in [CODERS[i].encode(symbols, alphabet)]
    ]
    _, name, blob = min(blobs, key=lambda t: t[0])
    return CodedStream(blob, name, len(symbols), alphabet, entropy_bits(symbols, alphabet))


def decode_stream(blob: bytes, count: int, alphabet: int) -> np.ndarray:
    """Decode a blob written by :func:`encode_stream`; ``FormatError`` if malformed."""
    if not blob:
        raise FormatError("coded stream is empty (no coder tag)")
    if not 1 <= alphabet <= MAX_ALPHABET:
        raise FormatError(f"coded stream: alphabet {alphabet} outside 1..{MAX_ALPHABET}")
    for coder in CODERS:
        if coder.tag == blob[0]:
            return coder.decode(blob, count, alphabet)
    raise FormatError(f"coded stream: unknown coder tag {blob[0]} (allowed 0 huffman, 1 ans)")
