"""Heatsink temperature (NTC on the MCU's ADC), fan control, power derating and thermal faults.

Runs about once a second, not per control step (temperature moves slowly and the ESP32's analogio read is slow).
Derating is linear in temperature from t_derate_start_c (100 %) to t_shutdown_c (0 %), so the power limit moves
smoothly instead of the stage tripping at full power; "silent mode" keeps the fan off and starts derating at the
fan's switch-on temperature instead.

Fan failure (FUGU has no tachometer) is inferred from the SHAPE of the heat-up while the fan runs, not from how hot
it gets (a working fan on a hot day at full power also heats the heatsink by tens of kelvin). Under steady losses
the heatsink follows a first-order curve, so successive rises over equal windows shrink by exp(-window / tau); tau
is ~2 min with the fan blowing and ~6 min in still air (FUGU-class heatsink: 150 J/K, 0.8 K/W with the fan, 2.5 K/W
without). Rises over 60 s windows that shrink by less than FAN_RATIO_FAILED (a 6-minute curve: 0.85, a 2-minute
one: 0.61), twice in a row while the heatsink warms by at least FAN_RISE_MIN_C per window, mean the fan is not
moving air. A rise that grows (the sun came out) is no evidence either way. FAN_FAIL then holds until a restart
(without a tachometer nothing shows the fan was fixed) and the derating starts at the fan's switch-on temperature.
"""

import math

NTC_OPEN = "NTC_OPEN"
NTC_SHORT = "NTC_SHORT"
OVER_TEMP = "OVER_TEMP"
FAN_FAIL = "FAN_FAIL"

T_KELVIN0 = 273.15
FAN_HYST_C = 5
FAN_WINDOW_S = 60  # fan-failure inference: compare the heatsink's rise over successive windows of this length
FAN_RISE_MIN_C = 1.0  # a window must warm by this much to count (NTC noise and resolution ~0.1 C)
FAN_RATIO_FAILED = 0.75  # rise(n) / rise(n-1) above this = still-air time constant (see the module docstring)
FAN_RATIO_SKIP = 1.1  # above this the heat input grew (sun, load): no evidence
FAN_VERDICTS = 2  # windows in a row that say "no airflow"
SENSOR_FAULT_DERATE_PCT = 50
# A heatsink (~150 J/K) under the board's losses warms or cools well below 1 K/s: a reading that jumps by more than
# this from one second to the next is the sensor, not the heatsink. It matters for a shorted NTC on the ESP32's
# ADC: the pin goes to the rail, the ADC saturates below it (~3.1 V of 3.3 V) and the divider then reads ~105 C,
# a plausible temperature. Hot jump = short (the pin at the short's rail), cold jump = open.
NTC_JUMP_C = 10
HEATSINK_SLEW_C_PER_S = 0.5  # while a jump is held as a fault, the true temperature may have moved this fast


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
        self._t_w0 = 0.0  # heatsink temperature at the start of the previous window ...
        self._t_w1 = 0.0  # ... and of the current one (fan running)
        self._n_w = 0  # window boundaries seen since the fan switched on
        self._n_bad = 0
        self._t_good = None  # the last plausible reading (C) ...
        self._s_bad = 0  # ... and the seconds of sensor fault since

    def configure(self, t_derate_start_c, t_shutdown_c, fan_on_c, silent):
        self.t_derate_c = t_derate_start_c
        self.t_shutdown_c = t_shutdown_c
        self.fan_on_c = fan_on_c
        self.silent = silent

    def update(self, v_pin):
        """Once a second with the NTC divider voltage: sets temp_c, fan_on, derate_pct, fault."""
        t = ntc_temp_c(v_pin, self.ntc)
        fault = None
        if t is None:
            high = v_pin >= 0.98 * self.ntc["v_ref_v"]
            # NTC on top of the divider: open -> pin near 0 V; to ground: open -> pin near V_ref
            open_ = high if self.ntc["to_ground"] else not high
            fault = NTC_OPEN if open_ else NTC_SHORT
        elif self._t_good is not None:
            allow = NTC_JUMP_C + HEATSINK_SLEW_C_PER_S * self._s_bad
            if t > self._t_good + allow:
                fault = NTC_SHORT
            elif t < self._t_good - allow:
                fault = NTC_OPEN
        if fault is not None:
            # open or short: no temperature; run the fan and cap the power at a level the heatsink takes uncooled
            self.temp_c = None
            self.fault = fault
            self._s_bad += 1
            self.fan_on = not self.silent
            self.derate_pct = SENSOR_FAULT_DERATE_PCT
            return
        self._t_good = t
        self._s_bad = 0
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
        if self.fan_on:
            self._fan_check(t)
        else:
            self._fan_on_s = 0
        # derating
        # silent mode or a failed fan: derate from where the fan would have come on (if that is lower)
        start = self.t_derate_c
        if (self.silent or self.fan_failed) and self.fan_on_c < start:
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

    def _fan_check(self, t):
        """Once a second while the fan runs: the heat-up shape over FAN_WINDOW_S windows (module docstring)."""
        n = self._fan_on_s
        self._fan_on_s = n + 1
        if n % FAN_WINDOW_S:
            return
        if n == 0:
            self._n_w = 0
            self._n_bad = 0
        self._n_w += 1
        if self._n_w >= 3:
            d1 = self._t_w1 - self._t_w0
            d2 = t - self._t_w1
            if d1 >= FAN_RISE_MIN_C and d2 <= FAN_RATIO_SKIP * d1:
                if d2 > FAN_RATIO_FAILED * d1:
                    self._n_bad += 1
                    if self._n_bad >= FAN_VERDICTS:
                        self.fan_failed = True
                else:
                    self._n_bad = 0
        self._t_w0 = self._t_w1
        self._t_w1 = t
