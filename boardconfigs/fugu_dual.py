"""Two FUGU power stages on one ESP32-S3, charging one battery: two PV inputs tracked independently (two arrays,
two orientations, or one shaded string apart), twice the power into the same bank.

Where the values come from:
- each channel is the fugu_s3 stage: IR2104 half bridge at 39 kHz, the original dividers, the reversed ACS712-30A
  on its PV input, an INA240A1 + 0.5 mOhm shunt on its output (signed, 10 mV/A around 1.65 V), its own ADS1115
  (0x48: ADDR to GND, 0x49: ADDR to VDD; ADS1115 datasheet, address pin) with its own ALERT/RDY pin, so each stage
  samples without waiting for the other's conversions;
- the two stages' outputs join on the board and leave through one pair of battery terminals; the MCU, fan, NTC
  (one shared heatsink), LED, buttons and I2C bus are shared (top-level keys);
- pins: free GPIOs of an ESP32-S3-WROOM-1 N8R8 (see fugu_s3): channel 0 uses fugu_s3's, channel 1 the next four;
- "p_aux_w" of channel 1: its own IR2104 supply and ADC only (~0.25 W); the MCU's share is on channel 0 (0.7 W,
  the power stage default);
- ratings apply per power stage (the battery sees up to twice i_out_max_ma).
"""

def _sense():
    return {
        "v_in": {"ch": 3, "kind": "divider", "r_top_ohm": 200000, "r_bottom_ohm": 5100, "node": "input_cap"},
        "v_out": {"ch": 1, "kind": "divider", "r_top_ohm": 47000, "r_bottom_ohm": 2000},
        "i_in": {"ch": 2, "kind": "acs712", "v_per_a": 0.066, "vcc_v": 5.0, "direction": -1,
                 "r_top_ohm": 3300, "r_bottom_ohm": 10000},
        "i_out": {"ch": 0, "kind": "shunt", "r_shunt_ohm": 0.0005, "gain": 20.0, "v_ref_v": 1.65,
                  "v_supply_v": 3.3},
    }


def _stage(p_aux_w=None):
    ps = {
        "f_pwm_hz": 39000,
        "l_h": 64e-6,
        "c_in_f": 940e-6,
        "c_out_f": 940e-6,
        "t_dead_s": 520e-9,
        "c_boot_f": 1e-6,
        "r_boot_ohm": 10.0,
        "v_cc_v": 12.0,
    }
    if p_aux_w is not None:
        ps["p_aux_w"] = p_aux_w
    return ps


BOARD = {
    "name": "fugu_dual",
    "mcu": "esp32s3",
    "pins": {
        "fan": "IO21",
        "ntc": "IO1",  # ADC1_CH0
        "led": "IO47",
        "sda": "IO8",
        "scl": "IO9",
        "buttons": ("IO38", "IO39", "IO41"),  # IO40 is the RS485 direction pin (breakout)
    },
    "i2c_hz": 400000,
    "channels": [
        {
            "pins": {"pwm": "IO11", "enable": "IO12", "backflow": "IO13", "adc_rdy": "IO14"},
            "adc": {"type": "ADS1115", "address": 0x48, "pga_v": 2.048},
            "sense": _sense(),
            "power_stage": _stage(),
        },
        {
            "pins": {"pwm": "IO15", "enable": "IO16", "backflow": "IO17", "adc_rdy": "IO18"},
            "adc": {"type": "ADS1115", "address": 0x49, "pga_v": 2.048},
            "sense": _sense(),
            "power_stage": _stage(p_aux_w=0.25),
        },
    ],
    # the stackable breakout: channel 1's gate pins take IO15..18, so SPI sits on IO2/4/5 and RS485 on IO42/48/40
    "breakout": {"sck": "IO2", "mosi": "IO4", "miso": "IO5", "sd_cs": "IO6", "can_cs": "IO10", "can_int": "IO7",
                 "uart_tx": "IO42", "uart_rx": "IO48", "rs485_de": "IO40", "button": "IO38"},
    "ntc": {"r25_ohm": 10000, "beta_k": 3435, "r_fixed_ohm": 10000, "v_ref_v": 3.3, "to_ground": False},
    "ratings": {"v_in_max_mv": 80000, "i_in_max_ma": 30000, "v_out_max_mv": 50000, "i_out_max_ma": 35000,
                "p_max_mw": 1000000},
}
