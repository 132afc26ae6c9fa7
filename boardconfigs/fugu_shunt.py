"""FUGU (original ESP32 pinout, ADS1115) with shunt amplifiers instead of the ACS712: the PV current AND the
battery current are measured, both signed, so reverse current (the synchronous buck running backwards at light
load, a battery feeding the converter) is a reading, not a guess.

Where the values come from:
- pins, dividers, ADC, NTC, power stage: the original board (fugu_v1, shared/DESIGN.md);
- current sensing: 0.5 mOhm shunts with INA240A1 amplifiers (gain 20 V/V; REF1 to VS, REF2 to GND, so the output
  sits at VS/2 = 1.65 V for 0 A; VS = 3.3 V): 10 mV/A. In the ADS1115's +-2.048 V range that reads -165..+39.8 A
  (62.5 uV per count = 6.25 mA). The INA240 (datasheet SBOS662) takes -4..80 V common mode and rejects the PWM
  edges, so the input shunt may sit in the PV+ lead at up to the 80 V rating; the output shunt in the battery lead.
  Shunt loss at 35 A: 0.6 W. The PV current stays on A2 (where the ACS712 was); the battery current uses the
  free A0.
"""

BOARD = {
    "name": "fugu_shunt",
    "mcu": "esp32",
    "pins": {
        "pwm": "IO33",
        "enable": "IO32",
        "backflow": "IO27",
        "fan": "IO16",
        "ntc": "IO35",
        "led": "IO2",
        "adc_rdy": "IO34",
        "sda": "IO21",
        "scl": "IO22",
        "buttons": ("IO18", "IO17", "IO19", "IO23"),
    },
    "i2c_hz": 400000,
    "adc": {"type": "ADS1115", "address": 0x48, "pga_v": 2.048},
    "sense": {
        "v_in": {"ch": 3, "kind": "divider", "r_top_ohm": 200000, "r_bottom_ohm": 5100, "node": "input_cap"},
        "v_out": {"ch": 1, "kind": "divider", "r_top_ohm": 47000, "r_bottom_ohm": 2000},
        "i_in": {"ch": 2, "kind": "shunt", "r_shunt_ohm": 0.0005, "gain": 20.0, "v_ref_v": 1.65, "v_supply_v": 3.3},
        "i_out": {"ch": 0, "kind": "shunt", "r_shunt_ohm": 0.0005, "gain": 20.0, "v_ref_v": 1.65, "v_supply_v": 3.3},
    },
    # the stackable breakout: as fugu_v1
    "breakout": {"sck": "IO14", "mosi": "IO13", "miso": "IO39", "sd_cs": "IO5", "can_cs": "IO15", "can_int": "IO36",
                 "uart_tx": "IO25", "uart_rx": "IO26", "rs485_de": "IO4", "button": "IO18"},
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
