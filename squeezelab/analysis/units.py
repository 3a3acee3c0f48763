"""The one way figures are written for people: sizes, energy, counts, long names.

Sizes are binary (IEC: 1 KiB = 1024 B, the unit of SRAM and flash datasheets and of
the constraints' ``256KiB``); energy is SI (pJ, nJ, µJ, mJ, J). The CLI, the HTML
report and ``advise`` all format through these functions, so a figure reads the same
everywhere.
"""

from __future__ import annotations

BYTE_UNITS = ("B", "KiB", "MiB", "GiB", "TiB")  # steps of 1024
ENERGY_UNITS = ("pJ", "nJ", "µJ", "mJ", "J")  # steps of 1000, from picojoules
SIZE_NOTE = "sizes in binary units (1 KiB = 1024 B)"


def _unit(value: float, base: int, units: tuple[str, ...]) -> tuple[float, str]:
    """``(divisor, unit)`` that puts ``|value|`` in [1, base) (or the last unit)."""
    i = 0
    while abs(value) >= base ** (i + 1) and i < len(units) - 1:
        i += 1
    return float(base**i), units[i]


def _digits(v: float) -> str:
    """Three significant digits, whole numbers from 100 on: "121", "15.6", "1.01", "2.5"."""
    if v and abs(v) < 0.01:  # no exponent in a table cell
        return f"{v:.3f}"
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.3g}"


def format_bytes(n: float | None, unit: str | None = None, bare: bool = False) -> str:
    """A byte count in binary units: ``format_bytes(123_904) == "121 KiB"``.

    Args:
        n: bytes (None prints "-").
        unit: force one of :data:`BYTE_UNITS` (a column in one unit); default: the
            largest unit that leaves at least 1.
        bare: the number alone (the unit is in the column's header).

    Example:
        >>> format_bytes(512), format_bytes(1_058_576), format_bytes(2**21, "KiB")
        ('512 B', '1.01 MiB', '2,048 KiB')
    """
    if n is None:
        return "-"
    div, u = (1024.0 ** BYTE_UNITS.index(unit), unit) if unit else _unit(n, 1024, BYTE_UNITS)
    num = f"{n:,.0f}" if u == "B" else _digits(n / div)
    return num if bare else f"{num} {u}"


def format_energy(pj: float | None, unit: str | None = None, bare: bool = False) -> str:
    """Energy given in picojoules, in SI units: ``format_energy(15_632_590_000) == "15.6 mJ"``.

    Example:
        >>> format_energy(15_632_590_000), format_energy(2.5e6), format_energy(850)
        ('15.6 mJ', '2.5 µJ', '850 pJ')
    """
    if pj is None:
        return "-"
    div, u = (1000.0 ** ENERGY_UNITS.index(unit), unit) if unit else _unit(pj, 1000, ENERGY_UNITS)
    return _digits(pj / div) if bare else f"{_digits(pj / div)} {u}"


def _typical(values: list[float]) -> float:
    """The median of the nonzero ``|values|``: what a column's unit is chosen for."""
    nz = sorted(abs(v) for v in values if v)
    return nz[len(nz) // 2] if nz else 0.0


def byte_unit(values: list[float]) -> str:
    """One unit for a column of sizes: the one that shows its median with 1-3 integer digits
    (larger values then read with thousands separators, small ones keep their digits)."""
    return _unit(_typical(values), 1024, BYTE_UNITS)[1]


def energy_unit(values: list[float]) -> str:
    """One unit for a column of energies (picojoules), chosen as :func:`byte_unit` does."""
    return _unit(_typical(values), 1000, ENERGY_UNITS)[1]


def format_count(n: float | None) -> str:
    """An integer count with thousands separators: ``format_count(1248424) == "1,248,424"``."""
    return "-" if n is None else f"{n:,.0f}"


def abbreviate(name: str, width: int) -> str:
    """``name`` cut from the middle to ``width`` characters, both ends kept.

    Example:
        >>> abbreviate("features.12.expand3x3_activation", 20)
        'features.…activation'
    """
    if len(name) <= width or width < 3:
        return name
    head = (width - 1) // 2
    tail = width - 1 - head
    return f"{name[:head]}…{name[-tail:]}"


def format_metric(key: str, value) -> str:
    """One metric of a study or profile by its key's unit (``model_bytes[4bit]`` is bytes).

    Example:
        >>> format_metric("model_bytes[4bit]", 2048), format_metric("accuracy", 0.8531)
        ('2 KiB', '85.31 %')
    """
    if value is None:
        return "-"
    base = str(key).split("[", 1)[0]
    if base.endswith("accuracy"):
        return f"{100 * value:.2f} %"
    if base.endswith("bytes"):
        return format_bytes(value)
    if base.endswith("_pj"):
        return format_energy(value)
    if base.endswith("_ms"):
        return f"{value:,.3f} ms"
    if base in ("params", "macs", "other_ops"):
        return format_count(value)
    return f"{value:,.4g}" if isinstance(value, float) else str(value)


def format_score(value: float, metric: str = "top1") -> str:
    """``0.8717`` -> ``"87.17%"`` (top-1) or ``"0.8717"`` (mAP, as COCO prints it)."""
    return f"{value:.2%}" if metric == "top1" else f"{value:.4f}"
