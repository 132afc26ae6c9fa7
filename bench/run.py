"""Run one case with one tracker on the simulated board and measure its windows.

The energies come from the plant's own books (``Plant.e_pv_j``: the PV energy the converter drew;
``Plant.e_available_j``: the integral of the global MPP power, partial shade included), read at each window's
start and end by events on the simulated clock, so a window's efficiency is exact to the plant's integration and
does not depend on the 1 s CSV sampling.
"""

import os
import sys
import time

from bench.cases import ORIGINAL, ORIGINAL_ADC, ORIGINAL_CODE, ORIGINAL_COST, OURS_CODE


def _forget_firmware_modules():
    """Drop device-code modules (lib/, boardconfigs/, extensions/) a previous run in this process imported."""
    from sim.install import PROJECT_ROOT

    dirs = tuple(os.path.join(PROJECT_ROOT, d) + os.sep for d in ("lib", "boardconfigs", "extensions"))
    for name, mod in list(sys.modules.items()):
        if (getattr(mod, "__file__", None) or "").startswith(dirs):
            del sys.modules[name]


def tracker_overrides(tracker, original_adc=ORIGINAL_ADC):
    """Scenario overrides that make the simulated board the one this tracker's firmware was built for."""
    if tracker != ORIGINAL:
        return {}
    out = {"board.adc": original_adc}
    for k, v in ORIGINAL_COST.items():
        out["board.cost." + k] = v
    return out


def run_case(case, tracker, ours_code=OURS_CODE, original_adc=ORIGINAL_ADC):
    """Run ``case`` with ``tracker`` ("ours" or "original"); returns a plain dict (picklable):
    figures {figure: % or None}, mean_mpp_w {figure: W}, wall_s, sim_s, control_rate_hz, control_steps,
    faults, resets, overall (the whole run's tracking efficiency, %)."""
    wall0 = time.perf_counter()
    from sim.install import install

    install()
    from sim.runner import SimRun
    from sim.scenario import load_scenario

    overrides = dict(case.overrides)
    overrides["scenario.duration_s"] = case.duration_s
    overrides.update(tracker_overrides(tracker, original_adc))
    if tracker == ORIGINAL:
        os.environ["FUGU_ORIGINAL_ADC"] = original_adc
        code = ORIGINAL_CODE
    else:
        code = ours_code
    _forget_firmware_modules()  # each run boots the firmware fresh, as a power-on would
    sc = load_scenario(case.base, overrides)
    run = SimRun(sc, echo=False, status_every_s=0, code_path=code)
    plant = run.sim.plant
    clock = run.sim.board.clock
    snaps = {}

    def snap(t_ns):
        snaps[t_ns] = (plant.e_pv_j, plant.e_available_j)

    bounds = sorted({int(round(t * 1e9)) for _, t0, t1 in case.windows for t in (t0, t1)})
    for t_ns in bounds:
        clock.schedule(t_ns, snap)
    summary = run.run()
    figures = {}
    mean_mpp = {}
    for name, t0, t1 in case.windows:
        a, b = snaps.get(int(round(t0 * 1e9))), snaps.get(int(round(t1 * 1e9)))
        if a is None or b is None:
            figures[name] = None
            continue
        e_pv, e_av = b[0] - a[0], b[1] - a[1]
        figures[name] = round(100.0 * e_pv / e_av, 4) if e_av > 0 else None
        mean_mpp[name] = round(e_av / (t1 - t0), 2)
    eff = summary.get("tracking_efficiency")
    return {
        "case": case.name,
        "tracker": tracker,
        "figures": figures,
        "mean_mpp_w": mean_mpp,
        "wall_s": round(time.perf_counter() - wall0, 2),
        "sim_s": summary["sim_seconds"],
        "control_rate_hz": summary["control_rate_hz"],
        "control_steps": summary["control_steps"],
        "faults": summary["faults"],
        "resets": summary["resets"],
        "overall": None if eff is None else round(100.0 * eff, 4),
    }
