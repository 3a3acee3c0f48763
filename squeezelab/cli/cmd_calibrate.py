"""``squeezelab calibrate -o host.yaml``: measure this machine into a hardware profile."""

from __future__ import annotations

from squeezelab.cli import _flags
from squeezelab.cli._common import console, print_json


def register(sub) -> None:
    p = sub.add_parser(
        "calibrate",
        help="measure this machine into a hardware profile (PyTorch eager)",
        description="Measure peak MAC/s, memory bandwidth and per-op efficiencies of PyTorch "
        "eager on this machine and write a hardware profile YAML for `profile --hardware`.",
    )
    _flags.add_output(p, help="profile YAML file to write")
    _flags.deprecated_alias(p, "--out", "-o/--output", dest="output")
    _flags.add_threads(p)
    p.add_argument("--name", default="host", help="the profile's name (default: host)")
    p.add_argument("--quick", action="store_true", help="smaller, shorter measurements (seconds)")
    _flags.add_json(p, "the profile")
    p.set_defaults(func=run)


def run(args) -> int:
    from squeezelab.errors import ConfigError

    if not args.output:
        raise ConfigError("-o/--output is required: the profile YAML file to write")
    from squeezelab.analysis import calibrate
    from squeezelab.analysis.hardware import save_hardware

    with console(stderr=True).status("calibrating (about a minute) ..."):
        hw = calibrate(threads=args.threads, quick=args.quick, name=args.name)
    save_hardware(hw, args.output, "written by `squeezelab calibrate`; see docs/analysis.md")
    if args.json:
        print_json(hw.to_dict())
        return 0
    con = console()
    con.print(f"[bold]{hw.name}[/] ({hw.runtime}, {hw.threads} thread(s)) -> {args.output}")
    con.print(
        f"  peak {hw.peak_macs_per_s['fp32'] / 1e9:.1f} GMAC/s fp32, "
        f"{hw.peak_other_ops_per_s['fp32'] / 1e9:.1f} G elementwise ops/s, "
        f"copy bandwidth {hw.dram_bytes_per_s / 1e9:.1f} GB/s"
    )
    con.print("  efficiency " + ", ".join(f"{k} {v:.2f}" for k, v in hw.efficiency.items()))
    con.print("  overhead us " + ", ".join(f"{k} {v * 1e3:.0f}" for k, v in hw.overhead_ms.items()))
    return 0
