"""Preprocessing metadata of a model to deploy, filled in from its input shape.

The metadata follows the model-file contract (``squeezelab.fileio``): model, num_classes,
in_chans, input_size, classes and normalization (per-channel mean/std applied to x/255).
"""

from __future__ import annotations

from typing import Any

from squeezelab.fileio import default_normalization


def complete_meta(meta: dict[str, Any], input_shape: tuple[int, int, int]) -> dict[str, Any]:
    """Fill the preprocessing fields a deployed model needs from its input shape."""
    c, h, _ = input_shape
    out = dict(meta)
    out.setdefault("in_chans", c)
    out.setdefault("input_size", h)
    if not out.get("normalization"):
        out["normalization"] = default_normalization(c)
    return out
