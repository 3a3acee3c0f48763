"""Crafted hostile model files for the bound tests: tiny files that claim huge outputs."""

from __future__ import annotations

import json
import struct

import numpy as np

from squeezelab.io.sqzfile import encode_plain, encode_shared, encode_sqz


def empty_sqz(meta: dict, tensors: dict[str, tuple[tuple[int, ...], bool]]) -> bytes:
    """A valid ``.sqz`` whose float tensors are all-zero shared records (nnz=0).

    ``tensors`` maps name -> (shape, is_int). Each float record is ~10 bytes whatever its
    shape: the zeros are implicit, which is what makes this the decoder's worst case.
    """
    none = np.zeros(0, dtype=np.int64)
    records = []
    for name, (shape, is_int) in tensors.items():
        if is_int:
            records.append(encode_plain(name, np.zeros(shape, dtype=np.int64)))
        else:
            records.append(encode_shared(name, shape, 2, np.zeros(0, np.float32), none, none))
    return encode_sqz({"meta": meta}, records)


def skeleton_tensors(meta: dict) -> dict[str, tuple[tuple[int, ...], bool]]:
    """The tensor list the model ``meta`` describes, from a meta-device build."""
    from squeezelab.models import ModelMeta, build_model

    m = ModelMeta.from_dict(meta, where="crafted")
    state = build_model(m, skeleton=True).state_dict()
    return {k: (tuple(v.shape), not v.dtype.is_floating_point) for k, v in state.items()}


def safetensors_bytes(meta: dict, tensors: dict | None = None) -> bytes:
    """A safetensors file with ``meta`` under the squeezelab key and no (or given) tensors."""
    header = {"__metadata__": {"squeezelab": json.dumps(meta)}, **(tensors or {})}
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text
