import onnx
import pytest

from squeezelab.errors import ConfigError
from squeezelab.export import Int8Result, Int8Setting, export_onnx, quantize_int8, read_onnx_meta

SETTINGS = ["U8S8/minmax", "S8S8/minmax", "U8U8/percentile"]


@pytest.fixture(scope="module")
def fp32_onnx(trained, tmp_path_factory):
    _, model, meta = trained
    path = tmp_path_factory.mktemp("q") / "fmnist.onnx"
    export_onnx(model, meta, path)
    return path


@pytest.mark.slow
def test_int8_keeps_accuracy_of_trained_model(fp32_onnx, fmnist, tmp_path):
    out = tmp_path / "fmnist.int8.onnx"
    rep = quantize_int8(
        fp32_onnx,
        fmnist["train_x"][:256],
        out,
        labels=fmnist["test_y"],
        eval_data=fmnist["test_x"],
        settings=SETTINGS,
        runs=10,
    )
    assert rep.metric == "top1" and rep.fp32.score > 0.3  # it did learn (chance: 0.1)
    assert rep.within_tolerance
    assert rep.int8.score >= rep.fp32.score - 0.005
    assert [t.setting for t in rep.tried] == SETTINGS
    ok = [t for t in rep.tried if t.within_tolerance]
    assert rep.chosen == min(ok, key=lambda t: t.latency_ms).setting
    assert Int8Result.from_dict(rep.to_dict()) == rep
    assert rep.to_dict()["tried"][0]["candidate"] == SETTINGS[0]
    proto = onnx.load(str(out))
    ops = {n.op_type for n in proto.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    info = read_onnx_meta(out)
    assert info.is_int8 and info.quantization.setting == rep.chosen
    assert info.meta.classes[0] == "T-shirt/top" and info.parity is not None


def test_agreement_without_labels(fp32_onnx, fmnist, tmp_path):
    rep = quantize_int8(
        fp32_onnx, fmnist["test_x"][:64], tmp_path / "a.onnx", settings=["U8S8/minmax"], runs=5
    )
    assert rep.metric == "agreement" and len(rep.tried) == 1
    assert 0.9 <= rep.tried[0].score <= 1.0


def test_bad_arguments(fp32_onnx, fmnist, tmp_path):
    with pytest.raises(ConfigError, match="TYPES/METHOD"):
        Int8Setting.parse("U8S4/minmax")
    with pytest.raises(ConfigError, match="calibration/eval data has shape"):
        quantize_int8(fp32_onnx, fmnist["test_x"][:4, :, :20], tmp_path / "b.onnx")
    with pytest.raises(ConfigError, match="labels has 3 entries"):
        quantize_int8(fp32_onnx, fmnist["test_x"][:4], tmp_path / "b.onnx", labels=[1, 2, 3])
