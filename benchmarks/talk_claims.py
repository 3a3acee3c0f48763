"""The talk's three reasons for small models, measured on the zoo (issue 20, item 4).

Claims (Iandola et al. 2016, arXiv 1602.07360, section 1, and the talk that went with it):
(a) a smaller model sends fewer bytes over the air: ``.sqz`` (6-bit shared weights,
entropy-coded, no pruning), int8 ONNX and int8 ``.tflite`` files against parameters;
(b) a smaller model trains faster when distributed: under ``torchrun --nproc_per_node 2``
(gloo, CPU) the bytes DDP all-reduces per step, counted in a comm hook from its buckets,
and the step time split into compute (a hook that skips the all-reduce) and communication
(the same buckets all-reduced alone); (c) fewer off-chip transfers: DRAM bytes and energy
per inference predicted by ``analysis.profile``, with the DRAM-vs-arithmetic energy ratio
read from the profiles. Models: the zoo at Fashion-MNIST geometry (1x28x28, 10 classes)
and at ImageNet geometry (3x224x224, 1000 classes), plus ``squeezenet_small`` SR points.
Weights are untrained (sizes and costs do not depend on them) except one trained
``squeezenet_small``, the ``.sqz`` of the Table 2 benchmark, whose entropy-coded size does.

    .venv/bin/python benchmarks/talk_claims.py [--quick] [--parts air,ddp,dram]
        [--models ID,...] [--plots-only] [--img DIR] [--out PATH]

A run keeps the rows of an earlier JSON it does not recompute, so the parts (or model
subsets) can run one at a time and a killed run loses only the model it was on.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from deploy_targets import add_output_args, host, versions  # the script's folder is on sys.path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "benchmarks" / "results" / "talk_claims.json"
IMG = ROOT / "docs" / "img"
TRAINED_SQZ = ROOT / "benchmarks" / "results" / "compress_fmnist_dense_6bit.sqz"
PARTS = ("air", "ddp", "dram")
# (id, registry name, input side) at Fashion-MNIST geometry; shufflenet needs 32 px (its
# five stride-2 stages), the others take 28 as deploy_targets.py runs them
FMNIST_ZOO = [
    ("squeezenet_small", "squeezenet_small", 28),
    ("alexnet_small", "alexnet_small", 28),
    ("mobilenet_v1@28", "mobilenet_v1", 28),
    ("mobilenet_v2@28", "mobilenet_v2", 28),
    ("shufflenet_v2_x0_5@32", "shufflenet_v2_x0_5", 32),
    ("squeezenext_23@28", "squeezenext_23", 28),
]
SR_POINTS = (0.25, 0.5, 0.75, 1.0)  # squeezenet_small itself is SR 0.125
IMAGENET_ZOO = [
    "alexnet",
    "squeezenet1_0",
    "squeezenet1_1",
    "mobilenet_v1",
    "mobilenet_v2",
    "shufflenet_v2_x0_5",
    "shufflenet_v2_x1_0",
    "squeezenext_23",
]
QUICK = ["squeezenet_small", "squeezenet_small-sr0.5"]
SQZ_BITS = 6
N_CALIB = 4  # random calibration images: int8 file sizes do not depend on the ranges
# DDP: per-rank batch (Fashion-MNIST: a quarter of the recipes' global 128; ImageNet:
# CPU-sized) and steps; DDP rebuilds its buckets after the first step, so one warm-up
BATCH = {"fashion-mnist": 32, "imagenet": 2}
WARMUP, STEPS = 1, 3
QUICK_BATCH, QUICK_STEPS = 8, 2
COMM_REPEATS = 3
DDP_KEYS = ("grad_bytes_per_step", "allreduce_s", "step_s", "compute_s")
LINKS_GBPS = (1.0, 10.0)  # projected all-reduce time on these links (derived, not measured)
# energy profiles of part (c): (profile, weight and activation bits)
DRAM_PROFILES = [("horowitz-45nm", 32), ("horowitz-45nm", 8), ("eyeriss", 16)]


def model_ids(quick: bool) -> list[str]:
    if quick:
        return list(QUICK)
    return (
        [i for i, _, _ in FMNIST_ZOO[:1]]
        + [f"squeezenet_small-sr{sr:g}" for sr in SR_POINTS]
        + [i for i, _, _ in FMNIST_ZOO[1:]]
        + IMAGENET_ZOO
    )


def build(model_id: str):
    """``(module, ModelMeta, record)`` of one benchmark model, seeded so runs agree."""
    import torch

    from squeezelab.models import SQUEEZENET_SMALL, ModelMeta, create_model, load_model

    torch.manual_seed(0)
    sr = None
    if model_id.startswith("squeezenet_small-sr"):
        sr = float(model_id.rsplit("sr", 1)[1])
        spec = SQUEEZENET_SMALL.replace(sr=sr)
        model, meta = create_model(spec), ModelMeta.for_spec(spec, name=model_id)
    elif model_id in IMAGENET_ZOO or model_id == "squeezenet_small":
        model, meta = load_model(model_id)
        sr = meta.spec.sr if model_id == "squeezenet_small" else None
    else:
        arch, side = next((a, s) for i, a, s in FMNIST_ZOO if i == model_id)
        model = create_model(arch, num_classes=10, in_chans=1)
        meta = ModelMeta(arch, 10, 1, side)
    rec = {
        "id": model_id,
        "arch": meta.name if sr is None else "squeezenet_small",
        "geometry": "imagenet" if meta.input_size >= 224 else "fashion-mnist",
        "input": list(meta.input_shape),
        "num_classes": meta.num_classes,
        "params": sum(p.numel() for p in model.parameters()),
        "sr": sr,
    }
    return model.eval(), meta, rec


# ---------------------------------------------------------------- (a) bytes over the air


def air_row(model, meta, rec: dict, tmp: str, trained: bool = False, tflite: bool = True) -> dict:
    """File bytes of one model: fp32 ONNX, int8 ONNX, int8 .tflite and a 6-bit .sqz."""
    import numpy as np

    from squeezelab.compress import compress_model
    from squeezelab.export import export_onnx, export_tflite, quantize_int8

    row = {"id": rec["id"], "params": rec["params"], "trained": trained, "failed": {}}
    t0 = time.time()
    c = compress_model(model, meta, sparsity=0, bits=SQZ_BITS, fp16_plain=True)
    row["sqz_bytes"] = len(c.data)
    row["sqz_bits_per_param"] = round(8 * len(c.data) / rec["params"], 3)
    row["sqz_s"] = round(time.time() - t0, 1)
    del c
    if trained:  # the trained row only shows what training does to the entropy-coded size
        return row
    rng = np.random.default_rng(0)
    calib = rng.integers(0, 256, (N_CALIB, *meta.input_shape), dtype=np.uint8)
    fp32, int8 = os.path.join(tmp, "m.onnx"), os.path.join(tmp, "m.int8.onnx")
    t0 = time.time()
    try:
        export_onnx(model, meta, fp32)
        row["onnx_fp32_bytes"] = os.path.getsize(fp32)
        q = quantize_int8(fp32, calib, int8, settings=["S8S8/minmax"], runs=1)
        row["onnx_int8_bytes"] = os.path.getsize(q.path)
    except Exception as e:  # a model that does not export is reported, not fatal
        row["failed"]["onnx"] = f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"
    row["onnx_s"] = round(time.time() - t0, 1)
    t0 = time.time()
    if not tflite:
        row["skipped"] = {"tflite": "not converted in a --quick run (the slowest step)"}
    else:
        try:
            exp = export_tflite(model, meta, os.path.join(tmp, "m.tflite"), calib=calib)
            row["tflite_int8_bytes"] = exp.tflite_bytes
        except Exception as e:
            row["failed"]["tflite"] = f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"
    row["tflite_s"] = round(time.time() - t0, 1)
    for f in os.listdir(tmp):
        os.unlink(os.path.join(tmp, f))
    return row


def trained_air_row(tmp: str) -> dict | None:
    """The trained squeezenet_small (Table 2's dense 6-bit file) re-encoded the same way."""
    if not TRAINED_SQZ.is_file():
        return None
    from squeezelab.models import load_model

    model, meta = load_model(str(TRAINED_SQZ))
    rec = {"id": "squeezenet_small (trained)", "params": sum(p.numel() for p in model.parameters())}
    row = air_row(model, meta, rec, tmp, trained=True)
    row["source"] = str(TRAINED_SQZ.relative_to(ROOT))
    row["source_file_bytes"] = TRAINED_SQZ.stat().st_size
    return row


# ---------------------------------------------------------------- (b) distributed training


class _Counter:
    """Comm-hook state: what DDP handed the hook, and whether to all-reduce it."""

    def __init__(self) -> None:
        self.communicate = True
        self.bytes = 0
        self.buckets: list[int] = []  # bucket sizes in bytes, last step

    def reset(self) -> None:
        self.bytes, self.buckets = 0, []


def _hook(state: _Counter, bucket):
    """Count the bucket's bytes; all-reduce it (default hook) or hand it back unreduced."""
    import torch
    from torch.distributed.algorithms.ddp_comm_hooks.default_hooks import allreduce_hook

    buf = bucket.buffer()
    n = buf.numel() * buf.element_size()
    state.bytes += n
    state.buckets.append(n)
    if state.communicate:
        return allreduce_hook(None, bucket)
    fut = torch.futures.Future()
    fut.set_result(buf)
    return fut


def ddp_model(model_id: str, rank: int, world: int, quick: bool) -> dict:
    """One model's DDP figures on this rank (every rank runs it; collectives keep them in step)."""
    import torch
    import torch.distributed as td

    from squeezelab.train import dist

    model, meta, rec = build(model_id)
    model.train()
    ddp = dist.wrap(model, torch.device("cpu"))
    state = _Counter()
    ddp.register_comm_hook(state, _hook)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    batch = QUICK_BATCH if quick else BATCH[rec["geometry"]]
    steps = QUICK_STEPS if quick else STEPS
    g = torch.Generator().manual_seed(rank)  # random inputs: time does not depend on them
    x = torch.randn(batch, *meta.input_shape, generator=g)
    y = torch.randint(0, meta.num_classes, (batch,), generator=g)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(ddp(x), y).backward()
        opt.step()

    def timed(communicate: bool) -> float:
        state.communicate = communicate
        for _ in range(WARMUP):
            step()
        state.reset()
        td.barrier()
        t0 = time.perf_counter()
        for _ in range(steps):
            step()
        t = torch.tensor([(time.perf_counter() - t0) / steps], dtype=torch.float64)
        td.all_reduce(t, op=td.ReduceOp.MAX)  # a step lasts until the slowest rank ends
        return float(t)

    step_s = timed(True)
    per_step = len(state.buckets) // steps
    grad_bytes, buckets = state.bytes // steps, state.buckets[-per_step:]
    compute_s = timed(False)
    # the same buckets all-reduced alone, after a barrier: communication without overlap
    bufs = [torch.zeros(n // 4) for n in buckets]
    times = []
    for _ in range(COMM_REPEATS):
        td.barrier()
        t0 = time.perf_counter()
        for b in bufs:
            td.all_reduce(b)
        times.append(time.perf_counter() - t0)
    comm_s = sorted(times)[len(times) // 2]
    return {
        "id": model_id,
        "model": rec,
        "params": rec["params"],
        "batch_per_rank": batch,
        "grad_bytes_per_step": grad_bytes,
        "params_x4_bytes": 4 * rec["params"],
        "buckets_per_step": len(buckets),
        # BatchNorm statistics DDP broadcasts from rank 0 each forward (counted from the module)
        "buffer_bytes_broadcast_per_step": sum(
            b.numel() * b.element_size() for b in model.buffers()
        ),
        "step_s": round(step_s, 5),
        "compute_s": round(compute_s, 5),
        "allreduce_s": round(comm_s, 5),
        "allreduce_share": round(comm_s / (compute_s + comm_s), 4),
        "allreduce_gbps": round(8 * grad_bytes / comm_s / 1e9, 3),
        # ring all-reduce moves 2 (N-1)/N of the payload per rank (derived, not measured)
        "projected_allreduce_s": {
            f"{gbps:g}gbps": round(2 * (world - 1) / world * grad_bytes * 8 / gbps / 1e9, 5)
            for gbps in LINKS_GBPS
        },
    }


def ddp_worker(ids: list[str], out: str, quick: bool) -> int:
    """One rank under torchrun: per model, bytes all-reduced and step times; rank 0 writes."""
    import torch
    import torch.distributed as td

    from squeezelab.train import dist

    torch.set_num_threads(1)  # one core per rank: 2 ranks share the 2 cores
    created = dist.init_if_launched("cpu")
    rank, world = dist.rank_world()
    rows = []
    for model_id in ids:
        r = ddp_model(model_id, rank, world, quick)
        rows.append(r)
        if rank == 0:
            print(
                f"ddp  {model_id:26s} {r['grad_bytes_per_step']:>12,} B/step  step "
                f"{r['step_s']:.3f} s  compute {r['compute_s']:.3f} s  all-reduce "
                f"{r['allreduce_s']:.4f} s",
                flush=True,
            )
    if rank == 0:
        from squeezelab.io import atomic_write_json

        atomic_write_json(out, {"world_size": world, "backend": td.get_backend(), "rows": rows})
    dist.shutdown(created)
    return 0


def run_ddp(ids: list[str], quick: bool) -> dict:
    """Launch the worker under ``torchrun --nproc_per_node 2`` and read what rank 0 wrote."""
    with tempfile.TemporaryDirectory(prefix="talk-ddp-") as tmp:
        out = os.path.join(tmp, "ddp.json")
        cmd = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node",
            "2",
            str(Path(__file__).resolve()),
            "--ddp-worker",
            out,
            "--models",
            ",".join(ids),
            *(["--quick"] if quick else []),
        ]
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        subprocess.run(cmd, check=True, env=env, cwd=ROOT)
        return json.loads(Path(out).read_text())


# ---------------------------------------------------------------- (c) off-chip memory


def energy_ratios() -> dict:
    """DRAM access of one operand word against one MAC (and one add), from each profile."""
    from squeezelab.analysis import load_hardware

    out = {}
    for name, bits in DRAM_PROFILES:
        hw = load_hardware(name)
        word = bits // 8
        dram = hw.dram_pj_per_byte * word
        mac, add = hw.per_dtype(hw.mac_pj, bits), hw.per_dtype(hw.op_pj, bits)
        out[f"{name}/{bits}bit"] = {
            "dram_pj_per_byte": hw.dram_pj_per_byte,
            "word_bytes": word,
            "dram_pj_per_word": dram,
            "mac_pj": mac,
            "add_pj": add,
            "sram_pj_per_byte": hw.sram_pj_per_byte,
            "dram_over_mac": round(dram / mac, 1),
            "dram_over_add": round(dram / add, 1),
            "dram_over_sram": round(hw.dram_pj_per_byte / hw.sram_pj_per_byte, 1),
        }
    return out


def dram_row(model, meta, rec: dict) -> dict:
    """Predicted DRAM bytes and energy of one batch-1 inference on each energy profile."""
    from squeezelab.analysis import load_hardware, profile

    row = {"id": rec["id"], "params": rec["params"], "profiles": {}}
    for name, bits in DRAM_PROFILES:
        hw = load_hardware(name)
        p = profile(model, meta.input_shape, hw, weight_bits=bits, activation_bits=bits)
        row["macs"] = p.macs
        row["profiles"][f"{name}/{bits}bit"] = {
            "dram_bytes": p.dram_bytes,
            "weight_dram_bytes": p.model_bytes,
            "energy_dram_pj": p.energy_dram_pj,
            "energy_compute_pj": p.energy_compute_pj,
            "energy_onchip_pj": p.energy_onchip_pj,
            "energy_pj": p.energy_pj,
            "dram_share": round(p.energy_dram_pj / p.energy_pj, 4),
            "weights_fit_onchip": p.model_bytes <= (hw.onchip_buffer_bytes or 0),
        }
    return row


# ---------------------------------------------------------------- summaries and plots


def loglog_slope(xs: list[float], ys: list[float]) -> float | None:
    """Least-squares slope of log y against log x (1.0: y proportional to x)."""
    pts = [(math.log(x), math.log(y)) for x, y in zip(xs, ys, strict=True) if x > 0 and y > 0]
    if len(pts) < 2:
        return None
    mx = sum(p[0] for p in pts) / len(pts)
    my = sum(p[1] for p in pts) / len(pts)
    sxx = sum((p[0] - mx) ** 2 for p in pts)
    return round(sum((p[0] - mx) * (p[1] - my) for p in pts) / sxx, 3) if sxx else None


def _ratio(rows: dict, big: str, small: str, key: str, small_key: str | None = None):
    """``rows[big][key] / rows[small][small_key or key]``, None where either is missing."""
    a, b = rows.get(big, {}).get(key), rows.get(small, {}).get(small_key or key)
    return round(a / b, 1) if a and b else None


def summarize(res: dict) -> dict:
    """The figures the page quotes: slopes against params, AlexNet / SqueezeNet ratios."""
    s: dict = {}
    air = {r["id"]: r for r in res.get("air", {}).get("rows", [])}
    if air:
        rows = list(air.values())
        keys = ("sqz_bytes", "onnx_int8_bytes", "tflite_int8_bytes", "onnx_fp32_bytes")
        s["air"] = {
            "slope_vs_params": {
                k: loglog_slope(
                    [r["params"] for r in rows if k in r], [r[k] for r in rows if k in r]
                )
                for k in keys
            },
            "alexnet_over_squeezenet1_0": {
                k: _ratio(air, "alexnet", "squeezenet1_0", k) for k in keys
            },
            "alexnet_fp32_over_squeezenet1_0_sqz": _ratio(
                air, "alexnet", "squeezenet1_0", "onnx_fp32_bytes", "sqz_bytes"
            ),
            "alexnet_small_fp32_over_squeezenet_small_sqz": _ratio(
                air, "alexnet_small", "squeezenet_small", "onnx_fp32_bytes", "sqz_bytes"
            ),
            "sqz_bits_per_param_untrained": {r["id"]: r["sqz_bits_per_param"] for r in rows},
        }
        t = res["air"].get("trained")
        if t and "squeezenet_small" in air:
            s["air"]["trained_squeezenet_small_sqz_bytes"] = t["sqz_bytes"]
            s["air"]["trained_squeezenet_small_sqz_bits_per_param"] = t["sqz_bits_per_param"]
            s["air"]["untrained_over_trained_sqz"] = round(
                air["squeezenet_small"]["sqz_bytes"] / t["sqz_bytes"], 3
            )
    ddp = {r["id"]: r for r in res.get("ddp", {}).get("rows", [])}
    if ddp:
        rows = list(ddp.values())
        s["ddp"] = {
            "grad_bytes_equal_params_x4": all(
                r["grad_bytes_per_step"] == r["params_x4_bytes"] for r in rows
            ),
            "slope_grad_bytes_vs_params": loglog_slope(
                [r["params"] for r in rows], [r["grad_bytes_per_step"] for r in rows]
            ),
            "slope_allreduce_s_vs_params": loglog_slope(
                [r["params"] for r in rows], [r["allreduce_s"] for r in rows]
            ),
            "alexnet_over_squeezenet1_0": {
                k: _ratio(ddp, "alexnet", "squeezenet1_0", k) for k in DDP_KEYS
            },
            "alexnet_small_over_squeezenet_small": {
                k: _ratio(ddp, "alexnet_small", "squeezenet_small", k) for k in DDP_KEYS
            },
            "allreduce_share": {r["id"]: r["allreduce_share"] for r in rows},
        }
    dram = {r["id"]: r for r in res.get("dram", {}).get("rows", [])}
    if dram:
        rows = list(dram.values())

        def flat(p: str) -> dict:
            return {k: r["profiles"][p] for k, r in dram.items()}

        s["dram"] = {
            "slope_dram_bytes_vs_params": {
                p: loglog_slope(
                    [r["params"] for r in rows], [r["profiles"][p]["dram_bytes"] for r in rows]
                )
                for p in rows[0]["profiles"]
            },
            "alexnet_over_squeezenet1_0_energy": {
                p: _ratio(flat(p), "alexnet", "squeezenet1_0", "energy_pj")
                for p in rows[0]["profiles"]
            },
            "alexnet_over_squeezenet1_0_dram_bytes": {
                p: _ratio(flat(p), "alexnet", "squeezenet1_0", "dram_bytes")
                for p in rows[0]["profiles"]
            },
            "dram_share_fp32": {
                r["id"]: r["profiles"]["horowitz-45nm/32bit"]["dram_share"] for r in rows
            },
        }
    return s


def _step_time_rank_correlation(res: dict) -> float | None:
    """Spearman's rho of DDP step time against params over every measured model (no ties
    handling needed: parameter counts and float times are distinct)."""
    import numpy as np

    rows = [r for r in res.get("ddp", {}).get("rows", []) if r.get("step_s")]
    if len(rows) < 3:
        return None
    params = np.array([res["models"][r["id"]]["params"] for r in rows], float)
    steps = np.array([r["step_s"] for r in rows], float)
    ranks = [np.argsort(np.argsort(v)).astype(float) for v in (params, steps)]
    return round(float(np.corrcoef(*ranks)[0, 1]), 3)


def verdicts(res: dict) -> dict:
    """Held / not held / not resolved per claim, each by the rule it states."""
    s, out = res.get("summary", {}), {}
    air = s.get("air")
    if air:
        slopes = [v for v in air["slope_vs_params"].values() if v is not None]
        ratio = air["alexnet_fp32_over_squeezenet1_0_sqz"]
        ok = bool(slopes) and min(slopes) >= 0.8
        out["air"] = {
            "rule": "every format's bytes rise with params (log-log slope >= 0.8) and "
            "AlexNet's fp32 file / SqueezeNet 1.0's .sqz >= 50",
            "verdict": "not resolved"
            if ratio is None
            else "held"
            if ok and ratio >= 50
            else "not held",
        }
    ddp = s.get("ddp")
    if ddp:
        r = ddp["alexnet_over_squeezenet1_0"]
        rho = _step_time_rank_correlation(res)
        comm = r["allreduce_s"]
        out["ddp"] = {
            "rule": "the hook's bytes are 4 x params for every model and AlexNet's all-reduce "
            "takes >= 10x SqueezeNet 1.0's; step_time_here: the DDP step time rises with "
            "params across every model (Spearman rank correlation >= 0.7)",
            "verdict": "not resolved"
            if comm is None
            else "held"
            if ddp["grad_bytes_equal_params_x4"] and comm >= 10
            else "not held",
            "step_time_rank_correlation": rho,
            "step_time_here": "not resolved"
            if rho is None
            else "held"
            if rho >= 0.7
            else "not held",
        }
    dram = s.get("dram")
    if dram:
        slope = dram["slope_dram_bytes_vs_params"].get("horowitz-45nm/32bit")
        ratio = res["dram"]["energy_ratio"]["horowitz-45nm/32bit"]["dram_over_mac"]
        e = dram["alexnet_over_squeezenet1_0_energy"].get("horowitz-45nm/32bit")
        out["dram"] = {
            "rule": "predicted DRAM bytes rise with params (slope >= 0.8), a 32-bit DRAM "
            "access costs >= 100 fp32 MACs, and AlexNet's energy per inference > SqueezeNet 1.0's",
            "verdict": "not resolved"
            if slope is None or e is None
            else "held"
            if slope >= 0.8 and ratio >= 100 and e > 1
            else "not held",
        }
    return out


def _labels(ax, xs, ys, names) -> None:
    for x, y, n in zip(xs, ys, names, strict=True):
        ax.annotate(n, (x, y), fontsize=6, xytext=(3, 2), textcoords="offset points")


def _save(fig, path: Path) -> None:
    import matplotlib.pyplot as plt

    from squeezelab.io import atomic_path

    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


def plot_all(res: dict, img: Path) -> list[str]:
    """One PNG per claim from the JSON; returns the paths written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models, written = res["models"], []
    geo_marker = {"fashion-mnist": "o", "imagenet": "s"}
    air = res.get("air", {}).get("rows", [])
    if air:
        fig, ax = plt.subplots(figsize=(7, 4.6), dpi=110)
        for key, label, color in (
            ("onnx_fp32_bytes", "fp32 ONNX", "tab:gray"),
            ("onnx_int8_bytes", "int8 ONNX", "tab:orange"),
            ("tflite_int8_bytes", "int8 .tflite", "tab:green"),
            ("sqz_bytes", f".sqz ({SQZ_BITS}-bit shared, coded)", "tab:blue"),
        ):
            for geo, m in geo_marker.items():
                pts = [r for r in air if key in r and models[r["id"]]["geometry"] == geo]
                ax.scatter(
                    [r["params"] for r in pts],
                    [r[key] for r in pts],
                    marker=m,
                    color=color,
                    s=18,
                    label=f"{label}, {geo}",
                )
        _labels(
            ax, [r["params"] for r in air], [r["sqz_bytes"] for r in air], [r["id"] for r in air]
        )
        t = res["air"].get("trained")
        if t:
            ax.scatter(
                [t["params"]],
                [t["sqz_bytes"]],
                marker="*",
                color="tab:red",
                s=60,
                label="squeezenet_small .sqz, trained",
            )
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("parameters")
        ax.set_ylabel("file bytes (sent over the air)")
        ax.set_title("(a) deployment file bytes against parameters", fontsize=9)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=6, ncol=2)
        written.append(str(img / "talk_claims_air.png"))
        _save(fig, Path(written[-1]))
    ddp = res.get("ddp", {}).get("rows", [])
    if ddp:
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4.2), dpi=110)
        for geo, m in geo_marker.items():
            pts = [r for r in ddp if models[r["id"]]["geometry"] == geo]
            a1.scatter(
                [r["params"] for r in pts],
                [r["grad_bytes_per_step"] for r in pts],
                marker=m,
                color="tab:blue",
                s=18,
                label=f"bytes all-reduced, {geo}",
            )
        _labels(
            a1,
            [r["params"] for r in ddp],
            [r["grad_bytes_per_step"] for r in ddp],
            [r["id"] for r in ddp],
        )
        a1.set_xscale("log")
        a1.set_yscale("log")
        a1.set_xlabel("parameters")
        a1.set_ylabel("gradient bytes all-reduced per step")
        a1.grid(alpha=0.3, which="both")
        a1.legend(fontsize=6)
        rows = sorted(ddp, key=lambda r: (models[r["id"]]["geometry"], r["params"]))
        ix = range(len(rows))
        comp = [1e3 * r["compute_s"] for r in rows]
        comm = [1e3 * r["allreduce_s"] for r in rows]
        a2.bar(ix, comp, color="tab:gray", label="compute (step without all-reduce)")
        a2.bar(ix, comm, bottom=comp, color="tab:blue", label="all-reduce of the step's buckets")
        a2.scatter(
            ix,
            [1e3 * r["step_s"] for r in rows],
            color="k",
            marker="_",
            s=80,
            label="DDP step (overlapped)",
            zorder=3,
        )
        a2.scatter(
            ix,
            [1e3 * r["projected_allreduce_s"]["1gbps"] for r in rows],
            facecolors="none",
            edgecolors="tab:red",
            marker="o",
            s=30,
            label="all-reduce over 1 Gbit/s (derived from the bytes)",
            zorder=3,
        )
        a2.set_xticks(list(ix), [r["id"] for r in rows], rotation=70, fontsize=6)
        a2.set_yscale("log")
        a2.set_ylabel("ms per step")
        a2.legend(fontsize=6)
        s = res["ddp"]["settings"]
        fig.suptitle(
            f"(b) DDP under torchrun, {s['nproc']} {s['backend']} ranks x "
            f"{s['threads_per_rank']} thread on one host; batch per rank "
            + ", ".join(f"{v} ({k})" for k, v in s["batch_per_rank"].items()),
            fontsize=9,
        )
        written.append(str(img / "talk_claims_ddp.png"))
        _save(fig, Path(written[-1]))
    dram = res.get("dram", {}).get("rows", [])
    if dram:
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4.2), dpi=110)
        colors = ["tab:blue", "tab:orange", "tab:green"]
        for p, color in zip(dram[0]["profiles"], colors, strict=False):
            xs = [r["params"] for r in dram]
            a1.scatter(
                xs, [r["profiles"][p]["dram_bytes"] for r in dram], color=color, s=16, label=p
            )
            a2.scatter(
                xs,
                [r["profiles"][p]["energy_pj"] / 1e6 for r in dram],
                color=color,
                s=16,
                label=f"{p}: total",
            )
            a2.scatter(
                xs,
                [r["profiles"][p]["energy_dram_pj"] / 1e6 for r in dram],
                color=color,
                s=16,
                marker="x",
                label=f"{p}: DRAM part",
            )
        _labels(
            a1,
            [r["params"] for r in dram],
            [r["profiles"]["horowitz-45nm/32bit"]["dram_bytes"] for r in dram],
            [r["id"] for r in dram],
        )
        for a in (a1, a2):
            a.set_xscale("log")
            a.set_yscale("log")
            a.set_xlabel("parameters")
            a.grid(alpha=0.3, which="both")
            a.legend(fontsize=6)
        a1.set_ylabel("predicted DRAM bytes per inference")
        a2.set_ylabel("predicted energy per inference (uJ)")
        r = res["dram"]["energy_ratio"]["horowitz-45nm/32bit"]
        fig.suptitle(
            f"(c) off-chip traffic and energy (analysis.profile); horowitz-45nm: 32-bit DRAM "
            f"access {r['dram_pj_per_word']:g} pJ = {r['dram_over_mac']:g}x an fp32 MAC "
            f"({r['mac_pj']:g} pJ)",
            fontsize=9,
        )
        written.append(str(img / "talk_claims_dram.png"))
        _save(fig, Path(written[-1]))
    return written


def _kb(n) -> str:
    return "-" if n is None else f"{n / 1e3:,.1f}"


def tables(res: dict) -> str:
    """The page's tables, in markdown, from the JSON (so the page can quote it exactly)."""
    out, models = [], res.get("models", {})
    air = res.get("air", {}).get("rows", [])
    if air:
        out += [
            "| model | input | params | fp32 ONNX (KB) | int8 ONNX (KB) | int8 .tflite (KB) "
            "| .sqz 6-bit (KB) | .sqz bits/param |",
            "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        t = res["air"].get("trained")
        for r in air + ([t] if t else []):
            geo = models.get(r["id"].split(" ")[0], {}).get("input", [])
            out.append(
                f"| {r['id']} | {'x'.join(map(str, geo))} | {r['params']:,} | "
                f"{_kb(r.get('onnx_fp32_bytes'))} | {_kb(r.get('onnx_int8_bytes'))} | "
                f"{_kb(r.get('tflite_int8_bytes'))} | {_kb(r['sqz_bytes'])} | "
                f"{r['sqz_bits_per_param']:.2f} |"
            )
        out.append("")
    ddp = res.get("ddp", {}).get("rows", [])
    if ddp:
        out += [
            "| model | params | all-reduced per step (MB) | buckets | compute (ms) "
            "| all-reduce (ms) | DDP step (ms) | all-reduce share | at 1 Gbit/s (ms, derived) |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for r in ddp:
            out.append(
                f"| {r['id']} | {r['params']:,} | {r['grad_bytes_per_step'] / 1e6:,.2f} | "
                f"{r['buckets_per_step']} | {1e3 * r['compute_s']:,.1f} | "
                f"{1e3 * r['allreduce_s']:,.1f} | {1e3 * r['step_s']:,.1f} | "
                f"{100 * r['allreduce_share']:.0f}% | "
                f"{1e3 * r['projected_allreduce_s']['1gbps']:,.0f} |"
            )
        out.append("")
    dram = res.get("dram", {})
    if dram.get("energy_ratio"):
        out += [
            "| profile | DRAM access of one word (pJ) | MAC (pJ) | DRAM / MAC | add (pJ) "
            "| DRAM / add | DRAM / on-chip byte |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for name, e in dram["energy_ratio"].items():
            out.append(
                f"| {name} | {e['dram_pj_per_word']:g} | {e['mac_pj']:g} | "
                f"{e['dram_over_mac']:.0f}x | {e['add_pj']:g} | {e['dram_over_add']:.0f}x | "
                f"{e['dram_over_sram']:.0f}x |"
            )
        out.append("")
    if dram.get("rows"):
        names = list(dram["rows"][0]["profiles"])
        out += [
            "| model | params | MACs (M) | "
            + " | ".join(f"{n}: DRAM (KB) / energy (uJ) / DRAM share" for n in names)
            + " |",
            "| --- | ---: | ---: |" + " ---: |" * len(names),
        ]
        for r in dram["rows"]:
            cells = [
                f"{_kb(p['dram_bytes'])} / {p['energy_pj'] / 1e6:,.1f} / "
                f"{100 * p['dram_share']:.0f}%"
                for p in r["profiles"].values()
            ]
            out.append(
                f"| {r['id']} | {r['params']:,} | {r['macs'] / 1e6:,.1f} | "
                + " | ".join(cells)
                + " |"
            )
        out.append("")
    return "\n".join(out)


# ---------------------------------------------------------------- main


def _merge(old: list[dict], new: list[dict]) -> list[dict]:
    """Rows of ``old`` not recomputed, then the new ones, in model order."""
    fresh = {r["id"] for r in new}
    return [r for r in old if r["id"] not in fresh] + new


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help=f"only {', '.join(QUICK)}")
    ap.add_argument("--parts", default=",".join(PARTS), help=f"which claims to measure: {PARTS}")
    ap.add_argument("--models", default="", help="comma-separated model ids (default: all)")
    ap.add_argument(
        "--plots-only",
        action="store_true",
        help="redraw the plots from --out and print the page's tables",
    )
    ap.add_argument("--img", type=Path, default=IMG, help="where the three PNG plots go")
    ap.add_argument("--ddp-worker", metavar="JSON", help=argparse.SUPPRESS)  # torchrun's ranks
    add_output_args(ap, OUT)
    args = ap.parse_args(argv)
    ids = [m.strip() for m in args.models.split(",") if m.strip()] or model_ids(args.quick)
    if args.ddp_worker:
        return ddp_worker(ids, args.ddp_worker, args.quick)
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    bad = sorted(set(parts) - set(PARTS)) + sorted(set(ids) - set(model_ids(False)))
    if bad:
        ap.error(
            f"unknown part(s) or model id(s) {bad}: allowed parts {PARTS}, models {model_ids(False)}"
        )

    if args.quick and not args.plots_only and args.out.resolve() == OUT.resolve():
        ap.error(
            f"--quick measures two models only: give --out (the default {OUT} holds the full run)"
        )

    from squeezelab.io import atomic_write_json

    res: dict = {}
    if args.out.is_file():
        res = json.loads(args.out.read_text())
        if res.get("quick") != args.quick:  # a quick run never mixes with a full one
            res = {}
    if args.plots_only:
        for p in plot_all(res, args.img):
            print("wrote", p)
        print(tables(res))
        return 0
    import torch

    torch.set_num_threads(1)  # parts (a) and (c) take one core; the DDP ranks one each
    t0 = time.time()
    res.update(
        benchmark="talk_claims",
        quick=args.quick,
        ran_beside_other_work=args.beside_other_work,
        host=host(),
        versions=versions(("torch", "onnxruntime", "litert-torch", "ai-edge-litert")),
    )
    res.setdefault("models", {})
    res.setdefault("seconds_by_part", {})

    def save() -> None:
        res["summary"] = summarize(res)
        res["verdicts"] = verdicts(res)
        atomic_write_json(args.out, res)

    if "dram" in parts:
        res.setdefault("dram", {"rows": []})["energy_ratio"] = energy_ratios()
    if "air" in parts:
        res.setdefault("air", {"rows": []})["settings"] = {
            "sqz": f"{SQZ_BITS}-bit shared weights (k-means), entropy-coded, no pruning, "
            "biases and BatchNorm fp16 (as Table 2's files)",
            "onnx_int8": f"S8S8 min-max, per-channel, {N_CALIB} random calibration images",
            "tflite_int8": f"int8 per-channel, {N_CALIB} random calibration images",
            "weights": "untrained (seeded init) but for the trained row",
        }
    spent = dict.fromkeys(PARTS, 0.0)
    with tempfile.TemporaryDirectory(prefix="talk-air-") as tmp:
        if "air" in parts and "squeezenet_small" in ids:
            res["air"]["trained"] = trained_air_row(tmp)
        for model_id in ids:  # one build per model for parts (c) and (a); saved after each
            model, meta, rec = build(model_id)
            res["models"][model_id] = rec
            if "dram" in parts:
                t1 = time.time()
                row = dram_row(model, meta, rec)
                res["dram"]["rows"] = _merge(res["dram"]["rows"], [row])
                p = row["profiles"]["horowitz-45nm/32bit"]
                print(
                    f"dram {model_id:26s} {p['dram_bytes']:>12,} B  "
                    f"{p['energy_pj'] / 1e6:10.1f} uJ",
                    flush=True,
                )
                spent["dram"] += time.time() - t1
            if "air" in parts:
                t1 = time.time()
                # a quick run converts one .tflite: the conversion is its slowest step
                tflite = not args.quick or model_id == ids[0]
                row = air_row(model, meta, rec, tmp, tflite=tflite)
                res["air"]["rows"] = _merge(res["air"]["rows"], [row])
                print(
                    f"air  {model_id:26s} sqz {row['sqz_bytes']:>11,}  onnx8 "
                    f"{row.get('onnx_int8_bytes', 0):>11,}  tflite8 "
                    f"{row.get('tflite_int8_bytes', 0):>11,}"
                    + (f"  FAILED {row['failed']}" if row["failed"] else ""),
                    flush=True,
                )
                spent["air"] += time.time() - t1
            del model
            save()
    for part in ("dram", "air"):
        if part in parts:
            res["seconds_by_part"][part] = round(spent[part], 1)
    if "ddp" in parts:
        t1 = time.time()
        out = run_ddp(ids, args.quick)
        part = res.setdefault("ddp", {"rows": []})
        part["settings"] = {
            "launcher": "torchrun --standalone --nproc_per_node 2",
            "nproc": out["world_size"],
            "backend": out["backend"],
            "threads_per_rank": 1,
            "batch_per_rank": dict.fromkeys(BATCH, QUICK_BATCH) if args.quick else BATCH,
            "warmup_steps": WARMUP,
            "timed_steps": QUICK_STEPS if args.quick else STEPS,
            "optimizer": "SGD momentum 0.9",
            "inputs": "random tensors (step time does not depend on the values)",
            "grad_bytes": "summed in a DDP comm hook over the buckets it is handed",
            "compute_s": "step with a hook that returns the bucket unreduced",
            "allreduce_s": f"the step's buckets all-reduced alone after a barrier, median of {COMM_REPEATS}",
            "projected_allreduce_s": "ring all-reduce 2(N-1)/N x bytes over the link (derived)",
        }
        for r in out["rows"]:
            res["models"][r["id"]] = r.pop("model")
        part["rows"] = _merge(part["rows"], out["rows"])
        res["seconds_by_part"]["ddp"] = round(time.time() - t1, 1)
        save()
    save()
    for p in plot_all(res, args.img):
        print("wrote", p, flush=True)
    print(tables(res))
    print(f"wrote {args.out} in {time.time() - t0:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
