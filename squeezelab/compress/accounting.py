"""Bytes per layer and per stage of Deep Compression, from a ``.sqz`` file's tensor records.

Stages follow Han et al. 2016 (arXiv 1510.00149), Figure 1: dense fp32 -> pruned sparse
(fp32 values plus relative-position gaps) -> weight-shared (``bits``-wide indices plus a
float32 codebook) -> entropy-coded (what the file holds). The reduction is against a
reference model's fp32 bytes, as the SqueezeNet paper's Table 2 does against AlexNet.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

STAGES = ("dense", "pruned", "shared", "coded")


@dataclass
class LayerBytes:
    name: str  # tensor name, or "other" for biases, BatchNorm and buffers together
    params: int
    nnz: int
    bits: int | None  # index width (None for plain tensors)
    gap_bits: int | None
    dense_bytes: float
    pruned_bytes: float
    shared_bytes: float
    coded_bytes: int
    entropy_bytes: float | None  # coded streams at their empirical entropy, plus codebooks
    coders: str  # coder of the index and gap streams, e.g. "ans/huffman"


@dataclass
class Accounting:
    layers: list[LayerBytes]
    stages: list[dict[str, Any]]  # {stage, bytes, reduction, test_accuracy}
    file_bytes: int
    stream_bytes: int  # coded index and gap streams only
    stream_entropy_bytes: float | None  # their empirical entropy (known when just encoded)
    reference: dict[str, Any] = field(default_factory=dict)  # {model, fp32_bytes}

    @property
    def reduction(self) -> float | None:
        ref = self.reference.get("fp32_bytes")
        return ref / self.file_bytes if ref else None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["reduction"] = self.reduction
        return d


def byte_accounting(
    header: dict[str, Any], entries: list[dict[str, Any]], file_bytes: int
) -> Accounting:
    """The per-layer and per-stage table from a header and its tensor entries.

    ``entries`` come from the encoder (with each stream's ``entropy_bits``) or from
    :func:`squeezelab.io.read_sqz_layout` (sizes only; entropy then ``None``).
    """
    layers = []
    other = LayerBytes("other", 0, 0, None, None, 0.0, 0.0, 0.0, 0, 0.0, "plain")
    stream_bytes, stream_entropy = 0, 0.0
    known = all("entropy_bits" in e["index"] for e in entries if e["kind"] == "shared")
    for e in entries:
        numel = 1
        for d in e["shape"]:
            numel *= d
        if e["kind"] == "plain":
            other.params += numel
            other.nnz += numel
            other.dense_bytes += 4 * numel
            other.pruned_bytes += 4 * numel
            other.shared_bytes += 4 * numel
            other.coded_bytes += e["bytes"]
            other.entropy_bytes += e["bytes"]
            continue
        idx, gaps, k = e["index"], e["gaps"], e["codebook"]
        gap_bits_total = gaps["count"] * e["gap_bits"]
        coded = 4 * k + idx["bytes"] + gaps["bytes"]
        entropy = (idx["entropy_bits"] + gaps["entropy_bits"]) / 8 if known else 0.0
        stream_bytes += idx["bytes"] + gaps["bytes"]
        stream_entropy += entropy
        layers.append(
            LayerBytes(
                e["name"],
                numel,
                e["nnz"],
                e["bits"],
                e["gap_bits"],
                dense_bytes=4.0 * numel,
                pruned_bytes=(32 * e["nnz"] + gap_bits_total) / 8,
                shared_bytes=(e["bits"] * e["nnz"] + gap_bits_total) / 8 + 4 * k,
                coded_bytes=coded,
                entropy_bytes=entropy + 4 * k if known else None,
                coders=f"{idx['coder']}/{gaps['coder']}",
            )
        )
    if other.params:
        layers.append(other)
    reference = header.get("reference")  # informational fields: ignored unless well-formed
    reference = reference if isinstance(reference, dict) else {}
    if not isinstance(reference.get("fp32_bytes"), int | float):
        reference = {}
    accuracy = header.get("accuracy")
    accuracy = accuracy if isinstance(accuracy, dict) else {}
    stages = []
    for stage in STAGES:
        total = sum(getattr(layer, f"{stage}_bytes") for layer in layers)
        if stage == "coded":
            total = file_bytes  # the whole file: header, codebooks, streams, plain tensors
        ref = reference.get("fp32_bytes")
        stages.append(
            {
                "stage": stage,
                "bytes": round(total),
                "reduction": ref / total if ref and total else None,
                "test_accuracy": a if isinstance(a := accuracy.get(stage), int | float) else None,
            }
        )
    if not known:
        other.entropy_bytes = None
    return Accounting(
        layers, stages, file_bytes, stream_bytes, stream_entropy if known else None, reference
    )


def reference_fp32_bytes(
    name: str, num_classes: int | None = None, in_chans: int | None = None
) -> int:
    """fp32 bytes of a zoo model's parameters (4 per parameter), built without memory."""
    from squeezelab.models import ModelMeta, build_model, model_info

    info = model_info(name)
    dims = {"num_classes": num_classes or info.num_classes, "in_chans": in_chans or info.in_chans}
    if info.spec is not None:
        meta = ModelMeta.for_spec(info.spec.replace(**dims), name)
    else:
        meta = ModelMeta(name, input_size=info.input_size, **dims)
    return 4 * sum(p.numel() for p in build_model(meta, skeleton=True).parameters())
