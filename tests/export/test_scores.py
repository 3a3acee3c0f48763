"""Per-class accuracy and the confusion matrix of a runtime's predictions (final scoring)."""

import pytest

from squeezelab.errors import ConfigError, FormatError
from squeezelab.export.scores import ClassScores, class_scores


def test_confusion_rows_are_true_classes_and_per_class_is_recall():
    s = class_scores([0, 0, 0, 1, 2, 2], [0, 1, 0, 1, 0, 2], ["a", "b", "c"])
    assert s.confusion == ((2, 1, 0), (0, 1, 0), (1, 0, 1))
    assert s.n == 6 and s.top1 == pytest.approx(4 / 6)
    assert s.per_class == {"a": pytest.approx(2 / 3), "b": 1.0, "c": 0.5}
    assert ClassScores.from_dict(s.to_dict()) == s


def test_a_class_without_images_has_no_accuracy():
    assert class_scores([0, 0], [0, 1], ["a", "b"]).per_class == {"a": 0.5, "b": None}


@pytest.mark.parametrize(
    "labels, predictions, what",
    [([0, 1], [0], "2 entries"), ([0, 3], [0, 1], "labels must be class indices in 0..2")],
)
def test_bad_inputs_name_the_problem(labels, predictions, what):
    with pytest.raises(ConfigError, match=what):
        class_scores(labels, predictions, ["a", "b", "c"])


def test_a_malformed_record_is_a_format_error():
    with pytest.raises(FormatError, match="2x2"):
        ClassScores.from_dict({"classes": ["a", "b"], "confusion": [[1, 2]]})
