"""The search spaces shipped in ``squeezelab/presets``, and reading a space from YAML."""

from __future__ import annotations

from pathlib import Path

from squeezelab.errors import ConfigError
from squeezelab.explore.space import Space
from squeezelab.explore.space_checks import space_from_dict
from squeezelab.io.packaged import load_packaged_yaml, packaged_names


def list_presets() -> list[str]:
    """Names of the search spaces shipped in ``squeezelab/presets``."""
    return packaged_names("presets")


def load_space(path_or_preset: str | Path) -> Space:
    """Read a space from a YAML file or a preset name.

    Example:
        >>> load_space("paper-sr-sweep").sampler
        'grid'
    """
    data, path = load_packaged_yaml("presets", path_or_preset, "search space", ConfigError)
    return space_from_dict(data, default_name=path.stem)
