"""Energy counting: exact integration over the measured time step, no loss of small increments at large totals,
battery energy in and out separately, and the original FUGU's float32 counter failure shown not to happen."""

import random
from fractions import Fraction

import numpy as np

from fugu import energy
from fugu.energy import CH_BAT_IN, CH_BAT_OUT, CH_PV, DT_MAX_MS, P_LIMIT_MW, EnergyMeter

UJ_PER_MWH = 3600000  # mW*ms in one mWh


def meter_at(total_mwh):
    m = EnergyMeter()
    m.restore((0, 0, total_mwh % 1000, total_mwh // 1000) * 3)
    return m


def test_million_tiny_steps_at_a_large_total_lose_nothing():
    start_mwh = 2500 * 1000 * 1000  # 2.5 MWh: a lifetime total far past what a float32 can still increment
    m = meter_at(start_mwh)
    exact = Fraction(start_mwh)
    rng = random.Random(3)
    steps = [(rng.randint(0, 9), rng.randint(1, 20)) for _ in range(1000)]
    for _ in range(1000):
        for p_mw, dt_ms in steps:  # 1e6 steps of 0..9 mW over 1..20 ms: each far below 1 mWh
            m.add(p_mw, p_mw, dt_ms)
    for p_mw, dt_ms in steps:
        exact += Fraction(p_mw * dt_ms * 1000, UJ_PER_MWH)
    assert Fraction(m.exact_uj(CH_PV), UJ_PER_MWH) == exact
    assert Fraction(m.exact_uj(CH_BAT_IN), UJ_PER_MWH) == exact
    assert m.pv_mwh == int(exact) and m.pv_mwh > start_mwh
    assert abs(m.pv_wh() - float(exact) / 1000) < 1e-6 * float(exact) / 1000


def test_the_original_float32_counter_stops_where_this_one_does_not():
    """The original added P * 0.25 s per tick to a float32 kWh total: above ~100 kWh a 1 W tick no longer
    changes it. The integer meter counts the same ticks exactly."""
    total_kwh = np.float32(150.0)
    m = meter_at(150 * 1000 * 1000)
    for _ in range(10000):
        total_kwh = np.float32(total_kwh + np.float32(1.0 * 0.25 / 3600 / 1000))  # 1 W for 250 ms, in kWh
        m.add(1000, 0, 250)
    assert total_kwh == np.float32(150.0)  # 10000 ticks = 0.694 Wh vanished
    assert m.exact_uj(CH_PV) - 150 * 1000 * 1000 * UJ_PER_MWH == 10000 * 1000 * 250


def test_integrates_the_measured_step_not_an_assumed_one():
    """Steps of irregular length (a loop that sometimes runs late): energy = sum of p * dt exactly, where the
    original's fixed 250 ms per tick under-counts."""
    rng = random.Random(5)
    m = EnergyMeter()
    exact_uj = 0
    assumed_uj = 0
    for _ in range(20000):
        dt = rng.choice((250, 250, 251, 270, 320, 900))
        p = rng.randint(100000, 900000)
        m.add(p, p, dt)
        exact_uj += p * dt
        assumed_uj += p * 250
    assert m.exact_uj(CH_PV) == exact_uj
    assert (exact_uj - assumed_uj) / exact_uj > 0.1  # what the original would have missed here


def test_exact_against_a_known_integral():
    """p(t) = 2 t (mW, t in ms) from 0 to T: integral T^2 mW*ms. With the mean power of each irregular step
    (the trapezoid value, exact for a ramp) the meter gives exactly T^2."""
    rng = random.Random(7)
    m = EnergyMeter()
    t = 0
    while t < 3000000:  # 50 minutes, the ramp reaches 6 kW
        dt = rng.randint(1, 1500)
        m.add((2 * t + 2 * (t + dt)) // 2, 0, dt)
        t += dt
    assert m.exact_uj(CH_PV) == t * t
    assert m.pv_mwh == t * t // UJ_PER_MWH


def test_battery_in_and_out_are_counted_separately_and_pv_is_net():
    rng = random.Random(11)
    m = EnergyMeter()
    e_in = e_out = e_pv = 0
    for _ in range(50000):
        dt = rng.randint(1, 3000)
        p_bat = rng.randint(-2000000, 2000000)
        p_pv = rng.randint(-3000, 2000000)  # a little reverse current / noise around zero
        m.add(p_pv, p_bat, dt)
        e_pv += p_pv * dt
        if p_bat > 0:
            e_in += p_bat * dt
        else:
            e_out -= p_bat * dt
    assert m.exact_uj(CH_PV) == e_pv
    assert m.exact_uj(CH_BAT_IN) == e_in
    assert m.exact_uj(CH_BAT_OUT) == e_out
    assert m.bat_mwh == m.bat_in_mwh - m.bat_out_mwh
    assert m.bat_in_mwh == e_in // UJ_PER_MWH and m.bat_out_mwh == e_out // UJ_PER_MWH
    assert abs(m.bat_out_wh() - e_out / UJ_PER_MWH / 1000) < 1e-9 * e_out / UJ_PER_MWH


def test_net_pv_can_go_below_zero_and_back():
    m = EnergyMeter()
    m.add(-1, 0, 1)  # 1 uJ back into the panel
    assert m.exact_uj(CH_PV) == -1 and m.pv_mwh == -1  # floored
    m.add(1, 0, 1)
    assert m.exact_uj(CH_PV) == 0 and m.pv_mwh == 0 and m.state() == (0,) * 12


def test_long_steps_are_exact_up_to_a_minute_and_clamped_beyond():
    m = EnergyMeter()
    m.add(P_LIMIT_MW, -P_LIMIT_MW, DT_MAX_MS)
    assert m.exact_uj(CH_PV) == P_LIMIT_MW * DT_MAX_MS and m.exact_uj(CH_BAT_OUT) == P_LIMIT_MW * DT_MAX_MS
    assert m.clamped == 0
    m.reset()
    m.add(1000, 0, 3600000)  # an hour-long gap: not a measured hour
    assert m.exact_uj(CH_PV) == 1000 * DT_MAX_MS and m.clamped == 1
    m.add(P_LIMIT_MW * 3, 0, 1)  # an implausible reading
    assert m.clamped == 2
    m.add(5, 5, 0)
    m.add(5, 5, -10)  # a non-positive step counts nothing
    assert m.exact_uj(CH_PV) == 1000 * DT_MAX_MS + P_LIMIT_MW


def test_intermediates_stay_in_micropython_small_int_range():
    """The arithmetic bounds behind "no allocation in add()": every product and sum below 2**30."""
    small = 2 ** 30
    assert energy.UJ_PER_MJ - 1 + 999 * DT_MAX_MS < small  # uJ remainder + mW rest * dt
    w_max = P_LIMIT_MW // 1000
    carry_uj = (energy.UJ_PER_MJ - 1 + 999 * DT_MAX_MS) // energy.UJ_PER_MJ
    assert energy.MJ_PER_MWH - 1 + w_max * DT_MAX_MS + carry_uj < small  # mJ remainder + W * dt + carry
    # and at the extremes the state fields stay in their ranges
    m = meter_at(10 ** 9)  # 1 GWh lifetime
    for p in (P_LIMIT_MW, -P_LIMIT_MW, 999, -999, 1, -1):
        m.add(p, p, DT_MAX_MS)
        s = m.state()
        for ch in (CH_PV, CH_BAT_IN, CH_BAT_OUT):
            assert 0 <= s[ch] < 1000 and 0 <= s[ch + 1] < 3600 and 0 <= s[ch + 2] < 1000
            assert abs(s[ch + 3]) < small


def test_state_restore_take_and_merge_keep_every_microjoule():
    rng = random.Random(13)
    a = EnergyMeter()
    for _ in range(1000):
        a.add(rng.randint(-500, 900000), rng.randint(-900000, 900000), rng.randint(1, 2000))
    b = EnergyMeter()
    b.restore(a.state())
    assert b.state() == a.state()
    b.restore((5500, 7300, 2500, 1) * 3)  # un-normalised values are carried, not dropped
    assert b.exact_uj(CH_PV) == 5500 + 7300 * 1000 + (2500 + 1000) * UJ_PER_MWH
    total = a.exact_uj(CH_PV)
    whole = a.take_mwh(CH_PV)
    assert whole == total // UJ_PER_MWH and a.exact_uj(CH_PV) == total - whole * UJ_PER_MWH
    c = EnergyMeter()
    c.restore((0, 0, 0, 5) * 3)
    c.merge(a)
    assert c.exact_uj(CH_BAT_IN) == 5 * 1000 * UJ_PER_MWH + a.exact_uj(CH_BAT_IN)
