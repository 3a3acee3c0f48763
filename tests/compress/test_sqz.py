"""The .sqz file: bit-exact round trips over the zoo, and hostile input gives FormatError."""

import json
import struct
import zlib

import pytest
import torch

from squeezelab.compress import compress_model, write_sqz
from squeezelab.errors import FormatError
from squeezelab.io import read_sqz_header, read_sqz_layout
from squeezelab.io.sqzfile import MAGIC, VERSION
from squeezelab.models import ModelMeta, list_models, load_model
from squeezelab.models.load import decode_sqz
from squeezelab.models.squeezenet import SqueezeNet
from tests.conftest import TINY_SPEC

TINY = TINY_SPEC


def _bits(t: torch.Tensor) -> torch.Tensor:
    return t.view(torch.int32) if t.dtype == torch.float32 else t


def assert_bit_identical(a: torch.nn.Module, b: torch.nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert set(sa) == set(sb)
    for k in sa:
        assert sa[k].dtype == sb[k].dtype and torch.equal(_bits(sa[k]), _bits(sb[k])), k


SETTINGS = [(0.67, 6, None), (0.9, 2, None), (0.0, 8, 5), (0.5, 4, 3)]
BIG = ("alexnet", "alexnet_small")  # 61M and 23M parameters: one setting each, marked slow


def _check_round_trip(name: str, sparsity: float, bits: int, fc_bits: int | None):
    torch.manual_seed(0)
    c = compress_model(*load_model(name), sparsity, bits, fc_bits)
    model, meta, header = decode_sqz(c.data)
    assert meta == c.meta
    assert_bit_identical(c.model, model)
    assert header["meta"]["model"] == name
    return c


@pytest.mark.parametrize("name", [n for n in list_models() if n not in BIG])
def test_round_trip_is_bit_exact_over_the_zoo(name):
    _check_round_trip(name, 0.67, 6, None)


@pytest.mark.parametrize("sparsity,bits,fc_bits", SETTINGS)
def test_round_trip_is_bit_exact_at_several_settings(sparsity, bits, fc_bits):
    _check_round_trip("squeezenet_small", sparsity, bits, fc_bits)
    _check_round_trip("squeezenet1_1", sparsity, bits, fc_bits)


@pytest.mark.slow
def test_round_trip_alexnet_small_23m():
    c = _check_round_trip("alexnet_small", 0.9, 6, 4)
    assert c.accounting.reduction > 20  # against its own fp32 bytes


@pytest.mark.slow
def test_round_trip_alexnet_61m():
    c = _check_round_trip("alexnet", 0.9, 4, 3)
    assert c.accounting.reduction > 20  # the paper's 35x needs 8-bit conv and 5-bit fc


def test_fp16_plain_tensors_and_spec_models_round_trip():
    model = SqueezeNet(TINY.replace(bypass="complex", batchnorm=True))
    c = compress_model(model, fp16_plain=True)
    out = decode_sqz(c.data)[0]
    assert_bit_identical(c.model, out)
    x = torch.randn(2, 1, 8, 8)
    assert torch.equal(c.model(x), out(x))


def test_file_api_and_load_model(tmp_path):
    meta = ModelMeta.for_spec(TINY, "tiny").replace(
        classes=("a", "b", "c"), mean=(0.5,), std=(0.25,)
    )
    c = compress_model(SqueezeNet(TINY), meta)
    path = tmp_path / "tiny.sqz"
    assert write_sqz(path, c.data) == path.stat().st_size
    header = read_sqz_header(path)
    assert header["meta"]["classes"] == ["a", "b", "c"] and header["meta"]["spec"]["num_fire"] == 2
    _, entries = read_sqz_layout(path)
    assert {e["kind"] for e in entries} == {"shared", "plain"}
    model, meta2 = load_model(path)
    assert_bit_identical(c.model, model)
    assert meta2 == meta and meta2.std == (0.25,) and meta2.classes == ("a", "b", "c")
    assert load_model("squeezenet_small")[1].input_size == 28


@pytest.fixture(scope="module")
def tiny_file() -> bytes:
    torch.manual_seed(0)
    data = compress_model(SqueezeNet(TINY), None, 0.67, 3).data
    assert len(data) < 4000  # small enough to flip every byte
    return data


def test_every_flipped_byte_is_a_format_error(tiny_file):
    for i in range(len(tiny_file)):
        bad = bytearray(tiny_file)
        bad[i] ^= 0xFF
        with pytest.raises(FormatError):
            decode_sqz(bytes(bad))


def test_every_truncation_is_a_format_error(tiny_file):
    for n in range(len(tiny_file)):
        with pytest.raises(FormatError):
            decode_sqz(tiny_file[:n])


def _reseal(data: bytes) -> bytes:
    """Fix the checksum so the decoder's own checks are what is tested."""
    return data[:-4] + struct.pack("<I", zlib.crc32(data[:-4]))


def test_altered_bytes_with_a_valid_checksum_never_crash(tiny_file):
    """A forger can fix the CRC: the decoder's own bounds must then hold (all body bytes)."""
    body_start = 14 + struct.unpack_from("<I", tiny_file, 10)[0]
    offsets = [*range(0, body_start, 5), *range(body_start, len(tiny_file) - 4)]
    decoded = 0
    for i in offsets:
        bad = bytearray(tiny_file)
        bad[i] ^= 0x5A
        try:
            decode_sqz(_reseal(bytes(bad)))
            decoded += 1  # e.g. a codebook value changed: still a valid file
        except FormatError:
            pass
    assert decoded < len(offsets) // 2


@pytest.mark.parametrize(
    "change",
    [
        lambda h: h["meta"].update(model="no_such_model", spec=None),
        lambda h: h["meta"].update(model="alexnet", spec=None, num_classes=10**6),
        lambda h: h["meta"]["spec"].update(base_e=10**6),
        lambda h: h["meta"]["spec"].update(num_fire=10**5),
        lambda h: h["meta"]["spec"].update(num_classes=5000, input_size=10**7),
        lambda h: h["tensors"].pop(),
        lambda h: h["tensors"][0].__setitem__(1, [10**9, 10**9]),
        lambda h: h["tensors"][0].__setitem__(1, "x"),
        lambda h: h.pop("meta"),
        lambda h: h["tensors"].reverse(),
    ],
)
def test_hostile_headers_are_format_errors(tiny_file, change):
    hlen = struct.unpack_from("<I", tiny_file, 10)[0]
    header = json.loads(tiny_file[14 : 14 + hlen])
    change(header)
    text = json.dumps(header).encode()
    data = tiny_file[:10] + struct.pack("<I", len(text)) + text + tiny_file[14 + hlen :]
    with pytest.raises(FormatError):
        decode_sqz(_reseal(data))


def test_wrong_magic_and_version(tiny_file, tmp_path):
    with pytest.raises(FormatError, match="magic"):
        decode_sqz(b"PK\x03\x04" + tiny_file[4:])
    newer = tiny_file[:8] + struct.pack("<H", VERSION + 1) + tiny_file[10:]
    with pytest.raises(FormatError, match="version"):
        decode_sqz(_reseal(newer))
    path = tmp_path / "model.safetensors.sqz"
    path.write_bytes(b"{}")
    with pytest.raises(FormatError, match="magic"):
        load_model(path)
    with pytest.raises(FormatError, match="does not exist"):
        read_sqz_header(tmp_path / "missing.sqz")
    assert tiny_file.startswith(MAGIC)
