"""``python -m devicecheck run SCENARIO [--steps N]``: code.py in real MicroPython on the simulated board.
``python -m devicecheck imports``: import every device module in MicroPython."""

import argparse
import json
import os
import sys


def _main_run(args):
    from devicecheck.harness import DeviceRun

    overrides = {}
    if args.set:
        from sim.scenario import parse_override

        for item in args.set:
            k, v = parse_override(item)
            overrides[k] = v
    r = DeviceRun(args.scenario, steps=args.steps, heap_bytes=args.heap_mb << 20, overrides=overrides,
                  build_dir=args.from_build).run()
    console = r.pop("console")
    if args.console:
        sys.stdout.write(console)
    if args.json:
        print(json.dumps(r, indent=2))
        return 0 if r.outcome == "stop" and r.steps >= args.steps else 1
    rows = [
        ("outcome", "%s %s" % (r.outcome, r.detail.strip().splitlines()[-1] if r.detail.strip() else "")),
        ("control steps run", r.steps),
        ("heap in use after boot (bytes, after a collection)", r.heap_after_boot_collected_bytes),
        ("heap allocated up to the first feed, GC off (bytes)", r.heap_after_boot_bytes),
        ("heap allocated per step, GC off (bytes)", "%s (over %s steps)" % (r.alloc_per_step_bytes, r.alloc_steps)),
        ("instructions per step (wasm fuel)", "%s (raw %s, stand-in call excess %s each)" % (
            r.instructions_per_step, r.instructions_per_step_raw, r.standin_call_excess_instructions)),
        ("instructions to the first feed (wasm fuel)", r.boot_instructions),
        ("calls into core modules per step", r.core_calls_per_step),
        ("PV energy harvested (Wh)", r.pv_energy_wh),
        ("firmware's energy counter (Wh)", r.firmware_energy_wh),
        ("simulated time (s) / control rate (Hz)", "%s / %s" % (r.sim_seconds, r.control_rate_hz)),
        ("wall time (s)", r.wall_seconds),
        ("core modules without a stand-in (placeholders)", ", ".join(r.placeholders) or "none"),
    ]
    w = max(len(k) for k, _ in rows)
    for k, v in rows:
        print("%-*s  %s" % (w, k, v))
    if r.outcome == "crash":
        print(r.detail, file=sys.stderr)
    return 0 if r.outcome == "stop" and r.steps >= args.steps else 1


def _main_imports(args):
    from devicecheck.harness import check_imports

    bad = 0
    for kind, name, detail in check_imports(build_dir=args.from_build):
        if kind == "placeholder":
            print("note: %s has no MicroPython stand-in: loaded as a placeholder (using it raises)" % name)
            continue
        print("%-4s %s" % (kind, name))
        if kind != "ok":
            bad += 1
            print("     " + detail.strip().replace("\n", "\n     "))
    return 1 if bad else 0


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m devicecheck", description=__doc__)
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="run code.py in MicroPython against a scenario for N control steps")
    r.add_argument("scenario", help="scenario file or name under scenarios/ (e.g. demo)")
    r.add_argument("--steps", type=int, default=1000, help="control steps (watchdog feeds) after boot")
    r.add_argument("--heap-mb", type=int, default=16, help="MicroPython heap (MiB); must hold N steps with GC off")
    r.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="scenario override")
    r.add_argument("--json", action="store_true", help="print the figures as JSON")
    r.add_argument("--console", action="store_true", help="print the firmware's console output")
    r.add_argument("--from-build", metavar="DIR", default=None,
                   help="run a built CIRCUITPY folder (tools/build_circuitpy.py, .mpy files) instead of the sources")
    i = sub.add_parser("imports", help="import every module of lib/, extensions/, boardconfigs/ (and compile code.py)")
    i.add_argument("--from-build", metavar="DIR", default=None, help="a built CIRCUITPY folder instead")
    args = ap.parse_args(argv)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if root not in sys.path:
        sys.path.insert(0, root)
    from sim.install import install

    install()
    return _main_run(args) if args.cmd == "run" else _main_imports(args)


if __name__ == "__main__":
    sys.exit(main())
