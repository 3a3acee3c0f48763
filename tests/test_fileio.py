import pickle

import pytest
import torch

from squeezelab.errors import FormatError
from squeezelab.io import atomic_write_json, load_model_file, read_model_meta, save_model_file
from squeezelab.models import create_model


def test_model_file_round_trip(tmp_path):
    model = create_model("squeezenet_small").eval()
    path = tmp_path / "m.safetensors"
    save_model_file(
        path,
        model,
        {"model": "squeezenet_small", "spec": model.spec.to_dict(), "classes": list("abcdefghij")},
    )
    loaded, meta = load_model_file(path)
    assert meta["classes"] == list("abcdefghij") and "squeezelab_version" in meta
    x = torch.randn(2, 1, 28, 28)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))


def test_pickle_payload_is_rejected_not_executed(tmp_path):
    path = tmp_path / "evil.safetensors"

    class Evil:
        def __reduce__(self):
            return (exec, (f"open({str(tmp_path / 'pwned')!r}, 'w').write('pwned')",))

    path.write_bytes(pickle.dumps(Evil()))
    with pytest.raises(FormatError):
        load_model_file(path)
    assert not (tmp_path / "pwned").exists()


def test_missing_and_truncated_files(tmp_path):
    with pytest.raises(FormatError, match="does not exist"):
        read_model_meta(tmp_path / "nope.safetensors")
    model = create_model("squeezenet_small")
    path = tmp_path / "m.safetensors"
    save_model_file(path, model, {"model": "squeezenet_small", "spec": model.spec.to_dict()})
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(FormatError):
        load_model_file(path)


def test_atomic_write_leaves_no_temp(tmp_path):
    atomic_write_json(tmp_path / "a.json", {"x": 1})
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_atomic_write_gives_the_usual_file_mode(tmp_path):
    import os

    atomic_write_json(tmp_path / "a.json", {"x": 1})
    mask = os.umask(0)
    os.umask(mask)
    assert (tmp_path / "a.json").stat().st_mode & 0o777 == 0o666 & ~mask
