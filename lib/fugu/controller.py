"""The control loop: read -> protect -> limit -> track -> drive, for every power stage, once per control period;
then, about once a second, the slow work (temperature and fan, charger, energy history, telemetry, settings).

Data flows one way. Extensions see a telemetry snapshot (refreshed once a second) and may only request setting
changes through the validated settings API; they never touch the gate. The extension host gets at most one call per
control step (lib/fugu/extensions.py), so the loop keeps its period.

Settings changed at run time (BLE, Modbus, web) apply within a second; they are written to flash once they have
been stable for _SAVE_AFTER_MS, while no stage switches, or else after a brief stop of the converter (a flash write
blocks for tens of ms and must not leave a running converter unwatched).
"""

import time

from micropython import const

from fugu import charger as C
from fugu.sensors import SensorError, ticks_diff
from fugu import protection as P
from fugu.stage import FAULT, IDLE, RUN, START

try:
    from supervisor import ticks_ms
except ImportError:
    from fugu.sensors import ticks_ms

_SLOW_MS = const(1000)
_IDLE_PERIOD_MS = const(100)  # nothing switching: sample at 10 Hz (and let the CPU rest)
_IDLE_EXT_MARGIN_MS = const(40)  # ... extension calls while idle start only this long before the period ends
_OVERRUN_MS = const(100)  # a control step longer than this is reported (the hardware watchdog catches real hangs)
HISTORY_SAVE_MS = const(3600000)  # energy history to flash once an hour and at every day roll-over
_SAVE_AFTER_MS = const(5000)  # a settings change is saved once no further change came for this long
_SAVE_FORCE_MS = const(60000)  # ... and at the latest this long after it, stopping the converter briefly if it runs


def _share_of(total, used, n_on):
    """A stage's part of `total`: what the others do not use, never less than an equal share of the n_on running
    stages; 1 when the total is 0 (nothing allowed: the stage is stopped by `allowed` as well)."""
    if total <= 0:
        return 1
    rest = total - used
    fair = total // n_on
    return rest if rest > fair else fair


class Controller:
    def __init__(self, hw, settings, charger, energy, history, thermal, log=print, telemetry=None,
                 extensions=None):
        self.hw = hw
        self.stages = hw.stages
        self.settings = settings
        self.charger = charger
        charger.t_upper_bound = getattr(hw, "battery_temp_from_heatsink", False)  # the heatsink NTC bounds it from above
        self.energy = energy
        self.history = history
        self.thermal = thermal
        self.log = log
        self._gen = -1
        self._t_last = ticks_ms()
        self._t_slow = self._t_last
        self._t_saved = self._t_last
        self._slow_dt = 0
        self.steps = 0
        self.overruns = 0
        self.faults_seen = 0
        self.state = IDLE
        self.telemetry = telemetry
        self.ext = extensions
        self._shared = len(self.stages) > 1  # several stages share the battery's current and the power budget
        self._i_total_ma = 0
        self._p_total_mw = 0
        self._p_max_mw = 0  # the power setting, mW (apply_settings)
        self.boost = getattr(hw, "mode", "buck") == "boost"  # boost stages: no charge limits, a discharge floor
        self._t_changed = self._t_last
        self._t_dirty = -1
        self._e_pv_uj = 0
        self._e_bat_uj = 0
        self._last_fault = None
        self._last_fault_ch = -1
        self._last_fault_t = 0
        if telemetry is not None:
            telemetry.history = history
        self.apply_settings()

    # -- settings ------------------------------------------------------------------------------------------------
    def apply_settings(self):
        """Derive the parts' limits from the settings (at boot and after a change). The code is in
        fugu/controller_settings.py, dropped again afterwards: a running controller needs it only then (RAM)."""
        from fugu import forget
        from fugu.controller_settings import apply

        try:
            apply(self)
        finally:
            forget("fugu.controller_settings")

    # -- the loop --------------------------------------------------------------------------------------------
    def step(self):
        now = ticks_ms()
        dt = ticks_diff(now, self._t_last)
        self._t_last = now
        if dt > _OVERRUN_MS and self.steps:
            self.overruns += 1
        allowed = self.thermal.derate_pct > 0
        any_on = False
        p_pv = 0
        p_bat = 0
        shared = self._shared
        for st in self.stages:
            try:
                st.read()
            except (SensorError, OSError):
                if st.state != FAULT or st.fault != P.SENSOR:
                    st.trip(P.SENSOR, now)
                    self._report(st, P.SENSOR, now)
                    st.new_fault = None
                else:
                    st.sensor_failing(now)
                continue
            if st.fault == P.SENSOR and st.state == FAULT:
                st._recover(now)
            else:
                if shared:
                    self._share(st)
                st.step(now, allowed)
            if st.new_fault is not None:
                self._report(st, st.new_fault, now)
                st.new_fault = None
            if st.state == RUN or st.state == START:
                any_on = True
                p_pv += st.p_in_mw
                p_bat += st.p_out_mw
        self.energy.add(p_pv, p_bat, dt)
        self._slow_dt += dt
        self.steps += 1
        if ticks_diff(now, self._t_slow) >= _SLOW_MS:
            self._t_slow = now
            self._slow(now, self._slow_dt)
            self._slow_dt = 0
        self.hw.feed()
        ext = self.ext
        if not any_on:
            # nothing switching: a slow, quiet loop (dawn and dusk are seconds-scale events); the extensions may
            # use the period (one call at a time, while time is left), the rest is sleep
            if ext is not None:
                t = ticks_ms()
                while ticks_diff(t, now) < _IDLE_PERIOD_MS - _IDLE_EXT_MARGIN_MS and ext.service(t):
                    t = ticks_ms()
            spent = ticks_diff(ticks_ms(), now)
            if spent < _IDLE_PERIOD_MS:
                time.sleep((_IDLE_PERIOD_MS - spent) / 1000)
        elif ext is not None:
            ext.service(now)  # switching: one extension call per control step
        return any_on

    def _share(self, st):
        """Give a stage its part of the battery's charge current and of the power budget: what the other running
        stages do not use right now, and never less than an equal share. Redone every control step on a board
        with several stages (integers, no allocation), so one array in full sun may take what a shaded one leaves
        (an equal split would hold it at half the limit while the total stays below it), and a total above the
        limit lasts a step, not until the next charger update."""
        i_used = 0
        p_used = 0
        n_on = 1
        for o in self.stages:
            if o is not st and (o.state == RUN or o.state == START):
                i_used += o.i_out
                p_used += o.p_in_mw
                n_on += 1
        lim = st.limits
        lim.i_out_ma = _share_of(self._i_total_ma, i_used, n_on)
        lim.p_in_mw = _share_of(self._p_total_mw, p_used, n_on)

    def _report(self, st, code, now):
        self.faults_seen += 1
        self._last_fault = code
        self._last_fault_ch = st.index
        self._last_fault_t = now
        self.log("FAULT code=%s ch=%d t_ms=%d vin_mv=%d vout_mv=%d iin_ma=%d" % (
            code, st.index, now, st.v_in, st.v_out, st.i_in))

    def _slow(self, now, dt_ms):
        if self.settings.generation != self._gen:
            self._t_changed = now
            self.apply_settings()
        hw = self.hw
        th = self.thermal
        before = th.fault
        th.update(hw.ntc_volts())
        if th.fault is not None and th.fault != before:
            self.faults_seen += 1
            self._last_fault = th.fault
            self._last_fault_ch = -1
            self._last_fault_t = now
            self.log("FAULT code=%s ch=-1 t_ms=%d temp_c=%s" % (th.fault, now, th.temp_c))
        hw.set_fan(th.fan_on)
        st0 = self.stages[0]
        v_bat = st0.v_out
        i_bat = 0
        pv_ok = False
        for st in self.stages:
            i_bat += st.i_out
            if st.v_in > st.v_out + 1000 or st.state == RUN:
                pv_ok = True
        ch = self.charger
        t_bat = th.temp_c if hw.battery_temp_from_heatsink else None
        ch.update(dt_ms, v_bat, i_bat, None if t_bat is None else int(t_bat), pv_ok)
        # limits for each stage: the charger's targets and the power budget (derated), lowest wins
        p_lim = self._p_max_mw * th.derate_pct // 100
        if p_lim > hw.ratings["p_max_mw"]:
            p_lim = hw.ratings["p_max_mw"]
        self._i_total_ma = ch.i_limit_ma
        self._p_total_mw = p_lim
        for st in self.stages:
            lim = st.limits
            lim.v_out_mv = ch.v_target_mv
            lim.i_in_ma = hw.ratings["i_in_max_ma"]
            self._share(st)
            st.allowed = ch.i_limit_ma > 0 and ch.v_target_mv > 0
            st.prot.set_charge_target(ch.v_target_mv)
            if hw.ovp is not None:
                hw.ovp.set_trip_mv(st.prot.v_bat_ov_mv)  # the hardware comparator at the same threshold
            if self.boost:
                st.set_battery(ch.profile, ch.cells)
        # the history gets the mean powers over this interval, from the exact energy totals
        e = self.energy
        pv_uj = e.exact_uj(0)
        bat_uj = e.exact_uj(4) - e.exact_uj(8)
        p_pv_avg = (pv_uj - self._e_pv_uj) // dt_ms if dt_ms > 0 else 0
        p_bat_avg = (bat_uj - self._e_bat_uj) // dt_ms if dt_ms > 0 else 0
        self._e_pv_uj = pv_uj
        self._e_bat_uj = bat_uj
        new_day = self.history.tick(dt_ms, p_pv_avg, p_bat_avg, v_bat, ch.stage, pv_ok)
        if new_day or (self.history.dirty and ticks_diff(now, self._t_saved) > HISTORY_SAVE_MS):
            self._t_saved = now
            self.history.save()
        self._save_settings(now)
        self.state = st0.mode_name()
        self._stat(now)
        if self.telemetry is not None:
            self._refresh(now, v_bat, i_bat, p_pv_avg, p_bat_avg)

    def _save_settings(self, now):
        s = self.settings
        if not s.dirty:
            self._t_dirty = -1
            return
        if self._t_dirty < 0:
            self._t_dirty = now
        quiet = ticks_diff(now, self._t_changed) >= _SAVE_AFTER_MS
        if not quiet:
            return
        running = False
        for st in self.stages:
            if st.state == RUN or st.state == START:
                running = True
        if running and ticks_diff(now, self._t_dirty) < _SAVE_FORCE_MS:
            return
        if running:
            for st in self.stages:
                if st.state == RUN or st.state == START:
                    st.stop(now, backoff=False)
        n = s.save()
        self._t_dirty = -1
        self.log("settings: saved to flash (%d bytes)%s" % (n, ", converter paused" if running else ""))

    def _refresh(self, now, v_bat, i_bat, p_pv_avg, p_bat_avg):
        """The telemetry snapshot, in place (extensions read it)."""
        t = self.telemetry
        t.t_ms = now
        t.uptime_s += 1
        t.state = self.state
        for st in self.stages:
            c = t.channels[st.index]
            c.state = st.mode_name()
            c.v_in_mv = st.v_in
            c.i_in_ma = st.i_in
            c.v_out_mv = st.v_out
            c.i_out_ma = st.i_out
            c.p_in_mw = st.p_in_mw
            c.duty_permille = st.gate.duty * 1000 // (st.gate.top + 1)
            c.limit = st.limits.binding if st.limited else "-"
            c.fault = st.fault if st.state == FAULT else None
            c.scans = st.tracker.scans
        t.v_bat_mv = v_bat
        t.i_bat_ma = i_bat
        t.p_pv_mw = p_pv_avg
        t.p_bat_mw = p_bat_avg
        e = self.energy
        t.e_pv_mwh = e.pv_mwh
        t.e_bat_in_mwh = e.bat_in_mwh
        t.e_bat_out_mwh = e.bat_out_mwh
        h = self.history
        t.today_pv_mwh = h.energy.pv_mwh
        t.today_peak_mw = h.today_peak_mw
        t.lifetime_pv_mwh = h.lifetime_pv_mwh
        ch = self.charger
        t.charge_stage = C.STAGE_NAMES[ch.stage]
        t.v_target_mv = ch.v_target_mv
        t.i_limit_ma = ch.i_limit_ma
        th = self.thermal
        t.temp_c = th.temp_c
        t.fan = bool(th.fan_on)
        t.derate_pct = th.derate_pct
        t.fault_count = self.faults_seen
        t.last_fault = self._last_fault
        t.last_fault_ch = self._last_fault_ch
        t.last_fault_t_ms = self._last_fault_t
        t.overruns = self.overruns
        t.seq += 1

    def _p_avg(self):
        p = 0
        for st in self.stages:
            p += st.p_in_mw
        return p

    def _stat(self, now):
        st = self.stages[0]
        th = self.thermal
        e = self.energy
        self.log("STAT t_ms=%d state=%s vin_mv=%d vout_mv=%d iin_ma=%d iout_ma=%d duty=%.4f p_w=%.1f e_wh=%.4f "
                 "e_side=pv e_bat_wh=%.4f stage=%s limit=%s temp_c=%s fan=%d derate=%d scans=%d overruns=%d" % (
                     now, self.state, st.v_in, st.v_out, st.i_in, st.i_out, st.gate.duty / (st.gate.top + 1),
                     self._p_avg() / 1000, e.pv_wh(), e.bat_in_wh(), C.STAGE_NAMES[self.charger.stage],
                     st.limits.binding if st.limited else "-",
                     "%.1f" % th.temp_c if th.temp_c is not None else "nan", th.fan_on, th.derate_pct,
                     st.tracker.scans, self.overruns))
        if len(self.stages) > 1:
            for s2 in self.stages[1:]:
                self.log("STAT%d state=%s vin_mv=%d iin_ma=%d duty=%.4f" % (
                    s2.index, s2.mode_name(), s2.v_in, s2.i_in, s2.gate.duty / (s2.gate.top + 1)))

    def run(self):
        while True:
            self.step()
