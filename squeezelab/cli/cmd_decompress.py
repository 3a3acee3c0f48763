"""``squeezelab decompress MODEL.sqz -o MODEL.safetensors``: decode to a model file."""

from __future__ import annotations

from squeezelab.cli._common import console


def register(sub) -> None:
    p = sub.add_parser(
        "decompress",
        help="decode a .sqz file into a safetensors model file",
        description="Decode a .sqz file and save the weight-shared model as a model file.",
    )
    p.add_argument("file", help="a .sqz file")
    p.add_argument("-o", "--output", required=True, help="model file to write (.safetensors)")
    p.set_defaults(func=run_decompress)


def run_decompress(args) -> int:
    from pathlib import Path

    from squeezelab.compress import load_any_model
    from squeezelab.errors import ConfigError
    from squeezelab.fileio import save_model_file

    if Path(args.file).suffix != ".sqz":
        raise ConfigError(f"file={args.file!r} is invalid: allowed a .sqz file")
    model, meta = load_any_model(args.file)
    save_model_file(args.output, model, meta)
    params = sum(p.numel() for p in model.parameters())
    console().print(f"wrote {args.output}: {meta['model']}, {params:,} params, "
                    f"{Path(args.output).stat().st_size:,} bytes")  # fmt: skip
    return 0
