"""The one way in: a zoo name, a spec file, a model file or a ``.sqz`` file -> a module.

:func:`load_model` is what every verb calls with what the user typed; :func:`build_model`
rebuilds the (untrained) module a :class:`ModelMeta` describes. File parsing lives in
``squeezelab.io``; here the parsed data meets the model code.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from squeezelab.errors import FormatError, SqueezelabError, one_line
from squeezelab.models._registry import create_model, model_info
from squeezelab.models.meta import ModelMeta, spec_from_file
from squeezelab.models.spec import SqueezeNetSpec

SPEC_SUFFIXES = (".yaml", ".yml", ".json")


class SkipInit(TorchFunctionMode):
    """Skip ``nn.init`` fills: on the meta device they would import torch._dynamo (seconds),
    and a module about to receive loaded weights does not need them."""

    SKIP = frozenset(
        {
            "normal_",
            "uniform_",
            "zero_",
            "zeros_",
            "ones_",
            "fill_",
            "constant_",
            "trunc_normal_",
            "kaiming_uniform_",
            "kaiming_normal_",
            "xavier_uniform_",
            "xavier_normal_",
            "orthogonal_",
        }
    )

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if getattr(func, "__name__", "") in self.SKIP:
            return args[0] if args else kwargs.get("tensor")
        return func(*args, **kwargs)


def build_model(meta: ModelMeta, *, skeleton: bool = False) -> nn.Module:
    """The untrained module ``meta`` describes (seed torch first for reproducible weights).

    ``skeleton=True`` builds it on the meta device without initialising (no memory): for
    counting its tensors before anything is allocated.

    Example:
        >>> from squeezelab.models import ModelMeta, SQUEEZENET_SMALL
        >>> m = build_model(ModelMeta.for_spec(SQUEEZENET_SMALL))
        >>> sum(p.numel() for p in m.parameters())
        187370
    """
    if skeleton:
        with torch.device("meta"), SkipInit():
            return build_model(meta)
    if meta.spec is not None:
        return create_model(meta.spec)
    extra = dict(meta.model_args)
    if model_info(meta.name).spec is not None:
        extra.setdefault("input_size", meta.input_size)
    return create_model(meta.name, num_classes=meta.num_classes, in_chans=meta.in_chans, **extra)


def _checked_skeleton(meta: ModelMeta, max_elements: int, where: str) -> dict[str, torch.Tensor]:
    """The state_dict ``meta`` needs, on the meta device, once its size is within bounds.

    Counts tensor elements against ``max_elements`` and one forward pass's activations
    against ``MAX_ACTIVATIONS`` before anything real is allocated.
    """
    from squeezelab.io.limits import MAX_ACTIVATIONS, how_to_raise, raised_ceiling

    try:
        model = build_model(meta, skeleton=True)
    except SqueezelabError as e:
        raise FormatError(f"{where}: cannot rebuild model {meta.name!r}: {e}") from e
    except (ValueError, TypeError, RuntimeError, OverflowError, MemoryError) as e:
        raise FormatError(
            f"{where}: cannot rebuild model {meta.name!r} from its metadata "
            f"({e.__class__.__name__})"
        ) from e
    expected = model.state_dict()
    total = sum(t.numel() for t in expected.values())
    if total > max_elements:
        raise FormatError(
            f"{where}: model {meta.name!r} has {total} elements, more than the file may hold "
            f"({max_elements}); {how_to_raise()}"
        )
    limit = max(MAX_ACTIVATIONS, raised_ceiling() or 0)
    acts = _activations(model.eval(), meta, where)
    if acts > limit:
        raise FormatError(
            f"{where}: model {meta.name!r} at input {list(meta.input_shape)} produces {acts} "
            f"activations per image, more than {limit}; {how_to_raise()}"
        )
    return expected


def _activations(model: nn.Module, meta: ModelMeta, where: str) -> int:
    """Output elements of every leaf module for one image, from a pass on the meta device."""
    total = 0

    def count(_module, _inputs, output) -> None:
        nonlocal total
        if isinstance(output, torch.Tensor):
            total += output.numel()

    leaves = [m for m in model.modules() if not next(m.children(), None)]
    hooks = [m.register_forward_hook(count) for m in leaves]
    try:
        with torch.no_grad():
            model(torch.empty(1, *meta.input_shape, device="meta"))
    except (RuntimeError, ValueError, TypeError, IndexError) as e:
        raise FormatError(
            f"{where}: model {meta.name!r} cannot take its input {list(meta.input_shape)} "
            f"({e.__class__.__name__})"
        ) from e
    finally:
        for h in hooks:
            h.remove()
    return total


def _fill(meta: ModelMeta, state: dict[str, torch.Tensor], where: str) -> nn.Module:
    with SkipInit():  # its values come from the file
        model = build_model(meta)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:  # torch's message is one line per key: keep the first
        first = str(e).strip().splitlines()[-1].strip()[:200]
        raise FormatError(f"{where}: weights do not fit model {meta.name!r}: {first}") from e
    return model.eval()


def _match(state: dict, expected: dict, meta: ModelMeta, where: str) -> None:
    """One line naming the first tensor that is missing, extra or of the wrong shape."""
    if set(state) != set(expected):
        missing, extra = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
        raise FormatError(
            f"{where}: tensors do not match model {meta.name!r} "
            f"(missing {missing[:3]}, unexpected {extra[:3]})"
        )
    for k, ref in expected.items():
        if tuple(state[k].shape) != tuple(ref.shape):
            raise FormatError(
                f"{where}: {k} has shape {list(state[k].shape)}, the model needs {list(ref.shape)}"
            )
        if state[k].dtype.is_floating_point != ref.dtype.is_floating_point:
            raise FormatError(f"{where}: {k} is {state[k].dtype}, the model needs {ref.dtype}")


def load_model_file(path: str | os.PathLike) -> tuple[nn.Module, ModelMeta]:
    """A ``.safetensors`` model file -> ``(module in eval mode, meta)``."""
    from squeezelab.io.limits import element_limit
    from squeezelab.io.modelfile import read_model_meta, read_model_tensors

    meta = ModelMeta.from_dict(read_model_meta(path), where=str(path))
    # safetensors stores every element densely, in at least one byte
    limit = element_limit(Path(path).stat().st_size, 1, floor=0)
    expected = _checked_skeleton(meta, limit, str(path))
    state = read_model_tensors(path)
    _match(state, expected, meta, str(path))
    return _fill(meta, state, str(path)), meta


def decode_sqz(data: bytes, max_params: int | None = None) -> tuple[nn.Module, ModelMeta, dict]:
    """``.sqz`` bytes -> ``(module in eval mode, meta, header)``; ``FormatError`` if bad.

    The file may decode to at most ``sqzfile.sqz_element_limit(len(data))`` elements
    (4096 per byte, 300M in all); ``max_params`` (or ``SQUEEZELAB_MAX_ELEMENTS``)
    replaces that bound for a file you trust.
    """
    from squeezelab.io import sqzfile

    limit = sqzfile.sqz_element_limit(len(data), max_params)
    try:
        header, records = sqzfile.read_records(data, max_params)
        meta = ModelMeta.from_dict(header.get("meta"), where=".sqz header meta")
        expected = _checked_skeleton(meta, limit, ".sqz file")
        names = {e["name"] for e in records}
        if names != set(expected):
            diff = sorted(set(expected) ^ names)[:3]
            raise FormatError(f".sqz file: tensor list does not match model {meta.name!r} ({diff})")
        state = {}
        for e in records:
            ref = expected[e["name"]]
            if tuple(e["shape"]) != tuple(ref.shape):
                raise FormatError(
                    f".sqz file: {e['name']} has shape {e['shape']}, "
                    f"the model needs {list(ref.shape)}"
                )
            is_int = e["kind"] == "plain" and e["dtype"] == "int64"
            if is_int == ref.dtype.is_floating_point:
                raise FormatError(f".sqz file: {e['name']} cannot hold the model's {ref.dtype}")
            state[e["name"]] = torch.from_numpy(sqzfile.decode_record(e)).to(ref.dtype)
        return _fill(meta, state, ".sqz file"), meta, header
    except FormatError:
        raise
    except (
        ValueError,
        TypeError,
        KeyError,
        IndexError,
        OverflowError,
        RuntimeError,
        MemoryError,
    ) as e:
        # every check above should fire first; this keeps a missed one a FormatError
        raise FormatError(f".sqz file: malformed ({e.__class__.__name__}: {e})") from e


def read_spec_file(path: str | os.PathLike) -> tuple[SqueezeNetSpec, str | None]:
    """A spec YAML or JSON file -> ``(spec, name)``; a top-level ``name`` is the model's name."""
    import json

    import yaml

    path = Path(path)
    try:
        text = path.read_text()
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (OSError, ValueError, yaml.YAMLError, UnicodeDecodeError) as e:
        raise FormatError(f"{path}: cannot read a spec ({one_line(e)})") from e
    if not isinstance(data, dict):
        raise FormatError(f"{path}: a spec file holds a mapping of SqueezeNetSpec fields")
    data = dict(data)
    name = data.pop("name", None)
    data.pop("model", None)
    if "spec" in data and isinstance(data["spec"], dict):  # `squeezelab spec --json` layout
        data = dict(data["spec"])
    return spec_from_file(data, str(path)), (str(name) if name else None)


def load_model(ref: str | os.PathLike | SqueezeNetSpec) -> tuple[nn.Module, ModelMeta]:
    """What a user typed -> ``(module in eval mode, ModelMeta)``.

    ``ref`` is a zoo name (untrained, registry defaults), a spec YAML/JSON file
    (untrained), a ``.safetensors`` model file or a ``.sqz`` file (trained weights), or a
    :class:`SqueezeNetSpec`. Anything else is one ``FormatError`` naming what was tried.

    Example:
        >>> model, meta = load_model("squeezenet1_1")
        >>> meta.input_shape, meta.num_classes
        ((3, 224, 224), 1000)
    """
    if isinstance(ref, SqueezeNetSpec):
        return create_model(ref).eval(), ModelMeta.for_spec(ref)
    from squeezelab.io.sqzfile import is_sqz, read_sqz_bytes

    path = Path(ref)
    if path.is_file():
        if is_sqz(path):
            model, meta, _ = decode_sqz(read_sqz_bytes(path))
            return model, meta
        if path.suffix == ".safetensors":
            return load_model_file(path)
        if path.suffix in SPEC_SUFFIXES:
            spec, name = read_spec_file(path)
            return create_model(spec).eval(), ModelMeta.for_spec(spec, name)
    elif path.suffix in (".safetensors", ".sqz", *SPEC_SUFFIXES):
        raise FormatError(f"model file {str(path)!r} does not exist")
    if path.suffix or path.exists() or os.sep in str(ref):
        raise FormatError(
            f"{str(ref)!r} is not a model: allowed a zoo name (see `squeezelab models`), a spec "
            ".yaml/.yml/.json file, a .safetensors model file or a .sqz file"
        )
    name = str(ref)
    info = model_info(name)
    if info.spec is not None:
        return create_model(info.spec).eval(), ModelMeta.for_spec(info.spec, name)
    meta = ModelMeta(name, info.num_classes, info.in_chans, info.input_size, task=info.task)
    return build_model(meta).eval(), meta


def save_model(path: str | os.PathLike, model: nn.Module, meta: ModelMeta) -> None:
    """Write ``model`` and ``meta`` as a ``.safetensors`` model file, atomically.

    Example:
        >>> save_model("out/m.safetensors", *load_model("squeezenet_small"))  # doctest: +SKIP
    """
    from squeezelab.io.modelfile import save_model_file

    save_model_file(path, model.state_dict(), meta.to_dict())
