"""Generated firmware against TFLite Micro: flash, SRAM and instructions per inference.

Claim (issue 19): the firmware squeezelab generates from a design's int8 ``.tflite`` (C99,
no interpreter, activations in one static arena laid out by the planner ``profile`` uses)
computes TFLite Micro's outputs bit for bit, needs at most TFLM's measured arena in SRAM
and less flash than the ``.tflite`` alone. Per model (random weights, BatchNorm statistics and int8 calibration
from Fashion-MNIST train images): host C vs TFLM on test images (0 LSB), the Cortex-M7 ELF
run in QEMU mps2-an500 on the images it carries; flash = the ELF's text + rodata + data
(test images excluded) against the ``.tflite`` plus TFLM's core runtime (16 KB on a
Cortex-M3 by tensorflow.org/lite/microcontrollers, kernels not counted: a lower bound);
SRAM = arena + stack (+ the runner's statics) against TFLM's measured smallest arena
(host interpreter); instructions per inference from QEMU ``-icount shift=0``
(instructions, not cycles), beside the cortex-m7 profile's predicted latency (how well it
ranks the models is reported as a Spearman correlation).

    .venv/bin/python benchmarks/firmware.py [--images N] [--out PATH] [--beside-other-work]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from deploy_targets import add_output_args, host, versions, write_result

OUT = Path(__file__).resolve().parent / "results" / "firmware.json"
TFLM_CORE_FLASH = 16 * 1024  # tensorflow.org/lite/microcontrollers: "core runtime ... 16 KB"


def models():
    from squeezelab.models import SQUEEZENET_SMALL, ModelMeta, SqueezeNet, create_model, load_model

    narrow = SQUEEZENET_SMALL.replace(base_e=16, incr_e=16, stem_channels=16, stem_stride=2)
    bypass = narrow.replace(bypass="simple")
    return {
        "squeezenet_small": lambda: load_model("squeezenet_small"),
        "squeezenet_small_narrow": lambda: (
            SqueezeNet(narrow),
            ModelMeta.for_spec(narrow, "squeezenet_small"),
        ),
        "squeezenet_small_narrow_simple_bypass": lambda: (
            SqueezeNet(bypass),
            ModelMeta.for_spec(bypass, "squeezenet_small"),
        ),
        "mobilenet_v1_0.25_28x28": lambda: (
            create_model("mobilenet_v1", num_classes=10, in_chans=1, width_mult=0.25),
            ModelMeta("mobilenet_v1", 10, 1, 28, model_args={"width_mult": 0.25}),
        ),
    }


def _set_batchnorm_statistics(model, meta, images) -> None:
    """BatchNorm statistics of real images (one pass, no training): an untrained
    MobileNet's default ones saturate every ReLU6 and its outputs ignore the image."""
    import torch

    x = torch.from_numpy(images).float() / 255
    x = (x - torch.tensor(meta.mean).view(1, -1, 1, 1)) / torch.tensor(meta.std).view(1, -1, 1, 1)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None
    model.train()
    with torch.no_grad():
        model(x)
    model.eval()


def _spearman(a, b) -> float | None:
    import numpy as np

    if len(a) < 3:
        return None
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=100, help="test images run on the host")
    add_output_args(ap, OUT)
    args = ap.parse_args(argv)
    t0 = time.time()
    import torch

    from squeezelab.analysis import profile
    from squeezelab.analysis.hardware import load_hardware
    from squeezelab.analysis.tflm_plan import tflm_plan
    from squeezelab.data import load_dataset
    from squeezelab.export.firmware_build import check_firmware
    from squeezelab.export.tflite import export_tflite

    hw = load_hardware("cortex-m7")
    train = load_dataset("fashion-mnist", split="train").images[:128].numpy()
    test = load_dataset("fashion-mnist", split="test").images[: args.images].numpy()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, make in models().items():
            torch.manual_seed(0)
            model, meta = make()
            _set_batchnorm_statistics(model, meta, train)
            path = Path(tmp, f"{name}.tflite")
            export_tflite(model, meta, path, calib=train[:32], n_calib=32)
            t = time.time()
            chk = check_firmware(path, Path(tmp, name), test, hw)
            pred = profile(model, meta.input_shape, hardware=hw, weight_bits=8, activation_bits=8)
            fw_sram = chk.sram_bytes
            row = {
                "model": name,
                "params": sum(p.numel() for p in model.parameters()),
                "ops": list(chk.ops),
                "host_equal_tflm": f"{chk.host_equal}/{chk.n_host}",
                "host_vs_tflm_max_lsb": chk.host_vs_tflm_max_lsb,
                "qemu_equal_host": f"{chk.qemu_equal}/{chk.n_qemu}",
                "machine": chk.machine,
                "flash": {
                    "firmware_elf_bytes": chk.flash_bytes,
                    "firmware_predicted_bytes": chk.predicted_flash_bytes,
                    "firmware_model_and_kernels_bytes": chk.model_flash_bytes,
                    "tflite_bytes": chk.tflite_bytes,
                    "tflite_plus_tflm_core_bytes": chk.tflite_bytes + TFLM_CORE_FLASH,
                    "firmware_smaller_than_tflite_alone": chk.flash_bytes < chk.tflite_bytes,
                },
                "sram": {
                    "firmware_elf_bytes": fw_sram,
                    "firmware_arena_bytes": chk.arena_bytes,
                    "planner_predicted_bytes": tflm_plan(model, meta.input_shape).arena_head_bytes,
                    "profile_predicted_tflm_arena_bytes": pred.tflm_arena_bytes,
                    "tflm_measured_arena_bytes": chk.tflm_arena_bytes,
                    "firmware_at_most_tflm_arena": fw_sram <= chk.tflm_arena_bytes,
                },
                "instructions_per_inference": chk.instructions_per_inference,
                "instructions_note": "QEMU -icount shift=0: executed instructions, not cycles",
                "predicted_latency_ms": round(pred.latency_ms, 4),
                "macs": int(pred.macs),
                "check_s": round(time.time() - t, 1),
            }
            rows.append(row)
            print(
                f"{name}: {row['host_equal_tflm']} equal to TFLM, QEMU {row['qemu_equal_host']}; "
                f"flash {chk.flash_bytes:,} B vs .tflite {chk.tflite_bytes:,} B; SRAM "
                f"{fw_sram:,} B vs TFLM arena {chk.tflm_arena_bytes:,} B; "
                f"{chk.instructions_per_inference:,} instructions",
                flush=True,
            )
    insns = [r["instructions_per_inference"] for r in rows]
    lat = [r["predicted_latency_ms"] for r in rows]
    out = {
        "benchmark": "firmware",
        "host": host(),
        "versions": versions(),
        "ran_beside_other_work": bool(args.beside_other_work),
        "hardware": hw.name,
        "tflm_core_flash_bytes": TFLM_CORE_FLASH,
        "tflm_core_flash_source": "tensorflow.org/lite/microcontrollers: 'The core runtime "
        "just fits in 16 KB on an Arm Cortex M3' (op kernels extra)",
        "models": rows,
        "goal": {
            "all_bit_exact": all(r["host_vs_tflm_max_lsb"] == 0 for r in rows),
            "sram_at_most_tflm_arena": all(r["sram"]["firmware_at_most_tflm_arena"] for r in rows),
            "flash_below_tflite_alone": all(
                r["flash"]["firmware_smaller_than_tflite_alone"] for r in rows
            ),
        },
        "latency_model_vs_instructions_spearman": _spearman(lat, insns),
        "instructions_per_predicted_ms": [
            round(i / max(ms, 1e-9)) for i, ms in zip(insns, lat, strict=True)
        ],
    }
    return write_result(args.out, out, t0)


if __name__ == "__main__":
    raise SystemExit(main())
