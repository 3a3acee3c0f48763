"""CLI verbs compress, inspect, decompress: exit codes, outputs, errors as one line."""

import json

import torch

from squeezelab.cli import main
from squeezelab.models import ModelMeta, SqueezeNet, load_model, save_model
from tests.compress.test_sqz import TINY, assert_bit_identical


def _save(path, **meta):
    save_model(path, SqueezeNet(TINY), ModelMeta.for_spec(TINY, "squeezenet_small").replace(**meta))


def test_compress_inspect_decompress(tmp_path, capsys):
    src = tmp_path / "tiny.safetensors"
    _save(src, classes=("a", "b", "c"))
    sqz = tmp_path / "tiny.sqz"
    assert main(["compress", str(src), "-o", str(sqz), "--bits", "4", "--fp16"]) == 0
    out = capsys.readouterr().out
    assert "bytes per stage" in out and f"{sqz.stat().st_size:,} bytes" in out
    assert main(["inspect", str(sqz), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["header"]["meta"]["classes"] == ["a", "b", "c"]
    assert shown["accounting"]["file_bytes"] == sqz.stat().st_size
    assert main(["inspect", str(sqz)]) == 0
    assert "alexnet_small" in capsys.readouterr().out
    dst = tmp_path / "back.safetensors"
    assert main(["decompress", str(sqz), "-o", str(dst)]) == 0
    model, meta = load_model(dst)
    decoded = load_model(sqz)[0]
    assert_bit_identical(decoded, model)
    assert meta.classes == ("a", "b", "c")
    x = torch.randn(1, 1, 8, 8)
    assert torch.equal(model(x), decoded(x))


def test_user_errors_exit_2_with_one_line(tmp_path, capsys):
    src = tmp_path / "tiny.safetensors"
    _save(src)
    assert main(["compress", str(src), "-o", str(tmp_path / "x.sqz"), "--bits", "9"]) == 2
    assert "--bits" in (err := capsys.readouterr().err) and "2..8" in err and err.count("\n") == 1
    assert (
        main(["compress", str(src), "-o", str(tmp_path / "x.sqz"), "--finetune-epochs", "1"]) == 2
    )
    assert "--data" in capsys.readouterr().err
    assert main(["inspect", str(src)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "allowed a .sqz file" in err


def test_inspect_ignores_malformed_informational_fields(tmp_path, capsys):
    import json
    import struct
    import zlib

    from squeezelab.compress import compress_model

    data = compress_model(SqueezeNet(TINY), ModelMeta.for_spec(TINY, "squeezenet_small")).data
    hlen = struct.unpack_from("<I", data, 10)[0]
    header = json.loads(data[14 : 14 + hlen])
    header.update(reference="x", accuracy=[1], compression=None)
    text = json.dumps(header).encode()
    body = data[:10] + struct.pack("<I", len(text)) + text + data[14 + hlen : -4]
    path = tmp_path / "odd.sqz"
    path.write_bytes(body + struct.pack("<I", zlib.crc32(body)))
    assert main(["inspect", str(path)]) == 0
    assert "bytes per stage" in capsys.readouterr().out
