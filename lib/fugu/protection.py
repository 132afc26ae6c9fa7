"""Protections of one power stage: each with a threshold, a debounce (control steps), a response and a recovery rule.

Pure logic: measurements in, a trip (fault code) out; the controller applies the response (the gate driver's safe
state) and holds the stage off until the recovery rule is met, with a back-off that doubles on repeated trips.
Response time = debounce steps + the rest of the step in which the last sample was read (the controller stops the
gate in the same step the check trips). Anything faster than a control step (shoot-through, a sudden battery
disconnect at full power) is the hardware's job; see the README table.

| code       | trips when                                               | debounce | recovery                          |
|------------|----------------------------------------------------------|----------|-----------------------------------|
| PV_OV      | V_in > v_in_max (setting, capped by the board rating)    | 2        | V_in < max - 3 V for 5 s          |
| BAT_OV     | V_out > charge target + 5 % (or the absolute maximum);   | 1        | V_out < target for 10 s           |
|            | a lowered target applies once V_out is below it          |          |                                   |
| BAT_ABSENT | V_out < 5 V (nothing to charge)                          | 3        | V_out >= 5 V for 3 s              |
| OC_IN      | I_in > 1.15 x rating (the input-current limit acts first)| 2        | 10 s                              |
| OC_OUT     | I_out > 1.15 x rating (measured where the board can)     | 2        | 10 s                              |
|            | (OC_IN, OC_OUT: or within 2 % of the sensor's full scale)|          |                                   |
| REVERSE    | I_in < -0.5 A while running                              | 3        | 10 s                              |
|            | (a reading at the sensor's negative end: at once)        | 1        |                                   |
| PV_SHORT   | V_in < 2 V with current flowing, or V_in < V_out - 1 V   | 1        | V_in > V_out + 1 V for 10 s       |
|            | while switching (a working buck's input never is)        |          |                                   |
| SENSOR     | ADC bus error, no conversion, or a stuck reading         | 1 (600)  | 2 s of good readings              |
| PV_LOST    | power collapses and the scan that follows finds none     | scan+3 s | as a normal start (stage.py)      |
"""

from micropython import const

PV_OV = "PV_OV"
BAT_OV = "BAT_OV"
BAT_ABSENT = "BAT_ABSENT"
OC_IN = "OC_IN"
OC_OUT = "OC_OUT"
REVERSE = "REVERSE"
PV_SHORT = "PV_SHORT"
PV_LOST = "PV_LOST"
SENSOR = "SENSOR"

V_BAT_PRESENT_MV = const(5000)
_I_REVERSE_MA = const(-500)
_I_LOST_MA = const(60)
_V_SHORT_MARGIN_MV = const(1000)  # V_in this far below V_out while switching = the input collapsed (PV_SHORT)


class StageProtection:
    def __init__(self, v_in_max_mv, i_in_max_ma, i_out_max_ma, v_out_abs_max_mv):
        self.v_in_max_mv = v_in_max_mv
        self.i_in_trip_ma = i_in_max_ma * 115 // 100
        self.i_out_trip_ma = i_out_max_ma * 115 // 100
        self.v_out_abs_max_mv = v_out_abs_max_mv
        self.v_bat_ov_mv = v_out_abs_max_mv
        self._v_ov_next = 0  # a lowered threshold waiting for the battery to relax below it
        self._n_pv_ov = 0
        self._n_bat_ov = 0
        self._n_absent = 0
        self._n_oc_in = 0
        self._n_oc_out = 0
        self._n_rev = 0
        self._n_lost = 0
        self._i_prev_ma = 0
        self.i_rev_sat_ma = -(1 << 29)  # reverse input current reading at the sensor's end (limit_to_sensor)

    def limit_to_sensor(self, i_in_full_ma, i_out_full_ma, i_in_rev_full_ma=0):
        """A current sensor that saturates below the trip level could never trip it (fugu_s3's INA240 + ADS1115
        read at most 39.8 A, 1.15 x 35 A is 40.25 A): a reading within 2 % of the sensor's full scale counts as
        over-current. Likewise a reverse input current at the sensor's negative end (fugu_v1's reversed ACS712
        reads down to -3.4 A only) is at least that large: REVERSE trips at once. 0 = no sensor / unknown."""
        if i_in_rev_full_ma < 0:
            self.i_rev_sat_ma = i_in_rev_full_ma * 98 // 100
        if i_in_full_ma > 0:
            lim = i_in_full_ma * 98 // 100
            if lim < self.i_in_trip_ma:
                self.i_in_trip_ma = lim
        if i_out_full_ma > 0:
            lim = i_out_full_ma * 98 // 100
            if lim < self.i_out_trip_ma:
                self.i_out_trip_ma = lim

    def set_charge_target(self, v_target_mv):
        """BAT_OV trips 5 % above the charge voltage (never above the absolute maximum). A LOWER target (absorption
        -> float: 14.4 -> 13.5 V, lead +5 % = 14.17 V) takes effect only once the battery has relaxed below its new
        threshold: a battery resting at the voltage it was just charged to is not an over-voltage."""
        v = v_target_mv + v_target_mv // 20 if v_target_mv else self.v_out_abs_max_mv
        if v > self.v_out_abs_max_mv:
            v = self.v_out_abs_max_mv
        if v >= self.v_bat_ov_mv:
            self.v_bat_ov_mv = v
            self._v_ov_next = 0
        else:
            self._v_ov_next = v

    @staticmethod
    def _deb(cond, n):
        return n + 1 if cond else 0

    def check(self, v_in, i_in, v_out, i_out, running):
        """The fault to act on now, or None. i_out is None when the board has no output current sensor."""
        self._n_pv_ov = n = self._deb(v_in > self.v_in_max_mv, self._n_pv_ov)
        if n >= 2:
            return PV_OV
        if self._v_ov_next and v_out < self._v_ov_next:
            self.v_bat_ov_mv = self._v_ov_next  # the battery has relaxed below the lowered threshold
            self._v_ov_next = 0
        self._n_bat_ov = n = self._deb(v_out > self.v_bat_ov_mv, self._n_bat_ov)
        if n >= 1:
            return BAT_OV
        self._n_absent = n = self._deb(v_out < V_BAT_PRESENT_MV, self._n_absent)
        if n >= 3:
            return BAT_ABSENT
        self._n_oc_in = n = self._deb(i_in > self.i_in_trip_ma, self._n_oc_in)
        if n >= 2:
            return OC_IN
        if i_out is not None:
            self._n_oc_out = n = self._deb(i_out > self.i_out_trip_ma, self._n_oc_out)
            if n >= 2:
                return OC_OUT
        if running:
            # a buck's input cannot sit below its output while it switches: the input has collapsed (a short on
            # the PV terminals dumps the input capacitor and then drives the inductor backwards from the battery)
            if (v_in < 2000 and (i_in > 500 or v_out > V_BAT_PRESENT_MV)) or v_in + _V_SHORT_MARGIN_MV < v_out:
                return PV_SHORT
            self._n_rev = n = self._deb(i_in < _I_REVERSE_MA, self._n_rev)
            if n >= 3 or i_in <= self.i_rev_sat_ma:
                return REVERSE
        else:
            self._n_rev = 0
            self._n_lost = 0
            self._i_prev_ma = 0
        return None

    def recovered(self, code, v_in, v_out, held_ms):
        """Whether the stage may restart after code, given how long the recovery condition has held."""
        if code == PV_OV:
            return v_in < self.v_in_max_mv - 3000 and held_ms >= 5000
        if code == BAT_OV:
            return v_out < self.v_bat_ov_mv - self.v_bat_ov_mv // 20 and held_ms >= 10000
        if code == BAT_ABSENT:
            return v_out >= V_BAT_PRESENT_MV and held_ms >= 3000
        if code == PV_SHORT:
            return v_in > v_out + 1000 and held_ms >= 10000
        if code == SENSOR:
            return held_ms >= 2000
        return held_ms >= 10000

    def condition_holds(self, code, v_in, v_out):
        """The instantaneous part of the recovery rule (the controller times how long it has held)."""
        if code == PV_OV:
            return v_in < self.v_in_max_mv - 3000
        if code == BAT_OV:
            return v_out < self.v_bat_ov_mv - self.v_bat_ov_mv // 20
        if code == BAT_ABSENT:
            return v_out >= V_BAT_PRESENT_MV
        if code == PV_SHORT:
            return v_in > v_out + 1000
        return True
