"""Dataset names -> reader, default location, classes, normalisation and augmentation.

A name's files are looked for in ``data_dir`` (or ``data_dir/NAME``), then in the
directory its Debian package installs, then wherever ``dpkg -L`` says that package put
them. The per-channel mean and std are the training split's, as commonly published.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import torch

from squeezelab.data import readers
from squeezelab.data.dataset import Dataset
from squeezelab.errors import DatasetError, unknown_name


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    reader: str  # idx | cifar | synthetic
    default_dir: str  # where the Debian package puts the files ("" for synthetic)
    package: str  # Debian package that installs it ("" if none)
    classes: tuple[str, ...]  # class names (CIFAR reads them from batches.meta)
    mean: tuple[float, ...]  # per channel, of images / 255
    std: tuple[float, ...]
    augment: tuple[str, ...]  # default training augmentation
    marker: str  # a file whose presence identifies the directory


_DIGITS = tuple(str(i) for i in range(10))
_FASHION = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
_CIFAR10 = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)

DATASETS: dict[str, DatasetInfo] = {
    i.name: i
    for i in (
        DatasetInfo(
            "fashion-mnist",
            "idx",
            "/usr/share/datasets/fashion-mnist",
            "dataset-fashion-mnist",
            _FASHION,
            (0.2860,),
            (0.3530,),
            ("crop", "flip"),
            "train-images-idx3-ubyte.gz",
        ),
        DatasetInfo(
            "mnist",
            "idx",
            "/usr/share/datasets/mnist",
            "dataset-mnist",
            _DIGITS,
            (0.1307,),
            (0.3081,),
            ("crop",),
            "train-images-idx3-ubyte.gz",
        ),
        DatasetInfo(
            "cifar10",
            "cifar",
            "/usr/share/datasets/cifar10",
            "",
            _CIFAR10,
            (0.4914, 0.4822, 0.4465),
            (0.2470, 0.2435, 0.2616),
            ("crop", "flip"),
            "batches.meta",
        ),
        DatasetInfo(
            "cifar100",
            "cifar",
            "/usr/share/datasets/cifar100",
            "",
            (),
            (0.5071, 0.4865, 0.4409),
            (0.2673, 0.2564, 0.2762),
            ("crop", "flip"),
            "meta",
        ),
        DatasetInfo("synthetic", "synthetic", "", "", _DIGITS, (0.5,), (0.3,), ("crop",), ""),
    )
}
SYNTHETIC_SIZES = {"train": 1200, "test": 300}


def list_datasets() -> list[str]:
    """Known dataset names."""
    return sorted(DATASETS)


def dataset_info(name: str) -> DatasetInfo:
    """A named dataset's record: class names, normalisation, default augmentation, files.

    Example:
        >>> dataset_info("fashion-mnist").classes[:2]
        ('T-shirt/top', 'Trouser')
    """
    if name not in DATASETS:
        raise unknown_name("dataset", name, list(DATASETS))
    return DATASETS[name]


def _dpkg_dir(package: str, marker: str) -> Path | None:
    if not package:
        return None
    try:
        out = subprocess.run(["dpkg", "-L", package], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    hits = [Path(line) for line in out.stdout.splitlines() if line.endswith(marker)]
    return hits[0].parent if hits else None


def locate(info: DatasetInfo, data_dir: str | None) -> Path:
    """The directory holding ``info``'s files; DatasetError lists every place tried."""
    tried: list[str] = []
    candidates = [Path(data_dir), Path(data_dir) / info.name] if data_dir else []
    candidates.append(Path(info.default_dir))
    for c in candidates:
        tried.append(str(c))
        if (c / info.marker).is_file() or (c / info.marker.removesuffix(".gz")).is_file():
            return c
    found = _dpkg_dir(info.package, info.marker)
    if found is not None:
        return found
    pkg = f" or install Debian's {info.package}" if info.package else ""
    raise DatasetError(
        f"dataset {info.name!r} not found (looked in {', '.join(tried)}"
        f"{', dpkg -L ' + info.package if info.package else ''}): pass --data-dir DIR{pkg}; "
        "nothing is downloaded"
    )


def _guess_format(path: Path) -> str:
    if any(path.glob("train-images*idx3*")) or any(path.glob("t10k-images*idx3*")):
        return "idx"
    if (path / "batches.meta").is_file() or (path / "meta").is_file():
        return "cifar"
    return "imagefolder"


def _channel_stats(images: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    x = images.to(torch.float64).div_(255).transpose(0, 1).reshape(images.shape[1], -1)
    return tuple(x.mean(1).tolist()), tuple(x.std(1).clamp_min(1e-3).tolist())


def load_dataset(
    name_or_dir: str,
    split: str = "train",
    data_dir: str | None = None,
    input_size: int | None = None,
) -> Dataset:
    """Load a named dataset or a directory's split into uint8 tensors.

    Args:
        name_or_dir: ``fashion-mnist``, ``mnist``, ``cifar10``, ``cifar100``, ``synthetic``,
            or a directory of IDX files, CIFAR python batches or an ImageFolder tree.
        split: ``"train"`` or ``"test"``.
        data_dir: where to look for a named dataset first (``--data-dir``).
        input_size: an ImageFolder's images are resized to this square side (shorter side,
            then centre crop); ``None`` keeps a one-size tree as it is and resizes a
            mixed one to its lower-median shorter side. Other formats ignore it.

    Example:
        >>> ds = load_dataset("fashion-mnist", "test")  # doctest: +SKIP
        >>> ds.images.shape, ds.classes[0]  # doctest: +SKIP
        (torch.Size([10000, 1, 28, 28]), 'T-shirt/top')
    """
    if split not in ("train", "test"):
        raise DatasetError(f"split={split!r} is invalid: allowed 'train' or 'test'")
    if input_size is not None and (type(input_size) is not int or not 1 <= input_size <= 8192):
        raise DatasetError(f"input_size={input_size!r} is invalid: allowed an integer 1..8192")
    if name_or_dir in DATASETS:
        info = DATASETS[name_or_dir]
        if info.reader == "synthetic":
            images, labels = readers.synthetic(SYNTHETIC_SIZES[split], seed=int(split == "test"))
            return Dataset(
                images, labels, list(info.classes), info.mean, info.std, f"synthetic:{split}"
            )
        path, fmt = locate(info, data_dir), info.reader
    else:
        path = Path(name_or_dir)
        if not path.is_dir():
            raise unknown_name("dataset (or directory)", name_or_dir, list(DATASETS))
        info, fmt = None, _guess_format(path)
    if fmt == "idx":
        n = len(info.classes) if info else 256
        images, labels = readers.read_idx_split(path, split, n)
        classes = list(info.classes) if info else [str(i) for i in range(int(labels.max()) + 1)]
    elif fmt == "cifar":
        images, labels, classes = readers.read_cifar_split(path, split)
    else:
        images, labels, classes = readers.read_image_folder(path, split, input_size)
    if info is not None:
        mean, std = info.mean, info.std
    else:  # a user directory: statistics of its training split, so test data uses the same
        mean, std = _channel_stats(
            images
            if split == "train"
            else load_dataset(name_or_dir, "train", None, input_size).images
        )
    return Dataset(images, labels, classes, mean, std, f"{info.name if info else path}:{split}")


def default_augment(name_or_dir: str) -> tuple[str, ...]:
    """The training augmentation a dataset gets unless the config names one."""
    info = DATASETS.get(name_or_dir)
    return info.augment if info else ("crop", "flip")


def dataset_ref(name_or_dir: str) -> str:
    """What a model file records as its dataset: a known name, or the absolute directory
    (so ``squeezelab evaluate MODEL`` finds it from any working directory).
    """
    if name_or_dir in DATASETS or not Path(name_or_dir).is_dir():
        return name_or_dir
    return str(Path(name_or_dir).resolve())
