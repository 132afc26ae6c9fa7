"""The help line of each setting (lib/fugu/settings.py SCHEMA), for settings.describe() and the BLE `help` command.

A separate module so that the texts cost no RAM on a running controller: settings.help_text() imports it for one
answer and drops it again.
"""

HELP = {
    "battery_chem": "battery chemistry: sets the charge voltages per cell (custom uses the custom_* settings)",
    "battery_cells": "cells in series; 0 = auto-detect a 12/24/48 V bank from the battery voltage at start",
    "battery_capacity_ah": "nominal capacity: scales the tail current and the absorption time",
    "i_charge_max_ma": "maximum charge current into the battery (the board rating also limits it)",
    "custom_v_absorb_cell_mv": "custom profile: absorption (constant-voltage) voltage per cell",
    "custom_v_float_cell_mv": "custom profile: float voltage per cell (not above absorption)",
    "custom_v_rebulk_cell_mv": "custom profile: below this voltage per cell a new bulk charge starts (below float)",
    "custom_tail_ma_per_ah":
        "custom profile: absorption ends when the current falls below this per Ah of capacity (0 = on time only)",
    "equalize_enable": "periodic equalization charge for flooded lead-acid; never applied to lithium",
    "temp_comp_uv_per_c_cell":
        "lead-acid only: charge voltage change per degree C away from 25 C, per cell (lithium ignores it)",
    "mode": "power stage direction: buck (PV above battery) or boost (battery side stepped up to a higher voltage)",
    "v_in_max_mv": "input over-voltage limit (clamped at run time to the board rating)",
    "p_max_w": "maximum converter power (clamped at run time to the board rating)",
    "t_derate_start_c": "heatsink temperature where power derating starts (below t_shutdown_c)",
    "t_shutdown_c": "heatsink temperature that stops the converter",
    "fan_on_c": "heatsink temperature that switches the fan on",
    "silent_mode": "reduce the current instead of running the fan",
    "scan_interval_s":
        "period of the global MPPT scan that finds the global peak under partial shade; 0 = no periodic scan",
    "extensions_disabled": "comma-separated names of extensions not to start, e.g. oled,can",
    "ble_pin": "BLE pairing PIN; 0 = a random PIN is generated at each boot and shown on the console/display",
    "log_interval_s": "period of the telemetry/log lines",
    "modbus_address": "Modbus RTU slave address (RS485 extension)",
    "can_bitrate": "CAN bus bit rate (CAN extension)",
    "cal_v_in_ppm": "gain correction of the PV voltage reading (calibrate against a meter: (meter/reading - 1) * 1e6)",
    "cal_v_out_ppm": "gain correction of the battery voltage reading",
    "cal_i_in_ppm": "gain correction of the PV current reading",
    "cal_i_out_ppm": "gain correction of the output current reading (boards with an output current sensor)",
    "boost_v_target_mv": "boost mode: voltage to hold on the high-voltage (PV-terminal) side",
    "boost_i_max_ma": "boost mode: maximum current drawn from the battery side",
}
