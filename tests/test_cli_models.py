import json

from squeezelab.cli import main


def test_models_json(capsys):
    assert main(["models", "squeezenet1_*", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["name"]: r["params"] for r in rows} == {
        "squeezenet1_0": 1_248_424,
        "squeezenet1_1": 1_235_496,
    }


def test_spec_json(capsys):
    assert main(["spec", "squeezenet1_0", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["name"] == "sqz-b128-i128-f2-p50-sr125" and data["sr"] == 0.125


def test_bad_name_exits_2_with_one_line(capsys):
    assert main(["spec", "squeezenet2"]) == 2
    err = capsys.readouterr().err
    assert "unknown model 'squeezenet2'" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_spec_of_non_squeezenet_exits_2(capsys):
    assert main(["spec", "alexnet"]) == 2
    assert "has no SqueezeNetSpec" in capsys.readouterr().err
