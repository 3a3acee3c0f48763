"""Dataset readers: IDX (LeCun et al. 1998), CIFAR python batches (Krizhevsky 2009),
ImageFolder trees and a synthetic set. Each checks what it reads and raises DatasetError
naming the file and the problem. CIFAR batches are pickles: they are read with a
restricted unpickler that can build only plain containers and uint8 numpy arrays.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import pickle
from pathlib import Path

import numpy as np
import torch

from squeezelab.errors import DatasetError

IDX_IMAGES_MAGIC = 0x00000803  # unsigned byte, 3 dimensions (count, rows, cols)
IDX_LABELS_MAGIC = 0x00000801  # unsigned byte, 1 dimension (count)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")


def _read_maybe_gzip(path: Path) -> bytes:
    try:
        raw = path.read_bytes()
        return gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
    except OSError as e:  # includes gzip.BadGzipFile
        raise DatasetError(f"{path}: cannot read ({e})") from e
    except EOFError as e:
        raise DatasetError(f"{path}: truncated gzip stream ({e})") from e


def read_idx(path: str | Path, magic: int) -> np.ndarray:
    """Read an IDX file (raw or gzip) whose magic number must be ``magic``.

    Returns a uint8 array of the shape its header declares.
    """
    path = Path(path)
    data = _read_maybe_gzip(path)
    if len(data) < 4:
        raise DatasetError(f"{path}: truncated: {len(data)} bytes, too short for an IDX header")
    found = int.from_bytes(data[:4], "big")
    if found != magic:
        raise DatasetError(
            f"{path}: wrong magic number 0x{found:08x}: expected 0x{magic:08x} "
            f"({'images' if magic == IDX_IMAGES_MAGIC else 'labels'}, unsigned byte)"
        )
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DatasetError(f"{path}: truncated header: {len(data)} of {header} bytes")
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    expected = int(np.prod(dims))
    if len(data) - header != expected:
        raise DatasetError(
            f"{path}: {'truncated' if len(data) - header < expected else 'trailing bytes'}: "
            f"header declares shape {dims} ({expected} bytes) but {len(data) - header} bytes follow"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)


def _check_labels(labels: np.ndarray, num_classes: int, path: Path) -> None:
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        bad = int(labels.max()) if labels.max() >= num_classes else int(labels.min())
        raise DatasetError(
            f"{path}: label out of range: {bad} (allowed 0..{num_classes - 1} for "
            f"{num_classes} classes)"
        )


def _check_counts(n_images: int, n_labels: int, images: Path, labels: Path) -> None:
    if n_images != n_labels:
        raise DatasetError(
            f"{images} holds {n_images} images but {labels} holds {n_labels} labels; "
            "the counts must be equal"
        )


def _find(directory: Path, stem: str) -> Path:
    alt = stem.replace("-idx", ".idx")  # the MNIST site's own spelling
    for name in (stem, stem + ".gz", alt, alt + ".gz"):
        if (directory / name).is_file():
            return directory / name
    raise DatasetError(f"{directory}: no file {stem} or {stem}.gz (IDX dataset)")


def read_idx_split(directory: str | Path, split: str, num_classes: int = 10):
    """Images ``(N, 1, H, W)`` and labels of an MNIST-layout directory's split."""
    directory = Path(directory)
    prefix = "train" if split == "train" else "t10k"
    img_path = _find(directory, f"{prefix}-images-idx3-ubyte")
    lbl_path = _find(directory, f"{prefix}-labels-idx1-ubyte")
    images = read_idx(img_path, IDX_IMAGES_MAGIC)
    labels = read_idx(lbl_path, IDX_LABELS_MAGIC)
    _check_counts(len(images), len(labels), img_path, lbl_path)
    _check_labels(labels, num_classes, lbl_path)
    return torch.from_numpy(images.copy()).unsqueeze(1), torch.from_numpy(labels.astype(np.int64))


# ---- CIFAR python batches -------------------------------------------------------------------


def _reconstruct(cls, shape, dtype):
    if cls is not np.ndarray:
        raise pickle.UnpicklingError(f"refusing to build {cls!r}")
    return np.ndarray.__new__(np.ndarray, shape, dtype)


def _dtype(name, align=False, copy=False):
    if name not in ("u1", "i8", "i4", b"u1", b"i8", b"i4"):
        raise pickle.UnpicklingError(f"refusing dtype {name!r}")
    return np.dtype(name.decode() if isinstance(name, bytes) else name)


def _latin1(text, encoding="latin1"):  # how Python 3 writes bytes at pickle protocol 2
    if encoding not in ("latin1", "latin-1") or not isinstance(text, str):
        raise pickle.UnpicklingError(f"refusing _codecs.encode({encoding!r})")
    return text.encode("latin1")


class _CifarUnpickler(pickle.Unpickler):
    """Builds dicts, lists, str, bytes, ints and uint8/int arrays; refuses every other global."""

    SAFE = {
        ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
        ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): _dtype,
        ("_codecs", "encode"): _latin1,
    }

    def find_class(self, module: str, name: str):
        try:
            return self.SAFE[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"forbidden global {module}.{name}") from None


def load_cifar_batch(path: str | Path) -> dict:
    """Unpickle one CIFAR batch file with the restricted unpickler; keys become ``str``."""
    path = Path(path)
    try:
        raw = path.read_bytes()
        obj = _CifarUnpickler(io.BytesIO(raw), encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as e:
        raise DatasetError(f"{path}: not a CIFAR python batch: {e}") from e
    except OSError as e:
        raise DatasetError(f"{path}: cannot read ({e})") from e
    if not isinstance(obj, dict):
        raise DatasetError(f"{path}: not a CIFAR python batch (holds {type(obj).__name__})")
    return {(k.decode() if isinstance(k, bytes) else k): v for k, v in obj.items()}


def _names(values) -> list[str]:
    return [v.decode() if isinstance(v, bytes) else str(v) for v in values]


def cifar_files(directory: Path, split: str) -> tuple[list[Path], Path, str]:
    """Batch files, meta file and label key of a CIFAR-10 or CIFAR-100 directory."""
    if (directory / "batches.meta").is_file():  # CIFAR-10
        names = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
        files = [directory / n for n in names if (directory / n).is_file()]
        return files, directory / "batches.meta", "labels"
    return [directory / split], directory / "meta", "fine_labels"  # CIFAR-100


def read_cifar_split(directory: str | Path, split: str):
    """Images ``(N, 3, 32, 32)``, labels and class names of a CIFAR python directory."""
    directory = Path(directory)
    files, meta_path, key = cifar_files(directory, split)
    if not meta_path.is_file() or not files or not files[0].is_file():
        raise DatasetError(
            f"{directory}: not a CIFAR python directory (needs batches.meta and data_batch_*/"
            "test_batch, or meta and train/test)"
        )
    meta = load_cifar_batch(meta_path)
    classes = _names(meta.get("label_names") or meta.get("fine_label_names") or [])
    if not classes:
        raise DatasetError(f"{meta_path}: lacks label_names / fine_label_names")
    images, labels = [], []
    for f in files:
        batch = load_cifar_batch(f)
        data, lab = batch.get("data"), batch.get(key, batch.get("labels"))
        if (
            not isinstance(data, np.ndarray)
            or data.dtype != np.uint8
            or data.ndim != 2
            or data.shape[1] != 3072
        ):
            shape = getattr(data, "shape", None)
            raise DatasetError(f"{f}: 'data' must be a uint8 array of shape (N, 3072), got {shape}")
        if lab is None:
            raise DatasetError(f"{f}: lacks the {key!r} list")
        lab = np.asarray(lab, dtype=np.int64)
        _check_counts(len(data), len(lab), f, f)
        _check_labels(lab, len(classes), f)
        images.append(data.reshape(-1, 3, 32, 32))
        labels.append(lab)
    return (
        torch.from_numpy(np.concatenate(images)),
        torch.from_numpy(np.concatenate(labels)),
        classes,
    )


# ---- ImageFolder ----------------------------------------------------------------------------


def _listing(root: Path) -> tuple[list[str], list[tuple[Path, int]]]:
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise DatasetError(f"{root}: no class sub-folders (ImageFolder expects root/CLASS/IMAGE)")
    files = [
        (f, i)
        for i, c in enumerate(classes)
        for f in sorted((root / c).iterdir())
        if f.suffix.lower() in IMAGE_SUFFIXES
    ]
    if not files:
        raise DatasetError(f"{root}: no images with suffixes {', '.join(IMAGE_SUFFIXES)}")
    return classes, files


def _decode(files: list[tuple[Path, int]]) -> torch.Tensor:
    from PIL import Image, UnidentifiedImageError

    arrays, mode, size = [], None, None
    for f, _ in files:
        try:
            with Image.open(f) as im:
                im.load()
                if mode is None:
                    mode = "L" if im.mode in ("1", "L", "I", "I;16", "F") else "RGB"
                    size = im.size
                if im.size != size:
                    raise DatasetError(
                        f"{f}: image size {im.size[0]}x{im.size[1]} differs from the first "
                        f"image's {size[0]}x{size[1]}; an ImageFolder needs one size"
                    )
                arrays.append(np.asarray(im.convert(mode), dtype=np.uint8))
        except (UnidentifiedImageError, OSError) as e:
            raise DatasetError(f"{f}: cannot decode image ({e})") from e
    stacked = np.stack(arrays)
    stacked = stacked[:, None] if stacked.ndim == 3 else stacked.transpose(0, 3, 1, 2)
    return torch.from_numpy(np.ascontiguousarray(stacked))


def read_image_folder(root: str | Path, cache_dir: str | Path | None = None):
    """Decode ``root/CLASS/*.png|jpg...`` once with Pillow; later calls read a tensor cache.

    The cache is a safetensors file (``images``, ``labels``) in ``cache_dir`` (default
    ``root/.squeezelab-cache``) keyed by a hash of every file's name, size and mtime, so an
    added or changed image invalidates it. An unwritable cache directory only skips caching.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file, save_file

    from squeezelab.io import atomic_path

    root = Path(root)
    classes, files = _listing(root)
    key = hashlib.sha256(
        json.dumps(
            [
                (str(f.relative_to(root)), f.stat().st_size, f.stat().st_mtime_ns, c)
                for f, c in files
            ]
        ).encode()
    ).hexdigest()[:16]
    cache = Path(cache_dir or root / ".squeezelab-cache") / f"imagefolder-{key}.safetensors"
    if cache.is_file():
        try:
            t = load_file(str(cache))
            return t["images"], t["labels"], classes
        except (SafetensorError, KeyError, OSError):
            pass  # a damaged cache is rebuilt below
    images = _decode(files)
    labels = torch.tensor([c for _, c in files], dtype=torch.int64)
    try:
        with atomic_path(cache) as tmp:
            save_file({"images": images, "labels": labels}, str(tmp))
    except OSError:
        pass  # read-only dataset tree: decode again next time
    return images, labels, classes


def image_folder_split(root: Path, split: str) -> Path:
    """``root/train`` and ``root/test`` (or ``val``) when present, else ``root`` for train."""
    if (root / "train").is_dir():
        for name in (split,) if split == "train" else ("test", "val"):
            if (root / name).is_dir():
                return root / name
        raise DatasetError(f"{root}: no {split!r} sub-folder (found train/)")
    if split != "train":
        raise DatasetError(
            f"{root}: split {split!r} needs root/train and root/test sub-folders; "
            "a flat class tree holds only a training split"
        )
    return root


# ---- synthetic ------------------------------------------------------------------------------


def synthetic(n: int, num_classes: int = 10, shape=(1, 28, 28), seed: int = 0):
    """Learnable textures: class c is a sine grating of its own angle and period, with a
    random phase and Gaussian noise per image. Translation-invariant, so crops keep the
    class. Deterministic in ``seed`` (the test split uses another seed).
    """
    g = torch.Generator().manual_seed(seed)
    labels = (torch.arange(n) % num_classes)[torch.randperm(n, generator=g)]
    angle = torch.pi * (labels % 5).float() / 5
    period = 3.0 + 2.5 * (labels // 5).float()
    phase = torch.rand(n, generator=g) * 2 * torch.pi
    yy, xx = torch.meshgrid(
        torch.arange(shape[1]).float(), torch.arange(shape[2]).float(), indexing="ij"
    )
    proj = xx * angle.cos()[:, None, None] + yy * angle.sin()[:, None, None]
    wave = torch.sin(2 * torch.pi * proj / period[:, None, None] + phase[:, None, None])
    noise = torch.randn((n, *shape), generator=g) * 40
    images = (128 + 80 * wave[:, None] + noise).clamp(0, 255).round().to(torch.uint8)
    return images, labels.to(torch.int64)
