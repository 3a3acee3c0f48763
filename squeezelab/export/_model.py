"""Load a model to deploy (zoo name, model file, ``.sqz``) with its preprocessing metadata.

The metadata follows the model-file contract (``squeezelab.fileio``): model, num_classes,
in_chans, input_size, classes and normalization (per-channel mean/std applied to x/255).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from squeezelab.errors import FormatError

# ImageNet statistics for 3-channel zoo models, a neutral 0.5/0.5 for single-channel ones.
IMAGENET_NORM = {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}


def default_normalization(in_chans: int) -> dict[str, list[float]]:
    """Normalisation stored for an untrained zoo model: ImageNet for RGB, 0.5/0.5 otherwise."""
    if in_chans == 3:
        return {k: list(v) for k, v in IMAGENET_NORM.items()}
    return {"mean": [0.5] * in_chans, "std": [0.5] * in_chans}


def zoo_meta(name: str, model=None) -> dict[str, Any]:
    """Model-file metadata for a registry model at its defaults (no class names, no metrics)."""
    from squeezelab.models import model_info

    info = model_info(name)
    spec = getattr(model, "spec", None) or info.spec
    in_chans = spec.in_chans if spec is not None else info.in_chans
    meta = {
        "model": name,
        "num_classes": spec.num_classes if spec is not None else info.num_classes,
        "in_chans": in_chans,
        "input_size": spec.input_size if spec is not None else info.input_size,
        "normalization": default_normalization(in_chans),
    }
    if spec is not None:
        meta["spec"] = spec.to_dict()
    return meta


def complete_meta(meta: dict[str, Any], input_shape: tuple[int, int, int]) -> dict[str, Any]:
    """Fill the preprocessing fields a deployed model needs from its input shape."""
    c, h, _ = input_shape
    out = dict(meta)
    out.setdefault("in_chans", c)
    out.setdefault("input_size", h)
    if not out.get("normalization"):
        out["normalization"] = default_normalization(c)
    return out


def load_model(ref: str | Path):
    """A zoo name, a ``.safetensors`` model file or a ``.sqz`` file -> ``(module, meta)``.

    Example:
        >>> model, meta = load_model("squeezenet_small")
        >>> meta["input_size"]
        28
    """
    path = Path(ref)
    if path.suffix in (".safetensors", ".sqz"):
        if not path.is_file():
            raise FormatError(f"model file {str(path)!r} does not exist")
        from squeezelab.compress import load_any_model  # decodes .sqz, reads model files

        return load_any_model(path)
    if path.suffix or path.exists():
        raise FormatError(
            f"{str(path)!r} is not a model: allowed a .safetensors model file, a .sqz file "
            "or a zoo name (see `squeezelab models`)"
        )
    from squeezelab.models import create_model

    model = create_model(str(ref)).eval()
    return model, zoo_meta(str(ref), model)
