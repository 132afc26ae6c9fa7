"""The plant: PV array, power stage, battery, load, heatsink, fan and the faults a scenario injects, integrated
together up to any simulated time, with the energy bookkeeping the summary reports.

The plant knows nothing of the firmware. Its inputs are the gate pins (PWM duty and frequency, driver enable,
backflow MOSFET, fan); its outputs are true physical quantities that the sensor front-ends (wiring.py) turn into pin
voltages.

Several power stages (a two-channel board) share ONE output node: channel 0's output capacitor, where the battery
(through channel 0's output wiring) and the load hang; every further channel's output reaches that node through its
own output wiring (its r_out_wiring_ohm). Each channel has its own PV array (its own irradiance scale and shade) and
the heatsink is shared. The stages are integrated in turn (a partitioned scheme): channel 0 takes a step with the
other channels' output currents as a constant injection (their averages over the previous step), then each other
channel catches up over the same interval (in as many adaptive sub-steps as its own error control wants) against
channel 0's new node voltage, a stiff source behind its wiring. The stages' inductors carry those currents, so the
one-step lag is small and stable; the energy the other channels hand over (booked at channel 0's node voltage on
both sides) is not made equal by construction, so energy_balance() still checks the integration. With one channel
the compiled kernel takes as many steps per call as it can (no per-step cost for the partitioning); with several it
takes channel 0's step and the others catch up here.
"""

import math

import numpy as np

from sim.plant import stage_kernel as K
from sim.plant.converter import LOSS_KEYS, field
from sim.plant.pv import table_of

BAT_BATCH_S = 0.05  # longest battery and heatsink step (their fastest time constants are tens of seconds)
_advance = K.advance
_U_BATCONN, _U_BATE, _U_BATR, _A_SLOWH = K.U_BATCONN, K.U_BATE, K.U_BATR, K.A_SLOWH
_MANY = 1 << 30


class PVPort:
    """One PV input's terminals: the array and the faults a scenario puts on them (disconnected, shorted), and a
    load hung on them (boost mode: the battery stepped up onto these terminals). The load stays when the array is
    disconnected. The power stage gets all of it as data (wire())."""

    def __init__(self, pv):
        self.pv = pv
        self.connected = True
        self.short = False
        self.r_short_ohm = 0.01
        self.dc_source_v = None  # fault pv_dc_source: a stiff DC source on the PV bus (sinks above, feeds below)
        self.r_dc_source_ohm = 0.1
        self.load = None  # a loads.DCLoad on the terminals, or None

    def wire(self, stage, load_frac):
        dc = (self.dc_source_v, self.r_dc_source_ohm) if self.dc_source_v is not None else None
        stage.set_port(self.connected, self.r_short_ohm if self.short else None, dc, self.load, load_frac)
        stage.tab = table_of(self.pv)

    @staticmethod
    def open_voltage(stage, v_max, v_guess=0.0):
        """Terminal voltage (0..v_max) where nothing flows into the stage (its input path blocks): the array and
        the load (and a short) settle on their own operating point."""
        src = stage.port_current
        if not stage.has_source or v_max <= 0.0 or src(0.0)[0] <= 0.0:
            return 0.0
        if src(v_max)[0] >= 0.0:
            return v_max
        lo, hi = 0.0, v_max
        v = min(max(v_guess, lo), hi)
        for _ in range(60):  # Newton, kept inside the bracket (bisection when it leaves it)
            i, di = src(v)
            if i > 0.0:
                lo = v
            else:
                hi = v
            if hi - lo < 1e-6:
                break
            v_new = v - i / di if di < 0.0 else 0.5 * (lo + hi)
            if not lo < v_new < hi:
                v_new = 0.5 * (lo + hi)
            if abs(v_new - v) < 1e-7:
                return v_new
            v = v_new
        return v


class Plant:
    """``stage`` and ``pv``: one PowerStage and its PV source, or lists of them (one per channel, same length).
    ``shade``: callable(t) or a list of them per channel (None entries: no shade); ``irradiance_scale``: per-channel
    factors on the scenario's irradiance (default 1.0 each)."""

    def __init__(self, stage, pv, battery=None, load=None, heatsink=None, fan=None, irradiance=None,
                 cell_temp=None, ambient=None, shade=None, load_fraction=None, next_change=None,
                 cond_dt_s=0.01, irradiance_scale=None):
        stages = list(stage) if isinstance(stage, (list, tuple)) else [stage]
        pvs = list(pv) if isinstance(pv, (list, tuple)) else [pv]
        n = len(stages)
        if len(pvs) != n:
            raise ValueError("plant: %d power stages but %d PV sources (one per channel)" % (n, len(pvs)))
        shades = list(shade) if isinstance(shade, (list, tuple)) else [shade] + [None] * (n - 1)
        if len(shades) != n:
            raise ValueError("plant: %d channels but %d shade profiles" % (n, len(shades)))
        scale = [1.0] * n if irradiance_scale is None else [float(x) for x in irradiance_scale]
        if len(scale) != n:
            raise ValueError("plant: %d channels but %d irradiance scale factors" % (n, len(scale)))
        for k, st in enumerate(stages[1:], start=1):
            if st.p.r_out_wiring_ohm < 1e-4:
                raise ValueError("plant: channel %d needs r_out_wiring_ohm >= 0.1 mOhm (it joins channel 0's "
                                 "output through it)" % k)
        self.n_channels = n
        self.stages = stages
        self.pvs = pvs
        self.ports = [PVPort(p) for p in pvs]
        self.stage = stages[0]
        self.pv = pvs[0]
        self.battery = battery
        # a load with port "pv" hangs on channel 0's PV terminals (boost mode), any other on the battery node
        self.load_hv = load if getattr(load, "port", "battery") == "pv" else None
        if self.load_hv is not None:
            load = None
            self.ports[0].load = self.load_hv
        self.load = load
        self.heatsink = heatsink
        self.fan = fan
        self.fan_command = 0.0
        self._irr = irradiance or (lambda t: 0.0)
        self._cell_temp = cell_temp or (lambda t, g: 25.0)
        self._ambient = ambient or (lambda t: 25.0)
        self._shade = shades[0] or (lambda t: None)
        self._shades = [sh or (lambda t: None) for sh in shades]
        self._scale = scale
        self._load_fraction = load_fraction or (lambda t: 1.0)
        self._next_change = next_change or (lambda t: math.inf)
        self._nc = -math.inf  # _next_change() as last asked (valid while the plant's time is below it)
        self.cond_dt_s = cond_dt_s
        self.t_ns = 0
        self.r_pv_short_ohm = 0.01
        self.bat_present = battery is not None
        self.ambient_override_c = None
        self.heat_extra_w = 0.0  # heat into the heatsink from outside the converter (fault heatsink_heat)
        # conditions
        self.g_w_m2 = 0.0
        self.t_cell_c = 25.0
        self._shade_now = None
        self._t_cond = -1.0
        self.p_mpp_w = 0.0  # all channels
        self.v_mpp_v = 0.0  # channel 0
        self.p_mpp_ch = [0.0] * n
        self.v_mpp_ch = [0.0] * n
        self._cond_ch = [(None, None, None)] * n  # (g, t_cell, shade) last given to each array
        # energy bookkeeping (J): the kernel's books (properties below) and the multi-channel extras
        self.A = np.zeros(K.NA)
        self._e_available_ch = [0.0] * n  # per channel (multi-channel plants; one channel: the totals)
        self._e_pv_ch = [0.0] * n
        self.e_transfer_out_j = 0.0  # channels 1.. -> channel 0's node, booked by the senders
        self.e_transfer_in_j = 0.0  # the same, booked by channel 0's node
        self.e_load_hv_j = 0.0  # the load on the PV terminals (its energy is part of e_pv_j, which is net)
        self._thevenin_due = True
        self.e_stored0_j = 0.0
        self.on_substep = None
        self._load_frac = 1.0
        self._i_avg = [0.0] * n  # multi-channel: each other channel's mean current into channel 0's node (A)
        if n > 1:
            self._update_conditions = self._update_conditions_multi
        self._update_conditions(0.0, force=True)
        self._wire_sources()

    # ---------------------------------------------------------------------------------------------------
    def _load_hv_current(self, v):
        if not self.stage.port_load_on():
            return 0.0
        return self.load_hv.current_and_slope(v)[0] * self._load_frac

    def _wire_sources(self):
        """Hand each stage its PV port and its output node as data (again after every fault that changes them);
        with several channels channel 0's output load is less what the others inject (set per step)."""
        st = self.stage
        st.bat_connected = self.bat_present and self.battery is not None
        st.set_output_load(self.load, self._load_frac, sum(self._i_avg))
        for port, stk in zip(self.ports, self.stages):
            port.wire(stk, self._load_frac)
        for stk in self.stages[1:]:
            stk.bat_connected = True  # joined to channel 0's node, battery or not
            stk.bat_r_ohm = 0.0
            stk.set_output_load(None)

    def _set_load_frac(self, f):
        if f != self._load_frac:
            self._load_frac = f
            self.stage.U[K.U_LD + 3] = f
            self.stage.U[K.U_PL + 3] = f

    def _ports(self, channel):
        return self.ports if channel is None else [self.ports[channel]]

    @property
    def pv_connected(self):
        return self.ports[0].connected

    @property
    def pv_short(self):
        return self.ports[0].short

    def set_pv_connected(self, connected, channel=None):
        """Connect or disconnect a PV input (channel None: every channel's)."""
        for p in self._ports(channel):
            p.connected = connected
        self._wire_sources()

    def set_pv_short(self, short, channel=None):
        """Short a PV input's terminals (r_pv_short_ohm) or clear the short (channel None: every channel's)."""
        for p in self._ports(channel):
            p.short = short
            p.r_short_ohm = self.r_pv_short_ohm
        self._wire_sources()

    def set_pv_dc_source(self, v, channel=None):
        """Put a DC source of v volts (behind r_dc_source_ohm) on a PV input's terminals, or remove it (v None)."""
        for p in self._ports(channel):
            p.dc_source_v = v
        self._wire_sources()

    def set_battery_connected(self, connected):
        self.bat_present = connected
        self._thevenin_due = True
        self._wire_sources()

    def settle(self, t_s=0.0):
        """Initial state: capacitors charged to what the sources give with the converter off."""
        st = self.stage
        if st.bat_connected:
            e, r = self.battery.thevenin()
            st.bat_e_v, st.bat_r_ohm = e, r
            st.vo = e
        for k, stk in enumerate(self.stages):
            port = self.ports[k]
            if k > 0:
                stk.vo = st.vo
                stk.bat_e_v = st.vo
            if stk.has_source and port.connected:
                stk.vc = max(0.0, port.pv.voc() - stk.p.v_f_body_v) if self.g_w_m2 * self._scale[k] > 0 else 0.0
            if stk.bat_connected and stk.vo - stk.p.v_f_body_v > stk.vc:
                stk.vc = stk.vo - stk.p.v_f_body_v  # charged from the output through the high-side body diode
            stk.v_boot = 0.0
        self.e_stored0_j = sum(stk.stored_energy_j() for stk in self.stages)

    def _update_conditions(self, t_s, force=False):
        if not force and t_s - self._t_cond < self.cond_dt_s:
            return
        self._t_cond = t_s
        g = self._irr(t_s)
        amb = self.ambient_override_c if self.ambient_override_c is not None else self._ambient(t_s)
        tc = self._cell_temp(t_s, g) if self.ambient_override_c is None else amb + (self._cell_temp(t_s, g) -
                                                                                    self._ambient(t_s))
        sh = self._shade(t_s)
        self._set_load_frac(self._load_fraction(t_s))
        if self.heatsink is not None:
            self.heatsink.t_amb_c = amb
        if force or g != self.g_w_m2 or tc != self.t_cell_c or sh != self._shade_now:
            self.g_w_m2, self.t_cell_c, self._shade_now = g, tc, sh
            self.pv.set_conditions(g, tc, sh)
            self.stage.tab = table_of(self.pv)
            if g > 0.0:
                v, i, pmp = self.pv.mpp()
            else:
                v, i, pmp = 0.0, 0.0, 0.0
            self.v_mpp_v, self.p_mpp_w = v, pmp
            self.v_mpp_ch[0], self.p_mpp_ch[0] = v, pmp

    def _update_conditions_multi(self, t_s, force=False):
        if not force and t_s - self._t_cond < self.cond_dt_s:
            return
        self._t_cond = t_s
        g = self._irr(t_s)
        amb_sc = self._ambient(t_s)
        amb = self.ambient_override_c if self.ambient_override_c is not None else amb_sc
        self._set_load_frac(self._load_fraction(t_s))
        if self.heatsink is not None:
            self.heatsink.t_amb_c = amb
        self.g_w_m2 = g
        changed = False
        for k in range(self.n_channels):
            gk = g * self._scale[k]
            tc = self._cell_temp(t_s, gk)
            if self.ambient_override_c is not None:
                tc = amb + (tc - amb_sc)
            sh = self._shades[k](t_s)
            cond = (gk, tc, sh)
            if force or cond != self._cond_ch[k]:
                self._cond_ch[k] = cond
                pv = self.pvs[k]
                pv.set_conditions(gk, tc, sh)
                self.stages[k].tab = table_of(pv)
                if gk > 0.0:
                    v, i, pmp = pv.mpp()
                else:
                    v, i, pmp = 0.0, 0.0, 0.0
                self.v_mpp_ch[k], self.p_mpp_ch[k] = v, pmp
                changed = True
        if changed:
            self.t_cell_c = self._cond_ch[0][1]
            self._shade_now = self._cond_ch[0][2]
            self.v_mpp_v = self.v_mpp_ch[0]
            self.p_mpp_w = sum(self.p_mpp_ch)

    # ---------------------------------------------------------------------------------------------------
    def advance_to(self, t_ns):
        """Integrate from self.t_ns to t_ns (the clock calls this before events and observations). The steps run
        in the compiled kernel, which comes back here when the conditions, a profile's breakpoint or a battery
        batch are due (every few milliseconds at most); this loop runs ~400 times per simulated second, so it keeps
        to what changed. With several channels, a load on the PV terminals or a per-step observer, the kernel takes
        one step per call and the rest follows here."""
        st = self.stage
        S, U, P, A = st.S, st.U, st.P, self.A
        multi = self.n_channels > 1
        one = multi or self.on_substep is not None or self.load_hv is not None
        while self.t_ns < t_ns:
            t0 = self.t_ns
            t_s = t0 * 1e-9
            if not t_s - self._t_cond < self.cond_dt_s:
                self._update_conditions(t_s)
            if self._thevenin_due and U[_U_BATCONN] != 0.0:
                U[_U_BATE], U[_U_BATR] = self.battery.thevenin()
                self._thevenin_due = False
            if not t_s < self._nc:  # the profiles' first breakpoint after t_s, kept until passed
                self._nc = self._next_change(t_s)
            if multi:
                inj = sum(self._i_avg)  # the other channels' mean current over the last step, held over this one
                U[K.U_INJ] = inj
            tv, tc, ends = st.tab
            t1 = _advance(S, U, P, tv, tc, ends, A, t0, t_ns, self._t_cond, self.cond_dt_s, self._nc, self.p_mpp_w,
                          BAT_BATCH_S, 1 if one else _MANY)
            if t1 < 0:
                st.raise_failed()
            self.t_ns = t1
            if one:
                h = (t1 - t0) * 1e-9
                if multi:
                    self._account_node0(h, inj)
                    A[K.A_SLOWE] += self._step_others(h)
                if self.load_hv is not None:
                    self._account_load_hv(st, h)
            if A[_A_SLOWH] >= BAT_BATCH_S:
                self._slow(0.0, 0.0, 0.0)
            if self.on_substep is not None:
                self.on_substep(self)

    def sync(self):
        """Bring the battery and the heatsink up to the plant's time (they lag it by less than BAT_BATCH_S
        otherwise): before reading their state for a report."""
        self._slow(0.0, 0.0, 0.0, flush=True)

    def _slow(self, i_bat, loss_w, h, flush=False):
        """The battery and the heatsink, whose fastest time constants are tens of seconds: stepped with the mean
        current and loss of the plant steps every BAT_BATCH_S (and on sync()); the battery's Thevenin source is
        refreshed after each of its steps."""
        A = self.A
        A[K.A_SLOWQ] += i_bat * h
        A[K.A_SLOWE] += loss_w * h
        A[K.A_SLOWH] += h
        hh = float(A[K.A_SLOWH])
        if hh >= BAT_BATCH_S or (flush and hh > 0.0):
            if self.stage.bat_connected and self.battery is not None:
                self.battery.step(float(A[K.A_SLOWQ]) / hh, hh)
                self._thevenin_due = True
            if self.heatsink is not None:
                fan_air = self.fan.airflow(self.fan_command) if self.fan is not None else 0.0
                self.heatsink.step(float(A[K.A_SLOWE]) / hh + self.heat_extra_w, fan_air, hh)
            A[K.A_SLOWQ] = A[K.A_SLOWE] = A[K.A_SLOWH] = 0.0

    def _book_losses(self, st, h):
        """Add a stage's losses over h to the books; returns the part that heats the heatsink (W)."""
        return K.book_losses(st.S, st.U, st.P, self.A, h)

    def _account_load_hv(self, st, h):
        """The PV-terminal load's energy. While the stage's input path blocks (driver and backflow MOSFET off,
        nothing flowing) the terminals are cut off from the input capacitor: they sit where the array and the load
        meet (0 V with no array), not at the capacitor's voltage the stage reports."""
        if st.i_pv == 0.0 and not st.backflow_on:
            st.v_pv = PVPort.open_voltage(st, st.vc + st.p.v_f_body_v, st.v_pv)
            K.book_extremes(st.S, self.A)  # the terminals' own voltage counts for max_v_pv
        self.e_load_hv_j += self._load_hv_current(st.v_pv) * st.v_pv * h

    def aux_power_w(self, st=None):
        """The aux supply's draw (MCU, ADC, gate driver) from a stage's output node (default: channel 0's)."""
        return (st or self.stage).aux_power_w()

    # -- several channels -------------------------------------------------------------------------------
    def _step_others(self, h):
        """Channels 1.. catch up over channel 0's step h against its new node voltage (see the module docstring);
        returns their heat into the heatsink over h (J)."""
        v0 = self.stage.vo
        i_avg = self._i_avg
        heat_j = 0.0
        for k in range(1, self.n_channels):
            stk = self.stages[k]
            stk.bat_e_v = v0
            rem = h
            q = 0.0
            while rem > 1e-10:
                hk = stk.step(rem)
                if hk > rem:
                    hk = rem
                rem -= hk
                q += stk.i_bat * hk
                heat_j += self._account_other(k, stk, hk)
            i_avg[k] = q / h
        return heat_j

    def _account_node0(self, h, inj):
        """Channel 0's extra books when other channels feed its node: the kernel booked its load current
        (load - injection) as load energy; move the injection to the transfer account. Per-channel PV figures."""
        st = self.stage
        e_in = inj * st.vo * h
        self.e_load_j += e_in
        self.e_transfer_in_j += e_in
        self._e_pv_ch[0] += st.v_pv * st.i_pv * h
        pm = self.p_mpp_ch
        for k in range(self.n_channels):
            self._e_available_ch[k] += pm[k] * h

    def _account_other(self, k, st, h):
        """Books of channel k >= 1 over its (sub-)step h; returns its heat into the heatsink (J)."""
        p_pv = st.v_pv * st.i_pv * h
        self.e_pv_j += p_pv
        self._e_pv_ch[k] += p_pv
        self.e_transfer_out_j += st.i_bat * st.bat_e_v * h  # delivered at channel 0's node voltage
        self.e_aux_j += self.aux_power_w(st) * h
        heat_w = self._book_losses(st, h)
        K.book_extremes(st.S, self.A)
        return heat_w * h

    # -- figures -----------------------------------------------------------------------------------------
    @property
    def e_loss_j(self):
        """Losses by kind (J), LOSS_KEYS but the battery's own internal loss (not the board's)."""
        return dict(zip(LOSS_KEYS[:-1], (float(x) for x in self.A[K.A_L_PV:K.A_L_OUTW + 1])))

    @property
    def e_pv_ch(self):
        """PV energy harvested per channel (J)."""
        return [self.e_pv_j] if self.n_channels == 1 else list(self._e_pv_ch)

    @property
    def e_available_ch(self):
        """Energy the arrays offered at their true MPP, per channel (J)."""
        return [self.e_available_j] if self.n_channels == 1 else list(self._e_available_ch)

    @property
    def bootstrap_violations(self):
        return sum(st.bootstrap_violations for st in self.stages)

    @property
    def il_peak_a(self):
        return max(st.il_peak_a for st in self.stages)

    def p_pv_ch(self):
        """Instantaneous PV power per channel (W)."""
        return [st.v_pv * st.i_pv for st in self.stages]

    def energy_balance(self):
        """(input J, accounted J, relative error): PV energy against battery + load + aux + losses + stored, over
        all channels. What the other channels hand to channel 0's node is booked by each side on its own
        (e_transfer_out_j, e_transfer_in_j) and appears in neither term, so an error of the partitioned integration
        shows here as it should."""
        stored = sum(st.stored_energy_j() for st in self.stages) - self.e_stored0_j
        losses = sum(self.e_loss_j.values())
        accounted = self.e_bat_in_j + self.e_load_j + self.e_aux_j + losses + stored
        # a battery that discharges feeds the aux supply: compare the flows through the converter boundary
        scale = max(abs(self.e_pv_j), abs(self.e_bat_in_j) + self.e_aux_j + self.e_load_j, 1e-9)
        return self.e_pv_j, accounted, (self.e_pv_j - accounted) / scale


Plant.e_available_j = field("A", K.A_AVAIL, doc="energy the arrays offered at their true MPP (J)")
Plant.e_pv_j = field("A", K.A_PV, doc="PV energy harvested, net (J)")
Plant.e_bat_in_j = field("A", K.A_BAT_IN, doc="at the battery terminals, signed: discharge subtracts (J)")
Plant.e_bat_charge_j = field("A", K.A_BAT_CHG, doc="only the charging part (J)")
Plant.e_load_j = field("A", K.A_LOAD)
Plant.e_aux_j = field("A", K.A_AUX)
Plant.max_v_pv = field("A", K.A_MAXVPV)
Plant.max_v_out = field("A", K.A_MAXVOUT)
Plant.max_v_bat = field("A", K.A_MAXVBAT)
Plant.steps = field("A", K.A_STEPS, int)
