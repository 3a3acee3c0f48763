import pytest

from squeezelab.errors import ConfigError
from squeezelab.export import BenchRow, benchmark, export_onnx
from squeezelab.export.bench import BACKENDS
from squeezelab.models import load_model


@pytest.mark.slow
def test_benchmark_all_backends():
    rows = benchmark(
        "squeezenet_small",
        thread_counts=(1,),
        rounds=1,
        per_round=3,
        int8_settings=("U8S8/minmax",),
        roofline="horowitz-45nm",
    )
    assert [r.backend for r in rows] == list(BACKENDS)
    for r in rows:
        assert r.threads == 1 and r.input_shape == (1, 28, 28) and r.runs == 3
        assert 0 < r.median_ms <= r.p90_ms + 1e-9
        assert r.roofline_ms > 0 and r.ratio_to_roofline == r.median_ms / r.roofline_ms
        assert BenchRow.from_dict(r.to_dict()) == r
    assert rows[0].speedup_vs_torch == 1.0
    assert rows[-1].int8_setting == "U8S8/minmax"
    assert rows[-1].to_dict()["int8_candidate"] == "U8S8/minmax"


def test_benchmark_onnx_file_runs_only_ort(tmp_path):
    path = tmp_path / "s.onnx"
    export_onnx(*load_model("squeezenet_small"), path)
    rows = benchmark(path, thread_counts=(1,), rounds=1, per_round=2)
    assert [r.backend for r in rows] == ["ort_fp32"]
    assert rows[0].roofline_ms is None and "torch" in rows[0].skipped
    assert rows[0].to_dict()["input_shape"] == [1, 28, 28]
    with pytest.raises(ConfigError, match="backends="):
        benchmark(path, backends=("tflite",))
    with pytest.raises(ConfigError, match="thread_counts="):
        benchmark(path, thread_counts=(0,))


def test_roofline_none_never_calibrates(monkeypatch):
    from squeezelab.export import bench

    def boom(threads):
        raise AssertionError("calibrated the host")

    monkeypatch.setattr(bench, "host_hardware", boom)
    rows = benchmark(
        "squeezenet_small",
        thread_counts=(1,),
        backends=("torch",),
        rounds=1,
        per_round=1,
        roofline=None,
    )
    assert rows[0].roofline_ms is None
