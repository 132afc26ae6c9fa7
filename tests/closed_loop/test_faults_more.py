"""Protections on the simulated board, each provoked the way it happens in the field, with its response measured in
control steps and its overshoot from the plant's own (sub-step) values: input and output over-current, reverse
current, PV short, over-temperature with derating, fan failure, silent mode.

Figures in the comments were measured with seed 1 (fugu_v1/fugu_s3, ADS1115 at 860 SPS, ~7.5 ms per control step).
"""

import pytest

from closed_loop_probe import Probed

STEP_S = 0.0075  # the control period the simulator reports for these boards (3 conversions + CPU per step)


def _settled(rows, key, t0, t1):
    return [r[key] for r in rows if t0 <= r["t_s"] <= t1]


def _driver_off_from(probe, t0):
    s = probe.first(lambda s: not s.enabled, t0)
    assert s is not None, "the driver never went off after %.3f s" % t0
    return s.t


# ---------------------------------------------------------------------------------------------------------------
# Input over-current: a 1050 W / 27.5 V array (38 A at its MPP) on the 30 A input (scenarios/input_overcurrent.toml)

@pytest.fixture(scope="module")
def input_oc():
    return Probed("input_overcurrent", windows=[(49.9, 52.5), (89.99, 90.6)])


def test_input_current_regulator_holds_the_rating_in_steady_sun_and_through_a_cloud_edge(input_oc):
    r = input_oc
    i_pv = _settled(r.rows, "pv_a", 15, 30)
    assert max(i_pv) <= 30.0 * 1.01, max(i_pv)  # measured 30.02 A
    assert min(i_pv) >= 29.0, min(i_pv)  # at the limit, not throttled far below it
    # a 1 s edge 700 -> 1000 W/m2: the regulator follows (overshoot measured +6.8 %: 32.04 A), no trip
    peak = max(s.i_pv for s in r.probe.between(49.9, 52.5))
    assert peak <= 30.0 * 1.10, peak
    assert not [t for t in r.fault_times("OC_IN") if t < 89.9]


def test_a_step_beyond_the_regulator_trips_oc_in_within_three_steps_and_restarts_after_ten_seconds(input_oc):
    r = input_oc
    assert r.faults and r.faults[0] == "OC_IN", r.faults
    t_trip = r.fault_times("OC_IN")[0]
    assert 90.0 <= t_trip <= 90.05, t_trip
    cross = r.probe.first(lambda s: s.i_pv > 1.15 * 30.0, 90.0)
    t_off = _driver_off_from(r.probe, 90.0)
    steps = r.probe.steps_between(cross.t, t_off)
    assert steps <= 3, steps  # debounce 2 + the step in progress; measured 2 steps, 15.8 ms
    # what the array pushes at a fixed duty is physics: the firmware bounds its duration, not its height
    peak = max(s.i_pv for s in r.probe.between(90.0, t_off))
    assert peak <= 40.0, peak  # measured 37.5 A (the ACS712-30A reads up to 37.9 A)
    # recovery: off for the 10 s the rule holds, then back at the limit
    assert all(row["driver_on"] == 0 for row in r.window(t_off + 0.5, t_trip + 9.9))
    t_back = min(row["t_s"] for row in r.window(t_trip + 1) if row["driver_on"])
    assert t_trip + 10 <= t_back <= t_trip + 14, t_back
    i_pv = _settled(r.rows, "pv_a", t_back + 5, 120)
    assert 29.0 <= min(i_pv) and max(i_pv) <= 30.3, i_pv


# ---------------------------------------------------------------------------------------------------------------
# Output over-current, measured (fugu_s3): 1.6 kW array into 12 V LiFePO4 at a 20 A setting

@pytest.fixture(scope="module")
def output_oc():
    return Probed("output_overcurrent", windows=[(20.0, 25.0), (59.99, 60.5), (80.0, 85.0)])


def _mean_i_out(samples):
    num = sum((b.t - a.t) * a.i_out for a, b in zip(samples, samples[1:]))
    return num / (samples[-1].t - samples[0].t)


def test_output_current_regulator_holds_the_charge_current_setting(output_oc):
    for t0, t1 in ((20.0, 25.0), (80.0, 85.0)):  # before the trip and after the restart
        ss = output_oc.probe.between(t0, t1)
        mean = _mean_i_out(ss)
        peak = max(s.i_out for s in ss)
        assert 19.0 <= mean <= 20.0, (t0, mean)  # measured 19.8 A / 19.4 A
        assert peak <= 20.0 * 1.06, (t0, peak)  # measured 20.8 A (+4 %)


def test_an_output_overload_beyond_the_regulator_trips_oc_out_within_three_steps(output_oc):
    r = output_oc
    assert r.faults and r.faults[0] == "OC_OUT", r.faults
    t_trip = r.fault_times("OC_OUT")[0]
    assert 60.0 <= t_trip <= 60.05, t_trip
    # the INA240 + ADS1115 read at most 39.8 A: a reading within 2 % of that counts as over-current
    cross = r.probe.first(lambda s: s.i_out > 0.98 * 39.8, 60.0)
    t_off = _driver_off_from(r.probe, 60.0)
    steps = r.probe.steps_between(cross.t, t_off)
    assert steps <= 3, steps  # measured 1 step, 13.5 ms
    peak = max(s.i_out for s in r.probe.between(60.0, t_off))
    assert peak <= 70.0, peak  # measured 62 A for ~14 ms (the irradiance step at a fixed duty)
    assert all(row["driver_on"] == 0 for row in r.window(t_off + 0.5, t_trip + 9.9))
    t_back = min(row["t_s"] for row in r.window(t_trip + 1) if row["driver_on"])
    assert t_trip + 10 <= t_back <= t_trip + 14, t_back


# ---------------------------------------------------------------------------------------------------------------
# Reverse current: a 50 V DC source appears on the PV bus below the stage's operating point (~57 V)

def test_reverse_current_is_ended_by_the_backflow_mosfet_within_one_step():
    r = Probed("reverse_current", windows=[(24.99, 30.0)], scenario__duration_s=30,
               faults=[{"t_s": 25.0, "kind": "pv_dc_source", "value": 50.0}])
    rev = [s for s in r.probe.between(25.0, 30.0) if s.i_pv < -0.5]
    assert rev, "the DC source did not push current back (the test provokes nothing)"
    # the first 0.1 ms is the input capacitor discharging into the source (-62 A through the MOSFET, physics);
    # the firmware turns the MOSFET off at the end of the first step that reads the current sensor after it began
    # (its body diode then blocks): 5.5 to 9.9 ms measured, by where in the step the fault lands (at worst just
    # after that step's current reading: one step to the next reading, then the rest of that step). That step read
    # the sensor at its negative end (-3.4 A on fugu_v1): REVERSE trips at once
    assert rev[-1].t - rev[0].t <= STEP_S * 2, (rev[0].t, rev[-1].t)
    assert set(r.faults) <= {"REVERSE"}, r.faults
    assert min(s.i_pv for s in r.probe.between(rev[-1].t + 0.001, 30.0)) >= -0.5


@pytest.fixture(scope="module")
def reverse_fet_short():
    return Probed("reverse_current", windows=[(24.99, 36.0)])


def test_with_the_backflow_mosfet_failed_short_reverse_trips_within_three_steps(reverse_fet_short):
    r = reverse_fet_short
    assert r.faults and r.faults[0] == "REVERSE", r.faults
    first = r.probe.first(lambda s: s.i_pv < -0.5, 25.0)
    t_off = _driver_off_from(r.probe, 25.0)
    steps = r.probe.steps_between(first.t, t_off)
    # debounce 3, or at once when the reading is at the sensor's negative end (fugu_v1's reversed ACS712 reads
    # -3.4 A at most): measured within the step in progress, 4.9 ms
    assert steps <= 3, steps
    # nothing flows back once the stage is off (the source sits at the input capacitor's voltage)
    after = r.probe.between(t_off + 0.002, 35.0)
    assert min(s.i_pv for s in after) >= -0.5, min(s.i_pv for s in after)
    # the battery's worst: it fed the DC source through the stage for those 20 ms
    worst = min(s.i_out for s in r.probe.between(25.0, t_off))
    assert worst >= -60.0, worst  # measured -16.4 A (-51.8 A when it took the 3-step debounce)
    t_trip = r.fault_times("REVERSE")[0]
    assert all(row["driver_on"] == 0 for row in r.window(t_off + 0.5, t_trip + 9.9))


# ---------------------------------------------------------------------------------------------------------------
# PV short while running (800 W/m2, ~430 W)

@pytest.fixture(scope="module")
def pv_short_hard():
    return Probed("reverse_current", windows=[(24.999, 25.3)], scenario__duration_s=40,
                  faults=[{"t_s": 25.0, "kind": "pv_short"}, {"t_s": 32.0, "kind": "pv_short_clear"}])


def test_a_pv_short_is_detected_in_one_step_and_the_stage_stays_off(pv_short_hard):
    r = pv_short_hard
    assert r.faults and r.faults[0] == "PV_SHORT", r.faults
    t_off = _driver_off_from(r.probe, 25.0)
    assert r.probe.steps_between(25.0, t_off) <= 1, t_off  # measured within the step in progress, 4.9 ms
    assert all(row["driver_on"] == 0 for row in r.window(t_off + 0.5))


@pytest.mark.xfail(strict=True, reason=(
    "hardware: a 10 mOhm short at the PV terminals dumps the input capacitor through the (on) backflow MOSFET "
    "in microseconds, then the battery drives the inductor backwards (-870 A in the averaged model, no "
    "saturation) until the next control step; when the stage stops, that energy lands in the input capacitor: "
    "measured 233 V on the input node. Firmware (within a step, 4.9 ms here) cannot bound it: an ideal-diode "
    "controller on the backflow MOSFET (turn-off < 1 us on reverse current) or a cycle-by-cycle current limit "
    "is needed (fugu_s3 has the ideal-diode controller: the next test)"))
def test_a_pv_short_does_not_overvolt_the_input_node(pv_short_hard):
    assert pv_short_hard.summary["max_pv_v"] <= 80.0, pv_short_hard.summary["max_pv_v"]


def test_with_an_ideal_diode_controller_a_bolted_pv_short_leaves_the_input_node_safe():
    """fugu_s3 drives its backflow MOSFET through an ideal-diode controller: the reverse current a bolted short
    draws turns it off within a microsecond, so the input node keeps its charge (it never sees more than the
    array's open circuit), the inductor never runs away, and the stage is back once the short is cleared."""
    r = Probed("reverse_current", scenario__duration_s=45, board__config="fugu_s3",
               faults=[{"t_s": 25.0, "kind": "pv_short"}, {"t_s": 32.0, "kind": "pv_short_clear"}])
    assert r.summary["max_pv_v"] <= 80.0, r.summary["max_pv_v"]  # measured 70.8 V: the idle open circuit
    assert r.summary["max_inductor_a"] < 40.0, r.summary["max_inductor_a"]  # measured 23.8 A (fugu_v1: 870 A)
    assert r.faults and r.faults[0] in ("PV_LOST", "PV_SHORT"), r.faults  # to the stage the array is gone
    # to the stage the array just went away (its input capacitor keeps the charge): the PV-lost path stops it
    # after the collapse scan and 3 s of no current
    assert all(row["driver_on"] == 0 for row in r.window(29.5, 32)), [x["driver_on"] for x in r.window(26, 32)]
    back = [row for row in r.window(33) if row["driver_on"]]
    assert back and back[-1]["pv_w"] > 300.0, back


def test_a_partial_pv_short_trips_in_one_step_and_the_stage_restarts_once_it_is_cleared():
    def one_ohm(sim):
        sim.plant.r_pv_short_ohm = 1.0  # water in a junction box rather than a bolted short

    r = Probed("reverse_current", windows=[(24.999, 25.3)], setup=one_ohm, scenario__duration_s=55,
               faults=[{"t_s": 25.0, "kind": "pv_short"}, {"t_s": 35.0, "kind": "pv_short_clear"}])
    assert r.faults and r.faults[0] in ("PV_SHORT", "REVERSE"), r.faults
    t_off = _driver_off_from(r.probe, 25.0)
    assert r.probe.steps_between(25.0, t_off) <= 1, t_off  # measured 4.9 ms (REVERSE: the sensor saturated)
    assert r.summary["max_pv_v"] <= 80.0, r.summary["max_pv_v"]  # measured 70.8 V (the idle open circuit)
    after = r.probe.between(t_off + 0.002, 25.3)
    assert min(s.i_pv for s in after) >= -0.5
    # recovery: the short goes at 35 s; the stage restarts and tracks again
    t_back = min(row["t_s"] for row in r.window(26) if row["driver_on"])
    assert 35.0 <= t_back <= 40.0, t_back
    w = r.window(45)
    assert sum(x["pv_w"] for x in w) / sum(x["mpp_w"] for x in w) >= 0.99


# ---------------------------------------------------------------------------------------------------------------
# Over-temperature: 100 W outside heat on the heatsink; derating 40 -> 50 C at 400 W max (over_temperature.toml)

@pytest.fixture(scope="module")
def over_temp():
    return Probed("over_temperature")


def test_power_is_derated_linearly_between_the_two_thresholds(over_temp):
    r = over_temp
    cool = [x for x in r.window(12, 30) if x["heatsink_c"] < 39.0]
    assert cool and min(x["pv_w"] for x in cool) >= 390.0  # full power (400 W cap) below t_derate_start_c
    band = [x for x in r.window(12, 50) if 41.0 <= x["heatsink_c"] <= 49.0]
    assert len(band) >= 10, len(band)
    for x in band:
        expect = 400.0 * (50.0 - x["heatsink_c"]) / 10.0
        # the NTC is read once a second while the heatsink warms ~0.5 K/s: a 1 s lag is ~20 W here
        assert abs(x["pv_w"] - expect) <= 40.0, (x["t_s"], x["heatsink_c"], x["pv_w"], expect)


def test_over_temp_stops_the_stage_at_shutdown_and_it_restarts_ten_kelvin_below(over_temp):
    r = over_temp
    assert r.faults == ["OVER_TEMP"], r.faults
    t_hot = min(x["t_s"] for x in r.rows if x["heatsink_c"] >= 50.0)
    t_trip = r.fault_times("OVER_TEMP")[0]
    assert t_hot - 1.0 <= t_trip <= t_hot + 1.5, (t_hot, t_trip)  # the thermal check runs once a second
    assert all(x["driver_on"] == 0 for x in r.window(t_trip, t_trip + 5))
    back = [x for x in r.window(t_trip) if x["driver_on"]]
    assert back, "never restarted after cooling"
    t_cool = min(x["t_s"] for x in r.window(t_trip) if x["heatsink_c"] < 40.0)
    assert t_cool <= back[0]["t_s"] <= t_cool + 4.0, (t_cool, back[0]["t_s"])
    assert all(x["heatsink_c"] < 40.5 for x in back)
    assert min(x["pv_w"] for x in back[3:]) >= 390.0
    fan = [(round(s["temp_c"]), s["fan"]) for _, s in r.stats if s.get("temp_c") != "nan"]
    assert all(on == 1 for t, on in fan if t >= 46) and all(on == 0 for t, on in fan if t <= 38)


def test_silent_mode_never_runs_the_fan_and_derates_from_the_fan_temperature_instead():
    r = Probed("over_temperature", scenario__duration_s=52,
               settings={"battery_chem": "lead_agm", "p_max_w": 400, "t_derate_start_c": 40, "t_shutdown_c": 50,
                         "fan_on_c": 30, "silent_mode": True})
    assert all(s["fan"] == 0 for _, s in r.stats)
    assert r.run.sim.plant.fan_command == 0.0
    band = [x for x in r.window(12) if 32.0 <= x["heatsink_c"] <= 48.0]
    assert len(band) >= 10
    for x in band:  # linear from fan_on_c (30 C) to t_shutdown_c (50 C)
        expect = 400.0 * (50.0 - x["heatsink_c"]) / 20.0
        assert abs(x["pv_w"] - expect) <= 40.0, (x["t_s"], x["heatsink_c"], x["pv_w"], expect)


def test_a_warm_heatsink_does_not_stop_lithium_charging():
    """FUGU has no battery sensor: the heatsink NTC is only an upper bound of the battery's temperature (our own
    losses warm it), good for the cold lock-out, not for LiFePO4's 45 C charge limit (measured before: charger
    'off' at 45 C + 5 s while the battery was at 25 C)."""
    r = Probed("over_temperature", scenario__duration_s=47, battery__chemistry="lifepo4", battery__cells=8,
               settings={"battery_chem": "lifepo4", "p_max_w": 400, "t_derate_start_c": 40, "t_shutdown_c": 50,
                         "fan_on_c": 45})
    stages = [s["stage"] for _, s in r.stats if s.get("temp_c", 0) >= 46.0]
    assert stages and all(st != "off" for st in stages), stages


# ---------------------------------------------------------------------------------------------------------------
# Fan failure, inferred: 40 W outside heat at night, fan on at 30 C (fan_failure.toml)

def test_a_failed_fan_is_inferred_and_derating_starts_at_the_fan_temperature():
    r = Probed("fan_failure", scenario__duration_s=240)
    assert r.faults == ["FAN_FAIL"], r.faults
    t_on = min(t for t, s in r.stats if s["fan"] == 1)
    t_fail = r.fault_times("FAN_FAIL")[0]
    assert t_on + 120 <= t_fail <= t_on + 200, (t_on, t_fail)  # three 60 s windows: measured t_on + 180 s
    after = [s for t, s in r.stats if t > t_fail + 1.5]
    for s in after:  # derating from fan_on_c (30 C) to t_shutdown_c (85 C)
        assert abs(s["derate"] - 100 * (85 - s["temp_c"]) / 55) <= 2, s


def test_a_working_fan_under_the_same_heat_is_not_reported():
    r = Probed("fan_failure", scenario__duration_s=300,
               faults=[{"t_s": 1.0, "kind": "heatsink_heat", "value": 40.0}])
    assert "FAN_FAIL" not in r.faults, r.faults
    assert r.stats[-1][1]["fan"] == 1 and r.stats[-1][1]["derate"] == 100
    # the same heat-up that a rule on "still warming after 3 minutes" took for a dead fan (+26 K here)
    assert r.stats[-1][1]["temp_c"] > 50.0

