"""TFLite Micro check of a ``.tflite`` file: the arena measured, outputs against the reference.

TFLM's host interpreter (``tflite_micro``) is the runtime the MCU runs, compiled for the
host: the smallest tensor arena it accepts is found by bisection, and its int8 outputs
are compared with LiteRT's reference kernels (``OpResolverType.BUILTIN_REF``, 0 LSB
expected; the default XNNPACK kernels round differently). TFLM is C++ that trusts the
flatbuffer, so it runs in a child process (``python -m squeezelab.export.tflm``): a
crash on a hostile file becomes a FormatError, not the end of the caller.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from squeezelab.errors import FormatError

MAX_ARENA = 1 << 30  # a model needing more than 1 GiB of arena is not an MCU model
TIMEOUT_S = 600.0  # the child's wall-clock limit (a planner loop on a hostile file)
N_RANDOM = 16  # random inputs for the agreement check when no images are given


@dataclass(frozen=True)
class TflmCheck:
    """What :func:`check_tflite` measured."""

    path: str
    arena_bytes: int  # the smallest tensor arena TFLM runs the model in (host build)
    arena_head_bytes: int  # non-persistent part: the planned activations
    arena_tail_bytes: int  # persistent part: tensor structs, kernel data, quantisation
    flash_bytes: int  # the file's size: what the model takes in flash
    int8_top1: float | None  # top-1 accuracy of TFLM's outputs on the labelled images
    tflm_vs_reference_max_lsb: int | None  # largest |TFLM - LiteRT reference| (None: not run)
    n_images: int  # inputs run (test images, or random ones without images)
    ops: tuple[str, ...] = ()
    int8: bool = True
    # each image's top class, in order (not in to_dict: a caller that ran several splits
    # at once scores each from these)
    predictions: tuple[int, ...] = field(default=(), repr=False)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        del d["predictions"]
        return {**d, "ops": list(self.ops)}

    @classmethod
    def from_dict(cls, d: Any, where: str = "TFLM check") -> TflmCheck:
        try:
            top1, lsb = d.get("int8_top1"), d["tflm_vs_reference_max_lsb"]
            return cls(
                path=str(d["path"]),
                arena_bytes=int(d["arena_bytes"]),
                arena_head_bytes=int(d["arena_head_bytes"]),
                arena_tail_bytes=int(d["arena_tail_bytes"]),
                flash_bytes=int(d["flash_bytes"]),
                int8_top1=None if top1 is None else float(top1),
                tflm_vs_reference_max_lsb=None if lsb is None else int(lsb),
                n_images=int(d["n_images"]),
                ops=tuple(str(o) for o in d.get("ops", ())),
                int8=bool(d.get("int8", True)),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise FormatError(f"{where}: malformed record ({e.__class__.__name__}: {e})") from e


def check_tflite(
    path: str | os.PathLike,
    images_uint8: np.ndarray | None = None,
    labels: np.ndarray | None = None,
    reference: bool = True,
) -> TflmCheck:
    """Run ``path`` in TFLite Micro's host interpreter and measure it.

    Args:
        path: a ``.tflite`` file (one written by :func:`export_tflite` when images are given:
            its metadata says how to normalise and quantise them).
        images_uint8: uint8 ``(N, C, H, W)`` images to run; default 16 random inputs.
        labels: their class indices, for ``int8_top1``.
        reference: also run LiteRT's reference kernels on every input and compare
            (``tflm_vs_reference_max_lsb``); False halves the time of a long scoring run.

    Raises:
        FormatError: the file is not a TFLite model, or TFLM rejects or crashes on it.
        ConfigError: an operator TFLite Micro lacks, images of the wrong shape, or the
            deploy extra missing.

    Example:
        >>> check_tflite("model.tflite").arena_bytes  # doctest: +SKIP
        127984
    """
    from squeezelab.errors import ConfigError
    from squeezelab.export.tflite import check_tflm_ops, file_spec, read_tflite

    p = Path(path)
    where = str(p)
    try:
        data = p.read_bytes()
    except OSError as e:
        raise FormatError(f"{where}: cannot read ({e.strerror})") from e
    info = read_tflite(data, where)
    check_tflm_ops(info, where)
    int8 = info.input_dtype == "int8"
    if images_uint8 is not None:
        spec = file_spec(info, len(data), where)
        x = np.asarray(images_uint8)
        want = info.input_shape[1:]  # NHWC
        if x.dtype != np.uint8 or x.ndim != 4 or (x.shape[2], x.shape[3], x.shape[1]) != want:
            raise ConfigError(
                f"images of dtype {x.dtype} shape {tuple(x.shape)} do not fit {where}: allowed "
                f"uint8 (N, {want[2]}, {want[0]}, {want[1]})"
            )
        inputs = spec.quantize_input(x)
    else:
        rng = np.random.default_rng(0)
        shape = (N_RANDOM, *info.input_shape[1:])
        if int8:
            inputs = rng.integers(-128, 128, shape).astype(np.int8)
        else:
            inputs = rng.standard_normal(shape).astype(np.float32)
    if labels is not None and (images_uint8 is None or len(labels) != len(inputs)):
        raise ConfigError(f"labels: {len(labels)} given, allowed one per image")
    out = run_child(p.resolve(), inputs, where, reference)
    logits = out.pop("outputs")
    predictions = np.argmax(logits, axis=1) if images_uint8 is not None else np.empty(0, int)
    top1 = None
    if labels is not None:
        top1 = float(np.mean(predictions == np.asarray(labels)))
    return TflmCheck(
        path=where,
        arena_bytes=out["arena_bytes"],
        arena_head_bytes=out["arena_head_bytes"],
        arena_tail_bytes=out["arena_tail_bytes"],
        flash_bytes=len(data),
        int8_top1=top1,
        tflm_vs_reference_max_lsb=out["max_lsb"],
        n_images=len(inputs),
        ops=info.ops,
        int8=int8,
        predictions=tuple(int(i) for i in predictions),
    )


def child_command(path: Path, tmp: str) -> list[str]:
    """The child process's command line (a seam: tests swap in one that crashes)."""
    return [sys.executable, "-m", "squeezelab.export.tflm", str(path), tmp]


def run_child(path: Path, inputs: np.ndarray, where: str, reference: bool = True) -> dict:
    """TFLite Micro's host interpreter on ``inputs``, in a child process (a crash there is
    a FormatError naming ``where``); its result: ``arena_bytes``, ``outputs`` (an array)
    and, unless ``reference`` is False, the comparison with the reference kernels."""
    with tempfile.TemporaryDirectory(prefix="squeezelab-tflm-") as tmp:
        np.save(Path(tmp, "inputs.npy"), inputs)
        if not reference:
            Path(tmp, NO_REFERENCE).touch()
        cmd = child_command(path, tmp)
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired as e:
            raise FormatError(f"{where}: TFLite Micro ran past {TIMEOUT_S:g} s") from e
        res = Path(tmp, "result.json")
        if r.returncode < 0:
            raise FormatError(
                f"{where}: TFLite Micro crashed on this file (signal {-r.returncode}): "
                "truncated, altered or foreign"
            )
        if r.returncode != 0 or not res.exists():
            last = [ln for ln in r.stderr.splitlines() if ln.strip()][-1:] or ["no message"]
            raise FormatError(f"{where}: TFLite Micro rejected the file ({last[0].strip()})")
        out = json.loads(res.read_text())
        if "error" in out:
            raise FormatError(f"{where}: {out['error']}")
        out["outputs"] = np.load(Path(tmp, "outputs.npy"), allow_pickle=False)
        return out


# -- the child process ----------------------------------------------------------------

NO_REFERENCE = "no-reference"  # a file in the child's folder: skip the reference kernels
_ALLOC = re.compile(r"Arena allocation (total|head|tail) (\d+) bytes")


def _tflm(data: bytes, arena: int):
    from tflite_micro.python.tflite_micro import runtime

    return runtime.Interpreter.from_bytes(data, arena_size=arena)


def _runs(data: bytes, arena: int, x: np.ndarray) -> bool:
    try:
        it = _tflm(data, arena)
        it.set_input(x, 0)
        it.invoke()
        return True
    except RuntimeError:
        return False


def _runs_isolated(data: bytes, arena: int, x: np.ndarray) -> bool:
    """:func:`_runs` in a forked process: a crash counts as "does not run".

    Some kernels dereference a failed allocation, so an arena a few bytes short can
    crash TFLM instead of failing; the bisection only probes below a size that ran.
    """
    pid = os.fork()
    if pid == 0:  # the child: report by exit status only, never return to the caller
        ok = False
        try:
            ok = _runs(data, arena, x)
        finally:
            os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    return os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0


def _smallest_arena(data: bytes, x: np.ndarray) -> int:
    """Bisection over arena sizes (TFLM aligns to 16 bytes, so search on that grid)."""
    hi = max(1 << 14, len(data) * 2)
    while not _runs(data, hi, x):
        hi *= 2
        if hi > MAX_ARENA:
            raise RuntimeError(f"the model does not run in {MAX_ARENA >> 20} MiB of arena")
    lo = 0  # an arena of 0 bytes never runs
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if _runs_isolated(data, mid, x):
            hi = mid
        else:
            lo = mid
    return hi


def _allocations(data: bytes, arena: int, x: np.ndarray) -> dict[str, int]:
    """TFLM's RecordingMicroAllocator report (printed on fd 2 by C++), parsed."""
    it = _tflm(data, arena)
    it.set_input(x, 0)
    it.invoke()
    with tempfile.TemporaryFile("w+") as f:
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(f.fileno(), 2)
        try:
            it.print_allocations()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        f.seek(0)
        return {k: int(v) for k, v in _ALLOC.findall(f.read())}


def _child(path: str, tmp: str) -> None:
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    data = Path(path).read_bytes()
    inputs = np.load(Path(tmp, "inputs.npy"), allow_pickle=False)
    arena = _smallest_arena(data, inputs[:1])
    alloc = _allocations(data, arena, inputs[:1])
    it = _tflm(data, arena)
    ref = Interpreter(model_content=data, experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
    ref.allocate_tensors()
    i_in, i_out = ref.get_input_details()[0]["index"], ref.get_output_details()[0]["index"]
    with_reference = not Path(tmp, NO_REFERENCE).exists()
    outs, max_lsb = [], 0 if with_reference else None
    for i in range(len(inputs)):
        x = inputs[i : i + 1]
        it.set_input(x, 0)
        it.invoke()
        y = np.array(it.get_output(0))
        outs.append(y.reshape(1, -1))
        if not with_reference:
            continue
        ref.set_tensor(i_in, x)
        ref.invoke()
        y_ref = ref.get_tensor(i_out)
        if np.issubdtype(y.dtype, np.integer):
            max_lsb = max(max_lsb, int(np.abs(y.astype(np.int64) - y_ref.astype(np.int64)).max()))
        else:  # a float file: count a difference above float rounding as 1
            max_lsb = max(max_lsb, int(not np.allclose(y, y_ref, rtol=1e-5, atol=1e-6)))
    np.save(Path(tmp, "outputs.npy"), np.concatenate(outs).astype(np.float32))
    result = {
        "arena_bytes": arena,
        "arena_head_bytes": alloc.get("head", 0),
        "arena_tail_bytes": alloc.get("tail", 0),
        "max_lsb": max_lsb,
    }
    Path(tmp, "result.json").write_text(json.dumps(result))


if __name__ == "__main__":
    try:
        _child(sys.argv[1], sys.argv[2])
    except (RuntimeError, ValueError) as e:
        msg = str(e).strip().splitlines()[-1:] or ["no message"]
        Path(sys.argv[2], "result.json").write_text(
            json.dumps({"error": f"TFLite Micro rejected the file ({msg[0]})"})
        )
