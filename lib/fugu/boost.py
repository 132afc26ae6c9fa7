"""Boost mode: the same power stage run backwards, stepping the battery up onto the PV (high-voltage) terminals, e.g.
to feed a 48 V load or bus from a 24 V bank.

The half bridge's low side becomes the boost switch and the high side the synchronous rectifier; the gate driver's
duty D is still the high side's, so ideally V_hi = V_bat / D. The backflow MOSFET must be ON while boosting: its
body diode only passes current from the PV terminals into the stage.

Regulation (integers, nothing allocated per step): the duty is a feedforward from the MEASURED battery voltage,
D = V_bat / V_set - dead time, so a battery sag or a load step moves the duty at once; V_set is an integrator
(velocity form) that removes what the feedforward misses (the stage's resistive and dead-time drop, a few %).
Current limits lower V_set (less voltage, less current into a resistive load); the smallest proposal wins:
battery current (boost_i_max_ma, and the power budget the controller derates), high-side current (the board's
rating, and what its input sensor can read at all in reverse), and a small cap on current flowing INTO the battery.
V_set is bounded: above by min(target + 12 %, v_in_max - 2 V), so even a load dump at full compensation leaves the
high side below v_in_max (the LC ring adds < 1 V on FUGU); below by the bootstrap's d_max (then V_hi ~ V_bat and a
load that still draws too much is an OVERLOAD: stop).

Start: only with nothing holding the high side up (V_hi below target - 2 V), the battery above its cut-off plus a
margin, and a target the stage can reach. The duty starts at V_bat / V_hi measured (the equilibrium: no current
step, never a duty that empties the high-side capacitor into the battery; d_max if V_hi < V_bat), through the
gate driver's bootstrap precharge, and the reference then ramps to the target at RAMP_MV_PER_MS.

A source on the high side (a PV array left connected) is not fought: if it holds the node above the target,
current flows from it into the battery; the stage caps that at I_CHARGE_MAX_MA and stops after FWD_STOP_MS
(HV_SOURCE), and restarts only when the high side has been below target - 2 V for HV_RECOVER_MS. An array below
the target just shares the load. In that fault the backflow MOSFET stays on (driver off: nothing can flow into the
battery) until the high side falls to the battery, so the sense node (the input capacitor) follows the terminals
down as the source fades instead of holding its charge for minutes.

| code       | trips when                                             | debounce   | recovery                          |
|------------|--------------------------------------------------------|------------|-----------------------------------|
| PV_OV      | V_hi > v_in_max (protection.py)                        | 2 steps    | V_hi < max - 3 V for 5 s          |
| OC_IN      | high-side current > 1.15 x rating, or at the sensor's  | 2/12 steps | 10 s                              |
|            | reverse full scale (a current it cannot read)          |            |                                   |
| OC_OUT     | battery current > 1.15 x rating (measured)             | 2 steps    | 10 s                              |
| PV_SHORT   | V_hi < 2 V while running (high side shorted)           | 1 step     | V_hi > V_bat / 2 for 10 s         |
| BAT_UV     | V_bat < cut-off (per chemistry and cell)               | 1 s        | V_bat >= restart for 10 s         |
| HV_SOURCE  | current into the battery from the high side > 0.3 A    | 0.5 s      | V_hi < target - 2 V for 3 s       |
| OVERLOAD   | over the current limit with the duty at d_max          | 0.2 s      | 10 s                              |
|            | or a constant-power load: under a limit the high side  | 3 steps    |                                   |
|            | falling by > 0.3 V and its current rising at 3 steps   |            |                                   |
|            | in a row, or ringing (2 reversals of >= 1.5 V in a row)|            |                                   |
|            | or the battery current over 1.5 x its limit and under  | 3 times in |                                   |
|            | a quarter of it at the next step (a load cutting out), | ~15 steps  |                                   |
|            | again and again (a converter too big to start)         |            |                                   |
BAT_OV, BAT_ABSENT and SENSOR as in buck mode.
"""

from micropython import const

from fugu import protection as P
from fugu.sensors import ticks_diff
from fugu.stage import BACKOFF_MAX_MS, FAULT, IDLE, RUN, START, Stage

BAT_UV = "BAT_UV"
HV_SOURCE = "HV_SOURCE"
OVERLOAD = "OVERLOAD"
WHY_CELLS = "battery cell count unknown (set battery_cells, or wait for the detection at rest)"
WHY_I_MAX = "boost_i_max_ma is 0"
WHY_TARGET = "boost_v_target_mv is not above what the battery gives at the highest duty"
WHY_AFTER_MS = 5000  # ... once it has held this long (the cell count arrives with the first slow tick)

# Battery discharge floor per cell (cut-off, restart), keyed by the chemistry's nominal cell voltage (a custom
# profile inherits its base's): Victron's load-output thresholds, 11.1 V off / 13.1 V on per 12 V LiFePO4 (4 cells)
# and lead (6 cells); Li-ion NMC 3.2 V off (cell minimum 2.5-3.0 V, kept above for life) / 3.6 V on.
DISCHARGE_FLOOR_CELL_MV = {3200: (2775, 3275), 3650: (3200, 3600), 2000: (1850, 2183)}
START_HYST_CELL_MV = 50  # a start needs the battery this far above the cut-off
START_MARGIN_MV = 2000  # ... and the high side this far below the target (nothing else holds it up)
BOOST_MIN_MV = 1000  # the target must exceed what the highest duty gives by this much
HV_HEADROOM_MV = 4000  # the target is kept this far below v_in_max, V_set half of it
V_SET_OVER_PCT = 12  # V_set may exceed the target by this much (the stage's own drop at full power: ~7 % at 400 W)
RAMP_MV_PER_MS = 100  # soft-start ramp of the reference (100 V/s: 24 -> 48 V in 0.24 s)
KI_DIV = 4  # voltage integrator: a quarter of the error per step ...
FAST_MV = 1000  # ... half of it when the high side is this far above the reference (load dump)
DV_STEP_MAX_MV = 3000  # largest V_set move down per step (a duty step excites the LC ring) ...
DV_UP_MAX_MV = 1500  # ... and up (the soft-start ramp adds ~1 V per step)
I_FWD_STOP_MA = 300  # current from the high side into the stage: a source there
FWD_STOP_MS = 500
I_CHARGE_MAX_MA = 2000  # the most the stage lets flow into the battery while it pulls the high side down
UV_DEBOUNCE_MS = 1000
OVERLOAD_MS = 200
_RING_MV = const(1500)  # the high side ringing: a change of this much at one step, the opposite at the next
_CPL_DV_MV = const(300)  # a constant-power load: the high side fell this much at a step and its current rose
RECOVER_MS = 10000
HV_RECOVER_MS = 3000  # HV_SOURCE: the high side below target - 2 V this long (dusk: the bus is back soon)
BF_WATCH_MV = 1000  # HV_SOURCE: backflow MOSFET on while the high side is this far above the battery
ETA_EST_PCT = 95  # boards without a battery-current sensor: battery power = high-side power / 0.95 (estimate)
RAIL_STEPS = 12  # readings at the sensor's reverse full scale in a row (~0.1 s; the limit pulls V_set down at
# DV_STEP_MAX_MV per step meanwhile): a current it can't measure


class BoostStage(Stage):
    """A Stage in boost mode: same sensors, gate driver, protections and controller interface (read, step, stop,
    trip, mode_name, state/fault, powers, limits). The controller calls configure() with the settings and
    set_battery() once a second with the charger's profile and cell count; charge limits do not apply."""

    def __init__(self, index, adc, sense, gate, prot, cal=None, log=print):
        Stage.__init__(self, index, adc, sense, gate, prot, cal, log)
        self.v_target_mv = 48000
        self.i_max_ma = 10000
        self.v_cut_mv = 0  # 0 = battery not known yet: no start
        self.v_restart_mv = 0
        self._hyst_mv = 0
        self.i_bat = 0  # battery current, positive = discharging
        self.i_hv = 0  # high-side current, positive = delivered to the high side
        ps = gate.ps
        self._d_dead = int(ps.get("t_dead_s", 520e-9) * gate.f_pwm_hz * gate.top + 0.5)
        self._v_set = 0
        self._v_ref = 0
        self._t_prev = 0
        self._t_uv = -1
        self._t_fwd = -1
        self._t_over = -1
        # constant-power watch: the high side (mV) and its change at the last step, reversals in a row, the
        # high-side current (mA) at the last step, steps in a row the voltage fell and that current rose, a leaky
        # count of load cut-outs, and 1 when the battery current was far over its limit at the last step
        self._ring = [0, 0, 0, 0, 0, 0, 0]
        self._n_rail = 0
        self._watch = False
        self._why = None
        self._t_why = 0
        self._why_said = False
        self.i_hv_readable_ma = 0
        self._readable()

    # -- configuration (controller) ------------------------------------------------------------------------------
    def configure(self, v_target_mv, i_max_ma):
        self.v_target_mv = v_target_mv
        self.i_max_ma = i_max_ma

    def set_battery(self, profile, cells):
        """Discharge floor from the chemistry (charger profile) and the cell count (0 = not detected yet)."""
        nom = profile.get("v_nominal_cell_mv", 0)
        floor = DISCHARGE_FLOOR_CELL_MV.get(nom)
        if floor is None:
            floor = (nom * 7 // 8, nom * 41 // 40)
        self.v_cut_mv = floor[0] * cells
        self.v_restart_mv = floor[1] * cells
        self._hyst_mv = START_HYST_CELL_MV * cells

    def _readable(self):
        """The largest reverse (high-side) current the input sensor reads before its ADC input saturates: fugu_v1's
        reversed ACS712 behind its divider reads only ~3.4 A that way, a shunt amplifier ~165 A."""
        a = self.sc_iin(0)
        b = self.sc_iin(self.adc.counts_full)
        r = -(a if a < b else b)
        self.i_hv_readable_ma = r if r > 0 else 0  # 0: reverse current not readable (only the ratings apply)

    def v_target_eff(self):
        v = self.v_in_max_mv - HV_HEADROOM_MV
        return self.v_target_mv if self.v_target_mv < v else v

    # -- sensing -------------------------------------------------------------------------------------------------
    def read(self):
        Stage.read(self)
        if not self.has_iout and (self.state == RUN or self.state == START):
            # no battery-current sensor: the battery delivers the high side's power plus the stage's losses
            self.p_out_mw = self.p_in_mw * 100 // ETA_EST_PCT
            self.i_out = (self.p_out_mw // (self.v_out // 100)) * 10 if self.v_out > 1000 else 0
        self.i_bat = -self.i_out
        self.i_hv = -self.i_in

    # -- state machine -------------------------------------------------------------------------------------------
    def _check(self, now, running):
        """The buck's table with the currents turned round: OC_IN = high-side current, OC_OUT = battery discharge,
        PV_SHORT = high side shorted; REVERSE (current into the battery) is HV_SOURCE here, with its own debounce."""
        i_hv = self.i_hv
        code = self.prot.check(self.v_in, i_hv if i_hv > 0 else 0, self.v_out,
                               self.i_bat if self.has_iout else None, running)
        if code is None and running:
            code = self._boost_check(now)
        return code

    def _may_run(self):
        return True  # the charger's "battery full" is no reason to stop discharging into the load

    def trip(self, code, now):
        Stage.trip(self, code, now)
        self._watch = code == HV_SOURCE

    def _boost_check(self, now):
        if self.v_out < self.v_cut_mv:
            if self._t_uv < 0:
                self._t_uv = now
            elif ticks_diff(now, self._t_uv) >= UV_DEBOUNCE_MS:
                return BAT_UV
        else:
            self._t_uv = -1
        if self.i_in > I_FWD_STOP_MA:
            if self._t_fwd < 0:
                self._t_fwd = now
            elif ticks_diff(now, self._t_fwd) >= FWD_STOP_MS:
                return HV_SOURCE
        else:
            self._t_fwd = -1
        r = self.i_hv_readable_ma
        if r and self.i_hv >= r - r // 50:
            self._n_rail += 1
            if self._n_rail >= RAIL_STEPS:
                return P.OC_IN
        else:
            self._n_rail = 0
        return None

    def _idle(self, now, running_ok):
        self._zero_track()
        g = self.gate
        v_in = self.v_in
        v_out = self.v_out
        vt = self.v_target_eff()
        why = None  # a configuration that can never start is said once on the console
        if self.v_cut_mv <= 0:
            why = WHY_CELLS
        elif self.i_max_ma <= 0:
            why = WHY_I_MAX
        elif vt <= v_out * g.top // (g.d_max + self._d_dead) + BOOST_MIN_MV:
            why = WHY_TARGET
        if why is not self._why:
            self._why = why
            self._t_why = now
            self._why_said = False
        elif why is not None and not self._why_said and ticks_diff(now, self._t_why) > WHY_AFTER_MS:
            self._why_said = True
            self.log("BOOST ch=%d waiting: %s (target %d mV, battery %d mV)" % (self.index, why, vt, v_out))
        ok = (running_ok and why is None and v_out >= self.v_cut_mv + self._hyst_mv and v_in < vt - START_MARGIN_MV)
        if not self._start_due(now, ok):
            return
        self._readable()  # the zero point moved while idle
        # the equilibrium duty for the high side's present voltage (rounded down: the stage pushes a little
        # current towards the high side, never pulls its capacitor into the battery)
        d0 = g.d_max
        if v_in > v_out:
            d0 = v_out * g.top // v_in - self._d_dead
            if d0 > g.d_max:
                d0 = g.d_max
        g.start(d0)
        g.set_backflow(True)
        self._v_set = v_out * g.top // (g.duty + self._d_dead)
        self._v_ref = self._v_set
        self._t_prev = now
        self._t_uv = -1
        self._t_fwd = -1
        self._t_over = -1
        r = self._ring
        r[0] = v_in
        r[1] = r[2] = r[4] = r[5] = r[6] = 0
        self._n_rail = 0
        self.state = START
        self._t_state = now
        self._start_steps = 0
        self.limited = False

    def _recover(self, now):
        code = self.fault
        if code == BAT_UV:
            holds = self.v_out >= self.v_restart_mv
        elif code == HV_SOURCE:
            # the backflow MOSFET connects the terminals to the sense node (the input capacitor) while they are
            # above the battery: with the driver off nothing flows into the battery, and the node follows the
            # source as it fades instead of holding its charge for minutes. Once the node falls to the battery it
            # opens for good (the battery would feed the terminals through the body diodes).
            if self._watch and self.v_in < self.v_out + BF_WATCH_MV:
                self._watch = False
            self.gate.set_backflow(self._watch)
            holds = self.v_in < self.v_target_eff() - START_MARGIN_MV
        elif code == P.PV_SHORT:
            holds = self.v_in * 2 > self.v_out
        else:
            Stage._recover(self, now)
            return
        if not holds:
            self._t_fault_ok = -1
            return
        if self._t_fault_ok < 0:
            self._t_fault_ok = now
        if ticks_diff(now, self._t_fault_ok) >= (HV_RECOVER_MS if code == HV_SOURCE else RECOVER_MS):
            self.fault = None
            self.stop(now, backoff=False)
            self._t_next_start = now + (self._backoff_ms if self.trips > 1 else 0)
            if self.trips > 1:
                self._backoff_ms = min(self._backoff_ms * 2, BACKOFF_MAX_MS)

    def _run(self, now):
        g = self.gate
        if self.state == START:
            if self._started():
                self._t_prev = now
            return
        dt = ticks_diff(now, self._t_prev)
        self._t_prev = now
        vt = self.v_target_eff()
        v_in = self.v_in
        v_out = self.v_out
        # the reference ramps to the target (soft start), or follows a lowered target at once
        v_ref = self._v_ref
        dref = vt - v_ref
        if dref > RAMP_MV_PER_MS * dt:
            dref = RAMP_MV_PER_MS * dt
        v_ref += dref
        self._v_ref = v_ref
        e = v_ref - v_in
        dv = (e // 2 if e < -FAST_MV else e // KI_DIV) + dref
        binding = ""
        # battery current: boost_i_max_ma and the (derated) power budget
        i_cap = self.i_max_ma
        p_cap = self.limits.p_in_mw
        if p_cap and v_out > 1000:
            i_p = (p_cap // (v_out // 100)) * 10
            if i_p < i_cap:
                i_cap = i_p
        i_bat = self.i_bat
        if i_bat * 10 > i_cap * 9:
            d = ((i_cap - i_bat) // 4) * v_in // (i_bat if i_bat > 1000 else 1000)
            if d < dv:
                dv = d
                binding = "i_bat"
        # high-side current: the board's rating and what the sensor can read in reverse
        i_hcap = self.i_hv_readable_ma * 9 // 10
        if self.limits.i_in_ma and (self.limits.i_in_ma < i_hcap or not i_hcap):
            i_hcap = self.limits.i_in_ma
        i_hv = self.i_hv
        if self._n_rail:
            i_hv += i_hv  # at the sensor's full scale: the real current is larger, by how much is unknown
        if i_hcap and i_hv * 10 > i_hcap * 9:
            d = ((i_hcap - i_hv) // 2) * v_in // (i_hv if i_hv > 1000 else 1000)
            if d < dv:
                dv = d
                binding = "i_hv"
        # current pulled INTO the battery (the high side above the reference): capped
        if i_bat < -I_CHARGE_MAX_MA:
            d = ((-I_CHARGE_MAX_MA - i_bat) // 4) * v_in // (-i_bat)
            if d > dv:
                dv = d
        if dv > DV_UP_MAX_MV:
            dv = DV_UP_MAX_MV
        elif dv < -DV_STEP_MAX_MV:
            dv = -DV_STEP_MAX_MV
        v_set = self._v_set + dv
        v_max = vt + vt * V_SET_OVER_PCT // 100
        if v_max > self.v_in_max_mv - HV_HEADROOM_MV // 2:
            v_max = self.v_in_max_mv - HV_HEADROOM_MV // 2
        v_min = v_out * g.top // (g.d_max + self._d_dead) + 1
        if v_set > v_max:
            v_set = v_max
        floor = v_set <= v_min
        if floor:
            v_set = v_min
        self._v_set = v_set
        g.set_duty(v_out * g.top // v_set - self._d_dead)
        self.limited = binding != ""
        self.limits.binding = binding
        # a load that takes more than the limit even with the duty at d_max (the stage is then a pass-through)
        if floor and binding and (i_bat * 10 > i_cap * 11 or (i_hcap and i_hv * 10 > i_hcap * 11)):
            if self._t_over < 0:
                self._t_over = now
            elif ticks_diff(now, self._t_over) >= OVERLOAD_MS:
                self.trip(OVERLOAD, now)
        else:
            self._t_over = -1
        # a constant-power load (a DC-DC converter) draws more as the voltage falls, so a current limit that lowers
        # the high side only makes it worse, and on the stage's LC its negative incremental resistance rings up (in
        # ~10 ms at FUGU's values once the high side is low enough); a stop after the ring has grown dumps the
        # inductor's energy into the high side. Stop when either shows: under a limit, the high side falling and
        # its current rising step after step; or the high side swinging back and forth by volts from one step to
        # the next (a stage that only regulates never does)
        r = self._ring
        d = v_in - r[0]
        r[2] = r[2] + 1 if (d > _RING_MV and r[1] < -_RING_MV) or (d < -_RING_MV and r[1] > _RING_MV) else 0
        if binding and d < -_CPL_DV_MV:
            r[4] = r[4] + 1 if i_hv > r[3] else 0
        elif not binding:
            r[4] = 0
        r[0] = v_in
        r[1] = d
        r[3] = i_hv
        # a converter too big to start: its lockout lets it on, it pulls the high side under the lockout and cuts
        # out, and so on every few steps: the battery current far over the limit, then next to nothing (a resistive
        # load the limit is still pulling down never drops out like that)
        if r[6] and i_bat * 4 < i_cap:
            r[5] += 8
        elif r[5]:
            r[5] -= 1
        r[6] = 1 if i_bat * 2 > i_cap * 3 else 0
        if r[2] >= 2 or r[4] >= 3 or r[5] >= 20:
            self.trip(OVERLOAD, now)

    def mode_name(self):
        if self.state != RUN:
            return self.state
        return "LIMIT" if self.limited else "BOOST"
