"""Dataset readers: IDX (LeCun et al. 1998), CIFAR python batches (Krizhevsky 2009),
ImageFolder trees and a synthetic set. Each checks what it reads and raises DatasetError
naming the file and the problem. CIFAR batches are pickles: they are read with a
restricted unpickler that can build only plain containers and uint8 numpy arrays.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import math
import os
import pickle
import pickletools
import zlib
from pathlib import Path

import numpy as np
import torch

from squeezelab.data.files import (
    MAX_DATASET_BYTES_ENV,
    cache_dir,
    check_regular,
    max_dataset_bytes,
    read_regular,
)
from squeezelab.errors import DatasetError

IDX_IMAGES_MAGIC = 0x00000803  # unsigned byte, 3 dimensions (count, rows, cols)
IDX_LABELS_MAGIC = 0x00000801  # unsigned byte, 1 dimension (count)
_GZIP_RATIO = 1100  # deflate expands at most ~1032:1
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")


def _read_idx_bytes(path: Path) -> bytes:
    """The decompressed bytes of an IDX file, never more than its header says it holds.

    A gzip stream is inflated in steps: first the header, then exactly the bytes the
    header declares, which must fit what deflate can expand the file to (~1032:1).
    """
    raw = read_regular(path)
    if raw[:2] != b"\x1f\x8b":
        return raw
    inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)  # gzip framing
    try:
        head = inflate.decompress(raw, 4)
        if len(head) == 4:
            ndim = int.from_bytes(head, "big") & 0xFF
            head += inflate.decompress(inflate.unconsumed_tail, 4 * min(ndim, 8))
        dims = [
            int.from_bytes(head[4 + 4 * i : 8 + 4 * i], "big") for i in range((len(head) - 4) // 4)
        ]
        want = math.prod(dims)
        if want > min(max_dataset_bytes(), _GZIP_RATIO * len(raw)):
            raise DatasetError(
                f"{path}: header declares shape {dims} ({want} bytes) but a "
                f"{len(raw)}-byte gzip file can hold at most {_GZIP_RATIO * len(raw)} "
                f"(dataset limit {max_dataset_bytes()} bytes, {MAX_DATASET_BYTES_ENV})"
            )
        body = inflate.decompress(inflate.unconsumed_tail, want + 1)  # +1: see trailing bytes
    except zlib.error as e:
        raise DatasetError(f"{path}: corrupt gzip stream ({e})") from e
    if not inflate.eof and len(body) <= want:
        raise DatasetError(f"{path}: truncated gzip stream")
    return head + body


def read_idx(path: str | Path, magic: int) -> np.ndarray:
    """Read an IDX file (raw or gzip) whose magic number must be ``magic``.

    Returns a uint8 array of the shape its header declares.
    """
    path = Path(path)
    data = _read_idx_bytes(path)
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
    expected = math.prod(dims)  # Python ints: no overflow on hostile dims
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
        if os.path.lexists(directory / name):  # read_regular refuses a FIFO, a loop, ...
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


def _dtype(name, align=False, copy=False):
    if name not in ("u1", "i8", "i4", b"u1", b"i8", b"i4"):
        raise pickle.UnpicklingError(f"refusing dtype {name!r}")
    return np.dtype(name.decode() if isinstance(name, bytes) else name)


def _check_memo(raw: bytes) -> None:
    """Refuse memo indices the pickler would never write, before the C unpickler sizes its
    memo table by them (a 9-byte pickle with ``LONG_BINPUT 10**8`` costs it 1.5 GB).
    """
    puts = 0
    for op, arg, _ in pickletools.genops(raw):
        if op.name == "MEMOIZE":
            puts += 1
        elif op.name in ("PUT", "BINPUT", "LONG_BINPUT"):
            if int(arg) > puts:
                raise pickle.UnpicklingError(f"memo index {arg} out of order ({puts} stored)")
            puts += int(arg) == puts
        elif op.name in ("GET", "BINGET", "LONG_BINGET") and int(arg) >= puts:
            raise pickle.UnpicklingError(f"memo index {arg} was never stored")


class _GuardedArray(np.ndarray):
    """An array under construction whose ``__setstate__`` is charged to the unpickler."""

    def __setstate__(self, state):
        shape, dtype = state[1], state[2]
        if not isinstance(shape, tuple) or not all(type(d) is int and d >= 0 for d in shape):
            raise pickle.UnpicklingError(f"bad array shape {shape!r}")
        self.charge(math.prod(shape) * np.dtype(dtype).itemsize, "array data")
        super().__setstate__(state)


class _CifarUnpickler(pickle.Unpickler):
    """Builds dicts, lists, str, bytes, ints and uint8/int arrays; refuses every other global.

    Every object the allowed globals build is charged to a budget of twice the file's size,
    so memo references ("billion laughs") cannot make a small file build large objects.
    """

    def __init__(self, raw: bytes):
        super().__init__(io.BytesIO(raw), encoding="bytes")
        self.budget = 2 * len(raw) + 2**16

    def charge(self, n: int, what: str) -> None:
        self.budget -= n
        if self.budget < 0:
            raise pickle.UnpicklingError(
                f"{what} would build more bytes than the file holds (memo fan-out refused)"
            )

    def _reconstruct(self, cls, shape, dtype):
        if cls is not np.ndarray:
            raise pickle.UnpicklingError(f"refusing to build {cls!r}")
        if not isinstance(shape, tuple) or not all(type(d) is int and d >= 0 for d in shape):
            raise pickle.UnpicklingError(f"bad array shape {shape!r}")
        self.charge(math.prod(shape) + 64, "an array")
        arr = _GuardedArray.__new__(_GuardedArray, shape, "u1")
        arr.charge = self.charge
        return arr

    def _latin1(self, text, encoding="latin1"):  # how Python 3 writes bytes at protocol 2
        if encoding not in ("latin1", "latin-1") or not isinstance(text, str):
            raise pickle.UnpicklingError(f"refusing _codecs.encode({encoding!r})")
        self.charge(len(text) + 33, "a bytes object")
        return text.encode("latin1")

    def find_class(self, module: str, name: str):
        safe = {
            ("numpy.core.multiarray", "_reconstruct"): self._reconstruct,
            ("numpy._core.multiarray", "_reconstruct"): self._reconstruct,
            ("numpy", "ndarray"): np.ndarray,
            ("numpy", "dtype"): _dtype,
            ("_codecs", "encode"): self._latin1,
        }
        try:
            return safe[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"forbidden global {module}.{name}") from None


def load_cifar_batch(path: str | Path) -> dict:
    """Unpickle one CIFAR batch file with the restricted unpickler; keys become ``str``.

    Arrays come back as plain ``np.ndarray``; nothing else is checked here (see
    :func:`read_cifar_split` for the fields).
    """
    path = Path(path)
    raw = read_regular(path)
    try:
        _check_memo(raw)
        obj = _CifarUnpickler(raw).load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as e:
        raise DatasetError(f"{path}: not a CIFAR python batch: {e}") from e
    except MemoryError as e:
        raise DatasetError(f"{path}: not a CIFAR python batch: too large to unpickle") from e
    if not isinstance(obj, dict):
        raise DatasetError(f"{path}: not a CIFAR python batch (holds {type(obj).__name__})")
    return {
        (k.decode() if isinstance(k, bytes) else k): (
            np.asarray(v) if isinstance(v, np.ndarray) else v
        )
        for k, v in obj.items()
    }


def _flat(values, kinds: tuple[type, ...], path: Path, field: str) -> list:
    """``values`` if it is a flat list (or 1-D array) of ``kinds``; never walks nested lists."""
    if isinstance(values, np.ndarray) and values.ndim == 1 and values.dtype.kind in "iu":
        return values.tolist() if int in kinds else []
    if type(values) is not list or not all(type(v) in kinds for v in values):
        allowed = " or ".join(k.__name__ for k in kinds)
        raise DatasetError(f"{path}: {field!r} must be a flat list of {allowed}")
    return values


def _names(values, path: Path) -> list[str]:
    names = _flat(values, (bytes, str), path, "label_names")
    if len(names) > 65536 or any(len(v) > 1024 for v in names):
        raise DatasetError(f"{path}: label_names: allowed up to 65536 names of 1024 characters")
    return [v.decode("utf-8", "replace") if isinstance(v, bytes) else v for v in names]


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
    classes = _names(meta.get("label_names") or meta.get("fine_label_names") or [], meta_path)
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
        lab = np.asarray(_flat(lab, (int,), f, key), dtype=np.int64)
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


TEST_FRACTION = 0.1  # of each class, carved as the test split of a tree without one
RESIZE_RULE = "shorter-side-bilinear-centre-crop-v1"  # part of the cache key
_log = logging.getLogger("squeezelab.data")
_noted: set[str] = set()


def _note(text: str) -> None:
    """Tell the user once per process (stderr by default: logging's last-resort handler)."""
    if text not in _noted:
        _noted.add(text)
        _log.warning("note: %s", text)


FileEntry = tuple[Path, int, os.stat_result]  # (file, class index, its stat)


def _listing(root: Path) -> tuple[list[str], list[FileEntry]]:
    """Classes and regular image files of ``root/CLASS/IMAGE``; an empty class is refused."""
    try:
        classes = sorted(
            p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")
        )
    except OSError as e:
        raise DatasetError(f"{root}: cannot list ({e.strerror or e})") from e
    if not classes:
        raise DatasetError(f"{root}: no class sub-folders (ImageFolder expects root/CLASS/IMAGE)")
    files: list[FileEntry] = []
    for i, c in enumerate(classes):
        try:
            names = sorted((root / c).iterdir())
        except OSError as e:
            raise DatasetError(f"{root / c}: cannot list ({e.strerror or e})") from e
        mine = [
            (f, i, check_regular(f))
            for f in names
            if f.suffix.lower() in IMAGE_SUFFIXES and not f.name.startswith(".")
        ]
        if not mine:
            raise DatasetError(
                f"{root / c}: class folder holds no images (suffixes "
                f"{', '.join(IMAGE_SUFFIXES)}): add images or remove the folder"
            )
        files += mine
    return classes, files


def _file_hash(root: Path, f: Path) -> str:
    return hashlib.sha256(str(f.relative_to(root)).encode()).hexdigest()


def _carve(root: Path, files: list[FileEntry], split: str) -> list[FileEntry]:
    """A deterministic test split of a tree with only class folders: per class, the
    ``round(TEST_FRACTION * n)`` files (at least 1 of 2 or more) with the lowest hash of
    their ``CLASS/NAME``. Adding a file moves at most one other file between splits.
    """
    by_class: dict[int, list[FileEntry]] = {}
    for e in files:
        by_class.setdefault(e[1], []).append(e)
    test: set[Path] = set()
    for entries in by_class.values():
        k = round(TEST_FRACTION * len(entries))
        k = max(k, 1) if len(entries) >= 2 else 0
        test.update(e[0] for e in sorted(entries, key=lambda e: _file_hash(root, e[0]))[:k])
    return [e for e in files if (e[0] in test) == (split == "test")]


def image_folder_files(root: Path, split: str) -> tuple[Path, list[str], list[FileEntry]]:
    """``(split folder, classes, files)`` of an ImageFolder: ``root/train`` and
    ``root/test`` (or ``val``) when present, else a split carved from ``root`` (see
    :func:`_carve`), with a note.
    """
    if (root / "train").is_dir():
        for name in (split,) if split == "train" else ("test", "val"):
            if (root / name).is_dir():
                return (root / name, *_listing(root / name))
        raise DatasetError(f"{root}: no {split!r} sub-folder (found train/): add test/ or val/")
    classes, files = _listing(root)
    part = _carve(root, files, split)
    if not part:
        raise DatasetError(f"{root}: too few images to carve a {split!r} split (2 per class)")
    n_test = len(_carve(root, files, "test"))
    _note(
        f"{root} has no train/ and test/ folders: carved a fixed split by file-name hash, "
        f"{len(files) - n_test} train / {n_test} test ({TEST_FRACTION:.0%} of each class); "
        "validation is carved from train"
    )
    return root, classes, part


def _target_size(sizes: list[tuple[int, int]], input_size: int | None) -> int | None:
    """The side every image is resized to (None: keep them as they are)."""
    if input_size is not None:
        return input_size
    if len(set(sizes)) <= 1:
        return None
    shorter = sorted(min(s) for s in sizes)
    return shorter[(len(shorter) - 1) // 2]  # the lower median shorter side


def _decode(files: list[FileEntry], input_size: int | None = None) -> torch.Tensor:
    """Decode ``files`` into one uint8 tensor (N, C, H, W): grayscale if every image is,
    else RGB; resized by :func:`_target_size` and :func:`~squeezelab.data.images.resize_crop`.
    """
    from squeezelab.data.images import open_image, probe_image, resize_crop

    heads = [probe_image(f) for f, _, _ in files]  # sizes first: bound before decoding
    gray = all(mode in ("1", "L", "I", "I;16", "F") for _, mode in heads)
    mode, chans = ("L", 1) if gray else ("RGB", 3)
    side = _target_size([size for size, _ in heads], input_size)
    w, h = (side, side) if side else heads[0][0]
    total = len(files) * w * h * chans
    if total > max_dataset_bytes():
        raise DatasetError(
            f"{files[0][0].parent.parent}: {len(files)} images of {chans}x{h}x{w} need "
            f"{total} bytes, over the dataset limit of {max_dataset_bytes()} "
            f"(raise it with {MAX_DATASET_BYTES_ENV})"
        )
    out = np.empty((len(files), h, w, chans), np.uint8)
    for k, (f, _, _) in enumerate(files):
        im = open_image(f).convert(mode)
        if side:
            im = resize_crop(im, side)
        elif im.size != (w, h):  # the file changed since its header was read
            raise DatasetError(f"{f}: changed while being read; run again")
        out[k] = np.asarray(im, np.uint8).reshape(h, w, chans)
    return torch.from_numpy(np.ascontiguousarray(out.transpose(0, 3, 1, 2)))


def _cache_key(root: Path, files: list[FileEntry], input_size: int | None) -> str:
    listing = [(str(f.relative_to(root)), st.st_size, st.st_mtime_ns, c) for f, c, st in files]
    blob = json.dumps([str(root.resolve()), input_size, RESIZE_RULE, listing])
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def read_image_folder(
    root: str | Path,
    split: str = "train",
    input_size: int | None = None,
    cache: str | Path | None = None,
):
    """Decode an ImageFolder's ``split`` once with Pillow; later calls read a tensor cache.

    Args:
        root: ``root/{train,test}/CLASS/IMAGE`` or ``root/CLASS/IMAGE`` (a split is carved).
        split: ``"train"`` or ``"test"``.
        input_size: resize every image to this square side; ``None`` keeps one-size trees
            as they are and resizes mixed ones to their lower-median shorter side.
        cache: cache directory (default :func:`squeezelab.data.files.cache_dir`).

    The cache is a safetensors file keyed by the tree's absolute path, every file's name,
    size and mtime, and the resize, so an edited, added or removed image is read again;
    older caches of the same tree are removed. An unwritable cache only skips caching.

    Returns:
        ``(images uint8 (N, C, H, W), labels int64 (N,), classes)``.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file, save_file

    from squeezelab.io import atomic_path

    folder, classes, files = image_folder_files(Path(root), split)
    tree = hashlib.sha256(f"{Path(root).resolve()}:{split}".encode()).hexdigest()[:12]
    key = _cache_key(folder, files, input_size)
    directory = Path(cache) if cache else cache_dir()
    path = directory / f"imagefolder-{tree}-{key}.safetensors"
    labels = torch.tensor([c for _, c, _ in files], dtype=torch.int64)
    if path.is_file():
        try:
            t = load_file(str(path))
            if t["images"].dtype == torch.uint8 and torch.equal(t["labels"], labels):
                return t["images"], labels, classes
        except (SafetensorError, KeyError, OSError, RuntimeError):
            pass  # a damaged cache is rebuilt below
    images = _decode(files, input_size)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            save_file({"images": images, "labels": labels}, str(tmp))
        for old in directory.glob(f"imagefolder-{tree}-*.safetensors"):
            if old != path:
                old.unlink(missing_ok=True)
    except OSError:
        pass  # no writable cache: decode again next time
    return images, labels, classes


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
