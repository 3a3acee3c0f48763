"""Third-party messages reach the user as one line naming the file or flag."""

import pytest

from squeezelab.cli import main
from squeezelab.errors import one_line


@pytest.mark.parametrize(
    "args,where",
    [
        (["profile", "{spec}"], "bad.yaml"),
        (["profile", "squeezenet_small", "--hardware", "{spec}"], "bad.yaml"),
        (["explore", "{spec}", "-o", "{out}"], "bad.yaml"),
    ],
)
def test_a_yaml_file_that_does_not_parse_is_one_line(tmp_path, capsys, args, where):
    spec = tmp_path / "bad.yaml"
    spec.write_text("base_e: [1, 2\nsr: 0.5\n")  # an unclosed flow sequence
    argv = [a.format(spec=spec, out=tmp_path / "o") for a in args]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and where in err and "line" in err, err


def test_a_storage_that_cannot_be_opened_is_one_line(tmp_path, capsys):
    url = f"sqlite:///{tmp_path}/no/such/dir/study.db"
    assert main(["study", "show", url]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err


def test_one_line_keeps_the_first_line_of_anything():
    assert one_line(ValueError("first\n  SELECT * FROM x\n")) == "ValueError: first"
    assert one_line(KeyError()) == "KeyError"


def test_a_message_is_one_line_whatever_a_file_put_in_it():
    """A field named "\\n" in a model file (found by tests/io/test_fuzz.py) must not split
    the one line the CLI prints: control characters show escaped."""
    from squeezelab.errors import FormatError, UnknownNameError

    assert str(FormatError("spec field \n=2 is out of range")) == "spec field \\n=2 is out of range"
    assert str(UnknownNameError("unknown model 'a\tb'")) == "unknown model 'a\\tb'"
    assert str(FormatError("café: ok")) == "café: ok"
