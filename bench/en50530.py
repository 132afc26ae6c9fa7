"""EN 50530 test conditions for the benchmark: the static efficiency levels and their weights, the irradiance that
gives each level on the standard's simple PV model, and the dynamic ramp sequences with their slope blocks.

Static MPPT efficiency (EN 50530:2010 + A1:2013, clause 4.3; IEC 62891): the PV simulator's MPP power is set to
a fraction of the converter's rated DC power and held, and after stabilisation the harvested energy is compared
with the MPP energy over a measurement window. The levels 5 ... 100 % are the union of the points the European
and the CEC weighted efficiencies use:

* European ("EU") weighting, proposed by the JRC Ispra for a middle-European climate and used by EN 50530 for the
  weighted MPPT efficiency: 0.03 at 5 %, 0.06 at 10 %, 0.13 at 20 %, 0.10 at 30 %, 0.48 at 50 %, 0.20 at 100 %.
* CEC weighting (California Energy Commission; Sandia, "Performance Test Protocol for Evaluating Inverters Used
  in Grid-Connected Photovoltaic Systems", 2004/2005, p. 17): 0.04 at 10 %, 0.05 at 20 %, 0.12 at 30 %, 0.21 at
  50 %, 0.53 at 75 %, 0.05 at 100 %.
  Both as quoted by PVsyst's help, "European or CEC Efficiency"
  (https://www.pvsyst.com/help/component-database/grid-inverters/grid-inverters-main-interface/
  grid-inverters-efficiency-curve/european-or-cec-efficiency.html).

Dynamic MPPT efficiency (EN 50530 Annex B; IEC 62891 Annex B): the sequences, slopes and repetition counts are
the simulator's (``sim.profiles.EN50530_SEQUENCES``, with their sources and caveats there); this module adds what
the benchmark needs on top: the time window of each slope block, and a repetition override for the shortened
(--quick) runs. With the standard's repetitions the breakpoints are exactly ``sim.profiles.en50530_sequence``'s.
"""

import math
from functools import lru_cache

from sim import profiles

STATIC_LEVELS_PCT = (5, 10, 20, 25, 30, 50, 75, 100)
EU_WEIGHTS = {5: 0.03, 10: 0.06, 20: 0.13, 30: 0.10, 50: 0.48, 100: 0.20}
CEC_WEIGHTS = {10: 0.04, 20: 0.05, 30: 0.12, 50: 0.21, 75: 0.53, 100: 0.05}
T_CELL_C = 25.0  # the standard holds the module temperature at 25 C (STC) for both tests


def weighted(efficiencies, weights):
    """Weighted efficiency from {level_pct: efficiency}; None unless every weighted level is present."""
    if any(efficiencies.get(lv) is None for lv in weights):
        return None
    return sum(w * efficiencies[lv] for lv, w in weights.items())


@lru_cache(maxsize=8)
def _en50530_source(p_mpp_w, v_mpp_v, technology):
    from sim.plant.pv import PVSource

    return PVSource.from_en50530(p_mpp_w, v_mpp_v, technology=technology, n_substrings=1)


def mpp_power_w(p_mpp_w, v_mpp_v, g_w_m2, technology="cSi", t_cell_c=T_CELL_C):
    """The MPP power (W) of the EN 50530 generator (STC rating p_mpp_w at v_mpp_v) at g_w_m2 and t_cell_c, as the
    simulator's plant computes it."""
    pv = _en50530_source(float(p_mpp_w), float(v_mpp_v), technology)
    pv.set_conditions(float(g_w_m2), float(t_cell_c))
    return pv.mpp()[2]


@lru_cache(maxsize=64)
def level_irradiance_w_m2(level_pct, p_mpp_w, v_mpp_v, technology="cSi", t_cell_c=T_CELL_C):
    """The irradiance (W/m2) at which the generator's MPP power is level_pct % of its rated power p_mpp_w (the
    converter's rated DC power in the standard's terms), found by bisection on the plant's own MPP (the simple
    model is not exactly linear in G: V_oc grows with ln G). The plant evaluates the array on a 0.1 W/m2 grid of
    irradiance, so the answer is the grid point whose MPP power is nearest (within 0.1 % of the level at 5 %)."""
    target = float(p_mpp_w) * level_pct / 100.0
    lo, hi = 0.1, 2000.0
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if mpp_power_w(p_mpp_w, v_mpp_v, mid, technology, t_cell_c) < target:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-4:
            break
    grid = [round(math.floor(lo * 10.0) / 10.0 + k * 0.1, 1) for k in (-1, 0, 1, 2)]
    return min(grid, key=lambda g: abs(mpp_power_w(p_mpp_w, v_mpp_v, g, technology, t_cell_c) - target))


def static_profile(levels_pct, irradiances, settle_s, window_s, boot_s):
    """Irradiance steps through the levels in the given order. Returns (points, windows, duration_s): points for a
    "points" profile, windows [(level_pct, t_start, t_end)]: each level holds for boot_s (first level only) +
    settle_s + window_s, and is measured over its last window_s."""
    points = []
    windows = []
    t = 0.0
    for k, (lv, g) in enumerate(zip(levels_pct, irradiances)):
        hold = settle_s + window_s + (boot_s if k == 0 else 0.0)
        points.append([t, g])
        points.append([t + hold, g])
        windows.append((lv, t + hold - window_s, t + hold))
        t += hold
    return points, windows, t


def dynamic_sequence(seq, slopes=None, repetitions=None, start_s=profiles.EN50530_START_S,
                     dwell_s=profiles.EN50530_DWELL_S):
    """EN 50530 dynamic test sequence ``seq`` (1 or 2) as (points, blocks, duration_s).

    ``slopes``: a subset of the standard's slopes (standard order kept); ``repetitions``: cycles per slope instead
    of the standard's counts (the shortened runs use 1). blocks: [(slope_w_m2_s, t_start, t_end, repetitions)], one
    per slope, back to back after the start_s stabilisation at the low level."""
    tab = profiles.EN50530_SEQUENCES[int(seq)]
    lo, hi = tab["low_w_m2"], tab["high_w_m2"]
    allowed = profiles.en50530_slopes(seq)
    if slopes is None:
        picked = allowed
    else:
        wanted = [float(s) for s in slopes]
        unknown = [s for s in wanted if s not in allowed]
        if unknown:
            raise ValueError("%s W/m2/s: not a slope of EN 50530 sequence %d" % (unknown, seq))
        picked = [s for s in allowed if s in wanted]
    points = [[0.0, lo]]
    t = float(start_s)
    if t > 0.0:
        points.append([t, lo])
    blocks = []
    for slope in picked:
        n = profiles.en50530_repetitions(seq, slope) if repetitions is None else int(repetitions)
        ramp = (hi - lo) / slope
        t0 = t
        for _ in range(n):
            for dt, g in ((ramp, hi), (dwell_s, hi), (ramp, lo), (dwell_s, lo)):
                t += dt
                points.append([t, g])
        blocks.append((slope, t0, t, n))
    return points, blocks, t
