"""Heatsink temperature (NTC on the MCU's ADC), fan control, power derating and thermal faults.

Runs about once a second, not per control step (temperature moves slowly and the ESP32's analogio read is slow).
Derating is linear in temperature from t_derate_start_c (100 %) to t_shutdown_c (0 %), so the power limit moves
smoothly instead of the stage tripping at full power; "silent mode" keeps the fan off and starts derating at the
fan's switch-on temperature instead. Fan failure (FUGU has no tachometer) is inferred: the fan has run for a while
and the heatsink still heats up at a rate only a stopped fan explains.
"""

import math

NTC_OPEN = "NTC_OPEN"
NTC_SHORT = "NTC_SHORT"
OVER_TEMP = "OVER_TEMP"
FAN_FAIL = "FAN_FAIL"

T_KELVIN0 = 273.15
FAN_HYST_C = 5
FAN_CHECK_S = 180  # after this long with the fan on ...
FAN_RISE_C = 4  # ... a heatsink this much warmer than when it started means the fan isn't moving air
SENSOR_FAULT_DERATE_PCT = 50


def ntc_temp_c(v_pin, ntc):
    """Heatsink temperature from the divider voltage (beta model), or None when the reading is outside what a
    connected NTC can produce (open or shorted)."""
    v_ref = ntc["v_ref_v"]
    r_fixed = ntc["r_fixed_ohm"]
    if v_pin <= 0.02 * v_ref or v_pin >= 0.98 * v_ref:
        return None
    if ntc["to_ground"]:
        r = r_fixed * v_pin / (v_ref - v_pin)
    else:
        r = r_fixed * (v_ref - v_pin) / v_pin
    t = 1.0 / (1.0 / (25.0 + T_KELVIN0) + math.log(r / ntc["r25_ohm"]) / ntc["beta_k"]) - T_KELVIN0
    return t


class Thermal:
    def __init__(self, ntc_cfg, t_derate_start_c=70, t_shutdown_c=85, fan_on_c=45, silent=False):
        self.ntc = ntc_cfg
        self.configure(t_derate_start_c, t_shutdown_c, fan_on_c, silent)
        self.temp_c = None
        self.fan_on = False
        self.derate_pct = 100
        self.fault = None  # NTC_OPEN / NTC_SHORT / OVER_TEMP / FAN_FAIL or None
        self.fan_failed = False
        self._fan_on_s = 0
        self._t_fan_start = 0.0

    def configure(self, t_derate_start_c, t_shutdown_c, fan_on_c, silent):
        self.t_derate_c = t_derate_start_c
        self.t_shutdown_c = t_shutdown_c
        self.fan_on_c = fan_on_c
        self.silent = silent

    def update(self, v_pin):
        """Once a second with the NTC divider voltage: sets temp_c, fan_on, derate_pct, fault."""
        t = ntc_temp_c(v_pin, self.ntc)
        if t is None:
            # open or short: no temperature; run the fan and cap the power at a level the heatsink takes uncooled
            self.temp_c = None
            high = v_pin >= 0.98 * self.ntc["v_ref_v"]
            # NTC on top of the divider: open -> pin near 0 V; to ground: open -> pin near V_ref
            open_ = high if self.ntc["to_ground"] else not high
            self.fault = NTC_OPEN if open_ else NTC_SHORT
            self.fan_on = not self.silent
            self.derate_pct = SENSOR_FAULT_DERATE_PCT
            return
        self.temp_c = t
        if self.fault in (NTC_OPEN, NTC_SHORT):
            self.fault = None
        # fan with hysteresis
        if self.silent:
            self.fan_on = False
        elif t >= self.fan_on_c:
            self.fan_on = True
        elif t < self.fan_on_c - FAN_HYST_C:
            self.fan_on = False
        # fan failure: running for FAN_CHECK_S yet the heatsink keeps rising
        if self.fan_on:
            if self._fan_on_s == 0:
                self._t_fan_start = t
            self._fan_on_s += 1
            if self._fan_on_s >= FAN_CHECK_S and t > self._t_fan_start + FAN_RISE_C and t > self.fan_on_c + 10:
                self.fan_failed = True
        else:
            self._fan_on_s = 0
        # derating
        start = self.fan_on_c if self.silent else self.t_derate_c
        if self.fan_failed:
            start = self.fan_on_c
        if t >= self.t_shutdown_c:
            self.derate_pct = 0
            self.fault = OVER_TEMP
        elif self.fault == OVER_TEMP and t > self.t_shutdown_c - 10:
            self.derate_pct = 0
        else:
            if self.fault == OVER_TEMP:
                self.fault = None
            if t <= start:
                self.derate_pct = 100
            else:
                self.derate_pct = int(100 * (self.t_shutdown_c - t) / (self.t_shutdown_c - start))
        if self.fan_failed and self.fault is None:
            self.fault = FAN_FAIL
