"""Energy counters that integrate power over the MEASURED time step, exactly, in small integers.

The original FUGU assumed a fixed 250 ms tick and summed into a 32-bit float, which under-counts when the loop runs
late and stops counting above ~100 kWh (the increment falls below the float's resolution). Here each call adds
p * dt exactly: power is split into whole watts and the mW rest, W*ms (= mJ) and mW*ms (= uJ) go into remainders
that carry into whole mWh, and mWh carry into whole Wh. Nothing is rounded, so a million tiny steps on top of a
lifetime total are all counted, and every intermediate stays below 2**30 (MicroPython's small-int range: no heap
allocation in add()) as long as |p| <= P_LIMIT_MW and dt_ms <= DT_MAX_MS.

`p` passed with a step is the mean power over that step (zero-order hold); pass (p_prev + p_now) // 2 for the
trapezoid rule. PV energy is counted net (a little reverse current or sensor noise around zero cancels instead of
biasing the total); battery energy is counted in and out separately.
"""

from micropython import const

UJ_PER_MJ = const(1000)  # mW*ms per W*ms
MJ_PER_MWH = const(3600)  # W*ms (mJ) per mWh
_MWH_PER_WH = const(1000)
P_LIMIT_MW = const(10000000)  # 10 kW: |p| above this is clamped (and counted in .clamped): a sensor fault, not power
DT_MAX_MS = const(60000)  # a longer step is a gap in measurement, not a minute of known power: clamped, counted
# in .clamped

# channel offsets into the state list; each channel has 4 fields: uJ (0..999), mJ (0..3599), mWh (0..999), Wh
CH_PV = const(0)
CH_BAT_IN = const(4)
CH_BAT_OUT = const(8)
_N_FIELDS = const(12)


class EnergyMeter:
    """PV-side (net) and battery-side (in/out) energy. add() is the hot-path call; the rest are read-outs."""

    def __init__(self):
        self._s = [0] * _N_FIELDS
        self.clamped = 0  # steps whose power or duration was outside the exact range

    def reset(self):
        s = self._s
        for i in range(_N_FIELDS):
            s[i] = 0
        self.clamped = 0

    def _acc(self, ch, p_mw, dt_ms):
        s = self._s
        w = p_mw // 1000  # floor division: also right for negative power (w <= 0, rest in 0..999)
        uj = s[ch] + (p_mw - w * 1000) * dt_ms  # < 1000 + 999 * 60000
        c = uj // UJ_PER_MJ
        s[ch] = uj - c * UJ_PER_MJ
        mj = s[ch + 1] + w * dt_ms + c  # |w * dt| <= 10000 * 60000 = 6e8
        c = mj // MJ_PER_MWH
        s[ch + 1] = mj - c * MJ_PER_MWH
        if c:
            mwh = s[ch + 2] + c
            c = mwh // _MWH_PER_WH
            s[ch + 2] = mwh - c * _MWH_PER_WH
            if c:
                s[ch + 3] += c

    def add(self, p_pv_mw, p_bat_mw, dt_ms):
        """Count one step: mean PV power, mean battery power (positive = charging) over dt_ms milliseconds.
        Integers only (a float would turn the exact state into floats)."""
        if dt_ms <= 0:
            return
        if dt_ms > DT_MAX_MS:
            dt_ms = DT_MAX_MS
            self.clamped += 1
        if p_pv_mw > P_LIMIT_MW or p_pv_mw < -P_LIMIT_MW:
            p_pv_mw = P_LIMIT_MW if p_pv_mw > 0 else -P_LIMIT_MW
            self.clamped += 1
        if p_bat_mw > P_LIMIT_MW or p_bat_mw < -P_LIMIT_MW:
            p_bat_mw = P_LIMIT_MW if p_bat_mw > 0 else -P_LIMIT_MW
            self.clamped += 1
        if p_pv_mw:
            self._acc(CH_PV, p_pv_mw, dt_ms)
        if p_bat_mw > 0:
            self._acc(CH_BAT_IN, p_bat_mw, dt_ms)
        elif p_bat_mw < 0:
            self._acc(CH_BAT_OUT, -p_bat_mw, dt_ms)

    # -- read-outs (allocate: not for the hot path) -----------------------------------------------------------
    def _mwh(self, ch):
        s = self._s
        return s[ch + 3] * _MWH_PER_WH + s[ch + 2]

    def _wh(self, ch):
        s = self._s
        return s[ch + 3] + (s[ch + 2] + (s[ch + 1] + s[ch] / UJ_PER_MJ) / MJ_PER_MWH) / _MWH_PER_WH

    @property
    def pv_mwh(self):
        """Whole mWh from the PV side (net), floored."""
        return self._mwh(CH_PV)

    @property
    def bat_in_mwh(self):
        return self._mwh(CH_BAT_IN)

    @property
    def bat_out_mwh(self):
        return self._mwh(CH_BAT_OUT)

    @property
    def bat_mwh(self):
        """Net battery energy (in - out), whole mWh."""
        return self._mwh(CH_BAT_IN) - self._mwh(CH_BAT_OUT)

    def pv_wh(self):
        return self._wh(CH_PV)

    def bat_in_wh(self):
        return self._wh(CH_BAT_IN)

    def bat_out_wh(self):
        return self._wh(CH_BAT_OUT)

    def exact_uj(self, ch):
        """The exact total of channel `ch` in uJ (mW*ms): for tests and for merging meters."""
        s = self._s
        return ((s[ch + 3] * _MWH_PER_WH + s[ch + 2]) * MJ_PER_MWH + s[ch + 1]) * UJ_PER_MJ + s[ch]

    def state(self):
        """The exact state as a tuple of ints (to persist): 3 channels x (uJ, mJ, mWh, Wh)."""
        return tuple(self._s)

    def restore(self, state):
        """Load a state() tuple; out-of-range remainders are carried so the total is kept."""
        if len(state) != _N_FIELDS:
            raise ValueError("energy state needs %d values" % _N_FIELDS)
        for ch in (CH_PV, CH_BAT_IN, CH_BAT_OUT):
            total_uj = (((state[ch + 3] * _MWH_PER_WH + state[ch + 2]) * MJ_PER_MWH + state[ch + 1]) * UJ_PER_MJ
                        + state[ch])
            self._set_uj(ch, total_uj)

    def _set_uj(self, ch, total_uj):
        s = self._s
        mj, s[ch] = divmod(total_uj, UJ_PER_MJ)
        mwh, s[ch + 1] = divmod(mj, MJ_PER_MWH)
        s[ch + 3], s[ch + 2] = divmod(mwh, _MWH_PER_WH)

    def take_mwh(self, ch):
        """Remove and return the whole mWh of channel `ch`, keeping the sub-mWh remainder (closing a day: the
        next day starts with the remainder, so nothing is lost between days)."""
        s = self._s
        whole = s[ch + 3] * _MWH_PER_WH + s[ch + 2]
        s[ch + 3] = 0
        s[ch + 2] = 0
        return whole

    def merge(self, other):
        """Add another meter's exact totals to this one (e.g. a closed day into a lifetime total)."""
        for ch in (CH_PV, CH_BAT_IN, CH_BAT_OUT):
            self._set_uj(ch, self.exact_uj(ch) + other.exact_uj(ch))
