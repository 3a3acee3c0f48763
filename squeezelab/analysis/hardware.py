"""Hardware profiles: the numbers the energy and roofline latency model needs.

A profile is a YAML file (shipped ones live in ``squeezelab/profiles/``) holding peak
MAC/s and energy per MAC per data type, DRAM bandwidth, the on-chip buffer, energy per
byte of DRAM and SRAM traffic (Horowitz, ISSCC 2014), per-op-type efficiencies, the
runtime whose speed it describes (``runtime``) and the runtimes its device deploys with
(``deploy``: which file a design ships). ``squeezelab calibrate`` writes one for the
machine it runs on.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from squeezelab.analysis.costs import OP_CLASSES
from squeezelab.errors import FormatError
from squeezelab.io.packaged import load_packaged_yaml, packaged_dir, packaged_names

PROFILE_DIR = packaged_dir("profiles")
DTYPES = ("int8", "fp16", "fp32")  # narrow to wide
# Runtimes a design can ship for, and the file each one runs.
DEPLOY_RUNTIMES = {
    "tflite-micro": "int8 .tflite + C array (TensorFlow Lite Micro)",
    "litert": "int8 .tflite (LiteRT)",
    "onnxruntime": "int8 .onnx (ONNX Runtime)",
}
# Profiles written before ``deploy`` existed: their kernel library implies the runtime.
_DEPLOY_OF_RUNTIME = {
    "cmsis-nn": ("tflite-micro",),
    "tflite-micro": ("tflite-micro",),
    "tflite-xnnpack": ("litert",),
    "litert": ("litert",),
    "onnxruntime": ("onnxruntime",),
}


@dataclass(frozen=True)
class Hardware:
    name: str
    runtime: str  # what executes the model: "analytic", "torch-eager", "cmsis-nn", ...
    peak_macs_per_s: dict[str, float]  # per data type (int8, fp16, fp32)
    peak_other_ops_per_s: dict[str, float]  # elementwise ops per second, per data type
    dram_bytes_per_s: float  # off-chip bandwidth (flash on a microcontroller)
    mac_pj: dict[str, float]  # energy of one multiply-add, per data type
    op_pj: dict[str, float]  # energy of one elementwise op (an add), per data type
    dram_pj_per_byte: float  # off-chip access energy
    sram_pj_per_byte: float  # on-chip buffer access energy
    onchip_buffer_bytes: int | None = None  # working set that stays on chip; None: unlimited
    onchip_bytes_per_s: float | None = None  # time per on-chip byte, added; None: free
    sram_bytes: int | None = None  # hard limit on activation memory; None: no limit (has DRAM)
    flash_bytes: int | None = None  # hard limit on model bytes; None: no limit
    efficiency: dict[str, float] = field(default_factory=dict)  # op class -> share of peak
    overhead_ms: dict[str, float] = field(default_factory=dict)  # op class -> fixed cost per op
    threads: int | None = None  # threads the runtime was calibrated with
    # runtimes the device deploys with, preferred first (keys of DEPLOY_RUNTIMES); ():
    # an analytic target, no file to ship
    deploy: tuple[str, ...] = ()
    description: str = ""
    source: str = ""  # file it was read from

    def dtype(self, bits: int) -> str:
        """The data type of ``bits``-wide operands: int8 (<= 8), fp16 (<= 16) or fp32."""
        return "int8" if bits <= 8 else "fp16" if bits <= 16 else "fp32"

    def per_dtype(self, table: dict[str, float], bits: int) -> float:
        """``table[dtype]``, falling back to the next wider type the profile lists."""
        for dt in DTYPES[DTYPES.index(self.dtype(bits)) :]:
            if dt in table:
                return table[dt]
        return table[next(iter(table))]

    def eff(self, op: str) -> float:
        return self.efficiency.get(op, self.efficiency.get("default", 1.0))

    def overhead_s(self, op: str) -> float:
        return self.overhead_ms.get(op, self.overhead_ms.get("default", 0.0)) / 1e3

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d.pop("source")
        d["deploy"] = list(self.deploy)
        return d

    @property
    def tflm(self) -> bool:
        """Whether the device runs TensorFlow Lite Micro (so its arena must fit ``sram_bytes``)."""
        return "tflite-micro" in self.deploy

    def to_yaml(self) -> str:
        import yaml

        return yaml.safe_dump(self.to_dict(), sort_keys=False)


_REQUIRED = (
    "name",
    "runtime",
    "peak_macs_per_s",
    "peak_other_ops_per_s",
    "dram_bytes_per_s",
    "mac_pj",
    "op_pj",
    "dram_pj_per_byte",
    "sram_pj_per_byte",
)
_FIELDS = {f.name for f in dataclasses.fields(Hardware)} - {"source"}


def _bad(where: str, key: str, value: Any, allowed: str) -> FormatError:
    return FormatError(f"{where}: {key}={value!r} is invalid: allowed {allowed}")


def _positive(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) and v > 0


def hardware_from_dict(d: Any, where: str = "profile") -> Hardware:
    """Validate a profile mapping and build a :class:`Hardware`; FormatError names the field."""
    if not isinstance(d, dict):
        raise FormatError(f"{where}: a hardware profile must be a mapping, got {type(d).__name__}")
    unknown = sorted(set(d) - _FIELDS)
    if unknown:
        raise FormatError(f"{where}: unknown field(s) {unknown}; allowed: {sorted(_FIELDS)}")
    missing = [k for k in _REQUIRED if k not in d]
    if missing:
        raise FormatError(f"{where}: missing field(s) {missing}")
    for key in ("name", "runtime"):
        if not isinstance(d[key], str) or not d[key]:
            raise _bad(where, key, d[key], "a non-empty string")
    for key in ("peak_macs_per_s", "peak_other_ops_per_s", "mac_pj", "op_pj"):
        table = d[key]
        if not isinstance(table, dict) or not table:
            raise _bad(
                where, key, table, f"a mapping from data type ({', '.join(DTYPES)}) to a number > 0"
            )
        for dt, v in table.items():
            if dt not in DTYPES or not _positive(v):
                raise _bad(where, f"{key}.{dt}", v, f"data types {list(DTYPES)} with numbers > 0")
    for key in ("dram_bytes_per_s", "dram_pj_per_byte", "sram_pj_per_byte"):
        if not _positive(d[key]):
            raise _bad(where, key, d[key], "a number > 0")
    if d.get("onchip_bytes_per_s") is not None and not _positive(d["onchip_bytes_per_s"]):
        raise _bad(where, "onchip_bytes_per_s", d["onchip_bytes_per_s"], "a number > 0 or null")
    for key in ("onchip_buffer_bytes", "sram_bytes", "flash_bytes", "threads"):
        v = d.get(key)
        if v is not None and not (isinstance(v, int) and not isinstance(v, bool) and v > 0):
            raise _bad(where, key, v, "an integer > 0 or null (unlimited)")
    for key, ok in (("efficiency", _positive), ("overhead_ms", lambda v: _positive(v) or v == 0)):
        table = d.get(key) or {}
        if not isinstance(table, dict):
            raise _bad(where, key, table, "a mapping from op class to a number")
        for op, v in table.items():
            if op not in (*OP_CLASSES, "default") or not ok(v):
                raise _bad(
                    where,
                    f"{key}.{op}",
                    v,
                    f"op classes {[*OP_CLASSES, 'default']} with numbers > 0",
                )
    deploy = d.get("deploy", _DEPLOY_OF_RUNTIME.get(d["runtime"], ()))
    if isinstance(deploy, str):
        deploy = [deploy]
    if not isinstance(deploy, list | tuple) or any(
        not isinstance(r, str) or r not in DEPLOY_RUNTIMES for r in deploy
    ):
        raise _bad(
            where,
            "deploy",
            d.get("deploy"),
            f"a runtime or a list of runtimes from {list(DEPLOY_RUNTIMES)} (or [])",
        )
    return Hardware(
        **{
            **d,
            "deploy": tuple(dict.fromkeys(deploy)),
            "efficiency": d.get("efficiency") or {},
            "overhead_ms": d.get("overhead_ms") or {},
        },
        source=where,
    )


def list_hardware() -> list[str]:
    """Names of the shipped hardware profiles, e.g. ``["cortex-m7", "eyeriss", ...]``."""
    return packaged_names("profiles")


def load_hardware(name_or_path: str | Path) -> Hardware:
    """A shipped profile by name, or a profile YAML file by path.

    Example:
        >>> load_hardware("horowitz-45nm").dram_pj_per_byte
        160.0
    """
    data, path = load_packaged_yaml("profiles", name_or_path, "hardware profile")
    return hardware_from_dict(data, str(path))


def save_hardware(hw: Hardware, path: str | Path, comment: str = "") -> None:
    """Write ``hw`` as a profile YAML file (atomically), ``comment`` lines first."""
    from squeezelab.io import atomic_write_bytes

    header = "".join(f"# {line}\n" for line in comment.splitlines())
    atomic_write_bytes(path, (header + hw.to_yaml()).encode())
