"""``squeezelab calibrate --out host.yaml``: measure this machine into a hardware profile."""

from __future__ import annotations

from squeezelab.cli._common import console, print_json


def register(sub) -> None:
    p = sub.add_parser(
        "calibrate",
        help="measure this machine into a hardware profile (PyTorch eager)",
        description="Measure peak MAC/s, memory bandwidth and per-op efficiencies of PyTorch "
        "eager on this machine and write a hardware profile YAML for `profile --hardware`.",
    )
    p.add_argument("--out", required=True, help="profile YAML file to write")
    p.add_argument("--threads", type=int, help="intra-op threads (default: PyTorch's setting)")
    p.add_argument("--name", default="host", help="the profile's name (default: host)")
    p.add_argument("--quick", action="store_true", help="smaller, shorter measurements (seconds)")
    p.add_argument("--json", action="store_true", help="print the profile as JSON on stdout")
    p.set_defaults(func=run)


def run(args) -> int:
    from squeezelab.analysis import calibrate
    from squeezelab.analysis.hardware import save_hardware

    with console(stderr=True).status("calibrating (about a minute) ..."):
        hw = calibrate(threads=args.threads, quick=args.quick, name=args.name)
    save_hardware(hw, args.out, "written by `squeezelab calibrate`; see docs/analysis.md")
    if args.json:
        print_json(hw.to_dict())
        return 0
    con = console()
    con.print(f"[bold]{hw.name}[/] ({hw.runtime}, {hw.threads} thread(s)) -> {args.out}")
    con.print(f"  peak {hw.peak_macs_per_s['fp32'] / 1e9:.1f} GMAC/s fp32, "
              f"{hw.peak_other_ops_per_s['fp32'] / 1e9:.1f} G elementwise ops/s, "
              f"copy bandwidth {hw.dram_bytes_per_s / 1e9:.1f} GB/s")  # fmt: skip
    con.print("  efficiency " + ", ".join(f"{k} {v:.2f}" for k, v in hw.efficiency.items()))
    con.print("  overhead us " + ", ".join(f"{k} {v * 1e3:.0f}" for k, v in hw.overhead_ms.items()))
    return 0
