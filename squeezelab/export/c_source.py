"""A ``.tflite`` file as C source for TFLite Micro firmware: a ``.c`` array and its ``.h``.

The array is ``const`` (so it lands in flash) and 16-byte aligned (TFLM reads the
flatbuffer in place, and its tensors' buffers must be aligned); the header carries the
measured arena size and the input/output quantisation as ``#define``s, and a commented
example of invoking the model under TFLM.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from squeezelab.errors import ConfigError

BYTES_PER_LINE = 12


def c_ident(stem: str) -> str:
    """A C identifier from a file stem: ``my-model.v2`` -> ``my_model_v2``."""
    name = re.sub(r"\W", "_", stem, flags=re.ASCII)
    return name if name and not name[0].isdigit() else f"m_{name}"


def _ops(data: bytes) -> tuple[str, ...]:
    from squeezelab.export.tflite import read_tflite

    return read_tflite(data).ops


def _camel(op: str) -> str:
    """``MAX_POOL_2D`` -> ``MaxPool2D``: the name of TFLM's ``MicroMutableOpResolver::Add...``."""
    return "".join(p if p[0].isdigit() else p.capitalize() for p in op.split("_"))


def write_c_array(
    tflite_path: str | os.PathLike,
    out_stem: str | os.PathLike,
    arena_bytes: int,
    quant: dict,
) -> tuple[Path, Path]:
    """Write ``OUT_STEM.c`` / ``OUT_STEM.h`` holding ``tflite_path`` as an aligned array.

    Args:
        tflite_path: the ``.tflite`` file.
        out_stem: output path without suffix; its name gives the C identifiers.
        arena_bytes: the tensor arena to reserve (measured: ``check_tflite(...).arena_bytes``).
        quant: ``input_scale``, ``input_zero_point``, ``output_scale``, ``output_zero_point``
            (a ``TfliteExport.to_dict()`` fits).

    Example:
        >>> write_c_array("m.tflite", "out/m", 127984, exp.to_dict())  # doctest: +SKIP
        (PosixPath('out/m.c'), PosixPath('out/m.h'))
    """
    from squeezelab.io import atomic_path

    if not isinstance(arena_bytes, int) or arena_bytes < 1:
        raise ConfigError(f"arena_bytes={arena_bytes!r} is invalid: allowed an integer >= 1")
    try:
        data = Path(tflite_path).read_bytes()
        q = {
            k: float(quant[k]) if k.endswith("scale") else int(quant[k])
            for k in ("input_scale", "input_zero_point", "output_scale", "output_zero_point")
        }
    except OSError as e:
        raise ConfigError(f"{tflite_path}: cannot read ({e.strerror})") from e
    except (KeyError, TypeError, ValueError) as e:
        raise ConfigError(
            f"quant: {e}: allowed input_scale, input_zero_point, output_scale, output_zero_point"
        ) from e
    mean = list(quant.get("mean", ())) or "(see the .tflite metadata)"
    std = list(quant.get("std", ())) or "(see the .tflite metadata)"
    ops = _ops(data)
    adds = "\n".join(f" *   ops.Add{_camel(op)}();" for op in ops)
    stem = Path(out_stem)
    name = c_ident(stem.name)
    guard = name.upper() + "_H_"
    up = name.upper()
    h = f"""/* {stem.name}.h: {Path(tflite_path).name} as a C array for TensorFlow Lite Micro.
 * Written by squeezelab; regenerate with `squeezelab export MODEL --format c`. */
#ifndef {guard}
#define {guard}

/* Tensor arena measured in TFLM's host interpreter (64-bit build); a 32-bit MCU needs
 * a little less: its tensor structs are smaller. */
#define {up}_ARENA_BYTES {arena_bytes}
#define {up}_INPUT_SCALE {q["input_scale"]!r}f
#define {up}_INPUT_ZERO_POINT ({q["input_zero_point"]})
#define {up}_OUTPUT_SCALE {q["output_scale"]!r}f
#define {up}_OUTPUT_ZERO_POINT ({q["output_zero_point"]})

extern const unsigned char {name}_tflite[];
extern const unsigned int {name}_tflite_len;

/* Example (C++, TFLM):
 *
 *   #include "tensorflow/lite/micro/micro_interpreter.h"
 *   #include "tensorflow/lite/micro/micro_mutable_op_resolver.h"
 *   #include "{stem.name}.h"
 *
 *   alignas(16) static uint8_t arena[{up}_ARENA_BYTES];
 *   const tflite::Model* model = tflite::GetModel({name}_tflite);
 *   tflite::MicroMutableOpResolver<{len(ops)}> ops;  // the ops this model uses
{adds}
 *   tflite::MicroInterpreter interp(model, ops, arena, sizeof(arena));
 *   interp.AllocateTensors();
 *   // pixel p (0..255), NHWC, mean {mean}, std {std} per channel:
 *   // q = round(((p / 255.0 - mean) / std) / INPUT_SCALE)
 *   //                            + INPUT_ZERO_POINT, clamped to [-128, 127]
 *   int8_t* in = interp.input(0)->data.int8;
 *   interp.Invoke();
 *   int8_t* out = interp.output(0)->data.int8;  // logit = OUTPUT_SCALE * (out - OUTPUT_ZERO_POINT)
 */

#endif /* {guard} */
"""
    rows = (
        "  " + ", ".join(f"0x{b:02x}" for b in data[i : i + BYTES_PER_LINE])
        for i in range(0, len(data), BYTES_PER_LINE)
    )
    c = (
        f"/* {stem.name}.c: {Path(tflite_path).name} ({len(data)} bytes), written by squeezelab. */\n"
        f'#include "{stem.name}.h"\n\n'
        "/* 16-byte aligned: TFLM reads the flatbuffer in place. */\n"
        "#if defined(__GNUC__) || defined(__clang__)\n"
        "#define SQUEEZELAB_ALIGN16 __attribute__((aligned(16)))\n"
        "#else\n"
        "#define SQUEEZELAB_ALIGN16\n"
        "#endif\n\n"
        f"const unsigned char {name}_tflite[] SQUEEZELAB_ALIGN16 = {{\n"
        + ",\n".join(rows)
        + f"\n}};\nconst unsigned int {name}_tflite_len = {len(data)}u;\n"
    )
    stem.parent.mkdir(parents=True, exist_ok=True)
    c_path, h_path = stem.with_name(stem.name + ".c"), stem.with_name(stem.name + ".h")
    for path, text in ((h_path, h), (c_path, c)):
        with atomic_path(path) as tmp:
            Path(tmp).write_text(text)
    return c_path, h_path
