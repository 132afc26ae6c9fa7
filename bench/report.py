"""Turn the runs into figures (flat, stable keys), check the floors, print the table, write BENCHMARKS.md and
bench/results.json."""

import datetime
import json
import os
import subprocess

from bench import cases as C
from bench import en50530

RESULTS_PATH = os.path.join(C.BENCH_DIR, "results.json")
BENCHMARKS_PATH = os.path.join(C.PROJECT_ROOT, "BENCHMARKS.md")


def _ratio(ours, orig):
    if ours is None or orig is None or orig <= 0:
        return None
    return round(ours / orig, 5)


def figures_from_runs(case_list, runs):
    """runs: {(case, tracker): run_case() dict}. Returns the flat {key: number or None} of these cases:
    <case>.<figure>.<ours|original|ratio>, <case>.<figure>.mpp_w, <case>.wall_s.<tracker>,
    <case>.control_rate_hz.<tracker>, <case>.sim_s."""
    out = {}
    for case in case_list:
        per = {}
        for tr in C.TRACKERS:
            r = runs.get((case.name, tr))
            if r is None:
                continue
            figs = dict(r["figures"])
            figs.update({k: (None if v is None else round(v, 4)) for k, v in case.derived(figs).items()})
            per[tr] = figs
            out["%s.wall_s.%s" % (case.name, tr)] = r["wall_s"]
            out["%s.control_rate_hz.%s" % (case.name, tr)] = r["control_rate_hz"]
            out["%s.sim_s" % case.name] = r["sim_s"]
            for name, w in r["mean_mpp_w"].items():
                out["%s.%s.mpp_w" % (case.name, name)] = w
        names = [w[0] for w in case.windows] + list(case.derived({}).keys())
        for name in names:
            vals = {tr: per.get(tr, {}).get(name) for tr in C.TRACKERS}
            for tr in C.TRACKERS:
                if tr in per:
                    out["%s.%s.%s" % (case.name, name, tr)] = vals[tr]
            if C.OURS in per and C.ORIGINAL in per:
                out["%s.%s.ratio" % (case.name, name)] = _ratio(vals[C.OURS], vals[C.ORIGINAL])
    return out


def check_floors(figures, case_names):
    """[(case, figure, floor %, ours %, ok, what)] for the cases in case_names (the ones run)."""
    rows = []
    for case, fig, floor, what in C.FLOORS:
        if case not in case_names:
            continue
        key = "%s.%s.ours" % (case, fig)
        if key not in figures:
            continue  # our tracker was not run on this case
        v = figures[key]
        rows.append((case, fig, floor, v, v is not None and v >= floor, what))
    if C.AHEAD_OF_ORIGINAL:
        for name in case_names:
            head = C.build_case(name).headline
            ours = figures.get("%s.%s.ours" % (name, head))
            orig = figures.get("%s.%s.original" % (name, head))
            if orig is None or "%s.%s.ours" % (name, head) not in figures:
                continue
            rows.append((name, head, "> original", ours, ours is not None and ours >= orig,
                         "ahead of the FUGU tracker (%.3f %%)" % orig))
    return rows


def _pct(v):
    return "-" if v is None else "%.3f" % v


def _x(v):
    return "-" if v is None else "%.4f" % v


def table_rows(figures, case_list):
    """[(case, figure, info, ours, original, ratio)] in case and window order."""
    rows = []
    for case in case_list:
        names = [w[0] for w in case.windows] + list(case.derived({}).keys())
        for name in names:
            g = lambda tr: figures.get("%s.%s.%s" % (case.name, name, tr))  # noqa: E731
            if not any("%s.%s.%s" % (case.name, name, tr) in figures for tr in C.TRACKERS):
                continue
            rows.append((case.name, name, case.info.get(name, ""), g(C.OURS), g(C.ORIGINAL), g("ratio")))
    return rows


def print_table(figures, case_list, floor_rows, out):
    w = out.write
    w("\n%-14s %-14s %-24s %10s %10s %8s\n" % ("case", "figure", "", "ours %", "original %", "ratio"))
    w("-" * 85 + "\n")
    last = None
    for case, name, info, o, g, r in table_rows(figures, case_list):
        w("%-14s %-14s %-24s %10s %10s %8s\n" % (case if case != last else "", name, info[:24], _pct(o), _pct(g),
                                                 _x(r)))
        last = case
    w("\nwall time per case (s):\n")
    for case in case_list:
        f = figures.get
        w("  %-14s ours %7s  original %7s   (%s s simulated; loop %s / %s Hz)\n" % (
            case.name, f("%s.wall_s.ours" % case.name, "-"), f("%s.wall_s.original" % case.name, "-"),
            f("%s.sim_s" % case.name, "-"), f("%s.control_rate_hz.ours" % case.name, "-"),
            f("%s.control_rate_hz.original" % case.name, "-")))
    if floor_rows:
        w("\nfloors (our tracker):\n")
        for case, fig, floor, v, ok, what in floor_rows:
            fl = floor if isinstance(floor, str) else ">= %g" % floor
            w("  %-4s %-14s %-12s %-12s ours %9s   %s\n" % ("ok" if ok else "FAIL", case, fig, fl, _pct(v), what))
    out.flush()


def git_commit():
    """The checkout's commit (short hash), with +dirty when the work tree has changes."""
    try:
        h = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=C.PROJECT_ROOT, capture_output=True,
                           text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".",
                                ":!BENCHMARKS.md", ":!bench/results.json"],  # the outputs themselves do not count
                               cwd=C.PROJECT_ROOT, capture_output=True, text=True, check=True).stdout.strip()
        return h + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def now_utc():
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def load_results(path=RESULTS_PATH):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def carry_over(old, new):
    """new, plus what a run did not measure itself from old: the device figures, the simulator's speed."""
    merged = dict(new)
    for k in ("device", "device_commit", "device_date", "sim_speed"):
        if k not in new and k in (old or {}):
            merged[k] = old[k]
    return merged


def merge_results(old, new, rerun_cases):
    """Keep the old figures of the cases not re-run, and of the trackers not re-run (``--trackers ours`` keeps the
    original's figures of the same cases); replace the re-run ones and recompute the ratios."""
    if not old:
        return new
    rerun_trackers = set(new.get("trackers") or C.TRACKERS)

    def replaced(key):
        case, rest = key.split(".", 1)
        if case not in rerun_cases:
            return False
        last = rest.rsplit(".", 1)[-1]
        return last not in C.TRACKERS or last in rerun_trackers

    figs = {k: v for k, v in old.get("figures", {}).items() if not replaced(k)}
    figs.update(new["figures"])
    for k in list(figs):  # ours / original of every figure both trackers have
        if k.endswith("." + C.OURS) and k[:-len(C.OURS)] + C.ORIGINAL in figs and ".wall_s." not in k \
                and ".control_rate_hz." not in k:
            base = k[:-len(C.OURS) - 1]
            figs[base + ".ratio"] = _ratio(figs[k], figs[base + "." + C.ORIGINAL])
    runs = {}
    for k, v in old.get("runs", {}).items():
        if not replaced(k):
            runs[k] = dict({"commit": old.get("commit"), "date": old.get("date")}, **v)  # stamped by its own run
    runs.update(new["runs"])
    merged = carry_over(old, new)
    merged["last_run_cases"] = list(new.get("cases", []))
    merged["trackers"] = [t for t in C.TRACKERS if any(k.endswith("." + t) for k in runs)]
    merged["figures"] = dict(sorted(figs.items()))
    merged["runs"] = dict(sorted(runs.items()))
    merged["cases"] = [n for n in C.CASE_NAMES if n in {k.split(".", 1)[0] for k in figs}]
    return merged


def write_results(results, path=RESULTS_PATH):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(results, f, indent=1, sort_keys=False)
        f.write("\n")


# -- BENCHMARKS.md ------------------------------------------------------------------------------------------------

def _md_table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def benchmarks_md(results):
    figs = results["figures"]
    names = results["cases"]
    case_list = [C.build_case(n) for n in names]
    f = figs.get
    out = []
    out.append("# Benchmarks\n")
    out.append("Written by `python -m bench` (do not edit by hand). Last run: commit `%s`, %s, case(s) %s, %s wall "
               "on %d job(s); each case's own commit and date are in the Cases table. Every figure is also in "
               "`bench/results.json` under a stable key (`<case>.<figure>.<ours|original|ratio>`).\n" % (
                   results["commit"], results["date"], ", ".join(results.get("last_run_cases", names)),
                   _dur(results.get("wall_s_total")), results.get("jobs", 1)))
    out.append("## Tracking efficiency: ours against the original FUGU firmware's tracker\n")
    out.append("Tracking efficiency = PV energy the converter drew / energy at the global maximum power point, "
               "both integrated by the simulated plant over the window (%). Ratio = ours / original. Same "
               "scenario, seed, plant and board for both; only the firmware (and the ADC chip and cost model "
               "the original was built for, below) differ.\n")
    if results.get("ours_code") is None:
        out.append("**Ours was not run** in this benchmark (`--trackers original`): its columns are empty.\n")
    elif results.get("ours_code") != "code.py":
        out.append("**Ours** here is `%s`, not the repository's code.py.\n" % results.get("ours_code"))
    rows = []
    for case, name, info, o, g, r in table_rows(figs, case_list):
        rows.append((case, name, info, _pct(o), _pct(g), _x(r)))
    out.append(_md_table(("case", "figure", "condition", "ours %", "original %", "ratio"), rows) + "\n")
    out.append("## Floors (our tracker)\n")
    frows = [(case, fig, floor if isinstance(floor, str) else ">= %g %%" % floor, _pct(v),
              "ok" if ok else "**not reached**", what) for case, fig, floor, v, ok, what in check_floors(figs, names)]
    out.append(_md_table(("case", "figure", "floor", "ours %", "", "from issue 4"), frows) + "\n")
    out.append("## Cases\n")
    crow = []
    runs = results.get("runs", {})
    for c in case_list:
        ran = [runs.get("%s.%s" % (c.name, tr), {}) for tr in C.TRACKERS]
        when = sorted({"`%s` %s" % (r["commit"], r["date"][:10]) for r in ran if r.get("commit")})
        crow.append((c.name, c.title, c.notes, f("%s.sim_s" % c.name, "-"), f("%s.wall_s.ours" % c.name, "-"),
                     f("%s.wall_s.original" % c.name, "-"), "%s / %s" % (
                         f("%s.control_rate_hz.ours" % c.name, "-"), f("%s.control_rate_hz.original" % c.name, "-")),
                     ", ".join(when) or "-"))
    out.append(_md_table(("case", "what", "how", "simulated s", "wall s ours", "wall s original",
                          "loop Hz ours / original", "run at"), crow) + "\n")
    bad = [(k, v) for k, v in results.get("runs", {}).items() if v.get("faults") or v.get("resets")]
    if bad:
        out.append("Runs with firmware faults or resets:\n")
        for k, v in bad:
            out.append("- `%s`: faults %s; resets %s" % (k, _short(v.get("faults")), _short(v.get("resets"))))
        out.append("")
    if results.get("device"):
        from bench import device

        out.append(device.markdown(results["device"]))
        if results.get("device_commit"):
            out.append("Device figures measured at commit `%s`, %s.\n" % (results["device_commit"],
                                                                       results.get("device_date", "?")))
    if results.get("sim_speed"):
        out.append(sim_speed_md(results["sim_speed"]))
    out.append(SETUP_MD % {"adc": results.get("original_adc", C.ORIGINAL_ADC),
                           "i2c_us": C.ORIGINAL_COST["i2c_call_us"], "step_us": C.ORIGINAL_COST["control_step_us"],
                           "p": C.P_RATED_W, "v": C.V_MPP_V,
                           "eu": ", ".join("%g at %d %%" % (w, lv) for lv, w in en50530.EU_WEIGHTS.items()),
                           "cec": ", ".join("%g at %d %%" % (w, lv) for lv, w in en50530.CEC_WEIGHTS.items())})
    return "\n".join(out)


def sim_speed_md(rows):
    """The simulator's own speed (tools/sim_speed.py --write): {case: {figures, commit, date}}."""
    out = ["## Simulation speed\n",
           "Simulated seconds per wall second of `python -m sim run` (`tools/sim_speed.py`): the unmodified `code.py`, "
           "the ADS1115 at 860 SPS, no extension module plugged, one process on the shared 2-core machine (the "
           "closed loop is sequential: a second core does not speed up one run). Aim of issue 2: a full day in "
           "under 10 minutes (144x).\n"]
    trows = []
    for name, r in rows.items():
        trows.append((name, r.get("what", ""), "%g" % r["sim_s"], "%.1f" % r["wall_s"], "%.1f" % r["speed"],
                      "%.1f" % r["control_rate_hz"], "-" if r.get("tracking") is None else "%.3f %%" % (
                          100 * r["tracking"]), "%.1e" % r["energy_balance_error"], r["plant_steps"],
                      "`%s` %s" % (r.get("commit", "?"), r.get("date", "?"))))
    out.append(_md_table(("case", "what", "simulated s", "wall s", "sim/wall", "loop Hz", "tracking",
                          "energy balance", "plant steps", "run at"), trows) + "\n")
    return "\n".join(out)


def _short(v):
    s = json.dumps(v)
    return s if len(s) < 200 else s[:197] + "..."


def _dur(s):
    if s is None:
        return "?"
    return "%d min %02d s" % (int(s) // 60, int(s) % 60) if s >= 60 else "%.0f s" % s


SETUP_MD = """## Set-up

- **Static and dynamic (EN 50530)**: the standard's simple crystalline-silicon PV model (EN 50530 Annex B, the
  simulator's `en50530` source) rated %(p)g W at V_mpp %(v)g V (V_oc 75 V), cell held at 25 C, into an 8s LiFePO4
  bank of 400 Ah at half charge (~26.4 V). Why this string: V_mpp stays in the upper middle of the FUGU's usable
  input window (~28-78 V over a 24 V bank) at every level, V_oc stays under the 80 V input rating, and 750 W into
  ~26 V is ~28 A, under the 30 A output rating and under the original's 30 A charge current (ours is set to the
  35 A board rating: its current regulator starts to cap the tracker's steps in the last 10 %% below a limit), so
  no current or charge limit acts and only tracking is measured (a 48 V bank would exceed the 50 V output
  rating). See `bench/scenarios/en50530_array.toml`.
- **Static levels**: 5, 10, 20, 25, 30, 50, 75, 100 %% of the rated DC power, the irradiance of each found on the
  plant's own MPP (`bench/en50530.py`). Weighted: EU (EN 50530; JRC Ispra) %(eu)s; CEC (Sandia inverter test
  protocol 2005, p. 17) %(cec)s (both as quoted by PVsyst's help, "European or CEC Efficiency").
- **Dynamic**: EN 50530 Annex B sequences 1 and 2 from `sim/profiles.py` (its table of slopes and repetitions;
  see the caveat there: the repetition counts are the commonly quoted ones), one figure per slope block and one
  for the whole sequence after the stabilisation period.
- **Partial shade and real days**: 2 x Canadian Solar CS6K-300P in series (CEC database, 3 bypass diodes each),
  NOCT cell temperature, same bank (`bench/scenarios/cec_array.toml`).
- **Original FUGU tracker** (`bench/fugu_original/code.py`, host only): the Arduino firmware V1.10's loop
  reimplemented on the simulated board: perturb and observe, one 11-bit PWM count per loop, direction from the
  signs of dP and dV of the loop's averaged readings (3 voltage and 4 current samples, no other filtering), duty
  clamped to [0.995 V_out/V_in, 97 %%], CC/CV ahead of it, input-under-voltage restart from the predicted duty. Its
  ADC: %(adc)s single-shot at the Adafruit Arduino library's default rate (ADS1015 1600 SPS, ADS1115 128 SPS), gain
  2, on I2C at the Arduino Wire default of 100 kHz (10 conversions per loop); its cost model: %(i2c_us)g us per
  register access (two Wire transactions), %(step_us)g us per loop for its serial telemetry (see
  `bench/cases.py`). Not reproduced: the LCD refresh once a second, Wi-Fi, settings storage.
- **Ours**: `code.py` with the simulator's default (CircuitPython on ESP32-S3) cost model and the board config's ADC.

Run `python -m bench` (all cases; `--jobs 2` on two cores), `python -m bench --case NAME` (re-run some cases and
merge), `python -m bench --quick` (the CI set: shortened sequences, exit status 1 when a floor is not reached).
"""


def write_benchmarks_md(results, path=BENCHMARKS_PATH):
    with open(path, "w") as f:
        f.write(benchmarks_md(results))
