"""Protections and faults on the simulated board: inject the fault, assert the safe state, the response and the
overshoot a user would care about."""


def test_battery_disconnect_at_full_power_stops_the_stage_and_limits_the_overshoot(simulate):
    r = simulate("battery_disconnect", scenario__duration_s=40,
                 faults=[{"t_s": 25.0, "kind": "battery_disconnect"}])
    charge_v = 8 * 3.55  # LiFePO4 8s absorption voltage
    assert "BAT_OV" in r.faults or "BAT_ABSENT" in r.faults, r.faults
    # fugu_v1 has no hardware over-voltage comparator: the panel node rises to its open-circuit voltage and the
    # output follows (duty x V_in) before any control step can act, so 10 % is NOT met on this board (measured
    # +14.2 %; fugu_s3's comparator: +5.2 %, the next test); the firmware's own bound:
    assert r.summary["max_output_v"] <= 1.15 * charge_v, r.summary["max_output_v"]
    t_trip = min(r.fault_times("BAT_OV") + r.fault_times("BAT_ABSENT"))
    assert 25.0 <= t_trip <= 25.1  # within a few control steps
    assert all(row["driver_on"] == 0 for row in r.window(27))


def test_with_the_hardware_ovp_comparator_a_disconnect_stays_within_ten_percent(simulate):
    """fugu_s3 has an output over-voltage comparator on the IR2104 SD line, its threshold set by the firmware to
    the BAT_OV level: the bridge stops within a microsecond, the firmware reports BAT_OV at its next step."""
    r = simulate("battery_disconnect", scenario__duration_s=40, board__config="fugu_s3",
                 faults=[{"t_s": 25.0, "kind": "battery_disconnect"}])
    charge_v = 8 * 3.55
    assert r.faults[:1] == ["BAT_OV"], r.faults
    assert r.summary["max_output_v"] <= 1.10 * charge_v, r.summary["max_output_v"]
    assert r.run.sim.stages[0].ovp_trips >= 1
    t_trip = r.fault_times("BAT_OV")[0]
    assert 25.0 <= t_trip <= 25.05, t_trip
    assert all(row["driver_on"] == 0 for row in r.window(27))
    # before the disconnect the comparator never fired (its threshold sits above the charge voltage)
    before = simulate("battery_disconnect", scenario__duration_s=24, board__config="fugu_s3")
    assert before.run.sim.stages[0].ovp_trips == 0 and not before.faults


def test_pv_disconnect_while_running_never_reverse_boosts_the_panel_node(simulate):
    r = simulate("pv_disconnect", scenario__duration_s=45, faults=[{"t_s": 25.0, "kind": "pv_disconnect"}])
    assert r.summary["max_pv_v"] < 80.0  # the board's input rating (downward duty moves are slewed)
    assert "PV_LOST" in r.faults, r.faults
    # the input capacitor stays charged, so the stage retries, with a growing back-off: mostly off
    assert sum(row["driver_on"] for row in r.window(30)) <= 4


def test_pv_over_voltage_keeps_the_stage_off(simulate):
    # the panel's open-circuit voltage (~70 V) is above a 60 V input limit: it must never start
    r = simulate("demo", scenario__duration_s=15, settings={"v_in_max_mv": 60000})
    assert "PV_OV" in r.faults
    assert all(row["driver_on"] == 0 for row in r.rows)


def test_adc_failure_is_a_sensor_fault_and_the_stage_recovers(simulate):
    r = simulate("demo", scenario__duration_s=45, shade__points=[[0, [1.0] * 6]],
                 faults=[{"t_s": 15.0, "kind": "adc_fail"}, {"t_s": 20.0, "kind": "adc_recover"}])
    assert "SENSOR" in r.faults
    assert all(row["driver_on"] == 0 for row in r.window(15.5, 20))
    assert r.tracking(38) > 0.99  # back to work after recovery


def test_ntc_open_derates_and_runs_the_fan(simulate):
    r = simulate("demo", scenario__duration_s=30, shade__points=[[0, [1.0] * 6]],
                 faults=[{"t_s": 12.0, "kind": "ntc_open"}])
    assert "NTC_OPEN" in r.faults
    stat = r.run.fw_stat
    assert stat["fan"] == 1 and stat["derate"] == 50
    assert r.rows[-1]["pv_w"] <= 0.55 * 1000  # power capped at half of p_max (1000 W)
