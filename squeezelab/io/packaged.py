"""YAML data files shipped inside the package: search-space presets and hardware profiles.

One loader for both: a name picks ``squeezelab/<folder>/<name>.yaml``, a path reads that
file, and an unknown name lists the close matches.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from squeezelab.errors import FormatError, SqueezelabError, one_line, unknown_name

PACKAGE_DIR = Path(__file__).resolve().parent.parent


def packaged_dir(folder: str) -> Path:
    """The folder of shipped files, e.g. ``packaged_dir("profiles")``."""
    return PACKAGE_DIR / folder


def packaged_names(folder: str) -> list[str]:
    """Names of the YAML files shipped in ``squeezelab/<folder>``, sorted."""
    return sorted(p.stem for p in packaged_dir(folder).glob("*.yaml"))


def load_packaged_yaml(
    folder: str, name_or_path: str | Path, kind: str, error: type[SqueezelabError] = FormatError
) -> tuple[Any, Path]:
    """``(parsed YAML, its path)`` of a shipped name or a YAML file.

    Args:
        folder: the package folder holding the shipped files (``presets``, ``profiles``).
        name_or_path: a shipped name, or a path to a YAML file.
        kind: what the file is, for messages (``"hardware profile"``).
        error: the error raised for a missing file or invalid YAML.

    Example:
        >>> data, _ = load_packaged_yaml("profiles", "eyeriss", "hardware profile")
        >>> data["name"]
        'eyeriss'
    """
    import yaml

    text = str(name_or_path)
    path = Path(text)
    if not path.is_file():
        names = packaged_names(folder)
        if text in names:
            path = packaged_dir(folder) / f"{text}.yaml"
        elif path.suffix in (".yaml", ".yml") or "/" in text:
            raise error(f"{kind} file {text!r} does not exist")
        else:
            raise unknown_name(f"{kind} (file or packaged name)", text, names)
    try:
        return yaml.safe_load(path.read_text()), path
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise error(f"{path}: not valid YAML: {one_line(e)}") from e
