"""Generated firmware, checked: host gcc against TFLite Micro, Cortex-M in QEMU against the host.

1. The sources of :func:`~squeezelab.export.firmware.write_firmware` are compiled with the
   host gcc (``-std=c99 -Wall -Wextra -Werror``) into a runner fed the test images; its
   int8 outputs are compared with TFLite Micro's host interpreter's (0 LSB expected).
2. For a profile that names a Cortex-M core the same sources are cross-compiled with
   ``arm-none-eabi-gcc`` (no C library: a startup file and semihosting calls of our own)
   against a linker script whose FLASH and RAM are the profile's ``flash_bytes`` and
   ``sram_bytes``; a design that does not fit fails to link, named by section and bytes.
3. The ELF runs in ``qemu-system-arm`` on the matching board (``mps2-an500`` for a
   Cortex-M7) with ``-icount shift=0`` and prints the outputs on the images it carries,
   and the SysTick ticks of each inference; a loop of a known instruction count turns
   ticks into *instructions* (not cycles: QEMU models no pipeline, caches or flash wait
   states). Flash (text, rodata, data) and SRAM (data, bss, stack) are read from the ELF.

Needs Debian's ``gcc-arm-none-eabi``, ``libnewlib-arm-none-eabi`` (the compiler's
headers) and ``qemu-system-arm`` for steps 2 and 3; :func:`missing_tools` names what is
absent.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from squeezelab.errors import ConfigError, FormatError, InfeasibleError
from squeezelab.export.firmware import FirmwareSources, kernel_dir, write_firmware

ARM_PACKAGES = ("gcc-arm-none-eabi", "libnewlib-arm-none-eabi", "qemu-system-arm")
HOST_CFLAGS = ("-std=c99", "-Wall", "-Wextra", "-Werror", "-O2")
STACK_BYTES = 2048  # reserved in RAM by the linker script; model_run needs a few hundred
CALIBRATION_LOOPS = 1_000_000  # 2 instructions each: the ticks -> instructions scale
QEMU_TIMEOUT_S = 300.0
N_QEMU_IMAGES = 10  # test images built into the firmware (each costs flash and QEMU time)


@dataclass(frozen=True)
class ArmTarget:
    """How to build for and emulate one Cortex-M core."""

    core: str  # "cortex-m7"
    machine: str  # QEMU board with that core
    cflags: tuple[str, ...]


# QEMU 7.2's boards: mps2-an500 (Cortex-M7), mps2-an386 (M4), mps3-an547 (M55)
TARGETS = {
    "cortex-m7": ArmTarget(
        "cortex-m7",
        "mps2-an500",
        ("-mcpu=cortex-m7", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv5-d16"),
    ),
    "cortex-m4": ArmTarget(
        "cortex-m4",
        "mps2-an386",
        ("-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16"),
    ),
    "cortex-m55": ArmTarget("cortex-m55", "mps3-an547", ("-mcpu=cortex-m55", "-mthumb")),
}


def arm_target(hardware) -> ArmTarget | None:
    """The Cortex-M core a hardware profile names (in its name or description), if any."""
    text = f"{getattr(hardware, 'name', '')} {getattr(hardware, 'description', '')}".lower()
    m = re.search(r"cortex-m(\d+)", text)
    return TARGETS.get(f"cortex-m{m.group(1)}") if m else None


NEWLIB = Path("/usr/include/newlib/stdint.h")  # libnewlib-arm-none-eabi's C headers


def missing_tools() -> str | None:
    """A sentence naming the Debian packages whose tools are absent, or None."""
    absent = [
        pkg
        for pkg, present in (
            ("gcc-arm-none-eabi", shutil.which("arm-none-eabi-gcc")),
            ("libnewlib-arm-none-eabi", NEWLIB.is_file()),
            ("qemu-system-arm", shutil.which("qemu-system-arm")),
        )
        if not present
    ]
    if not absent:
        return None
    return (
        f"firmware checks need the Debian packages {', '.join(ARM_PACKAGES)} "
        f"({', '.join(absent)} missing): apt-get install -y {' '.join(ARM_PACKAGES)}"
    )


def _run(cmd: list[str], what: str, **kw) -> subprocess.CompletedProcess:
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    except FileNotFoundError as e:
        raise ConfigError(f"{what}: {cmd[0]} is not installed") from e
    return r


# -- host ---------------------------------------------------------------------------------


def build_host(src: FirmwareSources, work: str | Path) -> Path:
    """Compile the generated model and the host runner with the host gcc, warnings as errors.

    Raises:
        FormatError: the generated C does not compile (its first error line).
    """
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        raise ConfigError("the host check needs a C compiler (gcc): apt-get install -y gcc")
    exe = Path(work) / "model_host"
    d = Path(src.dir)
    files = [d / "model.c", d / "sqz_kernels.c", kernel_dir() / "host_main.c"]
    r = _run([cc, *HOST_CFLAGS, "-I", str(d), *map(str, files), "-o", str(exe)], "host build")
    if r.returncode != 0:
        first = next((ln for ln in r.stderr.splitlines() if "error" in ln), r.stderr[:300])
        raise FormatError(f"{d}: the generated C does not compile: {first.strip()}")
    return exe


def run_host(exe: Path, inputs: np.ndarray, n_out: int) -> np.ndarray:
    """int8 outputs ``(N, n_out)`` of the host runner on int8 inputs ``(N, ...)``."""
    x = np.ascontiguousarray(inputs, np.int8)
    r = subprocess.run([str(exe)], input=x.tobytes(), capture_output=True, timeout=QEMU_TIMEOUT_S)
    y = np.frombuffer(r.stdout, np.int8)
    if r.returncode != 0 or y.size != len(x) * n_out:
        raise FormatError(f"{exe}: the host runner failed (exit {r.returncode})")
    return y.reshape(len(x), n_out)


def tflm_outputs(tflite_path: str | Path, inputs: np.ndarray) -> tuple[np.ndarray, int]:
    """TFLite Micro's int8 outputs on ``inputs`` and its smallest arena (host interpreter)."""
    from squeezelab.export.tflm import run_child

    p = Path(tflite_path).resolve()
    out = run_child(p, np.ascontiguousarray(inputs, np.int8), str(tflite_path), reference=False)
    return np.asarray(out["outputs"]).astype(np.int8), int(out["arena_bytes"])


# -- Cortex-M -----------------------------------------------------------------------------

_LD = """/* squeezelab firmware: FLASH and RAM are the profile's {profile} limits. */
ENTRY(Reset_Handler)
MEMORY
{{
  FLASH (rx) : ORIGIN = 0x00000000, LENGTH = {flash}
  RAM (rwx) : ORIGIN = 0x20000000, LENGTH = {sram}
}}
SECTIONS
{{
  .isr_vector : {{ KEEP(*(.isr_vector)) }} > FLASH
  .text : {{ *(.text*) }} > FLASH
  .rodata : {{ *(.rodata*) . = ALIGN(4); }} > FLASH
  .sqz_images : {{ KEEP(*(.sqz_images)) . = ALIGN(4); }} > FLASH
  _sidata = LOADADDR(.data);
  .data : {{ . = ALIGN(4); _sdata = .; *(.data*) . = ALIGN(4); _edata = .; }} > RAM AT > FLASH
  .bss (NOLOAD) : {{ . = ALIGN(4); _sbss = .; *(.bss*) *(COMMON) . = ALIGN(4); _ebss = .; }} > RAM
  .stack (NOLOAD) : {{ . = ALIGN(8); . = . + {stack}; _estack = .; }} > RAM
  /DISCARD/ : {{ *(.ARM.exidx*) *(.comment) }}
}}
"""


@dataclass(frozen=True)
class ArmBuild:
    """An ELF for the emulated core and what it takes (read from its section headers)."""

    elf: str
    core: str
    machine: str
    flash_bytes: int  # text + rodata + data (its load image), without the test images
    sram_bytes: int  # data + bss + stack
    arena_bytes: int  # the model's static activation buffer (symbol size in the ELF)
    model_flash_bytes: int  # flash of the model and its kernels alone (no startup, runner)
    stack_bytes: int
    images_bytes: int  # flash the built-in test images take (not counted above)
    n_images: int
    flash_limit_bytes: int
    sram_limit_bytes: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _images_c(inputs: np.ndarray) -> tuple[str, str]:
    n, size = len(inputs), int(np.prod(inputs.shape[1:]))
    rows = ",\n".join(
        "  {" + ", ".join(str(int(v)) for v in img.reshape(-1)) + "}" for img in inputs
    )
    h = (
        "#ifndef SQZ_IMAGES_H_\n#define SQZ_IMAGES_H_\n#include <stdint.h>\n"
        f"#define SQZ_N_IMAGES {n}\n#define SQZ_CALIBRATION_LOOPS {CALIBRATION_LOOPS}u\n"
        f"extern const int8_t sqz_images[{n}][{size}];\n#endif\n"
    )
    c = (
        '#include "images.h"\n'
        f'__attribute__((section(".sqz_images"))) const int8_t sqz_images[{n}][{size}] = {{\n'
        + rows
        + "\n};\n"
    )
    return c, h


def _overflow_message(stderr: str, hardware, src: FirmwareSources) -> str | None:
    sections = re.findall(r"section [`'](\.?\w+)' will not fit in region [`'](\w+)'", stderr)
    regions = re.findall(r"region [`'](\w+)' overflowed by (\d+) bytes", stderr)
    if not regions:
        return None
    region, n = regions[0]
    section = next((s for s, r in sections if r == region), "?")
    limit, what = (
        (hardware.sram_bytes, "sram_bytes")
        if region == "RAM"
        else (hardware.flash_bytes, "flash_bytes")
    )
    return (
        f"firmware for {hardware.name} does not fit: section {section} overflows {region} "
        f"({what} {limit:,} B) by {int(n):,} bytes (static arena {src.arena_bytes:,} B, "
        f"weights and parameters {src.const_bytes:,} B): allowed a smaller design"
    )


def _sections(elf: Path) -> dict[str, int]:
    r = _run(["arm-none-eabi-size", "-A", str(elf)], "arm-none-eabi-size")
    out = {}
    for ln in r.stdout.splitlines():
        parts = ln.split()
        if len(parts) >= 2 and parts[0].startswith(".") and parts[1].isdigit():
            out[parts[0]] = int(parts[1])
    return out


def _symbol_sizes(path: Path) -> dict[str, int]:
    r = _run(["arm-none-eabi-nm", "-S", "--size-sort", str(path)], "arm-none-eabi-nm")
    sizes = {}
    for ln in r.stdout.splitlines():
        parts = ln.split()
        if len(parts) == 4:
            sizes[parts[3]] = int(parts[1], 16)
    return sizes


def build_arm(src: FirmwareSources, hardware, inputs: np.ndarray, work: str | Path) -> ArmBuild:
    """Cross-compile the model, its kernels and the test runner into an ELF for ``hardware``.

    Raises:
        ConfigError: the profile names no Cortex-M core, or the toolchain is missing.
        InfeasibleError: the firmware does not fit the profile's flash or SRAM (the
            section and the overflow in bytes named).
    """
    target = arm_target(hardware)
    if target is None:
        raise ConfigError(
            f"hardware {hardware.name!r} names no Cortex-M core: allowed a profile whose "
            f"name or description says one of {', '.join(TARGETS)}"
        )
    missing = missing_tools()
    if missing:
        raise ConfigError(missing)
    if not hardware.sram_bytes or not hardware.flash_bytes:
        raise ConfigError(f"hardware {hardware.name!r}: sram_bytes and flash_bytes must be set")
    w, d, k = Path(work), Path(src.dir), kernel_dir()
    ic, ih = _images_c(inputs)
    (w / "images.c").write_text(ic)
    (w / "images.h").write_text(ih)
    ld = w / "firmware.ld"
    ld.write_text(
        _LD.format(
            profile=hardware.name,
            flash=hardware.flash_bytes,
            sram=hardware.sram_bytes,
            stack=STACK_BYTES,
        )
    )
    flags = [
        *target.cflags,
        "-std=c99",
        "-O2",
        "-Wall",
        "-Wextra",
        "-Werror",
        "-ffunction-sections",
        "-fdata-sections",
        "-ffreestanding",
    ]
    for name in ("arm_startup.c", "arm_main.c"):  # beside images.c: the folder builds alone
        shutil.copyfile(k / name, w / name)
    rel = os.path.relpath(d, w)  # commands run in ``work``, so build.sh replays them there
    objs, script = (
        [],
        ["#!/bin/sh", "# squeezelab firmware build, replayable: sh build.sh", "set -e"],
    )
    for s in (f"{rel}/model.c", f"{rel}/sqz_kernels.c", "arm_startup.c", "arm_main.c", "images.c"):
        o = Path(s).stem + ".o"
        cmd = ["arm-none-eabi-gcc", *flags, "-I", rel, "-I", ".", "-c", s, "-o", o]
        script.append(shlex.join(cmd))
        r = _run(cmd, "arm build", cwd=w)
        if r.returncode != 0:
            first = next((ln for ln in r.stderr.splitlines() if "error" in ln), r.stderr[:300])
            raise FormatError(f"{s}: does not compile for {target.core}: {first.strip()}")
        objs.append(o)
    elf = w / "firmware.elf"
    link = [
        "arm-none-eabi-gcc",
        *target.cflags,
        "-nostdlib",
        "-nostartfiles",
        "-Wl,--gc-sections",
        "-T",
        ld.name,
        *objs,
        "-lgcc",
        "-o",
        elf.name,
    ]
    script.append(shlex.join(link))
    r = _run(link, "arm link", cwd=w)
    run = qemu_args(target.machine, target.core, elf.name)
    script += ["arm-none-eabi-size -A firmware.elf", shlex.join(run)]
    (w / "build.sh").write_text("\n".join(script) + "\n")
    if r.returncode != 0:
        msg = _overflow_message(r.stderr, hardware, src)
        if msg:
            raise InfeasibleError(msg)
        first = next((ln for ln in r.stderr.splitlines() if ln.strip()), "no message")
        raise FormatError(f"{elf}: link failed: {first.strip()}")
    sec = _sections(elf)
    flash = sum(sec.get(s, 0) for s in (".isr_vector", ".text", ".rodata", ".data"))
    sram = sum(sec.get(s, 0) for s in (".data", ".bss", ".stack"))
    # the model's and its kernels' symbols that survived --gc-sections, read from the ELF
    syms = _symbol_sizes(elf)
    model_syms = set(_symbol_sizes(w / objs[0])) | set(_symbol_sizes(w / objs[1]))
    model_flash = sum(n for s, n in syms.items() if s in model_syms and s != "sqz_arena")
    return ArmBuild(
        elf=str(elf),
        core=target.core,
        machine=target.machine,
        flash_bytes=flash,
        sram_bytes=sram,
        arena_bytes=syms.get("sqz_arena", 0),
        model_flash_bytes=model_flash,
        stack_bytes=sec.get(".stack", 0),
        images_bytes=sec.get(".sqz_images", 0),
        n_images=len(inputs),
        flash_limit_bytes=int(hardware.flash_bytes),
        sram_limit_bytes=int(hardware.sram_bytes),
    )


def qemu_args(machine: str, core: str, elf: str) -> list[str]:
    """The command that runs a firmware ELF in QEMU (the README shows it)."""
    return [
        "qemu-system-arm",
        "-machine",
        machine,
        "-cpu",
        core,
        "-nographic",
        "-monitor",
        "none",
        "-serial",
        "none",
        "-icount",
        "shift=0",
        "-semihosting-config",
        "enable=on,target=native",
        "-kernel",
        elf,
    ]


def qemu_command(build: ArmBuild) -> list[str]:
    """The command that runs ``build`` in QEMU."""
    return qemu_args(build.machine, build.core, build.elf)


def run_qemu(build: ArmBuild, n_out: int) -> tuple[np.ndarray, list[int]]:
    """The int8 outputs the firmware prints in QEMU, and the instructions of each inference.

    Raises:
        FormatError: QEMU fails, times out or prints something else than the runner does.
    """
    try:
        r = subprocess.run(
            qemu_command(build), capture_output=True, text=True, timeout=QEMU_TIMEOUT_S
        )
    except subprocess.TimeoutExpired as e:
        raise FormatError(f"{build.elf}: QEMU ran past {QEMU_TIMEOUT_S:g} s") from e
    except FileNotFoundError as e:
        raise ConfigError(missing_tools() or "qemu-system-arm is not installed") from e
    text = r.stdout + r.stderr  # QEMU writes semihosting's SYS_WRITE0 to its stderr
    outs, ticks, cal = [], [], 0
    for ln in text.splitlines():
        parts = ln.split()
        if len(parts) == 4 and parts[0] == "out" and len(parts[2]) == 2 * n_out:
            outs.append(np.frombuffer(bytes.fromhex(parts[2]), np.int8))
            ticks.append(int(parts[3], 16))
        elif len(parts) == 3 and parts[0] == "cal":
            cal = int(parts[2], 16)
    if r.returncode != 0 or "done" not in text or len(outs) != build.n_images or cal <= 0:
        last = text.strip().splitlines()[-1:] or ["no output"]
        raise FormatError(
            f"{build.elf}: the firmware did not finish in QEMU {build.machine} "
            f"(exit {r.returncode}: {last[0][:200]})"
        )
    per_tick = 2 * CALIBRATION_LOOPS / cal  # instructions per SysTick tick
    return np.stack(outs), [round(t * per_tick) for t in ticks]


# -- the whole check ----------------------------------------------------------------------


@dataclass(frozen=True)
class FirmwareCheck:
    """What :func:`check_firmware` built, ran and measured."""

    dir: str  # where model.c / model.h (and the ELF) are
    ops: tuple[str, ...]
    arena_bytes: int  # the static activation buffer = the planner's head
    n_host: int  # images run by the host build
    host_equal: int  # of them, outputs equal to TFLite Micro's (every byte)
    host_vs_tflm_max_lsb: int
    tflm_arena_bytes: int  # TFLM's smallest arena for the same file (host interpreter)
    tflite_bytes: int
    machine: str = ""  # QEMU board ("" when the profile names no Cortex-M core)
    core: str = ""
    n_qemu: int = 0  # images the firmware carries and ran in QEMU
    qemu_equal: int = 0  # of them, outputs equal to the host build's
    flash_bytes: int = 0  # ELF: text + rodata + data, without the test images
    predicted_flash_bytes: int = 0  # firmware.generate's prediction, before building
    sram_bytes: int = 0  # ELF: data + bss + stack
    predicted_sram_bytes: int = 0  # the planned arena + the stack (the runner adds ~100 B)
    model_flash_bytes: int = 0  # the model and its kernels alone
    flash_limit_bytes: int = 0
    sram_limit_bytes: int = 0
    instructions_per_inference: int = 0  # QEMU -icount: instructions, not cycles
    skipped: str = ""  # why the device part did not run ("" when it did)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ops": list(self.ops)}

    @classmethod
    def from_dict(cls, d: Any, where: str = "firmware check") -> FirmwareCheck:
        try:
            kw = {k: d[k] for k in cls.__dataclass_fields__ if k in d}
            kw["ops"] = tuple(str(o) for o in kw.get("ops", ()))
            return cls(**kw)
        except (KeyError, TypeError, ValueError) as e:
            raise FormatError(f"{where}: malformed record ({e.__class__.__name__}: {e})") from e

    def summary(self) -> str:
        """One line for a summary: what ran where and how it compared."""
        host = f"host C equal to TFLite Micro on {self.host_equal}/{self.n_host} images"
        if not self.machine:
            return f"firmware: {host}; device run skipped ({self.skipped})"
        return (
            f"firmware runs in QEMU ({self.machine}), outputs equal to TFLite Micro on "
            f"{self.host_equal}/{self.n_host} images ({self.qemu_equal}/{self.n_qemu} in QEMU "
            f"equal to the host); flash {self.flash_bytes:,} B of {self.flash_limit_bytes:,}, "
            f"SRAM {self.sram_bytes:,} B of {self.sram_limit_bytes:,} (arena "
            f"{self.arena_bytes:,} B, TFLM's {self.tflm_arena_bytes:,} B); "
            f"{self.instructions_per_inference:,} instructions per inference (QEMU -icount, "
            "not cycles)"
        )


def check_firmware(
    tflite_path: str | Path,
    out_dir: str | Path,
    images_uint8: np.ndarray,
    hardware=None,
    n_qemu: int = N_QEMU_IMAGES,
) -> FirmwareCheck:
    """Write the firmware for ``tflite_path``, then check it on the host and in QEMU.

    Args:
        tflite_path: an int8 ``.tflite`` written by ``export_tflite``.
        out_dir: where model.c / model.h go (and ``build/`` with the ELF).
        images_uint8: uint8 ``(N, C, H, W)`` test images; all run on the host and in TFLM,
            the first ``n_qemu`` are built into the firmware.
        hardware: a profile; with a Cortex-M core and the toolchain, the device part runs.
        n_qemu: images the firmware carries.

    Raises:
        InfeasibleError: the firmware does not fit the profile (section and bytes named).
        ConfigError, FormatError: see :func:`write_firmware` and :func:`build_arm`.
    """
    from squeezelab.export.tflite import file_spec, read_tflite

    p = Path(tflite_path)
    data = p.read_bytes()
    spec = file_spec(read_tflite(data, str(p)), len(data), str(p))
    inputs = spec.quantize_input(np.asarray(images_uint8))
    src = write_firmware(p, out_dir)
    build_dir = Path(out_dir) / "build"
    build_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="squeezelab-fw-") as tmp:
        exe = build_host(src, tmp)
        host = run_host(exe, inputs, src.output_bytes)
    ref, tflm_arena = tflm_outputs(p, inputs)
    diff = np.abs(host.astype(np.int32) - ref.reshape(host.shape).astype(np.int32))
    rec = dict(
        dir=str(out_dir),
        ops=src.ops,
        arena_bytes=src.arena_bytes,
        n_host=len(inputs),
        host_equal=int((diff.max(axis=1) == 0).sum()) if len(inputs) else 0,
        host_vs_tflm_max_lsb=int(diff.max()) if diff.size else 0,
        tflm_arena_bytes=tflm_arena,
        tflite_bytes=len(data),
        predicted_flash_bytes=src.predicted_flash_bytes,
    )
    target = arm_target(hardware) if hardware is not None else None
    if target is None:
        why = (
            "no hardware profile" if hardware is None else f"{hardware.name} names no Cortex-M core"
        )
        return FirmwareCheck(**rec, skipped=why)
    missing = missing_tools()
    if missing:
        return FirmwareCheck(**rec, skipped=missing)
    build = build_arm(src, hardware, inputs[:n_qemu], build_dir)
    outs, insns = run_qemu(build, src.output_bytes)
    equal = int((outs == host[: len(outs)]).all(axis=1).sum())
    return FirmwareCheck(
        **rec,
        machine=build.machine,
        core=build.core,
        n_qemu=len(outs),
        qemu_equal=equal,
        flash_bytes=build.flash_bytes,
        sram_bytes=build.sram_bytes,
        predicted_sram_bytes=src.arena_bytes + build.stack_bytes,
        model_flash_bytes=build.model_flash_bytes,
        flash_limit_bytes=build.flash_limit_bytes,
        sram_limit_bytes=build.sram_limit_bytes,
        instructions_per_inference=int(np.median(insns)) if insns else 0,
    )
