"""Decoding one image file, bounded, and the one resize rule datasets and ``predict`` share.

The rule (docs/training.md, "Data"): resize the shorter side to the target with bilinear
filtering, then crop the centre square, as torchvision's ImageNet evaluation does.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from squeezelab.data.files import open_regular
from squeezelab.errors import DatasetError

# An image header may claim any size; refuse more pixels than this before decoding
# (2**26 = 8192x8192; Pillow's own guard warns at ~89 M and refuses at ~179 M).
MAX_IMAGE_PIXELS = 2**26
# Deflate (PNG) expands at most ~1032:1; a header claiming more bytes per file byte
# than this cannot be a real image of that size (a decompression bomb or a lie).
MAX_EXPANSION = 1100


def probe_image(path: str | Path) -> tuple[tuple[int, int], str]:
    """``((width, height), mode)`` from the header of the image at ``path``, bounded and
    checked as :func:`open_image` does, without decoding the pixels.
    """
    im = open_image(path, load=False)
    return im.size, im.mode


def open_image(path: str | Path, load: bool = True):
    """Decode the image at ``path`` (a regular file) with Pillow, bounded in pixels.

    Raises:
        DatasetError: not a regular file, a header claiming more than ``MAX_IMAGE_PIXELS``
            pixels (a decompression bomb), or a file Pillow cannot decode; the message
            names the file.
    """
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    with open_regular(path) as f:
        size_on_disk = max(1, f.seek(0, 2))
        f.seek(0)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                im = Image.open(f)
                w, h = im.size
                if w * h > MAX_IMAGE_PIXELS or w * h > MAX_EXPANSION * size_on_disk:
                    raise DatasetError(
                        f"{path}: header claims {w}x{h} pixels from a {size_on_disk}-byte "
                        f"file: refused as a decompression bomb (allowed up to "
                        f"{MAX_IMAGE_PIXELS} pixels and {MAX_EXPANSION} pixels per byte)"
                    )
                if load:
                    im.load()
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
            raise DatasetError(f"{path}: refused as a decompression bomb ({e})") from e
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
            raise DatasetError(f"{path}: cannot decode image ({e})") from e
    return im


def resize_crop(img, size: int):
    """Resize the shorter side of a PIL image to ``size`` (bilinear), crop the centre square."""
    from PIL import Image

    w, h = img.size
    if (w, h) == (size, size):
        return img
    scale = size / min(w, h)
    nw, nh = max(size, round(w * scale)), max(size, round(h * scale))
    img = img.resize((nw, nh), Image.Resampling.BILINEAR)
    left, top = (nw - size) // 2, (nh - size) // 2
    return img.crop((left, top, left + size, top + size))
