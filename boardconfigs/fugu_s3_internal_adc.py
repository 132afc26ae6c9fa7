"""FUGU on an ESP32-S3 without an external ADC: every quantity is read by the S3's own SAR ADC (analogio), so the
front-ends are sized for its range and each sense entry carries its pin and a calibration.

Where the values come from:
- the ADC (CIRCUITPYTHON-FACTS, analogio on the ESP32-S3 port): 12 bit, attenuation fixed at 12 dB, calibrated to
  mV by the eFuse curve fit, value = mV * 65535 / 3300 (reference_voltage 3.3); the top of the range saturates
  near 3.1 V (ESP-IDF: 0..3100 mV usable at 12 dB), and after the curve fit the error is still +-(1..3) % / tens of
  mV with a bow near the ends. So: every full scale below ~2.8 V, zero currents at mid-range (where the curve is
  best), and a per-channel two-point calibration (gain, offset_mv) in "cal";
- ADC1 pins only (GPIO1..10): ADC2 (GPIO11..20) is shared with Wi-Fi and its reads fail while Wi-Fi is on;
- PV divider 200k / 6.8k (x30.41): 80 V rating -> 2.63 V, the ADC saturates at ~94 V, so an over-voltage is still
  seen; battery divider 47k / 2.4k (x20.58): 50 V -> 2.43 V, saturation at ~64 V;
- currents: 0.5 mOhm shunts with INA240A2 amplifiers (gain 50 V/V, REF1 to VS, REF2 to GND: output at VS/2 =
  1.65 V for 0 A, 25 mV/A, INA240 datasheet SBOS662): 30 A -> 2.40 V, 35 A -> 2.53 V; the ADC's 0..3.1 V reads
  -66 .. +58 A, signed. The INA240 takes -4..80 V common mode, so the PV-side shunt may sit in the PV+ lead;
- the power stage, NTC and gate pins are those of fugu_s3 (the same S3 pinout).

Calibration: "cal" per sense entry: {"gain": g, "offset_mv": o} on dividers: voltage = g * (nominal scaling) + o,
o in mV of the measured node (PV or battery side); {"gain": g} on current sensors, whose zero the firmware measures
while the converter is off. The values here are nominal; a unit is calibrated against a meter at two points and
its own values stored (settings, or a copy of this file). The simulator draws this board's ADC gain and offset
errors from the scenario seed (sim/wiring.py: ESP_ADC_*), within what such a calibration removes.
"""

BOARD = {
    "name": "fugu_s3_internal_adc",
    "mcu": "esp32s3",
    "pins": {
        "pwm": "IO11",
        "enable": "IO12",
        "backflow": "IO13",
        "fan": "IO21",
        "ntc": "IO1",  # ADC1_CH0
        "led": "IO47",
        "sda": "IO8",  # I2C stays for extensions (OLED, ...)
        "scl": "IO9",
        "buttons": ("IO38", "IO39", "IO40", "IO41"),
    },
    "i2c_hz": 400000,
    "adc": {"type": "analogio", "v_ref_v": 3.3, "v_sat_v": 3.1},
    "sense": {
        "v_in": {"ch": 0, "pin": "IO2", "kind": "divider", "r_top_ohm": 200000, "r_bottom_ohm": 6800,
                 "node": "input_cap", "cal": {"gain": 1.0, "offset_mv": 0}},
        "v_out": {"ch": 1, "pin": "IO4", "kind": "divider", "r_top_ohm": 47000, "r_bottom_ohm": 2400,
                  "cal": {"gain": 1.0, "offset_mv": 0}},
        "i_in": {"ch": 2, "pin": "IO5", "kind": "shunt", "r_shunt_ohm": 0.0005, "gain": 50.0, "v_ref_v": 1.65,
                 "v_supply_v": 3.3, "cal": {"gain": 1.0}},
        "i_out": {"ch": 3, "pin": "IO6", "kind": "shunt", "r_shunt_ohm": 0.0005, "gain": 50.0, "v_ref_v": 1.65,
                  "v_supply_v": 3.3, "cal": {"gain": 1.0}},
    },
    # the stackable breakout: as fugu_s3, but RS485 moves off IO4..6 (analog inputs here)
    "breakout": {"sck": "IO15", "mosi": "IO16", "miso": "IO17", "sd_cs": "IO18", "can_cs": "IO10", "can_int": "IO7",
                 "uart_tx": "IO42", "uart_rx": "IO48", "rs485_de": "IO14", "button": "IO38"},
    "ntc": {"r25_ohm": 10000, "beta_k": 3435, "r_fixed_ohm": 10000, "v_ref_v": 3.3, "to_ground": False},
    "power_stage": {
        "f_pwm_hz": 39000,
        "l_h": 64e-6,
        "c_in_f": 940e-6,
        "c_out_f": 940e-6,
        "t_dead_s": 520e-9,
        "c_boot_f": 1e-6,
        "r_boot_ohm": 10.0,
        "v_cc_v": 12.0,
    },
    "ratings": {"v_in_max_mv": 80000, "i_in_max_ma": 30000, "v_out_max_mv": 50000, "i_out_max_ma": 35000,
                "p_max_mw": 1000000},
}
