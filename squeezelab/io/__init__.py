"""Files: atomic writes, the safetensors model file and the ``.sqz`` container.

The lowest layer above ``errors``: plain data in and out (dicts, numpy arrays, tensors),
no model code. ``squeezelab.models.load_model`` turns these files into modules.
"""

from squeezelab.io.atomic import atomic_path, atomic_write_bytes, atomic_write_json
from squeezelab.io.modelfile import read_model_meta, read_model_tensors, save_model_file
from squeezelab.io.sqzfile import is_sqz, read_sqz_header, read_sqz_layout

__all__ = [
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_json",
    "is_sqz",
    "read_model_meta",
    "read_model_tensors",
    "read_sqz_header",
    "read_sqz_layout",
    "save_model_file",
]
