import pytest

from squeezelab.errors import ConfigError
from squeezelab.export import benchmark, export_onnx
from squeezelab.export.bench import BACKENDS
from squeezelab.models import create_model


@pytest.mark.slow
def test_benchmark_all_backends():
    rows = benchmark(
        "squeezenet_small",
        threads=(1,),
        rounds=1,
        per_round=3,
        int8_candidates=("U8S8/minmax",),
        roofline="horowitz-45nm",
    )
    assert [r["backend"] for r in rows] == list(BACKENDS)
    for r in rows:
        assert r["threads"] == 1 and r["input_shape"] == [1, 28, 28] and r["runs"] == 3
        assert 0 < r["median_ms"] <= r["p90_ms"] + 1e-9
        assert r["roofline_ms"] > 0 and r["ratio_to_roofline"] == r["median_ms"] / r["roofline_ms"]
    assert rows[0]["speedup_vs_torch"] == 1.0
    assert rows[-1]["int8_candidate"] == "U8S8/minmax"


def test_benchmark_onnx_file_runs_only_ort(tmp_path):
    path = tmp_path / "s.onnx"
    export_onnx(create_model("squeezenet_small"), (1, 28, 28), path)
    rows = benchmark(path, threads=(1,), rounds=1, per_round=2)
    assert [r["backend"] for r in rows] == ["ort_fp32"]
    assert rows[0]["roofline_ms"] is None and "torch" in rows[0]["skipped"]
    with pytest.raises(ConfigError, match="backends="):
        benchmark(path, backends=("tflite",))
