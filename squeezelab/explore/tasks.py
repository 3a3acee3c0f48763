"""A space's task against its data: classifiers on classification data, detectors on
detection data (``fashion-mnist-det`` or a COCO folder), costed at the data's geometry.

A detector is costed at its input (channels x side x side of the canvases) with
K x (C + 1 + 4) head outputs for the data's C classes (SqueezeDet's ConvDet), as the
trainer builds it; its score is mAP@0.5 on the validation canvases (``map50``).
"""

from __future__ import annotations

from squeezelab.errors import ConfigError
from squeezelab.explore.space import SCORES, TASK_SCORE, Space


def data_task(data) -> str:
    """``"detection"`` for a detection dataset (generated or a COCO folder), else
    ``"classification"``."""
    from squeezelab.data import is_detection

    return "detection" if is_detection(data) else "classification"


def check_data(space: Space, data=None) -> None:
    """ConfigError (one line) when ``data`` (default ``train.data``) is not the space's task.

    Example:
        >>> check_data(load_space("design-small"), "fashion-mnist-det")  # doctest: +SKIP
        ConfigError: data='fashion-mnist-det' is a detection dataset but ...
    """
    data = space.train.get("data") if data is None else data
    if data is None:
        return
    task = data_task(data)
    if task == space.task:
        return
    want = "design-det-small" if task == "detection" else "design-small"
    raise ConfigError(
        f"data={str(data)!r} is a {task} dataset but search space {space.name!r} searches "
        f"{space.task} models (score {space.score_key}, {SCORES[space.score_key]}); allowed: a "
        f"{task} space (e.g. the preset {want}, score {TASK_SCORE[task]}) or {space.task} data"
    )


def detection_geometry(space: Space) -> dict[str, int]:
    """The data's ``in_chans``, ``input_size`` and ``num_classes`` for a detection space.

    Reads one canvas of the training split (a COCO folder: its JSON and one image).
    """
    from squeezelab.data.detection import load_detection

    train = space.train
    split = load_detection(
        train["data"],
        "train",
        data_dir=train.get("data_dir"),
        size=int(train.get("input_size") or 128),
        count=1,
        seed=int(train.get("seed") or 0),
    )
    chans, _, side = split.images.shape[1:]
    return {"in_chans": int(chans), "input_size": int(side), "num_classes": len(split.classes)}


def with_data(space: Space) -> Space:
    """``space`` checked against its data; a detection space sized to the data's canvases
    and classes (the space's own values of those fields win)."""
    check_data(space)
    if space.task != "detection" or space.train.get("data") is None:
        return space
    raw = space.to_dict()
    dims = detection_geometry(space)
    params = raw.get("params") or {}
    if all(params.get(k) == v for k, v in dims.items()):
        return space
    return space.with_overrides(params={**dims, **params})
