"""The model file and atomic writes: round trips, refused pickles, truncated files."""

import os
import pickle

import pytest
import torch

from squeezelab.errors import FormatError
from squeezelab.io import atomic_write_json, read_model_meta, save_model_file
from squeezelab.models import ModelMeta, create_model, load_model, save_model


def test_model_file_round_trip(tmp_path):
    model, meta = load_model("squeezenet_small")
    meta = meta.replace(classes=tuple("abcdefghij"), extra={"metrics": {"val_acc": 0.5}})
    path = tmp_path / "m.safetensors"
    save_model(path, model, meta)
    loaded, back = load_model(path)
    assert back == meta and back.classes == tuple("abcdefghij")
    assert "squeezelab_version" in read_model_meta(path)
    x = torch.randn(2, 1, 28, 28)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))


def test_a_file_in_the_layout_written_before_typed_meta_still_loads(tmp_path):
    model = create_model("squeezenet_small").eval()
    path = tmp_path / "old.safetensors"
    old = {
        "model": "squeezenet_small",
        "spec": model.spec.to_dict(),
        "num_classes": 10,
        "in_chans": 1,
        "input_size": 28,
        "classes": list("abcdefghij"),
        "normalization": {"mean": [0.286], "std": [0.353]},
        "metrics": {"epoch": 3},
        "dataset": "fashion-mnist",
        "recipe": "adamw-cosine",
        "params": 187370,
    }
    save_model_file(path, model.state_dict(), old)
    _, meta = load_model(path)
    assert (
        meta.input_shape == (1, 28, 28) and meta.mean == (0.286,) and meta.task == "classification"
    )
    assert {k: v for k, v in meta.to_dict().items() if k in old} == old


def test_pickle_payload_is_rejected_not_executed(tmp_path):
    path = tmp_path / "evil.safetensors"

    class Evil:
        def __reduce__(self):
            return (exec, (f"open({str(tmp_path / 'pwned')!r}, 'w').write('pwned')",))

    path.write_bytes(pickle.dumps(Evil()))
    with pytest.raises(FormatError):
        load_model(path)
    assert not (tmp_path / "pwned").exists()


def test_missing_and_truncated_files(tmp_path):
    with pytest.raises(FormatError, match="does not exist"):
        read_model_meta(tmp_path / "nope.safetensors")
    with pytest.raises(FormatError, match="does not exist"):
        load_model(tmp_path / "nope.safetensors")
    path = tmp_path / "m.safetensors"
    save_model(path, *load_model("squeezenet_small"))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(FormatError):
        load_model(path)


def test_metadata_asking_for_more_than_the_file_holds_is_refused_before_allocating(tmp_path):
    model, meta = load_model("squeezenet_small")
    path = tmp_path / "huge.safetensors"
    huge = meta.spec.replace(base_e=4096, incr_e=4096)  # ~1.5e9 weights: 6 GB if built
    save_model_file(path, model.state_dict(), ModelMeta.for_spec(huge, "x").to_dict())
    with pytest.raises(FormatError, match="more than the file may hold"):
        load_model(path)


def test_atomic_write_leaves_no_temp(tmp_path):
    atomic_write_json(tmp_path / "a.json", {"x": 1})
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_atomic_write_gives_the_usual_file_mode(tmp_path):
    atomic_write_json(tmp_path / "a.json", {"x": 1})
    mask = os.umask(0)
    os.umask(mask)
    assert (tmp_path / "a.json").stat().st_mode & 0o777 == 0o666 & ~mask
