"""``squeezelab decompress MODEL.sqz -o MODEL.safetensors``: decode to a model file."""

from __future__ import annotations

from squeezelab.cli import _flags
from squeezelab.cli._common import console


def register(sub) -> None:
    p = sub.add_parser(
        "decompress",
        help="decode a .sqz file into a safetensors model file",
        description="Decode a .sqz file and save the weight-shared model as a model file.",
    )
    _flags.add_model(p, help="a .sqz file (other references have nothing to decode)")
    _flags.add_output(p, help="model file to write (.safetensors)", required=True)
    p.set_defaults(func=run_decompress)


def run_decompress(args) -> int:
    from pathlib import Path

    from squeezelab.errors import ConfigError
    from squeezelab.io import is_sqz
    from squeezelab.models import load_model, save_model

    path = Path(args.model)
    if path.suffix == ".sqz" and not path.exists():
        raise ConfigError(f"MODEL={args.model!r}: .sqz file does not exist")
    if not (path.is_file() and is_sqz(path)):
        raise ConfigError(f"MODEL={args.model!r} is invalid: allowed a .sqz file")
    model, meta = load_model(path)
    save_model(args.output, model, meta)
    params = sum(p.numel() for p in model.parameters())
    size = Path(args.output).stat().st_size
    console().print(
        f"wrote {args.output}: {meta.name}, {params:,} params, {size:,} bytes", markup=False
    )
    return 0
