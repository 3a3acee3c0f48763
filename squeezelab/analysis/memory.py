"""Peak activation memory: buffer liveness in execution order.

A buffer (one tensor storage) is alive from the operation that writes it until the last
operation that reads it, so a concat input or a bypass input stays alive until the
concat or the add consumes it; views and in-place ops alias their input's buffer. This
is the memory a microcontroller's SRAM must hold at once (Lin et al. 2020, MCUNet,
arXiv 2007.10319, section 3, "peak memory").
"""

from __future__ import annotations

from collections.abc import Sequence


def liveness(
    steps: Sequence[tuple[Sequence[int], Sequence[int]]],
    sizes: dict[int, int],
    inputs: Sequence[int] = (),
    outputs: Sequence[int] = (),
) -> list[int]:
    """Bytes alive during each step, given ``(reads, writes)`` buffer keys per step.

    Args:
        steps: per operation in execution order, the buffer keys it reads and writes.
        sizes: bytes per buffer key.
        inputs: buffers alive before the first step (the model input).
        outputs: buffers alive until after the last step (the model output).

    Returns:
        One total per step; the peak activation memory is its maximum.

    Example:
        >>> liveness([([1], [2]), ([2], [3])], {1: 10, 2: 20, 3: 30}, inputs=[1], outputs=[3])
        [30, 50]
    """
    first: dict[int, int] = {k: 0 for k in inputs}
    last: dict[int, int] = {}
    for i, (reads, writes) in enumerate(steps):
        for k in (*reads, *writes):
            first.setdefault(k, i)
            last[k] = i
    end = len(steps) - 1
    for k in outputs:
        last[k] = end
    delta = [0] * (len(steps) + 1)
    for k, start in first.items():
        delta[start] += sizes[k]
        delta[last.get(k, start) + 1] -= sizes[k]
    alive, total = [], 0
    for d in delta[:-1]:
        total += d
        alive.append(total)
    return alive
