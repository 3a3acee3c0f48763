import numpy as np
import pytest
from PIL import Image

from squeezelab.cli import main
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
    with pytest.raises(DatasetError, match="notes.txt: cannot decode image"):
        predict(path, [notes])
    with pytest.raises(DatasetError, match="does not exist"):
        predict(path, [tmp_path / "nope.png"])
    with pytest.raises(DatasetError, match="matches no file"):
        predict(path, [str(tmp_path / "*.jpeg")])
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


def test_predict_takes_a_directory_and_a_glob(trained, pngs, tmp_path, capsys):
    import json

    path = trained[0]
    by_dir = predict(path, [pngs[0].parent], top_k=2)
    assert [r.image for r in by_dir] == [str(p) for p in sorted(pngs)]
    by_glob = predict(path, [str(pngs[0].parent / "img[0-3].png")], top_k=2)
    assert [r.image for r in by_glob] == [str(p) for p in pngs[:4]]
    assert [r.to_dict() for r in by_glob] == [r.to_dict() for r in by_dir[:4]]
    assert main(["predict", str(path), str(pngs[0].parent), "--json", "--top-k", "2"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert records == [r.to_dict() for r in by_dir]
    assert main(["predict", str(path), str(pngs[0].parent / "img1.png"), "--top-k", "2"]) == 0
    table = capsys.readouterr().out
    assert "img1.png" in table and by_dir[1].top[0].label in table and "next" in table


def test_fifo_input_is_refused_quickly(trained, tmp_path):
    import os
    import subprocess
    import sys

    fifo = tmp_path / "x.png"
    os.mkfifo(fifo)
    out = subprocess.run(
        [sys.executable, "-m", "squeezelab", "predict", str(trained[0]), str(fifo)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2
    assert out.stderr.strip().endswith("x.png: is a FIFO: allowed regular files only")


def test_evaluate_defaults_to_the_recorded_dataset(trained, fmnist, tmp_path, monkeypatch, capsys):
    import json

    from squeezelab.models import save_model

    monkeypatch.setenv("SQUEEZELAB_CACHE", str(tmp_path / "cache"))
    path, model, meta = trained
    data = tmp_path / "shots"
    for split, x, y in (
        ("train", fmnist["train_x"][:20], fmnist["train_y"][:20]),
        ("test", fmnist["test_x"][:40], fmnist["test_y"][:40]),
    ):
        for c in range(10):
            (data / split / str(c)).mkdir(parents=True)
        for i, (img, label) in enumerate(zip(x, y, strict=True)):
            im = Image.fromarray(img[0], "L")
            if i % 2:  # mixed sizes: every other image at twice the size
                im = im.resize((56, 56), Image.Resampling.BILINEAR)
            im.save(data / split / str(label) / f"{i}.png")
    for c in range(10):  # a class the 20 training images missed still needs one image
        if not any((data / "train" / str(c)).iterdir()):
            Image.fromarray(fmnist["train_x"][0, 0], "L").save(data / "train" / str(c) / "x.png")
    model_file = tmp_path / "m.safetensors"
    save_model(model_file, model, meta.replace(extra={"dataset": str(data)}))
    monkeypatch.chdir(tmp_path)
    assert main(["evaluate", str(model_file), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["data"] == str(data) and result["n"] == 40
    assert result["top1"] >= 0.2  # resized to 28x28, the model still sees clothes
    bare = tmp_path / "bare.safetensors"
    save_model(bare, model, meta)
    assert main(["evaluate", str(bare)]) == 2
    assert "records no dataset" in capsys.readouterr().err
