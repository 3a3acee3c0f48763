"""LiteRT fp32 / int8 backends of ``benchmark`` (and ``squeezelab bench --backends``)."""

import pytest

from squeezelab.cli import main
from squeezelab.errors import ConfigError
from squeezelab.export.bench import ALL_BACKENDS, BACKENDS, benchmark


@pytest.mark.slow
def test_litert_backends_time_beside_onnx_runtime():
    backends = ("ort_fp32", "litert_fp32", "litert_int8")
    rows = benchmark(
        "squeezenet_small", backends=backends, thread_counts=(1,), rounds=1, roofline=None
    )
    assert [r.backend for r in rows] == list(backends)
    assert all(r.median_ms > 0 and r.threads == 1 for r in rows)


def test_litert_is_opt_in_and_validated(capsys):
    assert set(BACKENDS) < set(ALL_BACKENDS) and "litert_int8" not in BACKENDS
    with pytest.raises(ConfigError, match="litert_fp32, litert_int8"):
        benchmark("squeezenet_small", backends=("litert_fp16",), roofline=None)
    assert (
        main(["bench", "squeezenet_small", "--backends", "litert_int8", "--input", "1x28x20"]) == 2
    )
    assert "square input" in capsys.readouterr().err
