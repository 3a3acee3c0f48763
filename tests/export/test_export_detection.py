"""Detectors through .tflite, TFLite Micro, firmware and int8 ONNX (issue 18, deploy).

One narrow squeezedet_small at 64 px (random weights, the head widened so its int8 output
spans many steps) is exported once through the CLI with two int8 forms; the checks share
that file. Conversions take seconds, hence ``slow``.
"""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from squeezelab.cli import main
from squeezelab.errors import ConfigError

FMNIST = Path("/usr/share/datasets/fashion-mnist")
pytestmark = pytest.mark.skipif(
    not FMNIST.is_dir(), reason="needs Debian's dataset-fashion-mnist (fashion-mnist-det)"
)
SIZE = 64


def tiny_detector(path: Path, in_chans: int = 1):
    """A 64 px squeezedet_small, narrowed, saved to ``path``: ``(module, ModelMeta)``."""
    from squeezelab.data.detection import kmeans_anchors, load_detection
    from squeezelab.models import ModelMeta, build_model, save_model
    from squeezelab.models.detect import SQUEEZEDET_SMALL

    train = load_detection("fashion-mnist-det", "train", size=SIZE, count=32)
    x = train.images.float() / 255
    spec = SQUEEZEDET_SMALL.replace(input_size=SIZE, base_e=32, incr_e=16, stem_channels=16)
    spec = spec.replace(in_chans=in_chans)
    anchors = tuple(tuple(map(float, a)) for a in kmeans_anchors(train.boxes, 9).tolist())
    meta = ModelMeta(
        "squeezedet_small",
        num_classes=10,
        in_chans=in_chans,
        input_size=SIZE,
        spec=spec,
        task="detection",
        classes=tuple(train.classes),
        mean=(float(x.mean()),) * in_chans,
        std=(float(x.std()),) * in_chans,
        anchors=anchors,
    )
    torch.manual_seed(0)
    model = build_model(meta).eval()
    with torch.no_grad():  # ConvDet starts at N(0, 1e-4): a near-constant map quantises flat
        model.convdet.weight.normal_(0, 0.05)
        model.convdet.bias.uniform_(-1, 1)
    save_model(path, model, meta)
    return model, meta


@pytest.fixture(scope="module")
def det(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("det")
    model, meta = tiny_detector(tmp / "det.safetensors")
    return tmp, model, meta


@pytest.fixture(scope="module")
def exported(det):
    """``export --format tflite --data fashion-mnist-det`` with two forms: (report, path)."""
    tmp, _, _ = det
    out = tmp / "det.tflite"
    argv = ["export", str(tmp / "det.safetensors"), "-o", str(out), "--format", "tflite"]
    argv += ["--data", "fashion-mnist-det", "--calib-size", "16", "--eval-size", "8"]
    argv += ["--settings", "histogram/per-channel,minmax/per-channel", "--json"]
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert main(argv) == 0
    return json.loads(buf.getvalue()), out


def canvases(n: int, split: str = "test"):
    from squeezelab.data.detection import load_detection

    return load_detection("fashion-mnist-det", split, size=SIZE, count=n)


@pytest.mark.slow
def test_tflite_detector_choice_layout_and_test_map(det, exported):
    """The CLI chose the form of best validation mAP; the file holds the raw head map."""
    from squeezelab.export.detection import head_channels, litert_forward, tflite_output_shape
    from squeezelab.export.tflite import TFLM_BUILTIN_OPS

    _, model, meta = det
    report, path = exported
    choice = report["int8_choice"]
    assert [t["form"] for t in choice["tried"]] == ["histogram/per-channel", "minmax/per-channel"]
    best = max(choice["tried"], key=lambda t: t["val_map50"])
    assert choice["chosen"] == best["form"] and choice["val_images"] == 8
    assert report["test"]["images"] == 8
    assert 0 <= report["test"]["int8_map50"] <= 1 and 0 <= report["test"]["fp32_map50"] <= 1
    assert report["tflite"]["int8"] and set(report["tflite"]["ops"]) <= TFLM_BUILTIN_OPS
    assert path.stat().st_size == report["tflite"]["tflite_bytes"]
    # the head map, dequantised, is torch's within a few output steps, in NCHW
    from squeezelab.export.onnx import normalize

    x = normalize(canvases(4).images.numpy(), meta)
    with torch.no_grad():
        want = model(torch.from_numpy(x)).numpy()
    got = litert_forward(path)(x)
    assert got.shape == want.shape and want.shape[1] == head_channels(meta) == 135
    n, c, h, w = want.shape
    assert tflite_output_shape(path) == (1, h, w, c)  # NHWC, as docs/detection.md says
    step = report["tflite"]["output_scale"]
    assert np.abs(got - want).mean() < 2 * step
    assert np.abs(got - want).max() < 0.25 * (want.max() - want.min())


@pytest.mark.slow
def test_tflm_equals_litert_reference_to_0_lsb(exported):
    """TFLite Micro's int8 head maps equal LiteRT's reference kernels' byte for byte."""
    from squeezelab.export import check_tflite
    from squeezelab.export.detection import litert_head_maps, tflm_head_maps

    _, path = exported
    x = canvases(3).images.numpy()
    tflm = tflm_head_maps(path, x)
    ref = litert_head_maps(path, x, reference=True)
    assert tflm.shape == ref.shape and tflm.shape[0] == 3 and tflm.shape[1] % 135 == 0
    assert np.array_equal(tflm.astype(np.int64), ref.astype(np.int64))
    assert len(np.unique(tflm)) > 20  # the map spans many steps: equality means something
    chk = check_tflite(path, x)
    assert chk.tflm_vs_reference_max_lsb == 0 and chk.arena_bytes > 0


@pytest.mark.slow
def test_firmware_of_a_small_detector_equals_tflm(exported, tmp_path):
    """The interpreter-free C of the detector's .tflite gives TFLite Micro's bytes."""
    from squeezelab.export.firmware_build import check_firmware, missing_tools

    if missing_tools() and "gcc" in (missing_tools() or ""):
        pytest.skip(missing_tools())
    _, path = exported
    fw = check_firmware(path, tmp_path / "fw", canvases(4).images.numpy())
    assert fw.n_host == fw.host_equal == 4 and fw.host_vs_tflm_max_lsb == 0


@pytest.mark.slow
def test_onnx_int8_detector_chosen_by_validation_map_with_float_head(det, tmp_path):
    """quantize_int8 with the mAP scorer: every setting scored on val, the head kept in float."""
    import onnx

    from squeezelab.export import export_onnx, quantize_int8
    from squeezelab.export.detection import map50_scorer, onnx_forward

    _, model, meta = det
    src = tmp_path / "d.onnx"
    export_onnx(model, meta, src)
    val = canvases(8, "val")
    calls = []
    scorer = map50_scorer(meta, val)

    def score(forward):
        calls.append(1)
        return scorer(forward)

    r = quantize_int8(
        src,
        canvases(16, "train").images.numpy(),
        tmp_path / "d.int8.onnx",
        eval_data=val.images.numpy(),
        settings=["U8S8/minmax", "S8S8/minmax/fp32-head"],
        scorer=score,
        runs=2,
    )
    assert r.metric == "map50" and len(calls) == 3  # fp32 and the two settings
    assert [t.setting for t in r.tried] == ["U8S8/minmax", "S8S8/minmax/fp32-head"]
    ok = [t for t in r.tried if t.within_tolerance]
    if ok:
        assert r.chosen == min(ok, key=lambda t: t.latency_ms).setting
    else:
        assert r.chosen == max(r.tried, key=lambda t: t.score).setting
    # the float-head form: the graph's output comes straight from a float Conv
    with_head = tmp_path / "h.int8.onnx"
    quantize_int8(
        src,
        canvases(16, "train").images.numpy(),
        with_head,
        eval_data=val.images.numpy(),
        settings=["S8S8/minmax/fp32-head"],
        scorer=scorer,
        runs=1,
    )
    g = onnx.load(str(with_head)).graph
    last = next(n for n in g.node if g.output[0].name in n.output)
    assert last.op_type == "Conv"
    assert onnx_forward(with_head)(np.zeros((1, 1, SIZE, SIZE), np.float32)).shape[1] == 135


def test_int8_chooser_keeps_the_best_validation_form(tmp_path):
    """choose_int8 scores every form and writes the one of highest validation mAP."""
    from squeezelab.export.detection import Int8Choice, choose_int8

    val = {"a": 0.41, "b": 0.47, "c": 0.45}
    made = []

    def make(form, path):
        made.append(form)
        path.write_text(form)

    out = tmp_path / "m.tflite"
    c = choose_int8(["a", "b", "c"], make, lambda p: val[p.read_text()], 0.48, out, 0.005)
    assert made == ["a", "b", "c"] and c.chosen == "b" and out.read_text() == "b"
    assert not c.within_tolerance  # 0.47 is 1 point under 0.48; allowed 0.5
    assert Int8Choice.from_dict(json.loads(json.dumps(c.to_dict()))) == c
    c2 = choose_int8(["a", "b"], make, lambda p: val[p.read_text()], 0.47, out, 0.01)
    assert c2.within_tolerance and c2.best.val_map50 == 0.47


def test_tflite_form_names_are_checked():
    from squeezelab.export.detection import parse_tflite_form

    assert parse_tflite_form("minmax/per-tensor") == {"observer": "minmax", "per_channel": False}
    assert parse_tflite_form("histogram/per-channel/fp32-head")["float_head"] is True
    with pytest.raises(ConfigError, match="allowed OBSERVER/WEIGHTS"):
        parse_tflite_form("entropy/per-channel")


def test_a_classifier_is_refused_by_the_detector_runtimes(capsys):
    from squeezelab.export.detection import require_detector
    from squeezelab.models import load_model

    _, meta = load_model("squeezenet_small")
    with pytest.raises(ConfigError, match="is a classifier: allowed a detector"):
        require_detector(meta, "litert_forward")


def test_firmware_refuses_a_float_head_form_before_converting(tmp_path, capsys):
    """The firmware's C kernels are int8: an explicit /fp32-head form is one line, exit 2,
    before any form is converted or scored."""
    tiny_detector(tmp_path / "d.safetensors")
    argv = ["export", str(tmp_path / "d.safetensors"), "--format", "firmware", "-o"]
    argv += [str(tmp_path / "fw"), "--data", "fashion-mnist-det", "--calib-size", "4"]
    argv += ["--eval-size", "4", "--settings", "histogram/per-channel/fp32-head"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "--format firmware runs int8 kernels only" in err and "Traceback" not in err


def test_compress_refuses_canvases_of_another_shape(tmp_path, capsys):
    """An RGB detector fine-tuned on the grey canvases: one line naming both shapes, exit 2."""
    tiny_detector(tmp_path / "d.safetensors", in_chans=3)
    argv = ["compress", str(tmp_path / "d.safetensors"), "-o", str(tmp_path / "d.sqz")]
    assert main([*argv, "--data", "fashion-mnist-det", "--finetune-epochs", "1"]) == 2
    err = capsys.readouterr().err
    assert "(1, 64, 64)" in err and "(3, 64, 64)" in err and "Traceback" not in err
