"""Top-k prediction on image files with the preprocessing stored in the model's metadata.

Works for model files, ``.sqz`` files, zoo names and exported ``.onnx`` files: resize
(shorter side, then centre crop, as torchvision's ImageNet evaluation), convert to
grayscale or RGB, scale to x/255 and normalise with the stored mean and std.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from squeezelab.errors import DatasetError, FormatError

# 8-bit PIL modes that convert to L or RGB without losing the meaning of a pixel value.
_MODES = ("1", "L", "LA", "P", "PA", "RGB", "RGBA", "RGBX", "CMYK", "YCbCr")
MAX_ASPECT = 2.0  # a centre crop beyond this would drop more than half of the image


def load_image(image, in_chans: int, size: int, resize: bool = True) -> np.ndarray:
    """An image path, PIL image or HxW[xC] uint8 array -> uint8 ``(in_chans, size, size)``.

    Raises:
        FormatError: the file cannot be decoded as an image.
        DatasetError: the image cannot be converted: not 8-bit, an unsupported channel
            count, a size other than ``size`` with ``resize=False``, or an aspect
            ratio beyond 2:1.
    """
    from PIL import Image, UnidentifiedImageError

    name = str(image) if isinstance(image, str | os.PathLike) else f"<{type(image).__name__}>"
    if in_chans not in (1, 3):
        raise DatasetError(
            f"{name}: the model takes {in_chans} channels: allowed 1 or 3 for images"
        )
    if isinstance(image, str | os.PathLike):
        try:
            with Image.open(image) as im:
                im.load()
                img = im
        except FileNotFoundError as e:
            raise DatasetError(f"image {name!r} does not exist") from e
        except (UnidentifiedImageError, OSError) as e:
            raise FormatError(f"{name}: not an image Pillow can read ({e})") from e
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
        img = _resize_crop(img, size)
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


def _resize_crop(img, size: int):
    """Resize the shorter side to ``size`` (bilinear), then crop the centre square."""
    from PIL import Image

    w, h = img.size
    scale = size / min(w, h)
    nw, nh = max(size, round(w * scale)), max(size, round(h * scale))
    img = img.resize((nw, nh), Image.Resampling.BILINEAR)
    left, top = (nw - size) // 2, (nh - size) // 2
    return img.crop((left, top, left + size, top + size))


def _runner(model_ref):
    """``(meta, logits_fn)`` for an ONNX file, a model file, a .sqz file or a zoo name."""
    from squeezelab.export.onnx import INPUT_NAME, make_session, read_onnx_meta

    path = Path(model_ref)
    if path.suffix == ".onnx":
        meta = read_onnx_meta(path)
        session = make_session(path)
        return meta, lambda x: session.run(None, {INPUT_NAME: x})[0]
    import torch

    from squeezelab.export._model import complete_meta
    from squeezelab.fileio import load_any_model

    model, meta = load_any_model(model_ref)
    if "in_chans" not in meta or "input_size" not in meta:
        raise FormatError(f"{model_ref}: model metadata lacks in_chans/input_size for predict")
    meta = complete_meta(meta, (meta["in_chans"], meta["input_size"], meta["input_size"]))

    def logits(x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return model(torch.from_numpy(x)).float().numpy()

    return meta, logits


def predict(model_path, images, top_k: int = 5, resize: bool = True) -> list[dict[str, Any]]:
    """Classify ``images`` with a model, returning the ``top_k`` classes of each.

    Args:
        model_path: a ``.onnx`` export, a ``.safetensors`` model file, a ``.sqz`` file,
            or a zoo name.
        images: image paths, PIL images or uint8 arrays.
        top_k: how many classes per image (capped at the number of classes).
        resize: resize and centre-crop images of another size; else such an image is
            an error.

    Returns:
        One record per image: ``{"image", "top": [{"index", "label", "prob"}, ...]}``.

    Example:
        >>> predict("runs/fmnist/best.safetensors", ["shoe.png"], top_k=3)  # doctest: +SKIP
        [{'image': 'shoe.png', 'top': [{'index': 7, 'label': 'Sneaker', 'prob': 0.93}, ...]}]
    """
    from squeezelab.errors import ConfigError
    from squeezelab.export.onnx import normalize

    if top_k < 1:
        raise ConfigError(f"top_k={top_k} is invalid: allowed >= 1")
    meta, logits = _runner(model_path)
    c, size = int(meta["in_chans"]), int(meta["input_size"])
    batch = np.stack([load_image(im, c, size, resize) for im in images])
    out = logits(normalize(batch, meta)).astype(np.float64)
    prob = np.exp(out - out.max(1, keepdims=True))
    prob /= prob.sum(1, keepdims=True)
    classes = meta.get("classes") or []
    records = []
    for im, p in zip(images, prob, strict=True):
        order = np.argsort(-p, kind="stable")[: min(top_k, len(p))]
        top = [
            {
                "index": int(i),
                "label": str(classes[i]) if i < len(classes) else str(int(i)),
                "prob": float(p[i]),
            }
            for i in order
        ]
        records.append(
            {"image": str(im) if isinstance(im, str | os.PathLike) else None, "top": top}
        )
    return records
