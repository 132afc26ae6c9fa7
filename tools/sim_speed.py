"""Simulator speed benchmark: simulated seconds per wall second for fixed windows of the shipped scenarios.

    .venv/bin/python tools/sim_speed.py              # the default table (about 1-2 min of wall time)
    .venv/bin/python tools/sim_speed.py --profile noon   # cProfile of one case, top functions by own time
    .venv/bin/python tools/sim_speed.py --day        # the whole clear_day scenario (long: run it in the background)
    .venv/bin/python tools/sim_speed.py --write [...] # also store the rows in bench/results.json, rewrite BENCHMARKS.md
    .venv/bin/python tools/sim_speed.py --split noon  # where the wall time of a control step goes (plant or the rest)

Cases (every one with no breakout module plugged, so only the core firmware and the plant run):
  demo      the demo scenario's first 60 s (start scan, tracking at ~950 W/m2)
  noon      clear_day, 3 min around solar noon (switching at full power, 134 Hz control rate)
  morning   clear_day, 3 min at 05:00 UTC (low sun, switching)
  night     clear_day, 10 min at 22:00 UTC (converter off, idle loop)

Each row also prints what a speed-up must not change: control rate, tracking efficiency, energy balance error.
"""

import argparse
import cProfile
import io
import os
import pstats
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

WHAT = {
    "demo": "demo scenario, first 60 s: start scan, tracking at ~950 W/m2",
    "noon": "clear_day, 3 min at solar noon: full power",
    "morning": "clear_day, 3 min at 05:00 UTC: low sun (the input filter rings)",
    "night": "clear_day, 10 min at 22:00 UTC: converter off, idle loop",
    "day": "clear_day, the whole 24 h (June 21, 48.1 N)",
}

CASES = {
    # name: (scenario, {override: value})
    "demo": ("demo", {"scenario.duration_s": 60}),
    "noon": ("clear_day", {"scenario.start": "2026-06-21T11:12:00Z", "scenario.duration_s": 180}),
    "morning": ("clear_day", {"scenario.start": "2026-06-21T05:00:00Z", "scenario.duration_s": 180}),
    "night": ("clear_day", {"scenario.start": "2026-06-21T22:00:00Z", "scenario.duration_s": 600}),
}


def _load(name, extra=None):
    from sim.install import install

    install()
    from sim.scenario import load_scenario

    scen, ov = CASES[name] if name in CASES else (name, {})
    ov = dict(ov)
    ov["board.modules"] = {}
    ov.update(extra or {})
    return load_scenario(os.path.join(ROOT, "scenarios", scen + ".toml"), ov)


def run_case(name, extra=None, profile=False, split=None):
    """split: a dict that gets the wall seconds spent integrating the plant ("plant_s"; the rest is the firmware,
    the stand-ins, the emulators and the clock)."""
    from sim.runner import SimRun

    sc = _load(name, extra)
    run = SimRun(sc, echo=False, status_every_s=0)
    if split is not None:
        plant = run.sim.plant
        inner = plant.advance_to
        split["plant_s"] = 0.0
        clock = time.perf_counter

        def timed(t_ns):
            t = clock()
            inner(t_ns)
            split["plant_s"] += clock() - t

        plant.advance_to = timed
    prof = cProfile.Profile() if profile else None
    t0 = time.perf_counter()
    if prof:
        prof.enable()
    summary = run.run()
    if prof:
        prof.disable()
    wall = time.perf_counter() - t0
    return summary, wall, prof


def _row(name, s, wall):
    sim_s = s["sim_seconds"]
    eff = s["tracking_efficiency"]
    return "%-8s %8.1f %8.2f %9.1f %10.1f %9s %12.2e %11d" % (
        name, sim_s, wall, sim_s / wall, s["control_rate_hz"], "%.5f" % eff if eff is not None else "-",
        s["energy_balance_error"], s["plant_steps"])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("cases", nargs="*", default=["demo", "noon", "morning", "night"])
    ap.add_argument("--profile", metavar="CASE", help="cProfile one case and print the top functions")
    ap.add_argument("--top", type=int, default=30)
    ap.add_argument("--day", action="store_true", help="run the whole clear_day scenario (24 h simulated)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="extra scenario override")
    ap.add_argument("--split", action="store_true",
                    help="also time the plant's integration: per control step, the plant and everything else (us)")
    ap.add_argument("--write", action="store_true",
                    help="store the rows in bench/results.json (sim_speed) and rewrite BENCHMARKS.md")
    args = ap.parse_args(argv)
    from sim.install import install

    install()
    from sim.scenario import parse_override

    extra = dict(parse_override(x) for x in args.set)
    if args.profile:
        s, wall, prof = run_case(args.profile, extra, profile=True)
        print(_row(args.profile, s, wall))
        out = io.StringIO()
        pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(args.top)
        print(out.getvalue())
        return 0
    cases = ["day"] if args.day else args.cases
    if args.day:
        CASES["day"] = ("clear_day", {})
    print("%-8s %8s %8s %9s %10s %9s %12s %11s" % ("case", "sim_s", "wall_s", "sim/wall", "ctrl_Hz", "tracking",
                                                  "e_balance", "plant_steps"))
    rows = {}
    if args.write:
        from bench import report

        stamp = report.git_commit(), report.now_utc()  # the code as it was when the runs started
    for name in cases:
        split = {} if args.split else None
        s, wall, _ = run_case(name, extra, split=split)
        print(_row(name, s, wall))
        if split is not None and s["control_rate_hz"]:
            steps = s["sim_seconds"] * s["control_rate_hz"]
            print("         per control step: plant %.0f us, firmware + stand-ins + emulators + clock %.0f us" % (
                1e6 * split["plant_s"] / steps, 1e6 * (wall - split["plant_s"]) / steps))
        sys.stdout.flush()
        rows[name] = {"what": WHAT.get(name, name), "sim_s": s["sim_seconds"], "wall_s": round(wall, 2),
                      "speed": round(s["sim_seconds"] / wall, 2), "control_rate_hz": s["control_rate_hz"],
                      "tracking": s["tracking_efficiency"], "energy_balance_error": s["energy_balance_error"],
                      "plant_steps": s["plant_steps"]}
    if args.write and not extra:
        _write(rows, stamp)
    return 0


def _write(rows, stamp):
    """Merge these rows into bench/results.json's sim_speed (by case) and rewrite BENCHMARKS.md."""
    from bench import report

    results = report.load_results()
    if results is None:
        print("no bench/results.json to add to (run python -m bench first)")
        return
    commit, date = stamp
    merged = dict(results.get("sim_speed") or {})
    for name, r in rows.items():
        merged[name] = dict(r, commit=commit, date=date)
    order = list(WHAT)
    results["sim_speed"] = {k: merged[k] for k in sorted(merged, key=lambda k: order.index(k) if k in order else 99)}
    report.write_results(results)
    report.write_benchmarks_md(results)
    print("wrote bench/results.json (sim_speed) and BENCHMARKS.md")


if __name__ == "__main__":
    sys.exit(main())
