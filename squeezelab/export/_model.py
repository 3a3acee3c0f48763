"""Load a model to deploy (zoo name, model file, ``.sqz``) with its preprocessing metadata.

The metadata follows the model-file contract (``squeezelab.fileio``): model, num_classes,
in_chans, input_size, classes and normalization (per-channel mean/std applied to x/255).
"""

from __future__ import annotations

from typing import Any

from squeezelab.fileio import default_normalization, zoo_meta
from squeezelab.fileio import load_any_model as load_model

__all__ = ["complete_meta", "default_normalization", "load_model", "zoo_meta"]


def complete_meta(meta: dict[str, Any], input_shape: tuple[int, int, int]) -> dict[str, Any]:
    """Fill the preprocessing fields a deployed model needs from its input shape."""
    c, h, _ = input_shape
    out = dict(meta)
    out.setdefault("in_chans", c)
    out.setdefault("input_size", h)
    if not out.get("normalization"):
        out["normalization"] = default_normalization(c)
    return out
