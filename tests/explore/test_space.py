import random

import pytest

from squeezelab.errors import ConfigError, SpecError, UnknownNameError
from squeezelab.explore import list_presets, load_space, space_from_dict


def test_presets_load():
    assert {"paper-sr-sweep", "paper-pct3x3-sweep", "paper-bypass", "mcu-256k"} <= set(
        list_presets()
    )
    sr = load_space("paper-sr-sweep")
    assert sr.sampler == "grid" and [v["sr"] for v in sr.enumerate()][0] == 0.125
    assert sr.size() == 15 and sorted({v["seed"] for v in sr.enumerate()}) == [0, 1, 2]
    assert load_space("paper-pct3x3-sweep").candidate({"pct_3x3": 0.25}).spec["sr"] == 0.5
    mcu = load_space("mcu-256k")
    assert [c.describe() for c in mcu.constraints] == [
        "peak_activation_bytes <= 262144",
        "model_bytes <= 1.04858e+06",
        "latency_ms <= 20",
    ]
    assert mcu.directions == ["maximize", "minimize", "minimize"]


def test_param_kinds_and_sampling():
    s = space_from_dict(
        {
            "params": {
                "sr": [0.25, 0.5],
                "base_e": {"low": 16, "high": 64, "step": 16},
                "incr_e": {"low": 8, "high": 64, "log": True},
                "dropout": {"low": 0.0, "high": 0.5},
                "pool_after": [[2, 5], [3, 6]],
                "pct_3x3": 0.5,
            },
        }
    )
    kinds = {n: p.kind for n, p in s.params.items()}
    assert kinds == {
        "sr": "choice",
        "base_e": "int",
        "incr_e": "int",
        "dropout": "float",
        "pool_after": "choice",
        "pct_3x3": "fixed",
    }
    assert s.params["base_e"].grid() == [16, 32, 48, 64]
    assert s.size() is None  # dropout is continuous
    rng = random.Random(1)
    for _ in range(20):
        v = s.sample(rng)
        assert 16 <= v["base_e"] <= 64 and v["base_e"] % 16 == 0
        assert 8 <= v["incr_e"] <= 64 and 0 <= v["dropout"] <= 0.5
        cand = s.candidate(v)
        assert cand.spec["pct_3x3"] == 0.5 and tuple(cand.spec["pool_after"]) in {(2, 5), (3, 6)}
        assert cand.input_shape == (1, 28, 28)


def test_width_knob_family():
    s = space_from_dict(
        {
            "model": ["squeezenet_small", "mobilenet_v2"],
            "params": {
                "width_mult": [0.25, 0.5],
                "num_classes": 10,
                "in_chans": 1,
                "input_size": 32,
            },
        }
    )
    c = s.candidate({"model": "mobilenet_v2", "width_mult": 0.25})
    assert c.spec is None and c.model_args == {"width_mult": 0.25}
    assert (c.meta.num_classes, c.input_shape) == (10, (1, 32, 32))
    c = s.candidate({"model": "squeezenet_small", "width_mult": 0.25})
    assert c.spec["input_size"] == 32 and c.model_args == {}


@pytest.mark.parametrize(
    "data, needle",
    [
        (
            {"params": {"sr": {"low": 0.5, "high": 0.1}}},
            "params.sr: low=0.5 must be below high=0.1",
        ),
        ({"params": {"base_e": {"low": 8.5, "high": 16}}}, "base_e is an integer field"),
        ({"params": {"sr": {"choices": []}}}, "params.sr.choices=[] is invalid"),
        ({"params": {"colour": [1, 2]}}, "params ['colour'] are unknown"),
        ({"objectives": ["speed"]}, "objectives[0].metric='speed' is invalid"),
        ({"constraints": [{"metric": "params"}]}, "give exactly one of max or min"),
        ({"constraints": [{"metric": "model_bytes", "max": "2 parsecs"}]}, "constraints[0].max"),
        ({"search": {"sampler": "annealing"}}, "search.sampler='annealing' is invalid"),
        (
            {"params": {"dropout": {"low": 0.0, "high": 0.5}}, "search": {"sampler": "grid"}},
            "a grid needs choices",
        ),
        ({"wat": 1}, "unknown top-level key(s) ['wat']"),
    ],
)
def test_bad_spaces_name_the_field(data, needle):
    with pytest.raises(ConfigError) as e:
        space_from_dict(data)
    assert needle in str(e.value)


def test_unknown_preset_and_model_and_bad_spec():
    with pytest.raises(UnknownNameError, match="paper-sr-sweep"):
        load_space("paper-sr-swep")
    with pytest.raises(UnknownNameError, match="squeezenet_small"):
        space_from_dict({"model": ["squeezenet_smal"]})
    s = space_from_dict({"params": {"pct_3x3": [0.001, 0.5]}})
    with pytest.raises(SpecError, match="pct_3x3"):
        s.candidate({"pct_3x3": 0.001})


def test_compressed_model_bytes_objective():
    s = space_from_dict(
        {
            "objectives": [
                "accuracy",
                {"metric": "model_bytes", "compression": {"sparsity": 0.5, "bits": 4}},
            ]
        }
    )
    assert s.objectives[1].key == "model_bytes[sqz-s0.5-4bit]"
    assert s.objectives[1].compression == (0.5, 4)
    with pytest.raises(ConfigError, match="compression"):
        space_from_dict({"objectives": [{"metric": "macs", "compression": {"bits": 4}}]})
    with pytest.raises(ConfigError, match="bits: 2..8"):
        space_from_dict({"objectives": [{"metric": "model_bytes", "compression": {"bits": 12}}]})


def test_sizes_with_units():
    s = space_from_dict(
        {
            "constraints": [
                {"metric": "peak_activation_bytes", "max": "256KiB"},
                {"metric": "model_bytes", "max": "1 MB"},
            ]
        }
    )
    assert [c.max for c in s.constraints] == [262144, 1e6]


def test_overrides_keep_the_search_space():
    s = load_space("paper-sr-sweep").with_overrides(train={"epochs": 1}, search={"trials": 3})
    assert s.train["epochs"] == 1 and s.trials == 3 and s.train["data"] == "fashion-mnist"
    assert s.to_dict()["params"] == load_space("paper-sr-sweep").to_dict()["params"]
