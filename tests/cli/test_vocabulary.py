"""The CLI's one vocabulary (issue 13 item 5), checked on every verb's parser.

Walks every subparser of ``build_parser()``: the model is the positional ``MODEL``, outputs
are ``-o/--output``, ``--threads`` is one integer, ``--bits`` means codebook bits only,
data comes with ``--data-dir``, every visible option says what it does, and old spellings
are hidden deprecated aliases.
"""

import argparse

import pytest

from squeezelab.cli import _flags, build_parser

# verbs whose subject is a model (MODEL positional, through models.load_model)
MODEL_VERBS = {
    "advise",
    "bench",
    "compress",
    "decompress",
    "evaluate",
    "export",
    "inspect",
    "measure",
    "predict",
    "profile",
    "spec",
    "train",
}
CODEBOOK_VERBS = {"compress", "design"}  # --bits = weight-sharing index bits
RETIRED = {"--out", "--batch", "--target", "--calib-data", "--model-file", "--model"}
DATA_OPTIONS = {"--data", "--calib-data", "--train-data", "--eval-data"}


def _verbs(parser=None, prefix="") -> dict[str, argparse.ArgumentParser]:
    """Every (sub-)subparser by its command line: ``{"profile": ..., "study show": ...}``."""
    out = {}
    for a in (parser or build_parser())._actions:
        if isinstance(a, argparse._SubParsersAction):
            for name, p in a.choices.items():
                out[prefix + name] = p
                out.update(_verbs(p, f"{prefix}{name} "))
    return out


VERBS = _verbs()


def _visible(p):
    return [
        a
        for a in p._actions
        if a.option_strings
        and a.help != argparse.SUPPRESS
        and not isinstance(a, argparse._HelpAction)
    ]


def _options(p) -> set[str]:
    return {s for a in _visible(p) for s in a.option_strings}


@pytest.mark.parametrize("verb", sorted(VERBS))
def test_model_is_positional_MODEL(verb):
    p = VERBS[verb]
    positional = [a for a in p._actions if not a.option_strings]
    models = [a for a in positional if a.dest in ("model", "models", "model_file", "file")]
    for a in models:
        assert a.metavar == "MODEL", f"{verb}: positional {a.dest!r} is not named MODEL"
    if verb in MODEL_VERBS:
        assert models, f"{verb} takes a model but has no positional MODEL"


@pytest.mark.parametrize("verb", sorted(VERBS))
def test_no_retired_spelling_is_visible(verb):
    shown = _options(VERBS[verb]) & RETIRED
    assert not shown, f"{verb} shows retired option(s) {sorted(shown)} in --help"


@pytest.mark.parametrize("verb", sorted(VERBS))
def test_outputs_are_o_output(verb):
    for a in _visible(VERBS[verb]):
        if {"-o", "--output", "--out", "--output-dir", "--out-dir"} & set(a.option_strings):
            assert a.option_strings == ["-o", "--output"], f"{verb}: {a.option_strings}"


@pytest.mark.parametrize("verb", sorted(VERBS))
def test_threads_is_one_int(verb):
    for a in _visible(VERBS[verb]):
        if "--threads" in a.option_strings:
            one_int = a.type is _flags.positive_int and a.nargs is None
            assert one_int, f"{verb}: --threads is not one positive integer"


@pytest.mark.parametrize("verb", sorted(VERBS))
def test_bits_only_for_codebooks(verb):
    if "--bits" in _options(VERBS[verb]):
        assert verb in CODEBOOK_VERBS, f"{verb}: --bits outside codebooks (use --weight-bits)"


@pytest.mark.parametrize("verb", sorted(VERBS))
def test_every_visible_option_has_help(verb):
    for a in _visible(VERBS[verb]):
        assert a.help and a.help.strip(), f"{verb}: {a.option_strings} has no help text"
    for a in VERBS[verb]._actions:
        if not a.option_strings and not isinstance(a, argparse._SubParsersAction):
            assert a.help, f"{verb}: positional {a.dest!r} has no help text"


@pytest.mark.parametrize("verb", sorted(VERBS))
def test_data_comes_with_data_dir(verb):
    options = _options(VERBS[verb])
    if options & DATA_OPTIONS:
        assert "--data-dir" in options, f"{verb} reads data but has no --data-dir"


@pytest.mark.parametrize("verb", sorted(VERBS))
def test_hardware_and_batch_spelling(verb):
    options = _options(VERBS[verb])
    assert "--target" not in options and "--batch" not in options
    if "--hardware" in options:
        hw = next(a for a in _visible(VERBS[verb]) if "--hardware" in a.option_strings)
        assert hw.nargs is None, f"{verb}: --hardware takes one profile"


def test_deprecated_alias_warns_and_is_hidden(capsys):
    p = argparse.ArgumentParser()
    _flags.add_batch_size(p, 1)
    _flags.deprecated_alias(p, "--batch", "--batch-size", dest="batch_size", type=int)
    assert "--batch " not in p.format_help() and "--batch-size" in p.format_help()
    assert p.parse_args([]).batch_size == 1
    assert p.parse_args(["--batch", "4"]).batch_size == 4
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--batch is deprecated" in err and "--batch-size" in err


def test_train_flags_are_train_config_fields():
    import dataclasses

    from squeezelab.cli.cmd_train import FIELDS
    from squeezelab.train import TrainConfig

    p = VERBS["train"]
    fields = {f.name: f for f in dataclasses.fields(TrainConfig)}
    assert set(FIELDS) == set(fields) - {"model", "spec", "model_args"}
    args = p.parse_args(["squeezenet_small"])
    for name in FIELDS:  # a flag left out is the field's own default
        default = fields[name].default
        assert getattr(args, name) == default, name


def test_old_spellings_still_parse(capsys):
    args = VERBS["train"].parse_args(["--model", "squeezenet_small", "--out", "r"])
    assert args.model_flag == "squeezenet_small" and args.output == "r"
    assert VERBS["profile"].parse_args(["m", "--bits", "8"]).weight_bits == 8
    assert VERBS["measure"].parse_args(["m", "--batch", "2"]).batch_size == 2
    assert VERBS["calibrate"].parse_args(["--out", "h.yaml"]).output == "h.yaml"
    assert capsys.readouterr().err.count("deprecated") == 5
