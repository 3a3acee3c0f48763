import numpy as np
import pytest
from PIL import Image

from squeezelab.errors import DatasetError, FormatError
from squeezelab.export import export_onnx, predict


@pytest.fixture(scope="module")
def pngs(fmnist, tmp_path_factory):
    d = tmp_path_factory.mktemp("img")
    paths = []
    for i in range(8):
        p = d / f"img{i}.png"
        Image.fromarray(fmnist["test_x"][i, 0], "L").save(p)
        paths.append(p)
    return paths


def test_predict_model_file_and_onnx_agree(trained, fmnist, pngs, tmp_path):
    path, model, meta = trained
    onnx_path = tmp_path / "m.onnx"
    export_onnx(model, meta, onnx_path)
    a = predict(path, pngs, top_k=3)
    b = predict(onnx_path, pngs, top_k=3)
    assert len(a) == 8 and len(a[0].top) == 3
    assert [r.top[0].index for r in a] == [r.top[0].index for r in b]
    for ra, rb in zip(a, b, strict=True):
        assert abs(ra.top[0].prob - rb.top[0].prob) < 1e-4
        probs = [t.prob for t in ra.top]
        assert probs == sorted(probs, reverse=True)
    hits = sum(r.top[0].index == y for r, y in zip(a, fmnist["test_y"][:8], strict=True))
    assert hits >= 2  # better than chance (0.8 of 8) after a few hundred steps
    assert a[0].top[0].label in meta.classes
    assert a[0].to_dict()["top"][0] == {
        "index": a[0].top[0].index,
        "label": a[0].top[0].label,
        "prob": a[0].top[0].prob,
    }


def test_rgb_and_larger_images_are_converted(trained, fmnist, tmp_path):
    path = trained[0]
    gray = tmp_path / "g.png"
    rgb = tmp_path / "rgb_big.png"
    Image.fromarray(fmnist["test_x"][0, 0], "L").save(gray)
    Image.fromarray(fmnist["test_x"][0, 0], "L").convert("RGB").resize((56, 56)).save(rgb)
    a, b = predict(path, [gray, rgb], top_k=1)
    assert a.top[0].index == b.top[0].index


def test_bad_inputs_give_clear_errors(trained, tmp_path):
    path = trained[0]
    notes = tmp_path / "notes.txt"
    notes.write_text("not a model")
    img = tmp_path / "ok.png"
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(img)
    with pytest.raises(FormatError, match="is not a model"):
        predict(notes, [img])
    with pytest.raises(FormatError, match="not an image"):
        predict(path, [notes])
    wide = tmp_path / "wide.png"
    Image.fromarray(np.zeros((20, 300), np.uint8)).save(wide)
    with pytest.raises(DatasetError, match="300x20 .* aspect ratios up to 2:1"):
        predict(path, [wide])
    big = tmp_path / "big.png"
    Image.fromarray(np.zeros((32, 32), np.uint8)).save(big)
    with pytest.raises(DatasetError, match="32x32 but the model takes 28x28"):
        predict(path, [big], resize=False)
    deep = tmp_path / "deep.png"
    Image.fromarray(np.zeros((28, 28), np.uint16)).save(deep)
    with pytest.raises(DatasetError, match="pixel mode 'I;16'"):
        predict(path, [deep])
    with pytest.raises(DatasetError, match=r"shape \(28, 28, 2\)"):
        predict(path, [np.zeros((28, 28, 2), np.uint8)])
