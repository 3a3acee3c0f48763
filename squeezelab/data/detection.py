"""Detection data: one split as a uint8 image tensor plus per-image boxes and labels.

``load_detection("fashion-mnist-det")`` generates the benchmark in memory
(:mod:`squeezelab.data.fmnist_det`); a folder is read as COCO-format JSON + images
(:mod:`squeezelab.data.coco`). Boxes are ``x1, y1, x2, y2`` in pixels of the stored image,
``x2``/``y2`` exclusive (a box one pixel wide has ``x2 - x1 = 1``), as COCO's ``[x, y, w, h]``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import torch

from squeezelab.data.anchors import kmeans_anchors
from squeezelab.data.coco import find_annotations, read_coco, write_coco
from squeezelab.errors import DatasetError

GENERATED = ("fashion-mnist-det",)  # detection benchmarks made in memory
SPLITS = ("train", "val", "test")
MIN_SIZE, MAX_SIZE = 64, 2048  # canvas side of the generated benchmark, pixels

__all__ = [
    "GENERATED",
    "AnchorFit",
    "DetectionSplit",
    "WrittenSplit",
    "fit_anchors",
    "is_detection",
    "kmeans_anchors",
    "load_detection",
    "make_benchmark",
    "write_coco",
]


@dataclass(frozen=True)
class DetectionSplit:
    images: torch.Tensor  # uint8 (N, C, H, W); C=1 for fashion-mnist-det
    boxes: tuple[torch.Tensor, ...]  # per image float32 (n_i, 4): x1, y1, x2, y2 in pixels
    labels: tuple[torch.Tensor, ...]  # per image int64 (n_i,): 0-based class index
    classes: tuple[str, ...]  # class names, index = label
    image_ids: tuple[int, ...]  # COCO image ids (1-based for generated data)

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def head(self, n: int) -> DetectionSplit:
        """The first ``n`` canvases (views, no copy)."""
        n = min(n, len(self))
        s = self
        return DetectionSplit(s.images[:n], s.boxes[:n], s.labels[:n], s.classes, s.image_ids[:n])

    def __post_init__(self):
        n = len(self)
        if not (len(self.boxes) == len(self.labels) == len(self.image_ids) == n):
            raise ValueError(
                f"DetectionSplit: {n} images but {len(self.boxes)} box sets, "
                f"{len(self.labels)} label sets, {len(self.image_ids)} ids"
            )


def is_detection(data) -> bool:
    """Whether ``data`` names a detection dataset: a generated benchmark or a COCO folder."""
    if not isinstance(data, str | Path) or not str(data):
        return False
    if data in GENERATED:
        return True
    path = Path(data)
    return path.is_dir() and any(find_annotations(path, s, quiet=True) for s in SPLITS)


def _check_args(split: str, size: int, count: int | None, seed: int) -> None:
    if split not in SPLITS:
        raise DatasetError(f"split={split!r} is invalid: allowed {', '.join(SPLITS)}")
    if type(size) is not int or not MIN_SIZE <= size <= MAX_SIZE:
        raise DatasetError(f"size={size!r} is invalid: allowed an integer {MIN_SIZE}..{MAX_SIZE}")
    if count is not None and (type(count) is not int or count < 1):
        raise DatasetError(f"count={count!r} is invalid: allowed an integer >= 1")
    if type(seed) is not int or seed < 0:
        raise DatasetError(f"seed={seed!r} is invalid: allowed an integer >= 0")


def _stamp(folder: Path, prefix: str) -> tuple:
    """What identifies the IDX files' contents for the cache: names, sizes, mtimes."""
    return tuple(
        (p.name, st.st_size, st.st_mtime_ns)
        for p in sorted(folder.glob(f"{prefix}-*idx*"))
        for st in [p.stat()]
    )


@functools.lru_cache(maxsize=4)
def _read_source(folder: Path, prefix: str, num_classes: int, stamp: tuple):
    """A Fashion-MNIST file's items, read once per process (train and val share the
    training file; a changed file has another ``stamp`` and is read again). Read-only."""
    from squeezelab.data import readers

    return readers.read_idx_split(folder, prefix, num_classes)


def fashion_mnist_det(
    split: str = "train",
    *,
    data_dir: str | None = None,
    size: int = 128,
    count: int | None = None,
    seed: int = 0,
):
    """The generated benchmark and where its items came from.

    Returns:
        ``(DetectionSplit, source file, per-image int64 tensors of each item's index in
        that file)``: train items come from the training file's first 54,000, val items
        from its last 6,000, test items from the test file.
    """
    from squeezelab.data.fmnist_det import DEFAULT_COUNTS, SOURCES, compose
    from squeezelab.data.names import DATASETS, locate

    _check_args(split, size, count, seed)
    info = DATASETS["fashion-mnist"]
    prefix, start, end = SOURCES[split]
    folder = locate(info, data_dir)
    file = next(folder.glob(f"{prefix}-images*idx3*"))
    images, labels = _read_source(folder, prefix, len(info.classes), _stamp(folder, prefix))
    made = compose(
        images[start:end, 0],
        labels[start:end],
        count or DEFAULT_COUNTS[split],
        size,
        seed,
        split,
    )
    ds = DetectionSplit(
        made.images,
        made.boxes,
        made.labels,
        tuple(info.classes),
        tuple(range(1, len(made.images) + 1)),
    )
    return ds, file, tuple(s + start for s in made.sources)


def load_detection(
    data: str,
    split: str = "train",
    *,
    data_dir: str | None = None,
    size: int = 128,
    count: int | None = None,
    seed: int = 0,
) -> DetectionSplit:
    """One split of a detection dataset.

    Args:
        data: ``"fashion-mnist-det"`` (generated in memory, deterministic in ``seed``) or a
            COCO-format folder (``DIR/SPLIT/instances.json``, or one ``DIR/instances.json``
            whose images are split by file-name hash; see docs/detection.md).
        split: ``"train"``, ``"val"`` or ``"test"``.
        data_dir: where Fashion-MNIST's IDX files are (default: Debian's package).
        size: the generated canvases' side; a COCO folder's images are letterboxed to it
            (longer side scaled to ``size``, padded right and bottom) unless all already are
            ``size`` x ``size``.
        count: images to take (generated: that many canvases; COCO: the first by id).
        seed: the generator's seed (ignored for a COCO folder).

    Example:
        >>> ds = load_detection("fashion-mnist-det", "val", count=8)  # doctest: +SKIP
        >>> ds.images.shape, ds.boxes[0].shape[1]  # doctest: +SKIP
        (torch.Size([8, 1, 128, 128]), 4)
    """
    if data in GENERATED:
        return fashion_mnist_det(split, data_dir=data_dir, size=size, count=count, seed=seed)[0]
    _check_args(split, size, count, seed)
    path = Path(data)
    if not path.is_dir():
        raise DatasetError(
            f"detection dataset {data!r} is neither a generated one ({', '.join(GENERATED)}) "
            "nor a folder holding COCO-format instances.json"
        )
    images, boxes, labels, classes, ids = read_coco(path, split, size=size, count=count)
    return DetectionSplit(images, boxes, labels, classes, ids)


@dataclass(frozen=True)
class WrittenSplit:
    """One split written as a COCO folder by :func:`make_benchmark`."""

    split: str
    path: Path  # its instances.json
    images: int
    boxes: int

    def to_dict(self) -> dict:
        return {
            "split": self.split,
            "path": str(self.path),
            "images": self.images,
            "boxes": self.boxes,
        }


def make_benchmark(
    name: str,
    out_dir,
    *,
    splits: tuple[str, ...] = SPLITS,
    data_dir: str | None = None,
    size: int = 128,
    count: int | None = None,
    seed: int = 0,
) -> list[WrittenSplit]:
    """Write a generated benchmark's ``splits`` as COCO folders ``out_dir/SPLIT/``.

    The generator's arguments are recorded in each ``instances.json``'s ``info``, and
    ``load_detection(out_dir, split)`` reads back exactly what ``load_detection(name,
    split, ...)`` makes.
    """
    import squeezelab
    from squeezelab.errors import unknown_name

    if name not in GENERATED:
        raise unknown_name("generated detection benchmark", name, list(GENERATED))
    written = []
    for split in splits:
        ds = load_detection(name, split, data_dir=data_dir, size=size, count=count, seed=seed)
        info = {
            "description": f"{name} {split} split, generated by squeezelab "
            f"{squeezelab.__version__}",
            "generator": {
                "name": name,
                "split": split,
                "size": size,
                "count": len(ds),
                "seed": seed,
            },
        }
        path = write_coco(ds, Path(out_dir) / split, info)
        written.append(WrittenSplit(split, path, len(ds), sum(len(b) for b in ds.boxes)))
    return written


@dataclass(frozen=True)
class AnchorFit:
    """Anchor shapes fitted to a split's boxes (:func:`fit_anchors`)."""

    anchors: tuple[tuple[float, float], ...]  # (w, h) pixels, by area
    mean_iou: float  # mean over boxes of the IoU with the closest anchor (shapes only)
    boxes: int  # boxes the fit saw
    image_size: tuple[int, int]  # (H, W) of the images the boxes are in, pixels

    def to_dict(self) -> dict:
        return {
            "anchors": [list(a) for a in self.anchors],
            "mean_iou": self.mean_iou,
            "boxes": self.boxes,
            "image_size": list(self.image_size),
        }


def fit_anchors(
    data: str,
    k: int = 9,
    *,
    split: str = "train",
    data_dir: str | None = None,
    size: int = 128,
    count: int | None = None,
    seed: int = 0,
) -> AnchorFit:
    """k-means anchors (IoU distance) over the boxes of ``data``'s ``split``.

    Example:
        >>> fit_anchors("fashion-mnist-det", 9, count=500).anchors[0]  # doctest: +SKIP
        (9.6, 14.2)
    """
    from squeezelab.data.anchors import mean_best_iou

    ds = load_detection(data, split, data_dir=data_dir, size=size, count=count, seed=seed)
    anchors = kmeans_anchors(ds.boxes, k, seed=seed)
    return AnchorFit(
        tuple((float(w), float(h)) for w, h in anchors.tolist()),
        mean_best_iou(ds.boxes, anchors),
        sum(len(b) for b in ds.boxes),
        tuple(ds.images.shape[2:]),
    )
