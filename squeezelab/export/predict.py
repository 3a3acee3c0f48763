"""Top-k prediction on image files with the preprocessing stored in the model's metadata.

Works for exported ``.onnx`` files and anything ``squeezelab.models.load_model`` takes: resize
(shorter side, then centre crop, as torchvision's ImageNet evaluation), convert to
grayscale or RGB, scale to x/255 and normalise with the stored mean and std.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from squeezelab.data.images import open_image, resize_crop
from squeezelab.data.readers import IMAGE_SUFFIXES
from squeezelab.errors import DatasetError
from squeezelab.models import ModelMeta

BATCH = 256  # images per forward pass, so a directory of any size runs in bounded memory

# 8-bit PIL modes that convert to L or RGB without losing the meaning of a pixel value.
_MODES = ("1", "L", "LA", "P", "PA", "RGB", "RGBA", "RGBX", "CMYK", "YCbCr")
MAX_ASPECT = 2.0  # a centre crop beyond this would drop more than half of the image


def load_image(image, in_chans: int, size: int, resize: bool = True) -> np.ndarray:
    """An image path, PIL image or HxW[xC] uint8 array -> uint8 ``(in_chans, size, size)``.

    Raises:
        DatasetError: the file is missing, not a regular file, a decompression bomb or
            not an image Pillow decodes; or it cannot be converted: not 8-bit, an unsupported channel
            count, a size other than ``size`` with ``resize=False``, or an aspect
            ratio beyond 2:1.
    """
    name = str(image) if isinstance(image, str | os.PathLike) else f"<{type(image).__name__}>"
    if in_chans not in (1, 3):
        raise DatasetError(
            f"{name}: the model takes {in_chans} channels: allowed 1 or 3 for images"
        )
    if isinstance(image, str | os.PathLike):
        img = open_image(image)  # regular files only, bounded in pixels
    elif isinstance(image, np.ndarray):
        img = _from_array(image, name)
    else:
        img = image
    if img.mode not in _MODES:
        raise DatasetError(
            f"{name}: pixel mode {img.mode!r} cannot be converted: allowed 8-bit images "
            f"({', '.join(_MODES)})"
        )
    img = img.convert("L" if in_chans == 1 else "RGB")
    w, h = img.size
    if (w, h) != (size, size):
        if not resize:
            raise DatasetError(
                f"{name}: image is {w}x{h} but the model takes {size}x{size}; resize it or allow resizing"
            )
        if max(w, h) / min(w, h) > MAX_ASPECT:
            raise DatasetError(
                f"{name}: image is {w}x{h} (aspect {max(w, h) / min(w, h):.1f}:1); predict centre-crops "
                f"to {size}x{size} and allows aspect ratios up to {MAX_ASPECT:g}:1: crop it first"
            )
        img = resize_crop(img, size)
    x = np.asarray(img, dtype=np.uint8)
    x = x[None] if x.ndim == 2 else x.transpose(2, 0, 1)
    return np.ascontiguousarray(x)


def _from_array(a: np.ndarray, name: str):
    from PIL import Image

    if a.dtype != np.uint8:
        raise DatasetError(f"{name}: array dtype {a.dtype} cannot be converted: allowed uint8")
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.ndim == 2:
        return Image.fromarray(a, "L")
    if a.ndim == 3 and a.shape[2] in (3, 4):
        return Image.fromarray(a, "RGB" if a.shape[2] == 3 else "RGBA")
    raise DatasetError(
        f"{name}: array of shape {a.shape} cannot be converted: allowed HxW, HxWx1, HxWx3, HxWx4"
    )


@dataclass(frozen=True)
class TopClass:
    """One of an image's top classes."""

    index: int  # output index
    label: str  # class name, or the index as text when the model has none
    prob: float  # softmax probability

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Prediction:
    """The top classes of one image, most probable first."""

    image: str | None  # the path, None for an in-memory image
    top: tuple[TopClass, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"image": self.image, "top": [t.to_dict() for t in self.top]}


def expand_inputs(inputs) -> list:
    """Files, directories (every image file below, sorted) and globs -> the images to read.

    An argument naming an existing path is taken as it is; else one with ``*``, ``?`` or
    ``[`` is a glob (``**`` recursive). Other values (PIL images, arrays) pass through.

    Raises:
        DatasetError: a path that does not exist, a glob or directory with no image.
    """
    import glob

    out: list = []
    for item in inputs:
        if not isinstance(item, str | os.PathLike):
            out.append(item)
            continue
        path = Path(item)
        if path.is_dir():
            found = sorted(
                p
                for p in path.rglob("*")
                if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")
            )
            if not found:
                raise DatasetError(
                    f"{path}: directory holds no images ({', '.join(IMAGE_SUFFIXES)})"
                )
            out += found
        elif os.path.lexists(path):
            out.append(path)
        elif glob.has_magic(str(item)):
            found = sorted(Path(p) for p in glob.glob(str(item), recursive=True))
            found = [p for p in found if not p.is_dir()]
            if not found:
                raise DatasetError(f"{item}: the pattern matches no file")
            out += found
        else:
            raise DatasetError(f"image {str(item)!r} does not exist")
    return out


def _runner(model_ref) -> tuple[ModelMeta, tuple[int, int, int], Callable]:
    """``(meta, input shape, logits_fn)`` for an ONNX file or anything ``load_model`` takes."""
    from squeezelab.export.onnx import INPUT_NAME, make_session, read_onnx_meta

    if Path(model_ref).suffix == ".onnx":
        info = read_onnx_meta(model_ref)
        session = make_session(model_ref)
        return info.meta, info.input_shape, lambda x: session.run(None, {INPUT_NAME: x})[0]
    import torch

    from squeezelab.models import load_model

    model, meta = load_model(model_ref)

    def logits(x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return model(torch.from_numpy(x)).float().numpy()

    return meta, meta.input_shape, logits


def predict(model, images, top_k: int = 5, resize: bool = True) -> list[Prediction]:
    """Classify ``images`` with a model, returning the ``top_k`` classes of each.

    Args:
        model: a ``.onnx`` export, or anything :func:`squeezelab.models.load_model` takes
            (a ``.safetensors`` model file, a ``.sqz`` file, a zoo name, a spec file).
        images: image paths, directories (every image below), globs, PIL images or uint8
            arrays (see :func:`expand_inputs`).
        top_k: how many classes per image (capped at the number of classes).
        resize: resize and centre-crop images of another size; else such an image is
            an error.

    Returns:
        One :class:`Prediction` per image.

    Example:
        >>> p = predict("runs/fmnist/best.safetensors", ["shoe.png"], top_k=3)  # doctest: +SKIP
        >>> p[0].top[0].label  # doctest: +SKIP
        'Sneaker'
    """
    from squeezelab.errors import ConfigError
    from squeezelab.export.onnx import normalize

    if top_k < 1:
        raise ConfigError(f"top_k={top_k} is invalid: allowed >= 1")
    images = expand_inputs(images)
    meta, (c, size, _), logits = _runner(model)
    outs = []
    for i in range(0, len(images), BATCH):
        batch = np.stack([load_image(im, c, size, resize) for im in images[i : i + BATCH]])
        outs.append(logits(normalize(batch, meta)).astype(np.float64))
    out = np.concatenate(outs) if outs else np.zeros((0, max(1, meta.num_classes)))
    prob = np.exp(out - out.max(1, keepdims=True))
    prob /= prob.sum(1, keepdims=True)
    classes = meta.classes or ()
    records = []
    for im, p in zip(images, prob, strict=True):
        order = np.argsort(-p, kind="stable")[: min(top_k, len(p))]
        top = tuple(
            TopClass(int(i), str(classes[i]) if i < len(classes) else str(int(i)), float(p[i]))
            for i in order
        )
        records.append(Prediction(str(im) if isinstance(im, str | os.PathLike) else None, top))
    return records
