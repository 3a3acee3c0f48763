"""EpochRecord: the JSON of metrics.jsonl and the resume history, read back and refused."""

import json

import pytest

from squeezelab.errors import FormatError
from squeezelab.train import EpochRecord, fit, read_metrics
from tests.train.conftest import tiny_config

# a metrics.jsonl line as squeezelab wrote it before records were typed (sorted keys)
OLD_LINE = (
    '{"epoch": 1, "img_per_s": 2104.6, "lr": 0.05, "seconds": 0.31, "train_acc": 0.1, '
    '"train_loss": 2.3, "val_acc": null, "val_loss": null}'
)


def test_an_old_metrics_line_reads_and_writes_back_byte_for_byte(tmp_path):
    (tmp_path / "metrics.jsonl").write_text(OLD_LINE + "\n")
    [rec] = read_metrics(tmp_path)
    assert rec == EpochRecord(1, 2.3, 0.1, None, None, 0.05, 2104.6, 0.31)
    assert rec.score == -2.3  # no validation split: the lowest training loss wins
    assert json.dumps(rec.to_dict(), sort_keys=True) == OLD_LINE


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"epoch": 0}, "epoch=0 is invalid: allowed an integer >= 1"),
        ({"train_loss": "2.3"}, "train_loss='2.3' is invalid: allowed a number"),
        ({"lr": None}, "lr=None is invalid: allowed a number"),
        ({"val_acc": True}, "val_acc=True is invalid: allowed a number or null"),
        ({"seconds": ...}, "lacks the field 'seconds'"),
    ],
)
def test_a_damaged_metrics_line_is_a_format_error_naming_line_and_field(tmp_path, change, message):
    d = {**json.loads(OLD_LINE), **change}
    d = {k: v for k, v in d.items() if v is not ...}
    (tmp_path / "metrics.jsonl").write_text(OLD_LINE + "\n" + json.dumps(d) + "\n")
    with pytest.raises(FormatError) as e:
        read_metrics(tmp_path)
    assert str(e.value) == f"{tmp_path / 'metrics.jsonl'}:2: {message}"


def test_a_line_that_is_not_json_or_not_an_object_is_refused(tmp_path):
    for text, message in [("{oops", "not JSON"), ("[1]", "is a list, not a JSON object")]:
        (tmp_path / "metrics.jsonl").write_text(text + "\n")
        with pytest.raises(FormatError, match=f"metrics.jsonl:1: {message}"):
            read_metrics(tmp_path)


def test_a_diverged_loss_round_trips():
    rec = EpochRecord.from_dict({**json.loads(OLD_LINE), "train_loss": float("nan")})
    assert rec.train_loss != rec.train_loss  # NaN, as json writes and reads it


def test_resume_reads_the_history_back_as_records(tmp_path):
    config = tiny_config(epochs=2, train_subset=96)
    run = fit(config, tmp_path)
    first = next(run)
    run.close()  # stopped after epoch 1: its state and metrics are on disk, the lock released
    resumed = list(fit(config, tmp_path, resume=True))
    assert [r.epoch for r in resumed] == [2]
    assert read_metrics(tmp_path) == [first, resumed[0]]
