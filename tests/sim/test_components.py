"""Behaviour of the plant component models (battery, loads, thermal, analog front-ends) that a user would recognise."""

import math
import os
import random
import sys

import pytest

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))

from sim.plant.battery import CHEMISTRIES, Battery  # noqa: E402
from sim.plant.frontend import ACS712, Divider, ShuntAmp, FUGU_ACS712_DIVIDER_OHM  # noqa: E402
from sim.plant.loads import DCLoad  # noqa: E402
from sim.plant.thermal import (  # noqa: E402
    FUGU_NTC_STEINHART_HART, NTC, Fan, Heatsink, ntc_divider_v,
)


# ------------------------------------------------------------------------------------------------ helpers
def cc_cv(bat, i_max_a, v_cv_v, seconds, dt_s=0.25, record_every_s=60.0, use_step_source=False):
    """Charge at i_max until the terminal reaches v_cv, then hold v_cv. Returns [(t, i, v)] and t_cv.

    With thevenin() the (e, r) source is held over dt like the plant does, so dt must stay small (stiff overcharge
    branch); use_step_source=True uses thevenin_step(dt) instead, which is stable with long steps."""
    t = 0.0
    t_cv = None
    trace = []
    next_rec = 0.0
    while t < seconds:
        e, r = bat.thevenin_step(dt_s) if use_step_source else bat.thevenin()
        i = min(i_max_a, (v_cv_v - e) / r)
        if t_cv is None and i < i_max_a:
            t_cv = t
        if t >= next_rec:
            trace.append((t, i, e + i * r))
            next_rec += record_every_s
        bat.step(i, dt_s)
        t += dt_s
    return trace, t_cv


def first_time_below(trace, i_limit, after_s):
    for t, i, _ in trace:
        if t > after_s and i < i_limit:
            return t
    return None


# ------------------------------------------------------------------------------------------------ battery: OCV
# Published rest voltages (25 C) that the tables are built from, per cell: (soc, volts, tolerance).
PUBLISHED_OCV = {
    # 12.8 V LiFePO4 rest chart: 10.0 V at 0 %, 13.13 V at 50 %, 13.6 V at 100 % (/4)
    "lifepo4": [(0.0, 2.50, 0.02), (0.5, 13.13 / 4, 0.02), (1.0, 3.40, 0.02)],
    # NMC: 3.0 V empty, ~3.75 V at 50 %, 4.20 V full
    "li_nmc": [(0.0, 3.00, 0.02), (0.5, 3.75, 0.04), (1.0, 4.20, 0.02)],
    # Trojan flooded table: 2.017 V/cell at 50 %, 2.122 V/cell at 100 %; 0 % extrapolated from 10 % = 1.918 V
    "lead_flooded": [(0.0, 1.90, 0.03), (0.5, 2.017, 0.01), (1.0, 2.122, 0.01)],
    # AGM 12 V: 11.70 / 12.30 / 12.84 V
    "lead_agm": [(0.0, 11.70 / 6, 0.02), (0.5, 12.30 / 6, 0.02), (1.0, 12.84 / 6, 0.02)],
    # gel 12 V: 11.76 / 12.36 / 12.90 V
    "lead_gel": [(0.0, 11.76 / 6, 0.02), (0.5, 12.36 / 6, 0.02), (1.0, 12.90 / 6, 0.02)],
}


@pytest.mark.parametrize("chem", CHEMISTRIES)
def test_rest_ocv_matches_published_tables(chem):
    cells = {"lifepo4": 4, "li_nmc": 7, "lead_flooded": 6, "lead_agm": 6, "lead_gel": 6}[chem]
    for soc, v_cell, tol in PUBLISHED_OCV[chem]:
        bat = Battery(chem, cells, 100.0, soc=soc)
        e, r = bat.thevenin()
        assert abs(e / cells - v_cell) <= tol, (chem, soc, e / cells, v_cell)
        assert r > 0.0
        assert bat.rest_v() == pytest.approx(e)


def test_ocv_monotonic_and_nominal_voltage():
    for chem in CHEMISTRIES:
        prev = -1.0
        for k in range(0, 101):
            e, _ = Battery(chem, 1, 100.0, soc=k / 100).thevenin()
            assert e >= prev, (chem, k)
            prev = e
    assert Battery("lifepo4", 4, 100.0).nominal_v() == pytest.approx(12.8)
    assert Battery("lead_agm", 6, 100.0).nominal_v() == pytest.approx(12.0)
    assert Battery("li_nmc", 7, 50.0).nominal_v() == pytest.approx(25.2)


def test_battery_rejects_bad_arguments():
    with pytest.raises(ValueError, match="chemistry"):
        Battery("nicd", 10, 10.0)
    with pytest.raises(ValueError, match="cells"):
        Battery("lifepo4", 0, 100.0)
    with pytest.raises(ValueError, match="capacity"):
        Battery("lifepo4", 4, -5.0)
    with pytest.raises(ValueError, match="soc"):
        Battery("lifepo4", 4, 100.0, soc=1.5)
    with pytest.raises(ValueError, match="temp"):
        Battery("lifepo4", 4, 100.0, temp_c=200.0)
    with pytest.raises(ValueError, match="r_int"):
        Battery("lifepo4", 4, 100.0, r_int_ohm=0.0)
    assert Battery("lifepo4", 4, 100.0, r_int_ohm=0.01).thevenin()[1] == pytest.approx(0.01)


def test_resistance_scales_with_capacity_and_cells():
    r100 = Battery("lifepo4", 4, 100.0).thevenin()[1]
    r50 = Battery("lifepo4", 4, 50.0).thevenin()[1]
    r100_8 = Battery("lifepo4", 8, 100.0).thevenin()[1]
    assert r50 == pytest.approx(2 * r100)
    assert r100_8 == pytest.approx(2 * r100)
    assert r100 == pytest.approx(4 * 0.30e-3)


# ------------------------------------------------------------------------------------------------ battery: charging
def test_lifepo4_cc_charge_reaches_3v6_per_cell_in_expected_time():
    """100 Ah 4S LiFePO4, 50 A from 20 %: ~80 Ah to put in -> about 1.5..1.6 h to 14.4 V."""
    bat = Battery("lifepo4", 4, 100.0, soc=0.2)
    t = 0.0
    dt = 2.0
    while bat.terminal_v(50.0) < 3.6 * 4:
        bat.step(50.0, dt)
        t += dt
        assert t < 3 * 3600, "never reached 3.6 V/cell"
    hours = t / 3600
    assert 1.35 < hours < 1.75, hours
    assert 0.9 < bat.soc < 1.02


def test_soc_is_coulomb_counted_in_the_flat_region():
    bat = Battery("lifepo4", 4, 100.0, soc=0.3)
    for _ in range(3600):
        bat.step(20.0, 1.0)  # 20 Ah in
    assert bat.soc == pytest.approx(0.5, abs=0.002)
    for _ in range(3600):
        bat.step(-20.0, 1.0)
    assert bat.soc == pytest.approx(0.3, abs=0.002)


def test_lifepo4_cv_hold_tapers_over_minutes():
    """CV 3.55 V/cell after a 50 A bulk: the tail falls below 5 A (5 % of C) within minutes, not instantly."""
    bat = Battery("lifepo4", 4, 100.0, soc=0.2)
    trace, t_cv = cc_cv(bat, 50.0, 3.55 * 4, 3 * 3600, dt_s=0.25, record_every_s=30.0)
    assert t_cv is not None and 1.2 * 3600 < t_cv < 1.8 * 3600
    t_tail = first_time_below(trace, 5.0, t_cv)
    assert t_tail is not None
    assert 3 * 60 < t_tail - t_cv < 45 * 60, (t_tail - t_cv) / 60
    currents = [i for t, i, _ in trace if t > t_cv + 60]
    drops = [b - a for a, b in zip(currents[:-1], currents[1:], strict=True)]
    assert max(drops) <= 1e-6, "CV current must decay monotonically"
    assert currents[-1] < 0.3  # lithium: no gassing, the current goes to ~0.1 %C
    v_end = bat.terminal_v(0.0)
    for _ in range(3600):
        bat.step(0.0, 1.0)
    assert v_end > 3.5 * 4 and 3.38 * 4 < bat.terminal_v(0.0) < 3.45 * 4  # rests back near 3.40 V/cell
    assert 0.995 <= bat.soc < 1.005  # full; only a slight overcharge state above 100 %


def test_agm_absorption_tapers_to_a_gassing_floor_and_relaxes():
    """12 V 100 Ah AGM, 20 A bulk from 50 %, 14.4 V absorption: tail below 5 A within hours; it tapers to the
    gassing current (~1 %C), not to zero; after charging the terminal voltage relaxes towards the rest OCV."""
    bat = Battery("lead_agm", 6, 100.0, soc=0.5)
    trace, t_cv = cc_cv(bat, 20.0, 2.4 * 6, 6 * 3600, dt_s=0.5)
    assert t_cv is not None and 0.75 < bat.soc  # CV reached...
    soc_at_cv = 0.5 + 20.0 * 0.98 * t_cv / 3600 / 100.0
    assert 0.75 < soc_at_cv < 0.95  # ...at the usual 75..95 % for C/5
    t_tail = first_time_below(trace, 5.0, t_cv)
    assert t_tail is not None
    assert 15 * 60 < t_tail - t_cv < 4 * 3600, (t_tail - t_cv) / 60
    i_end = trace[-1][1]
    assert 0.3 < i_end < 2.0
    assert bat.gassing_a > 0.3
    assert bat.soc > 0.99

    v0 = bat.terminal_v(0.0)
    samples = []
    for minute in range(121):
        if minute in (0, 15, 120):
            samples.append(bat.terminal_v(0.0))
        for _ in range(60):
            bat.step(0.0, 1.0)
    assert v0 > 14.2
    assert samples[0] > samples[1] > samples[2]
    assert 12.6 < samples[2] < 13.2  # 2.10..2.20 V/cell after 2 h rest


def test_lead_float_current_doubles_per_10k():
    """Gassing onset falls 4 mV/K/cell: at a fixed float voltage the current doubles per ~10 K."""
    floats = []
    for temp in (25.0, 35.0):
        bat = Battery("lead_agm", 6, 100.0, soc=1.0, temp_c=temp)
        trace, _ = cc_cv(bat, 20.0, 2.27 * 6, 12 * 3600, dt_s=10.0, record_every_s=600.0, use_step_source=True)
        floats.append(trace[-1][1])
    assert 0.05 < floats[0] < 0.2  # ~1 mA/Ah at 2.27 V/cell
    assert 1.6 < floats[1] / floats[0] < 2.5


def test_rate_capacity_effect():
    """Higher discharge current delivers less before cut-off (lead-acid strongly, lithium slightly)."""
    def delivered(chem, cells, rate_c, cutoff_cell_v):
        bat = Battery(chem, cells, 100.0, soc=1.0)
        i = rate_c * 100.0
        t = 0.0
        while bat.terminal_v(-i) > cutoff_cell_v * cells and t < 40 * 3600:
            bat.step(-i, 10.0)
            t += 10.0
        return i * t / 3600.0

    agm_slow, agm_fast = delivered("lead_agm", 6, 0.05, 1.75), delivered("lead_agm", 6, 1.0, 1.75)
    assert agm_slow > 95 and 45 < agm_fast < 75
    lfp_slow, lfp_fast = delivered("lifepo4", 4, 0.05, 2.8), delivered("lifepo4", 4, 1.0, 2.8)
    assert lfp_slow > 90 and lfp_fast > 0.9 * lfp_slow


def test_polarisation_relaxes_after_current_stops():
    bat = Battery("lifepo4", 4, 100.0, soc=0.5)
    for _ in range(600):
        bat.step(-50.0, 1.0)
    v_loaded_rest = bat.terminal_v(0.0)
    for _ in range(1800):
        bat.step(0.0, 1.0)
    assert bat.terminal_v(0.0) > v_loaded_rest  # recovers after a discharge
    assert bat.terminal_v(0.0) == pytest.approx(bat.rest_v(), abs=0.005)


def test_thevenin_step_keeps_long_step_cv_loops_stable():
    """A CV loop with 60 s steps on thevenin_step() tracks the 1 s reference; no oscillation."""
    ref = Battery("lead_agm", 6, 100.0, soc=0.8)
    cc_cv(ref, 20.0, 14.4, 2 * 3600, dt_s=0.25)
    bat = Battery("lead_agm", 6, 100.0, soc=0.8)
    currents = []
    for _ in range(120):
        e, r = bat.thevenin_step(60.0, charging=True)
        i = min(20.0, (14.4 - e) / r)
        currents.append(i)
        bat.step(i, 60.0)
    assert min(currents) > 0.0
    assert bat.soc == pytest.approx(ref.soc, abs=0.01)


def test_battery_step_is_fast_enough_for_the_hot_path():
    import time
    bat = Battery("lifepo4", 4, 100.0, soc=0.5)
    t0 = time.perf_counter()
    for _ in range(100_000):
        e, r = bat.thevenin()
        bat.step(10.0, 0.036)
    assert time.perf_counter() - t0 < 2.0  # 1e5 calls = one simulated hour


# ------------------------------------------------------------------------------------------------ loads
def _num_slope(load, v, h=1e-6):
    return (load(v + h)[0] - load(v - h)[0]) / (2 * h)


def test_loads_basic_values():
    assert DCLoad("off").current_and_slope(12.0) == (0.0, 0.0)
    assert DCLoad("resistive", 4.0).current_and_slope(12.0) == pytest.approx((3.0, 0.25))
    assert DCLoad("constant_current", 5.0)(12.0)[0] == pytest.approx(5.0)
    i, di = DCLoad("constant_power", 120.0)(24.0)
    assert i == pytest.approx(5.0, rel=1e-3) and di == pytest.approx(-120.0 / 24.0 ** 2, rel=1e-3)


@pytest.mark.parametrize("load", [DCLoad("constant_current", 10.0), DCLoad("constant_power", 500.0),
                                  DCLoad("resistive", 2.0)])
def test_loads_fade_out_smoothly_near_zero(load):
    v = -2.0
    while v < 30.0:
        i, di = load(v)
        assert math.isfinite(i) and math.isfinite(di)
        assert abs(di - _num_slope(load, v)) < 1e-4 * max(1.0, abs(di)), (v, di, _num_slope(load, v))
        assert i * v >= 0.0  # passive: never a source
        v += 0.0137
    assert load(0.0)[0] == 0.0
    if load.kind != "resistive":
        peak = max(abs(load(k * 0.01)[0]) for k in range(3000))
        assert peak <= 10.0 * load(24.0)[0]  # bounded (CP: P/(sqrt(2)*fade_v) at fade_v), no P/v blow-up
        assert abs(load(0.05)[0]) < 0.06 * peak  # faded out near 0 V


def test_load_rejects_bad_arguments():
    with pytest.raises(ValueError):
        DCLoad("heater", 1.0)
    with pytest.raises(ValueError):
        DCLoad("resistive", 0.0)
    with pytest.raises(ValueError):
        DCLoad("constant_power", -5.0)
    with pytest.raises(ValueError):
        DCLoad("resistive", 5.0, uvlo_v=36.0)  # a lockout is a converter's
    with pytest.raises(ValueError):
        DCLoad("constant_power", 5.0, uvlo_v=0.0)


def test_a_converter_load_is_locked_out_below_its_uvlo_and_restarts_above_1_1_times_it():
    from sim.plant import stage_kernel as K
    from sim.plant.converter import PowerStage

    st = PowerStage()
    st.set_port(False, load=DCLoad("constant_power", 400.0, uvlo_v=36.0))
    seen = []
    for v in (20.0, 38.0, 39.5, 39.7, 48.0, 37.0, 36.1, 35.9, 38.0, 39.7):
        K.uvlo_update(st.S, st.U, K.U_PL, v)  # what the stage does after each step, at the terminal voltage
        seen.append(round(-st.port_current(v)[0], 3))
    on = [round(400.0 / v, 3) for v in (39.7, 48.0, 37.0, 36.1)]
    assert seen == [0.0, 0.0, 0.0, on[0], on[1], on[2], on[3], 0.0, 0.0, round(400.0 / 39.7, 3)]


# ------------------------------------------------------------------------------------------------ thermal
def test_heatsink_step_response_time_constant_and_steady_state():
    hs = Heatsink()
    p = 12.5  # 500 W at 2.5 % loss
    tau = 2.5 * 150.0
    t = 0.0
    while t < tau - 1e-9:
        hs.step(p, 0.0, 1.0)
        t += 1.0
    rise_ss = p * 2.5
    assert hs.temp_c - 25.0 == pytest.approx(rise_ss * (1 - math.exp(-1)), rel=1e-6)
    hs.step(p, 0.0, 1e7)  # any dt: lands on the steady state, no overshoot
    assert hs.temp_c == pytest.approx(25.0 + rise_ss)
    assert 50.0 < hs.temp_c < 60.0  # FUGU at 500 W without fan


def test_fan_reduces_steady_temperature_and_full_power_needs_it():
    hs = Heatsink()
    no_fan = hs.steady_state_c(25.0, 0.0)  # 1 kW at 2.5 % loss
    half = hs.steady_state_c(25.0, 0.5)
    full = hs.steady_state_c(25.0, 1.0)
    assert no_fan > 80.0 and full < 50.0 and full < half < no_fan
    assert full == pytest.approx(25.0 + 25.0 * 0.8)
    hs.step(25.0, 1.0, 1e7)
    assert hs.temp_c == pytest.approx(full)
    hs.t_amb_c = 40.0
    hs.step(0.0, 1.0, 1e7)
    assert hs.temp_c == pytest.approx(40.0)


def test_fan_airflow_failure_and_tach():
    fan = Fan(rpm_max=3000, pulses_per_rev=2)
    assert fan.airflow(True) == 1.0 and fan.airflow(0.4) == 0.4 and fan.airflow(0) == 0.0
    assert fan.tach_hz(1.0) == pytest.approx(100.0)
    fan.failed = True
    assert fan.airflow(1.0) == 0.0 and fan.tach_hz(1.0) == 0.0


def test_ntc_resistance_beta_model():
    ntc = NTC(10000.0, 3950.0)
    assert ntc.resistance_ohm(25.0) == pytest.approx(10000.0)
    assert 32000 < ntc.resistance_ohm(0.0) < 34500  # 10k/3950 tables: ~32.6..33.6 k
    assert 1000 < ntc.resistance_ohm(85.0) < 1150  # ~1.06..1.09 k
    for t in (-20.0, 0.0, 25.0, 60.0, 100.0):
        assert ntc.temperature_c(ntc.resistance_ohm(t)) == pytest.approx(t, abs=1e-9)


def test_ntc_steinhart_hart_fugu_coefficients():
    ntc = NTC(steinhart_hart=FUGU_NTC_STEINHART_HART)
    assert ntc.resistance_ohm(25.0) == pytest.approx(10000.0, rel=0.03)
    for t in (-20.0, 0.0, 40.0, 90.0):
        assert ntc.temperature_c(ntc.resistance_ohm(t)) == pytest.approx(t, abs=1e-6)


def test_ntc_divider_and_faults():
    ntc = NTC()
    assert ntc_divider_v(25.0, ntc) == pytest.approx(1.65)
    assert ntc_divider_v(60.0, ntc) < 1.65  # NTC to ground: hotter -> lower
    assert ntc_divider_v(60.0, ntc, ntc_to_ground=False) > 1.65  # NTC on top (FUGU): hotter -> higher
    assert ntc_divider_v(25.0, ntc, fault="open") == pytest.approx(3.3)
    assert ntc_divider_v(25.0, ntc, fault="short") == 0.0
    assert ntc_divider_v(25.0, ntc, ntc_to_ground=False, fault="open") == 0.0
    assert ntc_divider_v(25.0, ntc, ntc_to_ground=False, fault="short") == pytest.approx(3.3)
    with pytest.raises(ValueError):
        ntc_divider_v(25.0, ntc, fault="melted")


# ------------------------------------------------------------------------------------------------ front-ends
def test_divider_tolerance_draws_within_tolerance_and_reproducible():
    for seed in range(200):
        d = Divider(200e3, 5.1e3, tolerance_pct=1.0, rng=random.Random(seed))
        assert abs(d.r_top_ohm / 200e3 - 1) <= 0.01 and abs(d.r_bottom_ohm / 5.1e3 - 1) <= 0.01
        assert d.nominal_ratio == pytest.approx(5.1 / 205.1)
    a = Divider(200e3, 5.1e3, 1.0, rng=random.Random(42))
    b = Divider(200e3, 5.1e3, 1.0, rng=random.Random(42))
    c = Divider(200e3, 5.1e3, 1.0, rng=random.Random(43))
    assert (a.r_top_ohm, a.r_bottom_ohm) == (b.r_top_ohm, b.r_bottom_ohm)
    assert a.ratio != c.ratio
    assert a.v_out(40.0) == pytest.approx(40.0 * a.ratio)
    exact = Divider(200e3, 5.1e3)
    assert exact.ratio == exact.nominal_ratio


def test_acs712_fugu_reversed_mounting_and_divider():
    div = Divider(*FUGU_ACS712_DIVIDER_OHM)
    acs = ACS712(divider=div)  # 66 mV/A, 5 V, direction -1
    k = 10.0 / 13.3
    assert acs.v_out(0.0) == pytest.approx(2.5 * k)
    assert acs.v_out(10.0) == pytest.approx((2.5 - 0.66) * k)
    assert acs.v_out(10.0) < acs.v_out(0.0)
    # the FUGU firmware's inversion recovers the current
    v = acs.v_out(10.0)
    assert -((v * 1.33) - 2.5) / 0.066 == pytest.approx(10.0, rel=0.01)
    assert ACS712(direction=+1).v_out(10.0) == pytest.approx(2.5 + 0.66)


def test_acs712_clipping_offset_and_noise():
    acs = ACS712()
    assert acs.v_out(50.0) == 0.0  # 2.5 - 3.3 V clips at 0
    assert acs.v_out(-50.0) == 5.0  # clips at vcc
    assert ACS712(divider=Divider(3.3e3, 10e3)).v_out(-50.0) == pytest.approx(5.0 * 10 / 13.3)
    assert ACS712(offset_error_v=0.01).v_out(0.0) == pytest.approx(2.51)
    assert ACS712(vcc_v=4.8).v_out(0.0) == pytest.approx(2.4)  # ratiometric
    noisy = ACS712(noise_rms_v=0.002, rng=random.Random(1))
    samples = [noisy.v_out(0.0) for _ in range(4000)]
    mean = sum(samples) / len(samples)
    sd = math.sqrt(sum((s - mean) ** 2 for s in samples) / len(samples))
    assert mean == pytest.approx(2.5, abs=2e-4) and sd == pytest.approx(0.002, rel=0.1)
    again = ACS712(noise_rms_v=0.002, rng=random.Random(1))
    assert [again.v_out(0.0) for _ in range(5)] == samples[:5]


def test_shunt_amp():
    amp = ShuntAmp()  # 1 mOhm, gain 50, 1.65 V reference
    assert amp.v_out(0.0) == pytest.approx(1.65)
    assert amp.v_out(10.0) == pytest.approx(2.15)
    assert amp.v_out(-10.0) == pytest.approx(1.15)
    assert amp.v_out(100.0) == 3.3 and amp.v_out(-100.0) == 0.0
    assert ShuntAmp(offset_v=0.005).v_out(0.0) == pytest.approx(1.655)


# ------------------------------------------------------------------------------------------------ robustness
from hypothesis import given, settings, strategies as st  # noqa: E402


@settings(max_examples=60, deadline=None)
@given(chem=st.sampled_from(CHEMISTRIES),
       soc0=st.floats(0.0, 1.0),
       temp=st.floats(-20.0, 60.0),
       steps=st.lists(st.tuples(st.floats(-2.0, 2.0), st.floats(0.01, 600.0)), min_size=1, max_size=60))
def test_battery_state_stays_finite_and_plausible(chem, soc0, temp, steps):
    """Any sequence of currents (up to +-2C) and step sizes keeps the state finite and the EMF plausible."""
    bat = Battery(chem, 4, 50.0, soc=soc0, temp_c=temp)
    for c_rate, dt in steps:
        bat.step(c_rate * 50.0, dt)
        e, r = bat.thevenin()
        es, rs = bat.thevenin_step(dt, charging=c_rate > 0)
        for x in (e, r, es, rs, bat.soc, bat.v_p, bat.delta, bat.gassing_a):
            assert math.isfinite(x)
        assert r > 0.0 and rs >= r
        assert e >= 0.0 and (e - bat.v_p) / 4 < 6.0  # EMF without polarisation
        assert bat.soc < 1.2
