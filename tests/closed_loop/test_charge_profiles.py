"""Charge profiles through their stages on the simulated battery, closed loop: the firmware's charger, limit
regulators and tracker against the plant's battery model (small, nearly full batteries so the stages pass in
simulated minutes). Board fugu_s3: it measures the battery current, which the tail-current exit needs."""

import pytest

from closed_loop_probe import Probed


def _stages(r):
    """The charger stages in the order the STAT lines show them (repeats collapsed)."""
    out = []
    for _, s in r.stats:
        st = s.get("stage")
        if st and (not out or out[-1] != st):
            out.append(st)
    return out


def _stage_times(r, name):
    return [t for t, s in r.stats if s.get("stage") == name]


def _held_v(r, stage, t0=0.0):
    """Battery voltages (plant, per second) while the charger is in `stage` and the converter switches."""
    times = set(round(t) for t in _stage_times(r, stage) if t >= t0)
    return [x["bat_v"] for x in r.rows if round(x["t_s"]) in times and x["driver_on"]]


# ---------------------------------------------------------------------------------------------------------------
# LiFePO4 8s 2 Ah at 98.5 %, 2 A limit; a 3.4 Ohm load from 150 s (scenarios/charge_lifepo4.toml)

@pytest.fixture(scope="module")
def lifepo4():
    return Probed("charge_lifepo4")


def test_lifepo4_bulk_absorb_float_and_never_above_the_absorption_voltage(lifepo4):
    r = lifepo4
    assert _stages(r)[:4] == ["off", "bulk", "absorb", "float"], _stages(r)
    assert r.faults == [], r.faults
    v_abs = 8 * 3.550
    before_load = [x["bat_v"] for x in r.window(0, 150)]
    assert max(before_load) <= v_abs + 0.05, max(before_load)  # measured 28.384 V (target 28.400 V)
    held = _held_v(r, "absorb")
    assert held and min(held) >= v_abs - 8 * 0.020, min(held)  # the charger's "held" band: 20 mV/cell
    # bulk ran at the 2 A charge limit
    bulk = [x["bat_a"] for x in r.window(12, 45)]
    assert all(1.6 <= a <= 2.1 for a in bulk), bulk
    # absorption ended on the tail current (0.05 C = 100 mA), not on its 30 min minimum time
    t_abs = _stage_times(r, "absorb")
    t_float = _stage_times(r, "float")[0]
    assert t_float - t_abs[0] <= 120.0, (t_abs[0], t_float)
    # float (27.0 V) is below the full battery's rest voltage: no current, the stage idles
    idle = [x for x in r.window(t_float + 2, 149) if x["bat_v"] > 27.05]
    assert idle and all(x["driver_on"] == 0 for x in idle)


def test_a_load_that_discharges_the_battery_below_rebulk_starts_a_new_bulk_charge(lifepo4):
    r = lifepo4
    assert _stages(r)[-1] == "bulk" and _stages(r)[-2] == "float", _stages(r)
    t_low = min(x["t_s"] for x in r.window(150) if x["bat_v"] < 8 * 3.300)
    t_rebulk = min(t for t in _stage_times(r, "bulk") if t > 150)
    assert 60.0 <= t_rebulk - t_low <= 66.0, (t_low, t_rebulk)  # REBULK_MS = 60 s, checked once a second
    # during the discharge the stage supplies what it may (2 A) and the battery the rest
    assert all(x["driver_on"] for x in r.window(t_low + 2))


# ---------------------------------------------------------------------------------------------------------------
# Lead AGM 6 cells: temperature compensation (scenarios/charge_lead_agm.toml, two ambients)

@pytest.mark.parametrize("ambient_c", [10.0, 35.0])
def test_lead_agm_absorption_voltage_follows_the_temperature(ambient_c):
    r = Probed("charge_lead_agm", temperature__ambient_c=ambient_c)
    assert "absorb" in _stages(r), _stages(r)
    t_abs = _stage_times(r, "absorb")[0]
    temps = [s["temp_c"] for t, s in r.stats if t >= t_abs]
    # the firmware compensates with the temperature it reads (the heatsink NTC): -3 mV/C/cell by default,
    # rounded to whole degrees
    comp_mv = -3 * (round(sum(temps) / len(temps)) - 25)
    target = 6 * (2400 + comp_mv) / 1000.0
    held = _held_v(r, "absorb", t_abs + 2)
    assert held
    assert max(held) <= target + 0.03, (max(held), target)  # 10 C: 14.667 V of 14.670 V; 35 C: 14.207 of 14.220
    assert min(held) >= target - 6 * 0.020, (min(held), target)
    assert abs(target - (14.67 if ambient_c == 10.0 else 14.22)) <= 0.02


# ---------------------------------------------------------------------------------------------------------------
# NMC and a custom profile (the LiFePO4 scenario with another battery or other settings)

def test_li_nmc_charges_to_4_10_v_per_cell():
    r = Probed("charge_lifepo4", scenario__duration_s=70, battery__chemistry="li_nmc", battery__cells=7,
               battery__soc=0.88, settings={"battery_chem": "li_nmc", "battery_capacity_ah": 2,
                                            "i_charge_max_ma": 2000})
    assert _stages(r)[:3] == ["off", "bulk", "absorb"], _stages(r)
    v_abs = 7 * 4.100
    held = _held_v(r, "absorb", _stage_times(r, "absorb")[0] + 2)
    assert held and v_abs - 7 * 0.020 <= min(held) and max(held) <= v_abs + 0.02, (min(held), max(held))
    # the whole run, start-up scan included: measured 28.85 V (+0.5 %, 4.12 V/cell) for a moment
    assert r.summary["max_battery_v"] <= v_abs * 1.01, r.summary["max_battery_v"]


def test_a_custom_profile_from_the_settings_sets_the_absorption_voltage():
    r = Probed("charge_lifepo4", scenario__duration_s=70,
               settings={"battery_chem": "custom", "custom_v_absorb_cell_mv": 3450, "custom_v_float_cell_mv": 3350,
                         "custom_v_rebulk_cell_mv": 3250, "battery_capacity_ah": 2, "i_charge_max_ma": 2000})
    assert "absorb" in _stages(r), _stages(r)
    v_abs = 8 * 3.450
    held = _held_v(r, "absorb", _stage_times(r, "absorb")[0] + 2)
    assert held and min(held) >= v_abs - 8 * 0.020 and max(held) <= v_abs + 0.03, (min(held), max(held))
    assert r.summary["max_battery_v"] <= v_abs + 0.05  # 8 x 3.55 = 28.4 V (the LiFePO4 preset) never reached


def test_no_lithium_charging_below_zero_celsius():
    r = Probed("charge_lifepo4", scenario__duration_s=40, temperature__ambient_c=-5.0)
    assert set(s.get("stage") for _, s in r.stats) == {"off"}
    assert all(x["driver_on"] == 0 for x in r.rows)
    assert max(x["bat_a"] for x in r.rows) <= 0.0  # nothing into the battery (the aux supply draws from it)
