"""Count dataset reads: ``load_dataset`` patched wherever a squeezelab module holds it."""

import sys
from collections import Counter

import squeezelab.data.names
import squeezelab.train.run  # noqa: F401 (imported now, so that its name is patched too)


def count_loads(monkeypatch) -> Counter:
    """A Counter of ``(dataset, split)`` reads from disk, filled as the test runs.

    Every module that imported ``load_dataset`` by name is patched, and lazy imports
    (``from squeezelab.data import load_dataset`` inside a function) find the patched one.
    """
    real = squeezelab.data.names.load_dataset
    loads: Counter = Counter()

    def counting(name_or_dir, split="train", *args, **kwargs):
        loads[(name_or_dir, split)] += 1
        return real(name_or_dir, split, *args, **kwargs)

    for name, module in list(sys.modules.items()):
        if name.startswith("squeezelab") and getattr(module, "load_dataset", None) is real:
            monkeypatch.setattr(module, "load_dataset", counting)
    return loads
