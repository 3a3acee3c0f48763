"""``advise(model)``: the small-DNN playbook applied to a model the user brings.

From the per-layer profile it names the layers that hold the parameters, MACs, DRAM
traffic and energy, and proposes SqueezeNet's techniques (Iandola et al. 2016, arXiv
1602.07360) where they apply, each with a saving measured as the difference of two
profiles: the model as given and the modified model built for the suggestion.
"""

from __future__ import annotations

from torch import nn

from squeezelab.advise.records import (
    RANKED_METRICS,
    SAVING_METRICS,
    Advice,
    Ranked,
    Suggestion,
    human,
    top_layers,
    totals,
)
from squeezelab.advise.techniques import TECHNIQUES, Context
from squeezelab.analysis import Hardware, load_hardware, profile
from squeezelab.analysis.profile import default_input_shape
from squeezelab.errors import ConfigError, SpecError

__all__ = ["RANKED_METRICS", "SAVING_METRICS", "Advice", "Ranked", "Suggestion", "advise", "human"]

DEFAULT_HARDWARE = "horowitz-45nm"


def _spec_for(model: nn.Module, input_shape: tuple[int, int, int]):
    """The model's SqueezeNetSpec, with the profiled input as its task (None: not a SqueezeNet)."""
    from squeezelab.models.spec import SqueezeNetSpec

    spec = getattr(model, "spec", None)
    if not isinstance(spec, SqueezeNetSpec):
        return None
    c, h, w = input_shape
    if h == w and (c, h) != (spec.in_chans, spec.input_size):
        try:
            return spec.replace(in_chans=c, input_size=h)
        except SpecError:
            return spec
    return spec


def _limits(adv_totals: dict, hw: Hardware) -> list[str]:
    out = []
    for metric, limit, what in (
        ("model_bytes", hw.flash_bytes, "flash"),
        ("peak_activation_bytes", hw.sram_bytes, "SRAM"),
    ):
        if limit is not None and adv_totals[metric] > limit:
            out.append(
                f"{metric} {human(metric, adv_totals[metric])} exceeds {hw.name}'s "
                f"{human(metric, limit)} of {what}"
            )
    return out


def advise(
    model: nn.Module,
    input_shape: tuple[int, int, int] | None = None,
    hardware: str | Hardware | None = None,
    name: str | None = None,
    top: int = 5,
) -> Advice:
    """Profile ``model``, rank its layers and measure the playbook's changes to it.

    Args:
        model: any ``nn.Module``; left unchanged (variants share its weights).
        input_shape: ``(C, H, W)``; None takes a SqueezeNet's spec.
        hardware: a profile name, a YAML path or a :class:`Hardware`; None is
            ``"horowitz-45nm"``.
        name: how to call the model in the advice (default: its class name).
        top: how many layers to list per metric.

    Example:
        >>> from squeezelab.models import create_model
        >>> a = advise(create_model("alexnet"), (3, 224, 224))
        >>> a.top["params"][0].name, a.suggestions[0].technique
        ('classifier.1', 'conv-head')
    """
    hw = hardware if isinstance(hardware, Hardware) else load_hardware(hardware or DEFAULT_HARDWARE)
    input_shape = tuple(default_input_shape(model) if input_shape is None else input_shape)
    try:
        before = profile(model, input_shape, hw)
    except RuntimeError as e:  # the forward pass rejects the shape
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ConfigError(
            f"input_shape={list(input_shape)} does not fit the model: {reason}; "
            "allowed: the (C, H, W) the model was built for"
        ) from e
    ctx = Context(model, input_shape, hw, before, _spec_for(model, input_shape))
    base = totals(before)
    return Advice(
        model=name or type(model).__name__,
        input_shape=list(input_shape),
        hardware=hw.name,
        totals=base,
        top={m: top_layers(before, m, top) for m in RANKED_METRICS},
        suggestions=[s for technique in TECHNIQUES for s in technique(ctx)],
        spec=ctx.spec.to_dict() if ctx.spec is not None else None,
        limits=_limits(base, hw),
    )
