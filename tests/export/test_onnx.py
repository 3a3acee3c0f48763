import numpy as np
import pytest

from squeezelab.errors import ConfigError, FormatError
from squeezelab.export import OnnxExport, export_onnx, read_onnx_meta
from squeezelab.export.onnx import make_session, normalize
from squeezelab.models import ModelMeta, create_model, list_models, load_model, model_info

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
    _, meta = load_model(name)
    meta = meta.replace(num_classes=10)
    model = create_model(name, num_classes=10).eval()
    shape = small_shape(name)
    path = tmp_path / f"{name}.onnx"
    rec = export_onnx(model, meta, path, input_shape=shape)
    assert rec.parity.max_abs_diff <= 1e-4 and rec.parity.n_inputs == 4
    assert OnnxExport.from_dict(rec.to_dict()) == rec
    info = read_onnx_meta(path)
    assert info.meta.name == name and info.parity == rec.parity
    assert info.input_shape == shape and info.meta.in_chans == shape[0] and info.meta.mean
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
    rec = export_onnx(model, meta, tmp_path / "m.onnx", inputs=x)
    assert rec.parity.n_inputs == 64 and rec.parity.top1_agreement == 1.0
    info = read_onnx_meta(tmp_path / "m.onnx")
    assert info.meta.classes[7] == "Sneaker" and info.meta == meta


def test_files_written_before_still_read(tmp_path):
    """An export of the old layout (a flat dict in ``squeezelab``) reads as a ModelMeta."""
    import json

    import onnx

    path = tmp_path / "s.onnx"
    export_onnx(*load_model("squeezenet_small"), path)
    proto = onnx.load(str(path))
    for p in proto.metadata_props:
        if p.key == "squeezelab":
            p.value = json.dumps(
                {
                    "model": "squeezenet_small",
                    "in_chans": 1,
                    "input_size": 28,
                    "normalization": {"mean": [0.5], "std": [0.5]},
                }
            )
    onnx.save(proto, str(path))
    info = read_onnx_meta(path)
    assert info.meta.input_shape == (1, 28, 28) and info.parity.opset == 17
    assert info.to_dict()["parity"]["opset"] == 17


def test_export_static_batch_and_opset(tmp_path):
    model, meta = load_model("squeezenet_small")
    rec = export_onnx(model, meta, tmp_path / "s.onnx", opset=13, dynamic_batch=False)
    assert rec.parity.opset == 13 and not rec.parity.dynamic_batch
    with pytest.raises(ConfigError, match="opset=11"):
        export_onnx(model, meta, tmp_path / "t.onnx", opset=11)
    with pytest.raises(ConfigError, match="inputs has shape"):
        export_onnx(model, meta, tmp_path / "t.onnx", inputs=np.zeros((2, 3, 28, 28)))
    with pytest.raises(ConfigError, match="input_shape="):
        export_onnx(model, meta, tmp_path / "t.onnx", input_shape=(3, 28, 28))


def test_export_of_a_sqz_file(trained, tmp_path):
    compress = pytest.importorskip("squeezelab.compress")
    _, model, meta = trained
    c = compress.compress_model(model, meta, sparsity=0.5, bits=6)
    sqz = tmp_path / "m.sqz"
    compress.write_sqz(sqz, c.data)
    decoded, meta2 = load_model(sqz)
    assert isinstance(meta2, ModelMeta)
    rec = export_onnx(decoded, meta2, tmp_path / "m.onnx")
    assert rec.parity.max_abs_diff <= 1e-4


def test_not_a_model_is_a_clear_error(tmp_path):
    txt = tmp_path / "notes.onnx"
    txt.write_text("hello, not a model")
    with pytest.raises(FormatError, match="not an ONNX model"):
        read_onnx_meta(txt)
    with pytest.raises(FormatError, match="is not a model"):
        load_model(tmp_path / "notes.txt")
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x00" * 64)
    with pytest.raises(FormatError):
        load_model(bad)
