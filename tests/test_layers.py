"""The layer order of docs/architecture.md, pinned: every import (lazy ones too) goes down.

A package may import from the layers below it, never from its own layer's other packages
or from above, and never a private (``_name``) module or name of another package.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "squeezelab"
# lowest first; packages on one line share a layer and do not import each other
LAYERS = [
    {"errors", "lazy"},  # lazy: the import-on-first-use helper of package roots
    {"io"},
    {"models"},
    {"data"},
    {"analysis"},
    {"train"},
    {"compress"},
    {"export"},
    {"explore", "advise"},
    {"report"},  # renders explore's StudyResults
    {"design"},
    {"cli"},
    {"demo", "__main__"},  # entry points: `make demo` and `python -m squeezelab`
]
RANK = {pkg: i for i, layer in enumerate(LAYERS) for pkg in layer}


def _package(path: Path) -> str:
    rel = path.relative_to(ROOT)
    return rel.parts[0].removesuffix(".py") if rel.parts[0] != "__init__.py" else ""


def _imports(path: Path):
    """``(line, dotted name)`` of every squeezelab import in a module, at any depth."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for a in node.names:
                yield node.lineno, a.name
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            for a in node.names:
                yield node.lineno, f"{node.module}.{a.name}"


MODULES = sorted(p for p in ROOT.rglob("*.py"))


def test_every_package_has_a_layer():
    packages = {_package(p) for p in MODULES} - {""}
    assert packages <= set(RANK), f"add {sorted(packages - set(RANK))} to LAYERS and the doc"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_go_down_and_stay_public(path):
    here = _package(path)
    bad = []
    for line, name in _imports(path):
        parts = name.split(".")
        if parts[0] != "squeezelab" or len(parts) < 2 or parts[1] == "__version__":
            continue
        target = parts[1]
        if not here or target == here:
            continue
        if target not in RANK:
            bad.append(f"line {line}: {here} imports {name}, which is no squeezelab package")
        elif RANK[target] >= RANK[here]:
            bad.append(
                f"line {line}: {here} (layer {RANK[here]}) imports {name} (layer {RANK[target]})"
            )
        private = [p for p in parts[2:] if p.startswith("_") and not p.startswith("__")]
        if private:
            bad.append(f"line {line}: {here} imports the private {name} of {target}")
    assert not bad, "\n".join(bad)


def test_the_doc_lists_the_same_order():
    doc = (ROOT.parent / "docs" / "architecture.md").read_text()
    order = [pkg for layer in LAYERS for pkg in sorted(layer) if pkg not in ("demo", "__main__")]
    positions = [doc.index(f"`{pkg}`") for pkg in order]
    assert positions == sorted(positions), "docs/architecture.md lists the layers in another order"
