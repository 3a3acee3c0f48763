"""COCO-format detection folders (Lin et al. 2014, cocodataset.org "Data format"): read
with the classification readers' checks, and written atomically.

A folder is ``DIR/SPLIT/instances.json`` with the images in ``DIR/SPLIT/images/`` (or
beside the JSON), or a single ``DIR/instances.json`` whose images are split by a hash of
their file names. Every problem is a one-line DatasetError naming the JSON file, the
image or annotation id and what is wrong.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import tempfile
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

import numpy as np
import torch

from squeezelab.data.files import MAX_DATASET_BYTES_ENV, max_dataset_bytes, read_regular
from squeezelab.errors import ConfigError, DatasetError

if TYPE_CHECKING:
    from squeezelab.data.detection import DetectionSplit

ANNOTATIONS = "instances.json"
IMAGES = "images"
SPLITS = ("train", "val", "test")
# A single instances.json is split by sha256 of each file name: this fraction is test,
# the same again val, the rest train; adding an image moves no other image.
CARVE_FRACTION = 0.1
MAX_JSON_BYTES = 1 << 30  # an annotation file larger than this is refused before parsing
MAX_CLASSES = 65536
MAX_NAME = 1024
MAX_SIDE = 65536
BOX_TOLERANCE = 0.01  # pixels a box may pass the image edge (float rounding); clipped


def find_annotations(root: Path, split: str, quiet: bool = False):
    """``(instances.json, carved)`` for ``split`` of ``root``; ``carved``: one file for all
    splits. ``quiet``: None instead of a DatasetError when ``root`` holds none."""
    here = root / split / ANNOTATIONS
    if here.is_file():
        return here, False
    others = [s for s in SPLITS if (root / s / ANNOTATIONS).is_file()]
    if (root / ANNOTATIONS).is_file() and not others:
        return root / ANNOTATIONS, True
    if quiet:
        return None
    if others:
        raise DatasetError(
            f"{root}: no {split}/{ANNOTATIONS} (found {', '.join(s + '/' + ANNOTATIONS for s in others)})"
        )
    raise DatasetError(
        f"{root}: no {ANNOTATIONS}: a COCO-format folder holds SPLIT/{ANNOTATIONS} "
        f"(SPLIT one of {', '.join(SPLITS)}) or one {ANNOTATIONS} for all splits"
    )


def carve_split(file_name: str) -> str:
    """The split of an image of a single-file folder, by the hash of its file name."""
    h = int(hashlib.sha256(file_name.encode()).hexdigest()[:8], 16) / 2**32
    return "test" if h < CARVE_FRACTION else "val" if h < 2 * CARVE_FRACTION else "train"


def _parse(path: Path):
    raw = read_regular(path, min(MAX_JSON_BYTES, max_dataset_bytes()))
    try:
        doc = json.loads(raw)
    except UnicodeDecodeError as e:
        raise DatasetError(f"{path}: not valid JSON (not UTF-8 text at byte {e.start})") from e
    except json.JSONDecodeError as e:
        raise DatasetError(
            f"{path}: not valid JSON ({e.msg} at line {e.lineno}, column {e.colno})"
        ) from e
    except RecursionError as e:
        raise DatasetError(f"{path}: not valid COCO JSON (nested too deeply)") from e
    if not isinstance(doc, dict):
        raise DatasetError(f"{path}: not COCO JSON: the top level must be an object")
    for key in ("images", "annotations", "categories"):
        if not isinstance(doc.get(key), list):
            raise DatasetError(f"{path}: not COCO JSON: {key!r} must be a list")
    return doc


def _int(entry, key: str, where: str, lo: int = 0, hi: int = 2**63 - 1) -> int:
    v = entry.get(key) if isinstance(entry, dict) else None
    if type(v) is not int or not lo <= v <= hi:
        raise DatasetError(f"{where}: {key!r} must be an integer in {lo}..{hi}, got {v!r}")
    return v


def _categories(doc, path: Path) -> dict[int, str]:
    cats: dict[int, str] = {}
    if not doc["categories"] or len(doc["categories"]) > MAX_CLASSES:
        raise DatasetError(f"{path}: 'categories' must hold 1..{MAX_CLASSES} entries")
    for c in doc["categories"]:
        cid = _int(c, "id", f"{path}: category")
        name = c.get("name")
        if not isinstance(name, str) or not 0 < len(name) <= MAX_NAME:
            raise DatasetError(
                f"{path}: category id {cid}: 'name' must be 1..{MAX_NAME} characters"
            )
        if cid in cats:
            raise DatasetError(f"{path}: category id {cid} appears twice")
        cats[cid] = name
    return dict(sorted(cats.items()))


def _images(doc, path: Path) -> dict[int, tuple[str, int, int]]:
    images: dict[int, tuple[str, int, int]] = {}
    for im in doc["images"]:
        iid = _int(im, "id", f"{path}: image")
        where = f"{path}: image id {iid}"
        name = im.get("file_name")
        parts = PurePosixPath(name).parts if isinstance(name, str) else ()
        if not parts or name.startswith("/") or ".." in parts or "\\" in name:
            raise DatasetError(
                f"{where}: 'file_name' must be a relative path inside the folder, got {name!r}"
            )
        w, h = _int(im, "width", where, 1, MAX_SIDE), _int(im, "height", where, 1, MAX_SIDE)
        if iid in images:
            raise DatasetError(f"{where} appears twice")
        images[iid] = (name, w, h)
    if not images:
        raise DatasetError(f"{path}: 'images' is empty: the file must list at least one image")
    return images


def _annotations(doc, path: Path, images, cats):
    """Per image id: boxes (x1, y1, x2, y2) and category ids, checked; crowd regions skipped."""
    per_image: dict[int, list] = {i: [] for i in images}
    seen: set[int] = set()
    for a in doc["annotations"]:
        aid = _int(a, "id", f"{path}: annotation")
        where = f"{path}: annotation id {aid}"
        if aid in seen:
            raise DatasetError(f"{where} appears twice")
        seen.add(aid)
        iid, cid = a.get("image_id"), a.get("category_id")
        if type(iid) is not int or iid not in images:
            raise DatasetError(f"{where}: image_id {iid!r} is not an id in 'images'")
        if type(cid) is not int or cid not in cats:
            known = ", ".join(map(str, list(cats)[:20])) + (", ..." if len(cats) > 20 else "")
            raise DatasetError(f"{where}: category_id {cid!r} is unknown (categories: {known})")
        box = a.get("bbox")
        if (
            type(box) is not list
            or len(box) != 4
            or not all(type(v) in (int, float) and math.isfinite(v) for v in box)
        ):
            raise DatasetError(
                f"{where}: 'bbox' must be 4 finite numbers [x, y, w, h], got {box!r}"
            )
        x, y, w, h = box
        if w <= 0 or h <= 0:
            raise DatasetError(f"{where}: box [x, y, w, h] = {box} must have positive w and h")
        _, iw, ih = images[iid]
        t = BOX_TOLERANCE
        if x < -t or y < -t or x + w > iw + t or y + h > ih + t:
            raise DatasetError(
                f"{where}: box [x, y, w, h] = {box} extends outside image id {iid} ({iw}x{ih})"
            )
        if a.get("iscrowd", 0) == 1:
            continue  # a crowd region marks pixels to ignore, not one object
        per_image[iid].append(
            (max(x, 0.0), max(y, 0.0), min(x + w, float(iw)), min(y + h, float(ih)), cid)
        )
    return per_image


def _image_file(folder: Path, name: str) -> Path:
    under = folder / IMAGES / name
    return under if os.path.lexists(under) else folder / name


def _letterbox(im, size: int):
    """Scale the longer side to ``size`` (bilinear), pad right and bottom with black."""
    from PIL import Image

    w, h = im.size
    if (w, h) == (size, size):
        return im, 1.0, 1.0
    nw, nh = max(1, round(w * size / max(w, h))), max(1, round(h * size / max(w, h)))
    out = Image.new(im.mode, (size, size))
    out.paste(im.resize((nw, nh), Image.Resampling.BILINEAR), (0, 0))
    return out, nw / w, nh / h


def read_coco(root: Path, split: str, *, size: int, count: int | None = None):
    """``(images uint8 (N, C, size, size), boxes, labels, classes, image ids)`` of a COCO
    folder's ``split``: images sorted by id, the first ``count`` kept, letterboxed to
    ``size`` (boxes scaled alike) unless all already are ``size`` x ``size``.
    """
    from squeezelab.data.images import open_image, probe_image

    path, carved = find_annotations(root, split)
    doc = _parse(path)
    cats = _categories(doc, path)
    images = _images(doc, path)
    per_image = _annotations(doc, path, images, cats)
    ids = sorted(i for i in images if not carved or carve_split(images[i][0]) == split)
    ids = ids[:count] if count else ids
    if not ids:
        raise DatasetError(f"{path}: no images fall in the {split!r} split")
    folder = path.parent
    files, modes = [], []
    for iid in ids:
        name, w, h = images[iid]
        f = _image_file(folder, name)
        if not os.path.lexists(f):
            raise DatasetError(f"{path}: image id {iid}: file {f} does not exist")
        try:
            (fw, fh), mode = probe_image(f)
        except DatasetError as e:
            raise DatasetError(f"{path}: image id {iid}: {e}") from e
        if (fw, fh) != (w, h):
            raise DatasetError(
                f"{path}: image id {iid}: {f} is {fw}x{fh} but 'images' declares {w}x{h}"
            )
        files.append(f)
        modes.append(mode)
    gray = all(m in ("1", "L", "I", "I;16", "F") for m in modes)
    mode, chans = ("L", 1) if gray else ("RGB", 3)
    total = len(ids) * size * size * chans
    if total > max_dataset_bytes():
        raise DatasetError(
            f"{path}: {len(ids)} images of {chans}x{size}x{size} need {total} bytes, over the "
            f"dataset limit of {max_dataset_bytes()} (raise it with {MAX_DATASET_BYTES_ENV})"
        )
    out = np.empty((len(ids), size, size, chans), np.uint8)
    boxes, labels = [], []
    label_of = {cid: i for i, cid in enumerate(cats)}
    for k, (iid, f) in enumerate(zip(ids, files, strict=True)):
        try:
            im = open_image(f).convert(mode)
        except DatasetError as e:
            raise DatasetError(f"{path}: image id {iid}: {e}") from e
        if im.size != images[iid][1:]:
            raise DatasetError(f"{path}: image id {iid}: {f} changed while being read; run again")
        im, sx, sy = _letterbox(im, size)
        out[k] = np.asarray(im, np.uint8).reshape(size, size, chans)
        rows = per_image[iid]
        b = torch.tensor([r[:4] for r in rows], dtype=torch.float64).reshape(-1, 4)
        boxes.append((b * torch.tensor([sx, sy, sx, sy], dtype=torch.float64)).float())
        labels.append(torch.tensor([label_of[r[4]] for r in rows], dtype=torch.int64))
    tensor = torch.from_numpy(np.ascontiguousarray(out.transpose(0, 3, 1, 2)))
    return tensor, tuple(boxes), tuple(labels), tuple(cats.values()), tuple(ids)


# ---- writing ---------------------------------------------------------------------------------


def coco_dict(split: DetectionSplit, info: dict | None = None) -> dict:
    """The COCO JSON of ``split``: category ids are 1-based, boxes ``[x, y, w, h]`` floats."""
    _, _, h, w = split.images.shape
    images, annotations = [], []
    for iid, b, lab in zip(split.image_ids, split.boxes, split.labels, strict=True):
        images.append({"id": iid, "file_name": f"{iid:06d}.png", "width": w, "height": h})
        for (x1, y1, x2, y2), c in zip(b.tolist(), lab.tolist(), strict=True):
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": iid,
                    "category_id": c + 1,
                    "bbox": [x1, y1, x2 - x1, y2 - y1],
                    "area": (x2 - x1) * (y2 - y1),
                    "iscrowd": 0,
                }
            )
    categories = [
        {"id": i + 1, "name": n, "supercategory": ""} for i, n in enumerate(split.classes)
    ]
    return {
        "info": info or {"description": "written by squeezelab"},
        "images": images,
        "annotations": annotations,
        "categories": categories,
    }


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_coco(split: DetectionSplit, out_dir, info: dict | None = None) -> Path:
    """Write ``split`` as ``out_dir/instances.json`` + ``out_dir/images/NNNNNN.png``.

    The folder is built beside ``out_dir`` and renamed over it, so a reader sees the old
    folder or the new one, never half of either; an existing ``out_dir`` is replaced only
    if it is a folder this function wrote (it holds ``instances.json``) or is empty.

    Returns:
        The path of ``instances.json``.

    Example:
        >>> write_coco(load_detection("fashion-mnist-det", "val", count=4), "d/val")  # doctest: +SKIP
        PosixPath('d/val/instances.json')
    """
    from PIL import Image

    out = Path(out_dir)
    if out.exists() and not (
        out.is_dir() and ((out / ANNOTATIONS).is_file() or not any(out.iterdir()))
    ):
        raise ConfigError(
            f"{out}: exists and is not a COCO folder (no {ANNOTATIONS}): pick a new or empty folder"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.{os.getpid()}.", dir=out.parent))
    try:
        (tmp / IMAGES).mkdir()
        arr = split.images.permute(0, 2, 3, 1).contiguous().numpy()
        for iid, a in zip(split.image_ids, arr, strict=True):
            f = tmp / IMAGES / f"{iid:06d}.png"
            Image.fromarray(a[:, :, 0] if a.shape[2] == 1 else a).save(f, format="PNG")
        (tmp / ANNOTATIONS).write_text(json.dumps(coco_dict(split, info)))
        for f in (*(tmp / IMAGES).iterdir(), tmp / ANNOTATIONS, tmp / IMAGES, tmp):
            _fsync(f)
        os.chmod(tmp, 0o777 & ~_umask())
        old = None
        if out.exists():
            old = out.parent / f".{out.name}.{os.getpid()}.old"
            os.replace(out, old)
        os.replace(tmp, out)
        _fsync(out.parent)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out / ANNOTATIONS


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
