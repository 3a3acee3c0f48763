"""Generated firmware: host C == TFLite Micro (0 LSB), QEMU Cortex-M7 == host, SRAM == plan.

Three nets at 28x28 (random weights, int8 calibrated on 32 Fashion-MNIST train images:
bit-exactness does not need training): squeezenet_small, a narrow SqueezeNet with simple
bypasses (int8 ADDs) and a MobileNetV1 at width 0.25 (depthwise, PAD, SUM, FC).
"""

import dataclasses
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from squeezelab.analysis.hardware import load_hardware
from squeezelab.analysis.tflm_plan import tflm_plan
from squeezelab.errors import ConfigError, InfeasibleError
from squeezelab.export.firmware import write_firmware
from squeezelab.export.firmware_build import (
    HOST_CFLAGS,
    build_arm,
    build_host,
    missing_tools,
    run_host,
    run_qemu,
    tflm_outputs,
)
from squeezelab.export.tflite import export_tflite, file_spec, read_tflite
from squeezelab.models import SQUEEZENET_SMALL, ModelMeta, SqueezeNet, create_model, load_model

N_TEST = 100
N_QEMU = 6
NARROW = SQUEEZENET_SMALL.replace(base_e=16, incr_e=16, stem_channels=16, stem_stride=2)


def _models():
    return {
        "squeezenet_small": lambda: load_model("squeezenet_small"),
        "simple_bypass": lambda: (
            SqueezeNet(NARROW.replace(bypass="simple")),
            ModelMeta.for_spec(NARROW.replace(bypass="simple"), "squeezenet_small"),
        ),
        "mobilenet_dw": lambda: (
            create_model("mobilenet_v1", num_classes=10, in_chans=1, width_mult=0.25),
            ModelMeta("mobilenet_v1", 10, 1, 28, model_args={"width_mult": 0.25}),
        ),
    }


def _need_arm():
    why = missing_tools()
    if why:
        pytest.skip(why)


def _set_batchnorm_statistics(model, meta, images):
    """BatchNorm statistics of real images, no training: an untrained MobileNet's default
    ones saturate every ReLU6, so its outputs would not depend on the image."""
    x = torch.from_numpy(images).float() / 255
    x = (x - torch.tensor(meta.mean).view(1, -1, 1, 1)) / torch.tensor(meta.std).view(1, -1, 1, 1)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None  # a cumulative average over the one pass
    model.train()
    with torch.no_grad():
        model(x)
    model.eval()


@pytest.fixture(scope="module", params=list(_models()))
def built(request, fmnist, tmp_path_factory):
    """One net exported to int8, its firmware written, run on the host and in TFLM."""
    torch.manual_seed(0)
    model, meta = _models()[request.param]()
    _set_batchnorm_statistics(model, meta, fmnist["train_x"][:128])
    tmp = tmp_path_factory.mktemp(request.param)
    path = tmp / "model.tflite"
    export_tflite(model, meta, path, calib=fmnist["train_x"][:32], n_calib=32)
    data = path.read_bytes()
    spec = file_spec(read_tflite(data, str(path)), len(data), str(path))
    inputs = spec.quantize_input(fmnist["test_x"][:N_TEST])
    src = write_firmware(path, tmp / "fw")
    host = run_host(build_host(src, tmp), inputs, src.output_bytes)
    ref, tflm_arena = tflm_outputs(path, inputs)
    return {
        "name": request.param,
        "model": model,
        "meta": meta,
        "tflite": path,
        "src": src,
        "inputs": inputs,
        "host": host,
        "tflm": ref.reshape(host.shape),
        "tflm_arena": tflm_arena,
        "tmp": tmp,
    }


@pytest.fixture(scope="module")
def device(built):
    """The same net cross-compiled for the cortex-m7 profile and run in QEMU."""
    _need_arm()
    hw = load_hardware("cortex-m7")
    work = built["tmp"] / "arm"
    work.mkdir(exist_ok=True)
    b = build_arm(built["src"], hw, built["inputs"][:N_QEMU], work)
    outs, insns = run_qemu(b, built["src"].output_bytes)
    return b, outs, insns, hw


def test_host_c_equals_tflite_micro_on_100_test_images(built):
    host, ref = built["host"], built["tflm"]
    assert host.shape == (N_TEST, 10)
    assert len({row.tobytes() for row in host}) > 1, "outputs do not depend on the image"
    np.testing.assert_array_equal(host, ref)  # 0 LSB, every byte of every image


def test_generated_c_compiles_with_werror(built):
    assert {"-std=c99", "-Wall", "-Wextra", "-Werror"} <= set(HOST_CFLAGS)
    text = (Path(built["src"].dir) / "model.c").read_text()
    assert "malloc" not in text and "float" not in text and "double" not in text
    assert "int model_run(const int8_t *in, int8_t *out)" in text


def test_qemu_equals_host_and_counts_instructions(built, device):
    b, outs, insns, _ = device
    assert b.machine == "mps2-an500" and b.n_images == N_QEMU
    np.testing.assert_array_equal(outs, built["host"][:N_QEMU])
    assert len(insns) == N_QEMU and min(insns) > 10_000
    # one deterministic count per inference (QEMU -icount): equal up to the timer's 40
    # instructions of resolution and data-dependent branches (padding, clamps)
    assert max(insns) - min(insns) <= 0.01 * min(insns)


def test_sram_is_the_planners_layout_and_fits(built, device):
    b, _, _, hw = device
    predicted = tflm_plan(built["model"], built["meta"].input_shape)  # what profile reports
    assert built["src"].arena_bytes == predicted.arena_head_bytes  # the same plan
    assert b.arena_bytes == built["src"].arena_bytes  # the arena symbol in the ELF
    assert b.sram_bytes <= hw.sram_bytes
    # SRAM = the arena + the stack + the runner's few statics (its output and line buffers)
    assert 0 <= b.sram_bytes - b.arena_bytes - b.stack_bytes <= 256
    assert b.sram_bytes <= built["tflm_arena"]  # no interpreter tail: at most TFLM's arena


def test_flash_within_5_percent_of_the_prediction(built, device):
    b = device[0]
    predicted = built["src"].predicted_flash_bytes
    assert abs(b.flash_bytes - predicted) <= 0.05 * predicted
    assert b.flash_bytes <= b.flash_limit_bytes
    assert b.flash_bytes < built["tflite"].stat().st_size  # smaller than the .tflite alone


def test_a_net_larger_than_sram_fails_at_link_time(fmnist, tmp_path):
    _need_arm()
    torch.manual_seed(0)
    # 28 x 28 x 720 int8 activations = 564,480 B: more than the cortex-m7's 512 KiB SRAM
    model = torch.nn.Sequential(
        torch.nn.Conv2d(1, 720, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(),
        torch.nn.Linear(720, 10),
    ).eval()
    meta = ModelMeta("large", 10, 1, 28)
    path = tmp_path / "large.tflite"
    export_tflite(model, meta, path, calib=fmnist["train_x"][:4], n_calib=4)
    src = write_firmware(path, tmp_path / "fw")
    hw = load_hardware("cortex-m7")
    with pytest.raises(InfeasibleError) as e:
        build_arm(src, hw, np.zeros((1, 28, 28, 1), np.int8), tmp_path)
    msg = str(e.value)
    assert "\n" not in msg
    m = re.search(r"section (\.\w+) overflows RAM \(sram_bytes 524,288 B\) by ([\d,]+) bytes", msg)
    assert m and m.group(1) == ".bss", msg
    assert int(m.group(2).replace(",", "")) > src.arena_bytes - hw.sram_bytes


def test_a_profile_without_cortex_m_is_refused(built):
    hw = dataclasses.replace(load_hardware("cortex-m7"), name="dsp", description="a DSP")
    with pytest.raises(ConfigError, match="names no Cortex-M core"):
        build_arm(built["src"], hw, built["inputs"][:1], built["tmp"])


def test_cli_export_format_firmware(tmp_path, capsys):
    from squeezelab.cli import main

    spec = tmp_path / "tiny.json"
    spec.write_text(json.dumps(NARROW.replace(base_e=8, incr_e=8, stem_channels=8).to_dict()))
    out = tmp_path / "fw"
    argv = ["export", str(spec), "--format", "firmware", "--calib", "random", "-o", str(out)]
    argv += ["--calib-size", "8"]  # random calibration: more images only cost time
    assert main([*argv, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    fw = report["firmware"]
    assert fw["n_host"] == 16 and fw["host_equal"] == 16 and fw["host_vs_tflm_max_lsb"] == 0
    assert (out / "model.c").is_file() and (out / "sqz_kernels.c").is_file()
    assert fw["machine"] == "" and "no hardware profile" in fw["skipped"]


def test_a_truncated_file_is_a_format_error(built, tmp_path):
    from squeezelab.errors import FormatError

    bad = tmp_path / "cut.tflite"
    bad.write_bytes(built["tflite"].read_bytes()[:4000])
    with pytest.raises(FormatError, match="cut.tflite"):
        write_firmware(bad, tmp_path / "fw")
    assert not (tmp_path / "fw" / "model.c").exists()
