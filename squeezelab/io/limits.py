"""How much a model file may make a reader allocate (docs/security.md).

A decoder checks what a file claims against these before it allocates anything: the
elements of all its tensors, bounded by what the file's size can hold and by an absolute
ceiling, and the activations of one forward pass. A user who trusts a larger file raises
the ceiling with the environment variable ``SQUEEZELAB_MAX_ELEMENTS`` (or a reader's
``max_params`` argument); that value then replaces both bounds on tensor elements.
"""

from __future__ import annotations

import os

from squeezelab.errors import ConfigError

ENV_MAX_ELEMENTS = "SQUEEZELAB_MAX_ELEMENTS"
MAX_PARAMS = 300_000_000  # tensor elements no file may ask for unless the ceiling is raised
# A .sqz stores pruned weights as gaps, so one byte stands for many zeros: alexnet_small at
# 99.9% sparsity and 2 bits holds 303 elements per byte; 4096 leaves 13x headroom.
SQZ_ELEMENTS_PER_BYTE = 4096
MIN_ELEMENTS = 1 << 20  # always allowed, so a tiny valid model never depends on the ratio
MAX_ACTIVATIONS = 1 << 28  # outputs of all layers for one image (1 GiB of float32)
MAX_INPUT_ELEMENTS = 1 << 26  # channels x side x side of one input image


def raised_ceiling(max_params: int | None = None) -> int | None:
    """The ceiling a caller or ``SQUEEZELAB_MAX_ELEMENTS`` set, else ``None`` (defaults)."""
    if max_params is not None:
        value, source = max_params, "max_params"
    else:
        text = os.environ.get(ENV_MAX_ELEMENTS, "").strip()
        if not text:
            return None
        try:
            value, source = int(text.replace("_", "")), ENV_MAX_ELEMENTS
        except ValueError:
            value, source = -1, ENV_MAX_ELEMENTS
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigError(f"{source}={value!r} is invalid: allowed an integer >= 1 (elements)")
    return value


def element_limit(
    file_bytes: int, per_byte: float, max_params: int | None = None, floor: int = MIN_ELEMENTS
) -> int:
    """Tensor elements a file of ``file_bytes`` may decode to.

    ``min(MAX_PARAMS, max(floor, per_byte * file_bytes))`` by default; a raised ceiling
    (``max_params`` or ``SQUEEZELAB_MAX_ELEMENTS``) replaces it.

    Example:
        >>> element_limit(1000, SQZ_ELEMENTS_PER_BYTE) == max(MIN_ELEMENTS, 4_096_000)
        True
    """
    raised = raised_ceiling(max_params)
    if raised is not None:
        return raised
    return min(MAX_PARAMS, max(floor, int(per_byte * file_bytes)))


def how_to_raise() -> str:
    """The hint every refusal ends with."""
    return f"if you trust the file, set {ENV_MAX_ELEMENTS} to a larger element count"
