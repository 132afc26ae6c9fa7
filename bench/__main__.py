"""``python -m bench [--quick] [--case NAME ...] [--jobs N] [--trackers LIST] [--ours CODE.PY] [--original-adc CHIP]``

* no options: every case, ours and the original side by side; prints the table, rewrites BENCHMARKS.md and
  bench/results.json.
* ``--case NAME`` (repeatable): only these cases (full length); their figures replace theirs in
  bench/results.json (the others are kept) and BENCHMARKS.md is rewritten from the merged results.
* ``--quick``: the shortened CI set (all static levels with short windows, sequences 1 and 2 with three slopes
  and one repetition each, one partial-shade case), under 3 minutes on 2 cores. Writes only
  out/bench_quick/results.json; exit status 1 when our tracker misses a floor (bench/cases.py: FLOORS).
* ``--trackers ours,original``: run only some trackers (default both).
* ``--jobs N``: run the (case, tracker) simulations in N processes (default: the CPU count, at most 2 x cases).
* ``--device``: only the device figures (bench/device.py: the CIRCUITPY build in real MicroPython: heap after boot,
  allocation and instructions per control step), merged into bench/results.json and BENCHMARKS.md. A full run
  (no --case, not --quick) measures them too.
"""

import argparse
import os
import sys
import time

from bench import cases as C


def _task(args):
    case, tracker, ours_code, original_adc = args
    from bench.run import run_case

    return run_case(case, tracker, ours_code=ours_code, original_adc=original_adc)


def run_all(case_list, jobs, ours_code, original_adc, log=None, trackers=C.TRACKERS):
    """{(case, tracker): result} for every case and tracker, longest simulations first."""
    tasks = [(c, tr, ours_code, original_adc) for c in case_list for tr in trackers]
    tasks.sort(key=lambda t: -t[0].duration_s)
    results = {}

    def done(r):
        results[(r["case"], r["tracker"])] = r
        if log:
            log("  done %-14s %-8s %7.1f s wall (%g s simulated, loop %.1f Hz)%s\n" % (
                r["case"], r["tracker"], r["wall_s"], r["sim_s"], r["control_rate_hz"],
                "  faults: %s" % r["faults"] if r["faults"] else ""))

    if jobs <= 1:
        for t in tasks:
            done(_task(t))
        return results
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    methods = multiprocessing.get_all_start_methods()
    ctx = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    with ProcessPoolExecutor(max_workers=jobs, mp_context=ctx) as ex:
        futures = [ex.submit(_task, t) for t in tasks]
        for fut in as_completed(futures):
            done(fut.result())
    return results


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0].strip("`"),
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="the shortened CI set; exit 1 below a floor")
    ap.add_argument("--case", action="append", default=None, metavar="NAME",
                    help="run only this case (repeatable): " + ", ".join(C.CASE_NAMES))
    ap.add_argument("--jobs", type=int, default=None, help="parallel simulations (default: CPU count)")
    ap.add_argument("--ours", default=None, metavar="CODE.PY", help="our firmware file (default: code.py)")
    ap.add_argument("--original-adc", default=C.ORIGINAL_ADC, choices=C.ORIGINAL_ADCS,
                    help="the ADC the original firmware is built for (default: %(default)s, as shipped)")
    ap.add_argument("--trackers", default=",".join(C.TRACKERS), metavar="LIST",
                    help="which trackers to run, comma-separated (default: %(default)s)")
    ap.add_argument("--list", action="store_true", help="list the cases and exit")
    ap.add_argument("--no-write", action="store_true", help="print only; write no results")
    ap.add_argument("--device", action="store_true", help="only the device figures (MicroPython), merged")
    args = ap.parse_args(argv)

    from bench import report

    if args.device:
        return _device_only(args, report)

    try:
        case_list = C.build_cases(quick=args.quick, names=args.case)
    except KeyError as e:
        print("error: %s" % e.args[0], file=sys.stderr)
        return 2
    if args.list:
        for c in case_list:
            print("%-14s %7.0f s  %s" % (c.name, c.duration_s, c.title))
        return 0
    trackers = tuple(t.strip() for t in args.trackers.split(",") if t.strip())
    if not trackers or any(t not in C.TRACKERS for t in trackers):
        print("error: --trackers: choose from %s" % ", ".join(C.TRACKERS), file=sys.stderr)
        return 2
    ours_code = os.path.abspath(args.ours) if args.ours else C.OURS_CODE
    if not os.path.isfile(ours_code):
        print("error: no firmware file %s" % ours_code, file=sys.stderr)
        return 2
    jobs = args.jobs if args.jobs else min(os.cpu_count() or 1, len(trackers) * len(case_list))
    sim_total = sum(c.duration_s for c in case_list)
    print("bench: %d case(s)%s, %g s simulated per tracker, %d job(s); ours = %s, original = %s (%s)" % (
        len(case_list), " (quick)" if args.quick else "", sim_total, jobs,
        os.path.relpath(ours_code, C.PROJECT_ROOT) if C.OURS in trackers else "not run",
        os.path.relpath(C.ORIGINAL_CODE, C.PROJECT_ROOT) if C.ORIGINAL in trackers else "not run",
        args.original_adc))
    sys.stdout.flush()
    wall0 = time.perf_counter()
    runs = run_all(case_list, jobs, ours_code, args.original_adc, log=sys.stdout.write, trackers=trackers)
    wall = time.perf_counter() - wall0
    figures = report.figures_from_runs(case_list, runs)
    names = [c.name for c in case_list]
    floor_rows = report.check_floors(figures, names)
    report.print_table(figures, case_list, floor_rows, sys.stdout)
    print("\ntotal wall time %.1f s" % wall)
    commit, date = report.git_commit(), report.now_utc()
    results = {
        "commit": commit,
        "date": date,
        "quick": args.quick,
        "jobs": jobs,
        "wall_s_total": round(wall, 1),
        "trackers": list(trackers),
        "ours_code": os.path.relpath(ours_code, C.PROJECT_ROOT) if C.OURS in trackers else None,
        "original_adc": args.original_adc,
        "cases": names,
        "figures": dict(sorted(figures.items())),
        "runs": {"%s.%s" % k: {"commit": commit, "date": date, "faults": r["faults"], "resets": r["resets"],
                               "control_steps": r["control_steps"], "overall_pct": r["overall"]}
                 for k, r in sorted(runs.items())},
    }
    if not args.quick and not args.case:
        from bench import device

        print("\ndevice figures (CIRCUITPY build in MicroPython):")
        results["device"] = device.measure(log=sys.stdout.write)
        results["device_commit"], results["device_date"] = commit, date
    if not args.no_write:
        if args.quick:
            path = os.path.join(C.PROJECT_ROOT, "out", "bench_quick", "results.json")
            report.write_results(results, path)
            print("wrote %s" % os.path.relpath(path, C.PROJECT_ROOT))
        else:
            if args.case:
                results = report.merge_results(report.load_results(), results, set(names))
            else:  # a full run measures everything but the simulator's own speed (tools/sim_speed.py --write)
                results = report.carry_over(report.load_results(), results)
            report.write_results(results)
            report.write_benchmarks_md(results)
            print("wrote bench/results.json and BENCHMARKS.md")
    failed = [r for r in floor_rows if not r[4]]
    if args.quick and failed:
        print("\n%d floor(s) not reached by our tracker" % len(failed))
        return 1
    return 0


def _device_only(args, report):
    from bench import device

    print("bench: device figures (CIRCUITPY build in MicroPython, %d control steps)" % device.STEPS)
    figs = device.measure(log=sys.stdout.write)
    for fig, floor, value, ok, what in device.floors(figs):
        print("  %-4s %-22s %-10s %s  %s" % ("ok" if ok else "MISS", fig, floor, value, what))
    if args.no_write:
        return 0
    results = report.load_results() or {"figures": {}, "cases": [], "runs": {}}
    results["device"] = figs
    results["device_commit"] = report.git_commit()
    results["device_date"] = report.now_utc()
    report.write_results(results)
    report.write_benchmarks_md(results)
    print("wrote bench/results.json and BENCHMARKS.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
