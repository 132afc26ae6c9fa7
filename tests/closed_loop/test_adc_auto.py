"""The original FUGU footprint takes an ADS1115, an ADS1015 or a TLA2024 (a drop-in when the ADS1015 is out of
stock). fugu_v1's board config says "auto": the firmware finds out at boot which one is fitted
(lib/fugu/adc_detect.py: the length of one conversion at the lowest data-rate code) and reads it the right way."""

import pytest

NO_SHADE = [[0, [1.0] * 6]]


@pytest.mark.parametrize("chip, shown, rate_hz", [
    ("ADS1115", "ADS1115 (auto)", 134.0),  # 860 SPS, ALERT/RDY
    ("ADS1015", "12-bit ADS1015/TLA2024 (auto)", 170.0),  # 3300 SPS, the OS bit polled
    ("TLA2024", "12-bit ADS1015/TLA2024 (auto)", 170.0),
])
def test_the_fitted_adc_is_found_at_boot_and_tracked_with(simulate, chip, shown, rate_hz):
    r = simulate("demo", scenario__duration_s=40, shade__points=NO_SHADE, board__adc=chip,
                 board__modules={})
    assert "board fugu_v1: 1 stage(s), ADC %s" % shown in r.lines, r.lines[:4]
    assert not r.faults, r.faults
    assert r.summary["control_rate_hz"] >= rate_hz
    assert r.tracking(20, 40) > 0.99
    # the detection costs the boot one conversion at 8 SPS (ADS1115) or 128 SPS, not more
    first = min(x["t_s"] for x in r.rows if x["driver_on"])
    assert first < 10.0


def test_a_board_config_naming_the_wrong_chip_is_a_sensor_fault_not_wrong_numbers(simulate):
    """fugu_s3's config names the ADS1115 and uses its ALERT/RDY pin; a TLA2024 on that footprint has no such pin
    (the line stays at its pull-up): the firmware must stop on SENSOR, not read conversions that never finished."""
    r = simulate("charge_lifepo4", scenario__duration_s=15, board__adc="TLA2024", board__modules={})
    assert "SENSOR" in r.faults, r.faults
    assert all(x["driver_on"] == 0 for x in r.rows)


def test_an_adc_that_does_not_answer_at_power_on_keeps_the_converter_off_until_it_does(simulate):
    """No answer from the ADC at boot (a loose I2C wire): a clear fault on the console, the gate never driven, a new
    boot every ~5 s; once the chip answers the controller starts and tracks."""
    r = simulate("demo", scenario__duration_s=40, shade__points=NO_SHADE, board__modules={},
                 faults=[{"t_s": 0.0, "kind": "adc_fail"}, {"t_s": 8.0, "kind": "adc_recover"}])
    boot_faults = [line for line in r.lines if line.startswith("FAULT code=SENSOR ch=-1 boot:")]
    assert boot_faults and "restarting in 5 s" in boot_faults[0]
    assert "SENSOR" in r.faults
    assert 1 <= len(r.summary["resets"]) <= 3
    assert all(x["driver_on"] == 0 for x in r.window(0, 8.0))
    started = [line for line in r.lines if line.startswith("board fugu_v1: 1 stage(s), ADC ADS1115 (auto)")]
    assert len(started) == 1
    assert r.tracking(30, 40) > 0.99
