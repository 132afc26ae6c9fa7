"""One power stage at run time: its sensors (scaled to integer mV/mA), gate driver, protections, tracker and limit
regulators, and its state machine (IDLE -> START -> RUN (scan/track/limited) -> IDLE, or FAULT with back-off).

The controller calls step() once per control period; everything in it is integer arithmetic on preallocated state.
"""

from micropython import const

from fugu import protection as P
from fugu.limits import Limits
from fugu.sensors import SensorError, channel_scale, ticks_diff
from fugu.tracker import FINE, SCAN, Tracker

IDLE = "IDLE"
START = "START"
RUN = "RUN"
FAULT = "FAULT"

_START_MARGIN_MV = const(2000)  # PV must exceed the battery by this much (and stay there) before a start
START_HOLD_MS = const(1000)
_I_BACKFLOW_ON_MA = const(300)  # backflow MOSFET on above this forward current (its body diode carries less)
_I_BACKFLOW_OFF_MA = const(120)
_I_RUN_MIN_MA = const(40)  # below this for _LOW_POWER_MS the stage stops (dusk): switching losses exceed the harvest
_LOW_POWER_MS = const(3000)
_DUSK_REF_MS = const(2000)  # after a low-power stop: the open-circuit voltage over this long is the reference
_DAWN_RISE_PERMILLE = const(30)  # a new start needs the open-circuit voltage this far above it ...
_DUSK_RETRY_MS = const(600000)  # ... or this long without
_FLOOR_STOP_MS = const(1000)  # a limit that wants less than the floor (zero current) this long stops the stage
_LIMIT_MEMORY_MS = const(3000)  # a limit that bound this recently explains low or falling power (not dusk, shade
# or PV lost)
_BACKOFF_MIN_MS = const(5000)
BACKOFF_MAX_MS = const(300000)
_ZERO_SAMPLES = const(32)
_STUCK_SAMPLES = const(600)  # identical raw current readings in a row while running = stuck ADC
_SAME_STEPS = const(3)  # steps in a row with one code on every channel = a latched ADC
_SCAN_SPACING_MS = const(15000)  # at most one shade-triggered scan per 15 s (cloud edges also drop power)
_SAG_HOLD_MS = const(2000)  # power 25 % below the best since the last scan this long (a shadow creeping in): scan
_SAG_V_RISE_PCT = const(105)  # ... with the operating point moved up by 5 % (shade; not less light)
_SAG_SPACING_MS = const(5000)  # ... at most this often (each sag needs a new 25 % fall from the new reference)
# Tracking below this fraction of the open-circuit voltage means bypass diodes conduct (an unshaded crystalline
# array's MPP sits at ~0.8 V_oc): the array is partly shaded, and a moving shadow can make the OTHER peak the global
# one without the power at this one changing at all (nothing to trigger a scan). Rescan _SHADE_RESCAN_DIV times as
# often as the periodic scan then (default 600 s / 5 = 2 min; a scan costs ~0.6 s of full power).
_SHADE_V_PERMILLE = const(700)
_SHADE_RESCAN_DIV = const(5)


def _full_scale_ma(scale, counts_full, reverse=False):
    """The largest forward (or, reverse=True, the most negative) current a sensor channel can report, at one end of
    the ADC's range; 0 if unknown."""
    if counts_full <= 0:
        return 0
    a = scale(0)
    b = scale(counts_full)
    if reverse:
        return a if a < b else b
    return a if a > b else b


class Stage:
    def __init__(self, index, adc, sense, gate, prot, cal=None, log=print):
        self.index = index
        self.adc = adc
        self.gate = gate
        self.prot = prot
        self.log = log
        cal = cal or {}
        upc = adc.uv_per_count
        self.ch_vin = sense["v_in"]["ch"]
        self.ch_vout = sense["v_out"]["ch"]
        self.ch_iin = sense["i_in"]["ch"]
        self.sc_vin, _ = channel_scale(sense["v_in"], upc, cal.get("v_in", 0))
        self.sc_vout, _ = channel_scale(sense["v_out"], upc, cal.get("v_out", 0))
        self.sc_iin, _ = channel_scale(sense["i_in"], upc, cal.get("i_in", 0))
        self.has_iout = "i_out" in sense
        if self.has_iout:
            self.ch_iout = sense["i_out"]["ch"]
            self.sc_iout, _ = channel_scale(sense["i_out"], upc, cal.get("i_out", 0))
        counts_full = getattr(adc, "counts_full", 0)
        prot.limit_to_sensor(_full_scale_ma(self.sc_iin, counts_full),
                             _full_scale_ma(self.sc_iout, counts_full) if self.has_iout else 0,
                             _full_scale_ma(self.sc_iin, counts_full, reverse=True))
        self.tracker = Tracker()
        self.limits = Limits(gate.top)
        self.state = IDLE
        self.fault = None
        self.v_in = self.v_out = self.i_in = self.i_out = 0
        self.p_in_mw = 0
        self.p_out_mw = 0
        self.raw_iin = 0
        self._raw_iout = 0
        self.duty_f = 0
        self.v_in_max_mv = prot.v_in_max_mv
        self.v_oc_mv = 0
        self._t_state = 0
        self._t_ok = 0
        self._t_fault_ok = -1
        self._backoff_ms = _BACKOFF_MIN_MS
        self._t_next_start = 0
        self._n_fwd = 0
        self._n_low = 0
        self._t_low = 0
        self._v_dusk_mv = -1  # open-circuit reference after a low-power stop (-1: none, see _dawn)
        self._start_steps = 0
        self._zero_acc = 0
        self._zero_n = 0
        self._zero_acc_o = 0
        self._stuck = 0
        self._same = 0
        self.ovp_fault = None  # the OVP comparator's fault input (low = fired), on boards that have one
        self.limited = False
        self._t_lim = 0  # when a limit last bound (ms)
        self._t_floor = -1  # since when a limit has wanted less than the duty floor (-1: it does not)
        self.allowed = False  # the charger allows charging (set once a second by the controller)
        self.scan_interval_ms = 600000
        self._t_scan = 0
        self._p_slow = 0
        self._p_ref = 0  # the highest smoothed power since the last scan (mW) ...
        self._t_sag = -1  # ... and since when the power has been 25 % below it (-1: it is not)
        self._v_ref = 0  # the input voltage at that best power (mV)
        self._t_scan_drop = 0
        self.trips = 0
        self.new_fault = None
        self._collapsed = False

    # -- sensing -----------------------------------------------------------------------------------------------
    def read(self):
        adc = self.adc
        r = adc.read(self.ch_vin)
        self.v_in = self.sc_vin(r)
        r_vin = r
        r = adc.read(self.ch_iin)
        if r == self.raw_iin and self.state == RUN:
            self._stuck += 1
        else:
            self._stuck = 0
        self.raw_iin = r
        self.i_in = self.sc_iin(r)
        r = adc.read(self.ch_vout)
        self.v_out = self.sc_vout(r)
        # three different inputs giving the very same code, step after step: a latched conversion register (the
        # mux does not matter any more), not three measurements
        if r == r_vin and r == self.raw_iin:
            self._same += 1
            if self._same >= _SAME_STEPS:
                self._same = 0
                raise SensorError("ADC gives the same value on every channel")
        else:
            self._same = 0
        if self.has_iout:
            r = adc.read(self.ch_iout)
            self._raw_iout = r
            self.i_out = self.sc_iout(r)
        if self._stuck >= _STUCK_SAMPLES:
            self._stuck = 0
            raise SensorError("ADC reading stuck")
        self.p_in_mw = (self.v_in // 10) * self.i_in // 100
        if self.has_iout:
            self.p_out_mw = (self.v_out // 10) * self.i_out // 100
        elif self.state == RUN or self.state == START:
            # no output sensor: estimate from input power (97 % efficiency) - only used for display/energy
            self.p_out_mw = self.p_in_mw * 97 // 100
            self.i_out = (self.p_out_mw // (self.v_out // 100)) * 10 if self.v_out > 1000 else 0
        else:
            self.p_out_mw = 0
            self.i_out = 0

    def _zero_track(self):
        """Hall/shunt zero point while the converter is off (no current can flow): a block average, never a
        dead-band; re-done whenever the stage idles."""
        self._zero_acc += self.raw_iin
        if self.has_iout:
            self._zero_acc_o += self._raw_iout
        self._zero_n += 1
        if self._zero_n >= _ZERO_SAMPLES:
            n = self._zero_n
            self.sc_iin.zero = (self._zero_acc + n // 2) // n
            if self.has_iout:
                self.sc_iout.zero = (self._zero_acc_o + n // 2) // n
            self._zero_acc = 0
            self._zero_acc_o = 0
            self._zero_n = 0

    # -- state machine -------------------------------------------------------------------------------------------
    def trip(self, code, now):
        self.gate.stop()
        self.state = FAULT
        self.fault = code
        self.new_fault = code
        self.trips += 1
        self._t_state = now
        self._t_fault_ok = -1

    def sensor_failing(self, now):
        """Another failed read while in the SENSOR fault: the recovery timer starts again."""
        self._t_fault_ok = -1

    def stop(self, now, backoff=True):
        self.gate.stop()
        ran_ms = ticks_diff(now, self._t_state)
        if self.state == RUN and ran_ms > 300000:
            self.trips = 0  # a good long run forgives earlier faults
        if backoff:
            if ran_ms < 60000:
                self._backoff_ms = min(self._backoff_ms * 2, BACKOFF_MAX_MS)
            else:
                self._backoff_ms = _BACKOFF_MIN_MS
        self.state = IDLE
        self._t_state = now
        self._t_next_start = now + self._backoff_ms
        self._t_ok = 0
        self.limited = False

    def step(self, now, running_ok):
        """One control period after read(). running_ok: no global condition (temperature, charger) forbids
        switching."""
        code = self._check(now, self.state == RUN or self.state == START)
        if code is not None:
            if self.state != FAULT or code != self.fault:
                if code == P.BAT_ABSENT and self.state == IDLE and self.fault == P.BAT_ABSENT:
                    return
                self.trip(code, now)
            return
        st = self.state
        if st == IDLE:
            self._idle(now, running_ok)
        elif st == FAULT:
            self._recover(now)
        elif not (running_ok and self._may_run()):
            self.stop(now, backoff=False)
        else:
            self._run(now)

    def _check(self, now, running):
        """The protection table's verdict on this step's readings (a code, or None); a hardware over-voltage
        comparator that fired (it has already stopped the bridge) is BAT_OV."""
        f = self.ovp_fault
        if f is not None and not f.value and running:
            return P.BAT_OV
        return self.prot.check(self.v_in, self.i_in, self.v_out, self.i_out if self.has_iout else None, running)

    def _may_run(self):
        """The charger (battery full / too cold / too hot, no cell count) says stop: stop now, not by pulling the
        current to nothing through a limit (that looks like a lost panel to the collapse detection)."""
        return self.allowed

    def _idle(self, now, running_ok):
        self._zero_track()
        v_in = self.v_in
        v_out = self.v_out
        self.v_oc_mv = v_in
        v_set = self.limits.v_out_mv
        # a battery already above the charger's set point (lithium float is below the full battery's rest voltage)
        # needs nothing: starting would only find the voltage limit binding at zero current and stop again
        ok = (running_ok and self.allowed and v_out >= P.V_BAT_PRESENT_MV and v_in > v_out + _START_MARGIN_MV
              and (v_set == 0 or v_out < v_set)
              and v_in < self.v_in_max_mv and self.gate.counts(v_out, v_in) < self.gate.d_max * 9 // 10)
        if ok and self._v_dusk_mv >= 0:
            ok = self._dawn(now, v_in)
        if not self._start_due(now, ok):
            return
        self._v_dusk_mv = -1
        # soft start from the predicted duty: V_out / V_in gives (almost) no current step
        d0 = self.gate.counts(v_out, v_in)
        self.gate.start(d0)
        self.duty_f = self.gate.duty * FINE
        self.state = START
        self._t_state = now
        self._start_steps = 0
        self._n_fwd = 0
        self._n_low = 0
        self._collapsed = False

    def _started(self):
        """One step of the soft start: the switching frequency back from the precharge one after a step, RUN after
        two more; True at the step that enters RUN."""
        self._start_steps += 1
        if self._start_steps == 2:
            self.gate.restore_frequency()
        if self._start_steps >= 3:
            self.state = RUN
            return True
        return False

    def _start_due(self, now, ok):
        """True once the start conditions `ok` have held START_HOLD_MS and no back-off is pending."""
        if not ok:
            self._t_ok = 0
            return False
        if self._t_ok == 0:
            self._t_ok = now
            return False
        return ticks_diff(now, self._t_ok) >= START_HOLD_MS and ticks_diff(now, self._t_next_start) >= 0

    def _dawn(self, now, v_in):
        """After a low-power stop (dusk, a thick cloud): the panel's open-circuit voltage over the first
        _DUSK_REF_MS is the reference, and only a rise of _DAWN_RISE_PERMILLE above it (more light: V_oc grows with
        the log of irradiance, +3 % is ~1.5x the light) or _DUSK_RETRY_MS without one allows a new start. Without
        it the open-circuit voltage of a panel in failing light (or an input capacitor holding its charge) starts
        the stage again and again for nothing."""
        since = ticks_diff(now, self._t_state)
        if since < _DUSK_REF_MS:
            if v_in > self._v_dusk_mv:
                self._v_dusk_mv = v_in
            return False
        if since > _DUSK_RETRY_MS or v_in * 1000 > self._v_dusk_mv * (1000 + _DAWN_RISE_PERMILLE):
            return True
        return False

    def _recover(self, now):
        code = self.fault
        if self.prot.condition_holds(code, self.v_in, self.v_out):
            if self._t_fault_ok < 0:
                self._t_fault_ok = now
            held = ticks_diff(now, self._t_fault_ok)
        else:
            self._t_fault_ok = -1
            held = 0
        if self.prot.recovered(code, self.v_in, self.v_out, held):
            self.fault = None
            self.stop(now, backoff=False)
            # a fault that keeps coming back waits longer each time (5 s, 10 s, ... 5 min)
            self._t_next_start = now + (self._backoff_ms if self.trips > 1 else 0)
            if self.trips > 1:
                self._backoff_ms = min(self._backoff_ms * 2, BACKOFF_MAX_MS)

    def duty_floor(self):
        """The duty floor in fine units (the ceiling is the bootstrap limit, gate.d_max: returning both as a tuple
        would allocate one every control step). The floor V_out / V_oc (the panel's open-circuit voltage, measured
        while idle, capped by the input limit) means the stage can never push the panel node above the voltage where
        the panel would start to take current back, nor above v_in_max if the panel vanishes. A floor from the
        present V_in would pull the duty back up after every downward move while the input capacitor is still
        charging. (The IR2104's dead time shortens every high-side pulse, so the bottom ~2 % above the floor carry
        no current: a margin that keeps a constant-voltage hold at a tail current clear of the floor.)"""
        v_top = self.v_oc_mv if self.v_oc_mv else self.v_in_max_mv
        if v_top > self.v_in_max_mv:
            v_top = self.v_in_max_mv
        return self.gate.counts(self.v_out, v_top) * FINE

    def _run(self, now):
        g = self.gate
        i_in = self.i_in
        # backflow MOSFET: only while the panel delivers forward current
        if i_in > _I_BACKFLOW_ON_MA:
            self._n_fwd += 1
            if self._n_fwd >= 3:
                g.set_backflow(True)
        elif i_in < _I_BACKFLOW_OFF_MA:
            self._n_fwd = 0
            g.set_backflow(False)
        d_lo = self.duty_floor()
        d_hi = g.d_max * FINE
        if d_lo >= d_hi:
            self.stop(now)
            return
        tr = self.tracker
        if self.state == START:
            if self._started():
                self._t_scan = now
                if not tr.start_scan(d_lo, d_hi, self.v_oc_mv):
                    tr.begin(self.duty_f)
            return
        # dusk / no light: stop instead of switching for nothing
        # a limit that bound within _LIMIT_MEMORY_MS (the flag itself flickers as the tracker probes against it)
        # explains low or falling power: a constant-voltage hold tapering to a tail current is not dusk, and the
        # power the voltage regulator takes away is not shade or a lost panel
        held = self.limited or ticks_diff(now, self._t_lim) < _LIMIT_MEMORY_MS
        if i_in < _I_RUN_MIN_MA and tr.mode != SCAN and not held:
            if self._n_low == 0:
                self._t_low = now
            self._n_low += 1
            if ticks_diff(now, self._t_low) > _LOW_POWER_MS:
                if self._collapsed:  # power fell from a real level to nothing and a scan found none: PV lost
                    self.new_fault = P.PV_LOST
                self.stop(now)
                self._v_dusk_mv = 0  # restart on more light only (_dawn)
                return
        else:
            self._n_low = 0
        p = self.p_in_mw
        # shade / sudden change: a global scan (at most one per _SCAN_SPACING_MS)
        if tr.mode != SCAN and not held:
            if self._p_slow == 0:
                self._p_slow = p
            self._p_slow += (p - self._p_slow) >> 6
            since = ticks_diff(now, self._t_scan)
            v_open = tr.v_open_mv or self.v_oc_mv
            due = self.scan_interval_ms and (since > self.scan_interval_ms or (
                since > self.scan_interval_ms // _SHADE_RESCAN_DIV and self.v_in * 1000 < v_open * _SHADE_V_PERMILLE))
            # the smoothed power against the best since the last scan: a shadow that creeps in over many seconds
            # never looks like a drop to the fast average, but sags the power as much as one that jumps
            if self._p_slow > self._p_ref:
                self._p_ref = self._p_slow
                self._v_ref = self.v_in
            # a sag that also dragged the operating point up the voltage axis: the current at this point collapsed
            # (bypass diodes took a sub-string out), while less light moves the MPP down a little, never up
            if self._p_slow * 4 < self._p_ref * 3 and self.v_in * 100 > self._v_ref * _SAG_V_RISE_PCT:
                if self._t_sag < 0:
                    self._t_sag = now
            else:
                self._t_sag = -1
            # (held _SAG_HOLD_MS: a scan in the middle of a moving edge would find a peak that is about to move)
            sag = self._t_sag >= 0 and ticks_diff(now, self._t_sag) > _SAG_HOLD_MS and since > _SAG_SPACING_MS
            drop = sag or (p * 10 < self._p_slow * 7 and since > _SCAN_SPACING_MS)
            # a collapse (shade over the operating point, or the panel gone): scan now; if the scan finds
            # nothing either, the low-power stop ends the run and reports PV_LOST
            collapse = p * 4 < self._p_slow and self._p_slow > 20000
            if collapse:
                self._collapsed = True
            if due or drop or collapse:
                self._t_scan = now
                self._p_slow = 0
                self._p_ref = 0  # the scan's own sweep must not count as a sag: the reference restarts after it
                self._t_sag = -1
                tr.start_scan(d_lo, d_hi)
        elif held:
            self._p_slow = 0  # the average restarts when the limit lets go (a CV taper is not a collapse)
            self._p_ref = 0
        d_req = tr.update(p, self.v_in, d_lo, d_hi)
        if d_req < d_lo:  # the floor is a safety bound: a scan planned before the battery voltage moved obeys it too
            d_req = d_lo
        if tr.scan_done:
            tr.scan_done = False
            self.log("SCAN ch=%d t_ms=%d best_w=%.1f v_mv=%d" % (self.index, now, tr.last_scan_best_mw / 1000,
                                                                 tr.last_scan_v_mv))
        allow = self.limits.step(self.v_in, i_in, self.v_out, self.i_out)
        d_allow = self.duty_f + allow
        if d_req > d_allow:
            if d_allow < d_lo:
                # a limit wants less than the stage delivers even at the floor (no current there): a battery
                # above its set point. Held for _FLOOR_STOP_MS (a constant-voltage hold at a tail current sits
                # just above the floor and one regulator step may undershoot it), the stage stops.
                if self._t_floor < 0:
                    self._t_floor = now
                elif ticks_diff(now, self._t_floor) > _FLOOR_STOP_MS:
                    self.stop(now, backoff=False)
                    self._t_next_start = now + 2000
                    return
                d_allow = d_lo
            else:
                self._t_floor = -1
            d = d_allow
            self.limited = True
            self._t_lim = now
            if allow > 0:
                # the limit only slows an upward move (a battery just below its set point caps the step): the
                # tracker keeps its target (a scan goes on) while the duty gets there at the allowed rate
                tr.ramping()
            else:
                tr.sync(d)
        else:
            self._t_floor = -1
            d = d_req
            self.limited = False
            # downward moves (towards the panel's open circuit) are slewed: a step down excites the input LC, and
            # with no panel to damp it (disconnected) the ringing would overshoot the input node
            slew = self.duty_f >> 5
            if slew < 4 * FINE:
                slew = 4 * FINE
            if d < self.duty_f - slew:
                d = self.duty_f - slew
                tr.ramping()
        self.duty_f = d
        g.set_duty(d // FINE)

    def mode_name(self):
        if self.state != RUN:
            return self.state if self.state != FAULT else "FAULT"
        if self.limited:
            return "LIMIT"
        return "SCAN" if self.tracker.mode == SCAN else "TRACK"
