import numpy as np
import pytest

from squeezelab.errors import ConfigError, FormatError
from squeezelab.export import export_onnx, read_onnx_meta
from squeezelab.export.onnx import make_session, normalize
from squeezelab.fileio import load_any_model, zoo_meta
from squeezelab.models import create_model, list_models, model_info

# AlexNet's AdaptiveAvgPool2d(6) exports only where the features come out 6x6 or a
# multiple: 224 px. Its 1000-way head is cut to 10 classes to keep the file small.
SMALL_INPUT = {"alexnet": 224}


def small_shape(name: str) -> tuple[int, int, int]:
    info = model_info(name)
    side = SMALL_INPUT.get(name, 64 if info.input_size > 64 else info.input_size)
    return (info.in_chans, side, side)


@pytest.mark.slow
@pytest.mark.parametrize("name", list_models())
def test_export_parity_every_zoo_model(name, tmp_path):
    model = create_model(name, num_classes=10).eval()
    shape = small_shape(name)
    path = tmp_path / f"{name}.onnx"
    rec = export_onnx(model, shape, path, meta=zoo_meta(name, model))
    assert rec["max_abs_diff"] <= 1e-4 and rec["n_inputs"] == 4
    meta = read_onnx_meta(path)
    assert meta["model"] == name and meta["parity"]["max_abs_diff"] == rec["max_abs_diff"]
    assert meta["in_chans"] == shape[0] and meta["normalization"]["mean"]
    # dynamic batch: a batch of 3 the export never saw runs and matches PyTorch
    import torch

    x = np.random.default_rng(1).standard_normal((3, *shape)).astype(np.float32)
    got = make_session(path).run(None, {"input": x})[0]
    with torch.inference_mode():
        want = model(torch.from_numpy(x)).numpy()
    assert np.abs(got - want).max() <= 1e-4


def test_export_of_trained_model_on_real_images(trained, fmnist, tmp_path):
    path, model, meta = trained
    x = normalize(fmnist["test_x"][:64], meta)
    rec = export_onnx(model, (1, 28, 28), tmp_path / "m.onnx", meta=meta, inputs=x)
    assert rec["n_inputs"] == 64 and rec["top1_agreement"] == 1.0
    assert read_onnx_meta(tmp_path / "m.onnx")["classes"][7] == "Sneaker"


def test_export_static_batch_and_opset(tmp_path):
    model = create_model("squeezenet_small")
    rec = export_onnx(model, (1, 28, 28), tmp_path / "s.onnx", opset=13, dynamic_batch=False)
    assert rec["opset"] == 13 and not rec["dynamic_batch"]
    with pytest.raises(ConfigError, match="opset=11"):
        export_onnx(model, (1, 28, 28), tmp_path / "t.onnx", opset=11)
    with pytest.raises(ConfigError, match="inputs has shape"):
        export_onnx(model, (1, 28, 28), tmp_path / "t.onnx", inputs=np.zeros((2, 3, 28, 28)))


def test_export_of_a_sqz_file(trained, tmp_path):
    compress = pytest.importorskip("squeezelab.compress")
    _, model, meta = trained
    c = compress.compress_model(model, meta, sparsity=0.5, bits=6)
    sqz = tmp_path / "m.sqz"
    compress.write_sqz(sqz, c.data)
    decoded, meta2 = load_any_model(sqz)
    rec = export_onnx(decoded, (1, 28, 28), tmp_path / "m.onnx", meta=meta2)
    assert rec["max_abs_diff"] <= 1e-4


def test_not_a_model_is_a_clear_error(tmp_path):
    txt = tmp_path / "notes.onnx"
    txt.write_text("hello, not a model")
    with pytest.raises(FormatError, match="not an ONNX model"):
        read_onnx_meta(txt)
    with pytest.raises(FormatError, match="is not a model"):
        load_any_model(tmp_path / "notes.txt")
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x00" * 64)
    with pytest.raises(FormatError):
        load_any_model(bad)
