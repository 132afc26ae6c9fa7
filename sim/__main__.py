"""``python -m sim run SCENARIO [--out DIR] [--realtime] [--duration S]``: run code.py on the simulated board."""

import argparse
import json
import os
import sys


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m sim", description="FUGU MPPT firmware on a simulated board")
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="run code.py against a scenario (TOML)")
    r.add_argument("scenario", help="scenario file, or a name under scenarios/ (e.g. demo)")
    r.add_argument("--out", default=None, help="output folder for run.csv, summary.json, console.txt "
                                               "(default: out/<scenario name>)")
    r.add_argument("--realtime", action="store_true", help="pace the simulation to the wall clock")
    r.add_argument("--duration", type=float, default=None, help="override the scenario's duration (s)")
    r.add_argument("--quiet", action="store_true", help="no live status lines")
    r.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a scenario key, e.g. --set battery.soc=0.3 --set scenario.start=2026-06-21T11:00:00Z")
    args = ap.parse_args(argv)

    from sim.install import PROJECT_ROOT, install

    install()
    from sim.scenario import ScenarioError, load_scenario, parse_override
    from sim.runner import SimRun

    path = args.scenario
    if not os.path.exists(path):
        cand = os.path.join(PROJECT_ROOT, "scenarios", path if path.endswith(".toml") else path + ".toml")
        if os.path.exists(cand):
            path = cand
    overrides = {}
    try:
        for item in args.set:
            k, v = parse_override(item)
            overrides[k] = v
    except (ScenarioError, ValueError) as e:
        print("error: --set: %s" % e, file=sys.stderr)
        return 2
    if args.duration is not None:
        overrides["scenario.duration_s"] = args.duration
    try:
        scenario = load_scenario(path, overrides=overrides)
    except (ScenarioError, OSError) as e:
        print("error: %s" % e, file=sys.stderr)
        return 2
    out = args.out or os.path.join("out", scenario.name)
    print("FUGU simulator: scenario %s (%g s simulated), output in %s" % (scenario.name, scenario.duration_s, out))
    run = SimRun(scenario, out_dir=out, realtime=args.realtime, echo=not args.quiet)
    summary = run.run()
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
