"""FUGU on an ESP32-S3 (native USB: the CIRCUITPY drive, and BLE): the original power stage and ADS1115 front-end,
with its ALERT/RDY pin wired, plus an output current sensor on the ADS1115's free A0 input, so output over-current
is measured, not computed from the input power.

Where the values come from:
- power stage, dividers, the reversed ACS712-30A on the PV input, NTC: the original board (see fugu_v1 and
  shared/DESIGN.md), unchanged;
- output current: a 0.5 mOhm shunt in the battery lead and an INA240A1 (gain 20 V/V, output referenced to VS/2 by
  tying REF1 to VS and REF2 to GND, VS = 3.3 V): 10 mV/A around 1.65 V, so the ADS1115's +-2.048 V range reads
  -165 .. +39.8 A: the 35 A rating with margin, and reverse current is visible (INA240 datasheet, SBOS662:
  bidirectional operation, gain options A1..A4 = 20, 50, 100, 200);
- pins: ESP32-S3 GPIOs that are free on an ESP32-S3-WROOM-1 N8R8 module: not the SPI flash / octal PSRAM pins
  (GPIO26..32, 35..37), not USB (GPIO19/20), not the strapping pins (GPIO0, 3, 45, 46), not UART0 (GPIO43/44). The
  NTC sits on an ADC1 pin (GPIO1..10): ADC2 (GPIO11..20) is shared with Wi-Fi and fails while it is on
  (CIRCUITPYTHON-FACTS: analogio). The other ADC1 pins stay free (fugu_s3_internal_adc uses them).
"""

BOARD = {
    "name": "fugu_s3",
    "mcu": "esp32s3",
    "pins": {
        "pwm": "IO11",  # IR2104 IN (LEDC)
        "enable": "IO12",  # IR2104 SD, pulled down on the board
        "backflow": "IO13",  # backflow MOSFET gate driver
        "adc_rdy": "IO14",  # ADS1115 ALERT/RDY (open drain, pulled up)
        "fan": "IO21",
        "ntc": "IO1",  # ADC1_CH0
        "led": "IO47",
        "sda": "IO8",
        "scl": "IO9",
        "buttons": ("IO38", "IO39", "IO40"),
    },
    "i2c_hz": 400000,
    "adc": {"type": "ADS1115", "address": 0x48, "pga_v": 2.048},
    "sense": {
        "v_in": {"ch": 3, "kind": "divider", "r_top_ohm": 200000, "r_bottom_ohm": 5100, "node": "input_cap"},
        "v_out": {"ch": 1, "kind": "divider", "r_top_ohm": 47000, "r_bottom_ohm": 2000},
        "i_in": {"ch": 2, "kind": "acs712", "v_per_a": 0.066, "vcc_v": 5.0, "direction": -1,
                 "r_top_ohm": 3300, "r_bottom_ohm": 10000},
        "i_out": {"ch": 0, "kind": "shunt", "r_shunt_ohm": 0.0005, "gain": 20.0, "v_ref_v": 1.65, "v_supply_v": 3.3},
    },
    # the stackable breakout (extensions): I2C shared with the ADC; SPI, CAN and RS485 on free ESP32-S3 GPIOs; a 3.3 V
    # CAN transceiver (SN65HVD230) on the TWAI pins can_tx/can_rx, so the CAN extension uses canio, not an MCP2515
    "breakout": {"sck": "IO15", "mosi": "IO16", "miso": "IO17", "sd_cs": "IO18", "can_cs": "IO10", "can_int": "IO7",
                 "can_tx": "IO42", "can_rx": "IO48",
                 "uart_tx": "IO4", "uart_rx": "IO5", "rs485_de": "IO6", "button": "IO38"},
    # hardware output over-voltage protection (a battery disconnected at full power charges the output capacitor
    # faster than any control step can see): a comparator (TLV3201, push-pull into a diode-OR on the IR2104 SD line
    # and an open-drain copy to fault_pin, pulled up) between the output through its own divider and a reference
    # the firmware sets with a filtered PWM (ref_pin, 10 kOhm + 1 uF) to the BAT_OV threshold; ~1 us to SD low.
    # the backflow MOSFET is driven by an ideal-diode controller (LM74700-Q1 class) whose enable is the backflow
    # pin: reverse current turns it off within ~1 us (a bolted short at the PV terminals while running)
    "backflow_ideal_diode": True,
    "ovp": {"ref_pin": "IO2", "fault_pin": "IO41", "r_top_ohm": 47000, "r_bottom_ohm": 2000, "v_ref_full_v": 3.3,
            "f_ref_hz": 20000},
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
