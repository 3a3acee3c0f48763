"""The one way in: load_model over every kind of reference, and ModelMeta's checks."""

import json

import pytest

from squeezelab.errors import FormatError, SpecError, UnknownNameError
from squeezelab.models import (
    SQUEEZENET_SMALL,
    ModelMeta,
    SqueezeNetSpec,
    build_model,
    create_model,
    list_models,
    load_model,
    save_model,
)


def _params(m) -> int:
    return sum(p.numel() for p in m.parameters())


@pytest.mark.parametrize("name", list_models())
def test_zoo_names_give_the_registry_model_and_its_meta(name):
    model, meta = load_model(name)
    assert meta.name == name and not model.training
    assert _params(build_model(meta)) == _params(model) == _params(create_model(name))
    assert ModelMeta.from_dict(meta.to_dict()) == meta


def test_spec_files_in_yaml_json_and_the_spec_verbs_json(tmp_path):
    spec = SQUEEZENET_SMALL.replace(sr=0.25)
    (tmp_path / "a.yaml").write_text(spec.to_yaml())
    (tmp_path / "a.json").write_text(spec.to_json())
    # what `squeezelab spec NAME --json` prints: the fields plus a name
    (tmp_path / "b.json").write_text(json.dumps({"name": "mine", **spec.to_dict()}))
    for f in ("a.yaml", "a.json", "b.json"):
        model, meta = load_model(tmp_path / f)
        assert meta.spec == spec and model.spec == spec and meta.input_shape == (1, 28, 28)
    assert load_model(tmp_path / "a.yaml")[1].name == spec.short_name
    assert load_model(tmp_path / "b.json")[1].name == "mine"


def test_a_spec_object_and_a_spec_dict_build_the_same_model():
    spec = SQUEEZENET_SMALL.replace(bypass="simple")
    assert create_model(spec).spec == create_model(spec.to_dict()).spec == spec
    assert create_model(spec, num_classes=3).spec.num_classes == 3
    assert load_model(spec)[1] == ModelMeta.for_spec(spec)


def test_width_knob_models_keep_their_args_through_a_file(tmp_path):
    meta = ModelMeta("squeezenext_23", 10, 1, 32, model_args={"width_mult": 0.5})
    model = build_model(meta)
    save_model(tmp_path / "n.safetensors", model, meta)
    again, back = load_model(tmp_path / "n.safetensors")
    assert back.model_args == {"width_mult": 0.5} and _params(again) == _params(model)


@pytest.mark.parametrize(
    "ref,match",
    [
        ("model.bin", "is not a model"),
        ("missing.safetensors", "does not exist"),
        ("missing.sqz", "does not exist"),
        ("missing.yaml", "does not exist"),
    ],
)
def test_what_cannot_be_a_model_gets_one_line(tmp_path, ref, match):
    with pytest.raises(FormatError, match=match) as e:
        load_model(tmp_path / ref if ref.startswith("missing") else ref)
    assert "\n" not in str(e.value)


def test_unknown_names_list_close_ones_and_bad_spec_files_name_the_file(tmp_path):
    with pytest.raises(UnknownNameError, match="did you mean squeezenet_small"):
        load_model("squeezenet_smal")
    (tmp_path / "bad.yaml").write_text("sr: 7\n")
    with pytest.raises(SpecError, match=r"bad\.yaml.*sr"):
        load_model(tmp_path / "bad.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n")
    with pytest.raises(FormatError, match="mapping"):
        load_model(tmp_path / "list.yaml")


@pytest.mark.parametrize(
    "change,field",
    [
        ({"model": 3}, "model name"),
        ({"num_classes": 0}, "num_classes"),
        ({"in_chans": True}, "in_chans"),
        ({"input_size": 10**9}, "input_size"),
        ({"task": "segmentation"}, "task"),
        ({"classes": ["a"]}, "class names"),
        ({"normalization": {"mean": [0.5], "std": [0.0]}}, "normalization"),
        ({"model_args": [1]}, "model_args"),
        ({"spec": "x"}, "spec"),
        ({"spec": {"base_e": 10**7}}, "base_e"),
        ({"spec": {"num_fire": 1000}}, "num_fire"),
        ({"input_size": -5}, "input_size"),
        ({"in_chans": 3000, "input_size": 4000}, "input elements"),
        ({"normalization": {"mean": [0.5], "std": [float("nan")]}}, "normalization"),
        ({"normalization": [[0.5], [0.5]]}, "normalization"),
        ({"metrics": json.loads("[" * 500 + "]" * 500)}, "'metrics' nests deeper"),
        ({"model_args": {"depth": 3}}, "model_args key 'depth'"),
        ({"model_args": {"dropout": [0.5]}}, "model_args dropout"),
        ({"model_args": {"dropout": float("inf")}}, "finite"),
        ({"model": "squeezenet_small", "model_args": {"num_fire": 20_000}}, "num_fire=20000"),
        ({"model": "squeezenet_small", "model_args": {"sr": 7}}, "sr=7"),
        ({"model_args": {"num_classes": 5}}, "top-level"),
    ],
)
def test_bad_metadata_is_a_format_error_naming_the_field(change, field):
    d = ModelMeta("alexnet_small", 10, 1, 28).to_dict()
    d.update(change)
    with pytest.raises(FormatError, match=field):
        ModelMeta.from_dict(d, where="m.safetensors")


@pytest.mark.parametrize(
    "name,text,field",
    [
        ("huge.yaml", "num_fire: 20000\n", "num_fire=20000 exceeds 256"),
        ("huge.yaml", "base_e: 1000000000\n", "base_e=1000000000 is out of any model's range"),
        ("huge.json", '{"name": "x", "spec": {"incr_e": 1000000000}}', "incr_e=1000000000 is"),
    ],
)
def test_spec_files_get_the_caps_of_file_metadata(tmp_path, capsys, name, text, field):
    """A few bytes of YAML cannot ask for minutes of building or gigabytes of weights."""
    import signal

    from squeezelab.cli import main

    path = tmp_path / name
    path.write_text(text)

    def hung(*_):  # without the caps this builds for minutes: fail, do not hang the suite
        raise TimeoutError(f"profile {path} was not refused in 10 s")

    old = signal.signal(signal.SIGALRM, hung)
    signal.alarm(10)
    try:
        assert main(["profile", str(path)]) == 2  # within the 10 s alarm, not minutes
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(path) in err[0] and field in err[0], err
    with pytest.raises(SpecError, match=field):  # the library's parsers, the same caps
        SqueezeNetSpec.from_yaml(text)
    if name.endswith(".json"):
        with pytest.raises(SpecError, match=field):
            SqueezeNetSpec.from_json(json.dumps(json.loads(text)["spec"]))
