"""The remaining protections of issue 3, closed loop: dusk (PV under-voltage relative to the battery, no sawtooth
restarts), battery absent, NTC shorted, a stuck ADC."""

NO_SHADE = [[0, [1.0] * 6]]


def _starts(rows):
    """How many times the driver went from off to on."""
    n = 0
    prev = 0
    for row in rows:
        if row["driver_on"] and not prev:
            n += 1
        prev = row["driver_on"]
    return n


def test_dusk_stops_the_stage_once_without_sawtooth_restarts(simulate):
    """Light fading from 120 to 0 W/m2 over 4 minutes (the panel's open-circuit voltage stays above the battery
    almost to the end): the stage stops when the harvest is no longer worth switching for, and does not start,
    stop, start again as the voltage rises each time it stops drawing current."""
    r = simulate("demo", scenario__duration_s=330, shade__points=NO_SHADE, irradiance__points=[
        [0, 120.0], [60, 120.0], [300, 0.0], [330, 0.0]])
    assert _starts(r.window(0, 330)) <= 3, [(x["t_s"], x["driver_on"]) for x in r.rows]
    assert _starts(r.window(150, 330)) <= 1
    assert all(x["driver_on"] == 0 for x in r.window(300))  # dark: off
    assert not r.faults, r.faults  # dusk is not a fault
    # never the battery into the panel: PV current forward or zero all along (the probe of the backflow path)
    assert min(x["pv_a"] for x in r.rows) > -0.05
    assert r.summary["bootstrap_violations"] == 0


def test_without_a_battery_the_stage_never_switches(simulate):
    """A controller wired to panels only (battery fuse pulled): nothing to charge and no load to regulate against;
    switching would push the output node to whatever the duty makes of the panel voltage."""
    r = simulate("demo", scenario__duration_s=20, shade__points=NO_SHADE, battery__present=False)
    assert all(x["driver_on"] == 0 for x in r.rows)
    assert r.summary["max_output_v"] < 5.0, r.summary["max_output_v"]  # nothing but leakage on the output


def test_ntc_short_derates_and_runs_the_fan(simulate):
    r = simulate("demo", scenario__duration_s=30, shade__points=NO_SHADE,
                 faults=[{"t_s": 12.0, "kind": "ntc_short"}])
    assert "NTC_SHORT" in r.faults
    stat = r.run.fw_stat
    assert stat["fan"] == 1 and stat["derate"] == 50
    assert r.rows[-1]["pv_w"] <= 0.55 * 1000  # half of p_max (1000 W)
    assert r.rows[-1]["pv_w"] > 400  # still harvesting, within the cap


def test_a_stuck_adc_is_a_sensor_fault_not_a_number(simulate):
    """The converter's readings freeze at one value (a latched ADC): the stage stops on SENSOR instead of tracking
    a frozen number."""
    r = simulate("demo", scenario__duration_s=40, shade__points=NO_SHADE,
                 faults=[{"t_s": 15.0, "kind": "adc_stuck"}])
    assert "SENSOR" in r.faults, r.faults
    t = r.fault_times("SENSOR")[0]
    assert 15.0 <= t <= 25.0, t
    assert all(x["driver_on"] == 0 for x in r.window(t + 1.0))
