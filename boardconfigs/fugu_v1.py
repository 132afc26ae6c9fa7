"""The original FUGU MPPT board (ESP32-WROOM-32): ADS1115 (or ADS1015) at 0x48 with gain 2 (+-2.048 V), an
ACS712-30A on the PV input mounted reversed, 200k/5.1k PV divider, IR2104 half bridge at 39 kHz, backflow MOSFET,
10k NTC on the ESP32's own ADC. Values from the original design (shared/DESIGN.md)."""

BOARD = {
    "name": "fugu_v1",
    "mcu": "esp32",
    "pins": {
        "pwm": "IO33",  # IR2104 IN
        "enable": "IO32",  # IR2104 SD (high = driver on); pulled down on the board
        "backflow": "IO27",  # backflow MOSFET gate driver
        "fan": "IO16",
        "ntc": "IO35",  # ESP32 ADC1
        "led": "IO2",
        "adc_rdy": "IO34",  # ADS1115 ALERT/RDY (open drain, pulled up)
        "sda": "IO21",
        "scl": "IO22",
        "buttons": ("IO18", "IO17", "IO19", "IO23"),
    },
    "i2c_hz": 400000,
    # "auto": the footprint takes an ADS1115, an ADS1015 (12 bit, up to 3300 SPS: what the original firmware was built
    # for) or a TLA2024 (the ADS1015's register set without ALERT/RDY); the firmware finds out at boot which one
    # (fugu/adc_detect.py); the scenario key board.adc swaps the simulated chip
    "adc": {"type": "auto", "address": 0x48, "pga_v": 2.048},
    "adc_alternatives": ("ADS1015", "TLA2024"),
    # what each ADC input sees: scale maps pin volts to the quantity
    "sense": {
        "v_in": {"ch": 3, "kind": "divider", "r_top_ohm": 200000, "r_bottom_ohm": 5100, "node": "input_cap"},
        "v_out": {"ch": 1, "kind": "divider", "r_top_ohm": 47000, "r_bottom_ohm": 2000},
        "i_in": {"ch": 2, "kind": "acs712", "v_per_a": 0.066, "vcc_v": 5.0, "direction": -1,
                 "r_top_ohm": 3300, "r_bottom_ohm": 10000},
    },
    # the original firmware's resistance formula puts the NTC on top of the divider; its Steinhart-Hart fit is a B~3435 part
    # the stackable breakout (extensions): I2C is shared with the ADC; SPI through the GPIO matrix on free pins (not
    # the original buttons' VSPI pins, not the strapping pin IO12 for MISO); IO36/IO39 are input-only (fine for MISO/INT)
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
