"""The small-DNN playbook, one function per technique, each measured by two profiles.

Follows Iandola et al. 2016 (arXiv 1602.07360): section 3.1's strategies (1x1 filters,
squeeze layers, late downsampling), the conv10 head, Figure 3's SR and pct_3x3 sweeps,
Table 2's Deep Compression; plus depthwise separable and grouped convolutions where the
hardware profile predicts they run faster. A technique returns [] where it does not apply.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from squeezelab.advise.records import Suggestion, human, saving
from squeezelab.advise.surgery import (
    ConvHead,
    as_1x1,
    depthwise_separable,
    grouped,
    is_same_3x3,
    move_pools,
    swap,
    with_squeeze,
)
from squeezelab.analysis import Hardware, LayerCost, Profile, profile
from squeezelab.errors import SpecError
from squeezelab.models.spec import SqueezeNetSpec

HEAVY_CONVS = 2  # how many of the heaviest 3x3 convolutions the surgery targets


@dataclass
class Context:
    model: nn.Module
    input_shape: tuple[int, int, int]
    hardware: Hardware
    before: Profile  # the model as given, at 32 bits
    spec: SqueezeNetSpec | None  # set for the SqueezeNet family (spec-level changes)

    def measure(
        self, variant: nn.Module, weight_bits: int = 32, activation_bits: int = 32
    ) -> dict[str, float]:
        """``before - after``: the saving of ``variant`` profiled like the original."""
        after = profile(variant, self.input_shape, self.hardware, weight_bits, activation_bits)
        return saving(self.before, after)

    def share(self, metric: str, layers: list[LayerCost]) -> float:
        return sum(getattr(x, metric) for x in layers) / getattr(self.before, metric)


def _names(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


_SUFFIX = {"params": " params", "peak_activation_bytes": " of peak activation memory"}


def _figures(s: dict[str, float], metrics: tuple[str, ...] = ("params", "macs")) -> str:
    """``"saves 3.4M params and 120M MACs"``, ``"adds 50M MACs"``: a saving in words."""

    def fig(m: str) -> str:
        return human(m, abs(s[m])) + _SUFFIX.get(m, "")

    parts = [
        f"{verb} {' and '.join(fig(m) for m in metrics if sign * s[m] > 0)}"
        for verb, sign in (("saves", 1), ("adds", -1))
        if any(sign * s[m] > 0 for m in metrics)
    ]
    return " but ".join(parts) or f"changes no {' or '.join(metrics)}"


def _spec_variant(ctx: Context, **changes) -> tuple[SqueezeNetSpec, nn.Module] | None:
    from squeezelab.models import create_model

    try:
        spec = ctx.spec.replace(**changes)
    except SpecError:
        return None
    return spec, create_model(spec)


def _heavy_3x3(ctx: Context, min_in_channels: int = 1) -> list[tuple[LayerCost, nn.Conv2d]]:
    """The dense, size-keeping 3x3 convolutions with the most MACs, heaviest first."""
    found = []
    for layer in ctx.before.layers:
        try:
            module = ctx.model.get_submodule(layer.name)
        except AttributeError:  # a functional op or a module called twice ("name:2")
            continue
        if is_same_3x3(module) and module.in_channels >= min_in_channels:
            found.append((layer, module))
    return sorted(found, key=lambda lm: lm[0].macs, reverse=True)[:HEAVY_CONVS]


def _surgery(ctx: Context, technique: str, heavy, build: Callable, what: str) -> list[Suggestion]:
    """Replace each conv in ``heavy`` by ``build(conv)``; keep it if it saves MACs."""
    if not heavy:
        return []
    variant = swap(ctx.model, {layer.name: build(conv) for layer, conv in heavy})
    s = ctx.measure(variant)
    if s["macs"] <= 0:
        return []
    names = [layer.name for layer, _ in heavy]
    share = ctx.share("macs", [layer for layer, _ in heavy])
    message = f"{_names(names)} (dense 3x3) hold {share:.0%} of the MACs; {what}: {_figures(s)}."
    return [Suggestion(technique, names, message, s, variant=variant)]


def conv_head(ctx: Context) -> list[Suggestion]:
    """(1) Fully connected layers -> a 1x1 conv to the classes and global average pooling."""
    features = getattr(ctx.model, "features", None)
    linears = [x for x in ctx.before.layers if x.kind == "Linear"]
    feats = [x for x in ctx.before.layers if x.name == "features" or x.name.startswith("features.")]
    if not isinstance(features, nn.Module) or not linears or not feats:
        return []
    shape = feats[-1].output_shapes[0] if feats[-1].output_shapes else []
    if len(shape) != 4:
        return []
    channels, classes = shape[1], linears[-1].attrs["out_features"]
    variant = ConvHead(features, channels, classes)
    s = ctx.measure(variant)
    if s["params"] <= 0:
        return []
    biggest = max(linears, key=lambda x: x.params)
    names = [x.name for x in linears]
    message = (
        f"{biggest.name} holds {ctx.share('params', [biggest]):.0%} of the parameters "
        f"(the fully connected layers {_names(names)}: {ctx.share('params', linears):.0%}); "
        f"a conv10-style head (dropout, 1x1 conv {channels}->{classes}, ReLU, global average "
        f"pool) removes {human('params', s['params'])} of them and "
        f"{'saves' if s['macs'] >= 0 else 'adds'} {human('macs', abs(s['macs']))}."
    )
    return [Suggestion("conv-head", names, message, s, variant=variant)]


def kernel_reduction(ctx: Context) -> list[Suggestion]:
    """(2) Fewer 3x3 filters: lower pct_3x3, or 1x1 kernels in the heaviest 3x3 convs."""
    if ctx.spec is None:
        return _surgery(
            ctx,
            "kernel-reduction",
            _heavy_3x3(ctx),
            as_1x1,
            "1x1 kernels there (strategy 1: 9x fewer weights each)",
        )
    pct = ctx.spec.pct_3x3
    built = _spec_variant(ctx, pct_3x3=0.5 if pct > 0.5 else pct / 2) if pct > 0 else None
    if built is None:
        return []
    spec, variant = built
    s = ctx.measure(variant)
    targets = [x.name for x in ctx.before.layers if x.name.endswith("expand3x3")]
    share = ctx.share("macs", [x for x in ctx.before.layers if x.name in targets])
    message = (
        f"the 3x3 expand filters hold {share:.0%} of the MACs; pct_3x3 {pct:g} -> "
        f"{spec.pct_3x3:g} {_figures(s)} (paper Figure 3b: ImageNet accuracy plateaus "
        "at 50% 3x3 filters; below it, expect a small loss)."
    )
    return [Suggestion("kernel-reduction", targets, message, s, spec.to_dict(), variant=variant)]


def channel_reduction(ctx: Context) -> list[Suggestion]:
    """(3) Fewer input channels to 3x3 filters: lower SR, or a 1x1 squeeze before them."""
    if ctx.spec is None:
        return _surgery(
            ctx,
            "channel-reduction",
            _heavy_3x3(ctx, min_in_channels=16),
            with_squeeze,
            "a 1x1 squeeze to a quarter of their input channels before them (strategy 2)",
        )
    sr = ctx.spec.sr
    built = _spec_variant(ctx, sr=sr / 2)
    if built is None:
        return []
    spec, variant = built
    s = ctx.measure(variant)
    targets = [x.name for x in ctx.before.layers if x.name.endswith(".squeeze")]
    message = (
        f"squeeze ratio sr {sr:g} -> {spec.sr:g} {_figures(s)} (paper Figure 3a: top-5 "
        "accuracy 80.3% at SR 0.125, 86.0% at 0.75: a smaller SR trades accuracy for size)."
    )
    return [Suggestion("channel-reduction", targets, message, s, spec.to_dict(), variant=variant)]


def _shift(pools: tuple[int, ...], step: int, last: int) -> tuple[int, ...]:
    """Pools after Fire modules moved ``step`` layers; conv1's pool stays; no collisions."""
    out = set(pools)
    for p in sorted(pools, reverse=step > 0):
        q = p + step
        if p > 1 and 2 <= q <= last and q not in out:
            out = (out - {p}) | {q}
    return tuple(sorted(out))


_DOWNSAMPLING = (
    (1, "downsample-later", "larger activation maps for more layers (strategy 3, for accuracy)"),
    (
        -1,
        "downsample-earlier",
        "smaller activation maps sooner (fewer MACs; SqueezeNet v1.1 "
        "moved its pools earlier, with other changes, for 2.4x fewer MACs than v1.0)",
    ),
)


def _spec_pools(ctx: Context, step: int):
    pools = ctx.spec.pool_after
    moved = _shift(pools, step, ctx.spec.num_fire + 1)
    built = _spec_variant(ctx, pool_after=moved) if moved != pools else None
    if built is None:
        return None
    spec, variant = built
    pool_layers = [x.name for x in ctx.before.layers if x.kind == "MaxPool2d"]  # pools in order
    targets = [n for n, p in zip(pool_layers, sorted(pools), strict=False) if p not in moved]
    return variant, targets, f"pool_after {list(pools)} -> {list(moved)}", spec.to_dict()


def _moved_pools(ctx: Context, step: int):
    replacements: dict[str, nn.Module] = {}
    targets: list[str] = []
    for name, module in ctx.model.named_modules():
        if (
            not isinstance(module, nn.Sequential)
            or not name
            or any(name.startswith(f"{r}.") for r in replacements)
        ):
            continue
        found = move_pools(module, step)
        if found is not None:
            replacements[name] = found[0]
            targets += [f"{name}.{n}" for n in found[1]]
    if not replacements:
        return None
    order = [name for name, _ in ctx.model.named_modules()]
    targets.sort(key=order.index)
    where = f"one block {'later' if step > 0 else 'earlier'}"
    return swap(ctx.model, replacements), targets, f"moving {_names(targets)} {where}", None


def downsampling(ctx: Context) -> list[Suggestion]:
    """(4) Move the pools later (larger maps, accuracy, more MACs) or earlier (fewer MACs)."""
    out = []
    for step, technique, why in _DOWNSAMPLING:
        built = _spec_pools(ctx, step) if ctx.spec is not None else _moved_pools(ctx, step)
        if built is None:
            continue
        variant, targets, change, spec = built
        try:
            s = ctx.measure(variant)
        except RuntimeError:  # a layer after the pools needs the old spatial size
            continue
        figures = _figures(s, ("macs", "peak_activation_bytes"))
        message = f"{change} gives {why}; it {figures}."
        out.append(Suggestion(technique, targets, message, s, spec, variant=variant))
    return out


def separable(ctx: Context) -> list[Suggestion]:
    """(5) Depthwise separable or grouped 3x3 convs, kept where predicted latency drops."""
    heavy = _heavy_3x3(ctx)
    hw, out = ctx.hardware, []
    options = [("depthwise", "dwconv", depthwise_separable, "depthwise separable convolutions")]
    if heavy and all(c.in_channels % 4 == 0 and c.out_channels % 4 == 0 for _, c in heavy):
        options.append(("grouped", "gconv", lambda c: grouped(c, 4), "4-group convolutions"))
    for technique, op, build, what in options:
        found = _surgery(ctx, technique, heavy, build, f"{what} there")
        for sug in found:
            if sug.saving["latency_ms"] <= 0:
                continue
            sug.message += (
                f" {hw.name} runs {op} at {hw.eff(op):.0%} of peak against {hw.eff('conv'):.0%} "
                f"for dense conv; predicted latency {human('latency_ms', ctx.before.latency_ms)}"
                f" -> {human('latency_ms', ctx.before.latency_ms - sug.saving['latency_ms'])}."
            )
            out.append(sug)
    return out


def distillation(ctx: Context) -> list[Suggestion]:
    """(6a) Train the smaller design with this model as its teacher: no cost change."""
    message = (
        "after the structural changes, train the smaller design with this model as the "
        "teacher (knowledge distillation, Hinton et al. 2015; squeezelab.train's `teacher` "
        "setting) to win back accuracy; inference costs do not change."
    )
    return [Suggestion("distillation", [], message, {})]


def _fits(ctx: Context, model_bytes: float) -> str:
    flash = ctx.hardware.flash_bytes
    if flash is None:
        return ""
    verdict = "fits" if model_bytes <= flash else "still exceeds"
    return f" ({verdict} {ctx.hardware.name}'s {human('model_bytes', flash)} flash)"


def compression(ctx: Context) -> list[Suggestion]:
    """(6b) Fewer bits per weight (and activation) last, measured at 8 and 6 bits."""
    out = []
    for wbits, abits, what in (
        (8, 8, "8-bit weights and activations (int8, as `squeezelab export` quantizes)"),
        (6, 32, "6-bit weights (Deep Compression's weight sharing)"),
    ):
        s = ctx.measure(ctx.model, wbits, abits)
        after = ctx.before.model_bytes - s["model_bytes"]
        message = (
            f"{what}: model_bytes {human('model_bytes', ctx.before.model_bytes)} -> "
            f"{human('model_bytes', after)}{_fits(ctx, after)}, and saves "
            f"{human('energy_pj', s['energy_pj'])} of energy. Pruning first (Deep Compression keeps a "
            "third of the weights, paper Table 2) shrinks the file further; the pruned, "
            "entropy-coded size comes from `squeezelab compress`, not from this profile."
        )
        out.append(Suggestion("compression", [], message, s, None, wbits, abits, ctx.model))
    return out


# The playbook in the order the advice lists it: structure first, compression last.
TECHNIQUES = (
    conv_head,
    kernel_reduction,
    channel_reduction,
    downsampling,
    separable,
    distillation,
    compression,
)
