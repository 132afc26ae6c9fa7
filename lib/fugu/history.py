"""Daily history for the last 30 days (today included) and lifetime totals, persisted in microcontroller.nvm.

The board has no real-time clock, so a "day" is solar: a new day starts when PV comes back after it has been dark
(pv_present false) for at least `dark_rollover_s` (2 hours by default) and the current day has already seen PV. A
day record therefore runs from one sunrise to the next and includes the night after it. Consequences: a day with
no PV at all (snow, a disconnected panel) merges into the next one; the dark time counts only while the controller
runs (it is persisted, but a controller switched off overnight and on after sunrise sees one long day); a cloud
darker than `pv_present` for less than 2 hours does not split a day.

Per day: PV energy (net, mWh), battery energy in and out (mWh), peak PV power, time in each charger stage (ids of
lib/fugu/charger.py: off, bulk, absorb, float, storage, equalize; their sum is the length of the day), min and max
battery voltage. Lifetime totals are the closed days plus today; the sub-mWh rest of a closed day carries into the
next one, so nothing is lost at a rollover.

Stored compactly with struct (973 of the 1011 bytes a slot holds): today at full resolution (exact energy state,
stage times in ms); closed days with stage times in whole minutes and the peak in units of 100 mW (what days()
shows for them is what survives a reboot). tick() is called ~1/s and does integer work only; save() is a blocking
flash write (tens of ms), for the controller to call every few minutes and at a rollover (tick() returns True),
never inside the control step.
"""

import struct

from micropython import const

from fugu.energy import CH_BAT_IN, CH_BAT_OUT, CH_PV, EnergyMeter
from fugu.nvstore import SlotStore

HISTORY_BASE = const(2112)
HISTORY_SLOT_SIZE = const(1024)
HISTORY_MAGIC = b"FH"
HISTORY_FORMAT_VERSION = const(1)

_STAGE_COUNT = const(6)  # lib/fugu/charger.py STAGE_OFF..STAGE_EQUALIZE
MAX_DAYS = const(30)  # today + 29 closed days
_DARK_ROLLOVER_S = const(7200)
_V_NONE_MIN = const(0xFFFF)  # v_min before any reading
_PEAK_UNIT_MW = const(100)  # closed days store the peak in 0.1 W (uint16: up to 6553.5 W)

# header: closed days, stage count, flags (bit 0: today has seen PV), today's day number, dark time (ms)
_HEAD = ">BBBII"
# lifetime of the closed days: PV Wh (signed), PV mWh rest, battery in Wh, rest, battery out Wh, rest
_LIFE = ">iHIHIH"
# today: energy state 3 x (uJ, mJ, mWh, Wh), peak mW, stage seconds x6, stage ms rest x6, v_min, v_max
_TODAY = ">HHHiHHHiHHHiI6I6HHH"
# a closed day: PV mWh (signed), battery in mWh, out mWh, peak (100 mW), stage minutes x6, v_min, v_max
_DAY = ">iIIH6HHH"
# struct.calcsize() of each (tests/core/test_history.py checks them), as constants: no names kept in RAM
_HEAD_SIZE = const(11)
_LIFE_SIZE = const(18)
_TODAY_SIZE = const(74)
_DAY_SIZE = const(30)
PAYLOAD_MAX = const(_HEAD_SIZE + _LIFE_SIZE + _TODAY_SIZE + (MAX_DAYS - 1) * _DAY_SIZE)


def _u16(v):
    return 0 if v < 0 else (0xFFFF if v > 0xFFFF else v)


def _u32(v):
    return 0 if v < 0 else (0xFFFFFFFF if v > 0xFFFFFFFF else v)


def _i32(v):
    return -0x80000000 if v < -0x80000000 else (0x7FFFFFFF if v > 0x7FFFFFFF else v)


class History:
    """Today, the closed days (newest first) and lifetime totals; loads from nvm at construction and says what
    it found via `log`."""

    def __init__(self, nvm, log=print, dark_rollover_s=_DARK_ROLLOVER_S):
        self.log = log
        self.dark_rollover_ms = int(dark_rollover_s) * 1000
        self.energy = EnergyMeter()  # today's
        self._stage_s = [0] * _STAGE_COUNT
        self._stage_ms = [0] * _STAGE_COUNT
        self._closed = []  # closed days as stored tuples (see _DAY), newest first
        self._store = None if nvm is None else SlotStore(nvm, HISTORY_BASE, HISTORY_SLOT_SIZE, HISTORY_MAGIC,
                                                           HISTORY_FORMAT_VERSION)
        self._clear()
        self.source = "empty"
        self._load()

    def _clear(self):
        self.energy.reset()
        self._new_day_fields()
        self._closed = []
        self.day_number = 1
        self._dark_ms = 0
        self._life_pv_mwh = 0
        self._life_bat_in_mwh = 0
        self._life_bat_out_mwh = 0
        self.dirty = False

    def _new_day_fields(self):
        for i in range(_STAGE_COUNT):
            self._stage_s[i] = 0
            self._stage_ms[i] = 0
        self._peak_pv_mw = 0
        self._v_min_mv = _V_NONE_MIN
        self._v_max_mv = 0
        self._sun_seen = False

    # -- the per-second call ---------------------------------------------------------------------------------
    def tick(self, dt_ms, p_pv_mw, p_bat_mw, v_bat_mv, stage, pv_present):
        """Account dt_ms of operation (integers: ms, mW, mV; v_bat_mv None or <= 0 when there is no reading; a
        stage id outside 0..5 counts as off). Returns True when this tick started a new day (time to save)."""
        if dt_ms <= 0:
            return False
        new_day = False
        if pv_present:
            if self._sun_seen and self._dark_ms >= self.dark_rollover_ms:
                self._close_day()
                new_day = True
            self._dark_ms = 0
            self._sun_seen = True
        elif self._dark_ms < self.dark_rollover_ms:
            self._dark_ms += dt_ms
        self.energy.add(p_pv_mw, p_bat_mw, dt_ms)
        if p_pv_mw > self._peak_pv_mw:
            self._peak_pv_mw = p_pv_mw
        if v_bat_mv is not None and v_bat_mv > 0:
            if v_bat_mv < self._v_min_mv:
                self._v_min_mv = v_bat_mv
            if v_bat_mv > self._v_max_mv:
                self._v_max_mv = v_bat_mv
        if not 0 <= stage < _STAGE_COUNT:
            stage = 0
        ms = self._stage_ms[stage] + dt_ms
        if ms >= 1000:
            s = ms // 1000
            self._stage_s[stage] += s
            ms -= s * 1000
        self._stage_ms[stage] = ms
        self.dirty = True
        return new_day

    def _close_day(self):
        e = self.energy
        pv = e.take_mwh(CH_PV)
        bat_in = e.take_mwh(CH_BAT_IN)
        bat_out = e.take_mwh(CH_BAT_OUT)
        self._life_pv_mwh += pv
        self._life_bat_in_mwh += bat_in
        self._life_bat_out_mwh += bat_out
        minutes = [_u16((self._stage_s[i] + 30) // 60) for i in range(_STAGE_COUNT)]
        rec = (_i32(pv), _u32(bat_in), _u32(bat_out), _u16((self._peak_pv_mw + _PEAK_UNIT_MW // 2) // _PEAK_UNIT_MW),
               tuple(minutes), _u16(self._v_min_mv), _u16(self._v_max_mv))
        self._closed.insert(0, rec)
        if len(self._closed) > MAX_DAYS - 1:
            self._closed.pop()
        self.day_number += 1
        self._new_day_fields()

    # -- read-outs ---------------------------------------------------------------------------------------------
    @property
    def today(self):
        """Today's record (see days())."""
        e = self.energy
        return {
            "day": self.day_number,
            "pv_mwh": e.pv_mwh,
            "bat_in_mwh": e.bat_in_mwh,
            "bat_out_mwh": e.bat_out_mwh,
            "peak_pv_mw": self._peak_pv_mw,
            "stage_s": tuple(self._stage_s),
            "v_min_mv": None if self._v_min_mv == _V_NONE_MIN else self._v_min_mv,
            "v_max_mv": None if self._v_max_mv == 0 else self._v_max_mv,
        }

    def days(self):
        """Up to 30 day records, newest first (today first), each a dict: day (number since the history began),
        pv_mwh, bat_in_mwh, bat_out_mwh, peak_pv_mw, stage_s (6 stage times in s, by stage id), v_min_mv and
        v_max_mv (None without a reading). Closed days have stage times in whole minutes, the peak in 100 mW."""
        out = [self.today]
        n = self.day_number
        for k in range(len(self._closed)):
            pv, bat_in, bat_out, peak, minutes, v_min, v_max = self._closed[k]
            out.append({
                "day": n - 1 - k,
                "pv_mwh": pv,
                "bat_in_mwh": bat_in,
                "bat_out_mwh": bat_out,
                "peak_pv_mw": peak * _PEAK_UNIT_MW,
                "stage_s": tuple([m * 60 for m in minutes]),
                "v_min_mv": None if v_min == _V_NONE_MIN else v_min,
                "v_max_mv": None if v_max == 0 else v_max,
            })
        return out

    @property
    def today_peak_mw(self):
        return self._peak_pv_mw

    @property
    def lifetime_pv_mwh(self):
        return self._life_pv_mwh + self.energy.pv_mwh

    @property
    def lifetime_bat_in_mwh(self):
        return self._life_bat_in_mwh + self.energy.bat_in_mwh

    @property
    def lifetime_bat_out_mwh(self):
        return self._life_bat_out_mwh + self.energy.bat_out_mwh

    # -- persistence -------------------------------------------------------------------------------------------
    def encode(self):
        """The stored bytes of the whole history."""
        n = len(self._closed)
        buf = bytearray(_HEAD_SIZE + _LIFE_SIZE + _TODAY_SIZE + n * _DAY_SIZE)
        struct.pack_into(_HEAD, buf, 0, n, _STAGE_COUNT, 1 if self._sun_seen else 0, _u32(self.day_number),
                         _u32(self._dark_ms))
        pos = _HEAD_SIZE
        pv_wh, pv_rest = divmod(self._life_pv_mwh, 1000)
        in_wh, in_rest = divmod(self._life_bat_in_mwh, 1000)
        out_wh, out_rest = divmod(self._life_bat_out_mwh, 1000)
        struct.pack_into(_LIFE, buf, pos, _i32(pv_wh), pv_rest, _u32(in_wh), in_rest, _u32(out_wh), out_rest)
        pos += _LIFE_SIZE
        st = self.energy.state()
        args = [_i32(v) for v in st]
        args.append(_u32(self._peak_pv_mw))
        args.extend([_u32(v) for v in self._stage_s])
        args.extend(self._stage_ms)
        args.append(_u16(self._v_min_mv))
        args.append(_u16(self._v_max_mv))
        struct.pack_into(_TODAY, buf, pos, *args)
        pos += _TODAY_SIZE
        for rec in self._closed:
            pv, bat_in, bat_out, peak, minutes, v_min, v_max = rec
            struct.pack_into(_DAY, buf, pos, pv, bat_in, bat_out, peak, minutes[0], minutes[1], minutes[2],
                             minutes[3], minutes[4], minutes[5], v_min, v_max)
            pos += _DAY_SIZE
        return bytes(buf)

    def decode(self, payload):
        """Load a stored history (raises ValueError when it is not one). The code is in fugu/history_load.py."""
        from fugu.history_load import decode

        decode(self, payload)

    def _load(self):
        """The stored history at boot (fugu/history_load.py, dropped again afterwards: boot-time code)."""
        from fugu import forget
        from fugu.history_load import load

        try:
            load(self)
        finally:
            forget("fugu.history_load")

    def save(self):
        """Persist (two slots: a cut write keeps the previous copy). Blocking flash write: not from the control
        step. Returns the bytes written (0 without nvm)."""
        if self._store is None:
            return 0
        n = self._store.write(self.encode())
        self.dirty = False
        return n
