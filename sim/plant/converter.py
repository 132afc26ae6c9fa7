"""Averaged model of FUGU's power stage: PV source -> backflow MOSFET -> input capacitor -> IR2104 half bridge
(synchronous buck) -> inductor -> output capacitor -> battery / load.

States: input capacitor voltage ``vc``, inductor current ``il`` (average over a PWM period), output capacitor voltage
``vo``; the bootstrap capacitor voltage ``v_boot`` is updated per PWM period in closed form.

Per PWM period the half bridge spends the fraction ``f_hs`` with the high-side MOSFET on, ``f_ls`` with the low side
on and the rest in dead time, when the inductor current flows through a body diode: the low side's when il > 0
(switch node at -Vf), the high side's when il < 0 (switch node at vc + Vf, pushing energy back into the input). The
IR2104 inserts its dead time before each turn-on, so f_hs = D - td*f and f_ls = 1 - D - td*f. With the driver
disabled (SD low) both MOSFETs are off: the body diodes conduct until the current reaches zero, then it stays zero
(discontinuous) unless the output rises above the input (reverse boost through the high-side body diode).

Because both switches are driven, the average inductor current may go negative at light load: the synchronous
buck then runs backwards as a boost from the battery into the PV side. That is the "negative current" problem of the
original firmware and the simulator shows it.

The bootstrap capacitor feeds the high-side gate. Each period it loses the gate charge plus the IR2104's quiescent
current and recharges through the bootstrap diode while the switch node is low (low-side on, or its body diode
conducting). If the low-side window is too short it droops; below ``v_hs_min`` the high-side MOSFET is under-driven
(linear mode); below ``v_hs_th`` it stays off. Each episode of an under-driven high side while the PWM asks for it is
a bootstrap violation (counted). While the driver is disabled the capacitor discharges with the quiescent current.

Integration: backward Euler (L-stable: the stiff battery/capacitor modes need it) with Newton iterations on a
tridiagonal Jacobian and adaptive step size from a local error estimate. Losses are computed from the solution
(conduction, diodes, switching, backflow FET, wiring), so the energy balance in = out + losses + stored is a real
check of the integration, not an identity.
"""

import math


def _smooth_sign_frac(i, eps):
    """0..1, the fraction of the dead time the low-side diode conducts (1 for i >> eps, 0 for i << -eps)."""
    r = math.sqrt(i * i + eps * eps)
    return 0.5 + 0.5 * i / r, 0.5 * eps * eps / (r * r * r)


class PowerStageParams:
    """Component values. Defaults are the original FUGU board's (DESIGN.md) where known, typical parts elsewhere."""

    def __init__(self, **kw):
        self.c_in_f = 470e-6 * 2  # bulk input capacitors
        self.c_out_f = 470e-6 * 2
        self.l_h = 64e-6
        self.r_l_ohm = 0.008  # inductor DCR
        self.r_hs_ohm = 0.006  # CSD19505-class MOSFETs, hot
        self.r_ls_ohm = 0.006
        self.r_bf_ohm = 0.006  # backflow MOSFET
        self.r_in_wiring_ohm = 0.004  # PV terminals, ACS712 (1.2 mOhm), traces
        self.r_out_wiring_ohm = 0.004  # battery terminals and traces (the battery's own resistance is separate)
        self.v_f_body_v = 0.75  # MOSFET body diode
        self.r_body_ohm = 0.01
        self.t_dead_s = 520e-9  # IR2104 built-in dead time
        self.t_in_min_s = 100e-9  # IR2104 ignores input pulses shorter than its propagation/filter delay
        self.t_sw_s = 60e-9  # voltage/current overlap per transition (turn-on + turn-off ~ 2 x 60 ns)
        self.p_gate_w = 0.12  # gate drive of both MOSFETs at 39 kHz (from the aux supply)
        self.p_aux_w = 0.7  # ESP32, ADC, IR2104 Vcc supply, drawn from the battery side
        self.v_cc_v = 12.0  # IR2104 Vcc
        self.c_boot_f = 1e-6
        self.r_boot_ohm = 10.0  # bootstrap diode + series resistor
        self.v_f_boot_v = 0.7
        self.q_g_hs_c = 80e-9  # high-side gate charge per turn-on
        self.i_qbs_a = 50e-6  # IR2104 high-side quiescent current
        self.v_hs_min_v = 7.0  # below this the high-side MOSFET is under-driven (linear region)
        self.v_hs_th_v = 3.0  # below this it does not turn on at all
        self.i_eps_a = 0.02  # smoothing of the diode commutation (numerical)
        for k, v in kw.items():
            if not hasattr(self, k):
                raise ValueError("unknown power stage parameter %r" % k)
            setattr(self, k, float(v))


# Local-error tolerance of the adaptive step, as a multiple of the base tolerances in step(). 1.0 was the first
# setting; TOL_SCALE is the largest value whose energies stay within 0.05 % of a 10x tighter run (test_power_stage).
TOL_SCALE = 1.0


LOSS_KEYS = ("pv_path", "conduction", "diode", "switching", "out_wiring", "bat_internal")

IDEAL_DIODE_TRIP_A = 0.5  # reverse current that turns an ideal-diode controller's MOSFET off (LM74700-class: ~us)


class PowerStage:
    """Inputs are set by the plant (gate pins, PV and battery Thevenin models); ``step(h)`` integrates."""

    def __init__(self, params=None):
        p = self.p = params or PowerStageParams()
        self.vc = 0.0
        self.il = 0.0
        self.vo = 0.0
        self.v_boot = 0.0
        # inputs
        self.duty = 0.0  # effective PWM duty at the IR2104 IN pin (0..1)
        self.f_sw_hz = 39000.0
        self.enabled = False  # IR2104 SD pin as the bridge sees it: the firmware's command AND the OVP comparator
        self.enable_cmd = False  # what the firmware drives on SD
        # hardware output over-voltage comparator (boards with "ovp"): above ovp_v_trip at the output node it pulls
        # SD low within a microsecond, releases ovp_hyst_v below; 0 = not fitted
        # an ideal-diode controller on the backflow MOSFET (boards with "backflow_ideal_diode"): it turns the FET
        # off within a microsecond when current flows back into the PV side, on again once current flows forward
        # (through the body diode meanwhile); the firmware's gate command only enables it
        self.ideal_diode = False
        self.backflow_cmd = False
        self.id_blocked = False
        self.ovp_v_trip = 0.0
        self.ovp_hyst_v = 0.5
        self.ovp_tripped = False
        self.ovp_trips = 0
        self.backflow_on = False
        self.backflow_shorted = False  # fault: the MOSFET failed short (conducts whatever its gate or controller)
        # sources/sinks, set per step by the plant:
        self.pv_current = None  # callable(v_terminal) -> (i, di/dv): PV (plus any terminal short), None = disconnected
        self.bat_e_v = 0.0
        self.bat_r_ohm = 0.02
        self.bat_connected = False
        self.load = None  # callable(v) -> (i, di/dv)
        # outputs of the last step
        self.i_pv = 0.0
        self.v_pv = 0.0
        self.i_bat = 0.0
        self.i_load = 0.0
        self.i_out = 0.0  # current leaving the output terminal (battery + load)
        self.boot_ok = True
        self.bootstrap_violations = 0
        self.il_peak_a = 0.0
        self.losses_w = 0.0
        self.h_next = 1e-6
        self.tol = TOL_SCALE
        self._under_driven = False
        self._r_hs = self.p.r_hs_ohm
        self._switching = False
        self._cycle_acc = 0.0
        self.last_fr = None  # fractions() of the last step
        self._g_carry = None  # g(x) and its Jacobian at the end of the last step (see step())
        self._g_key = None
        self._g_x = None

    # ------------------------------------------------------------------------------------------------------
    def fractions(self):
        """(f_hs, f_ls, switching) for this step from the gate inputs and the bootstrap state."""
        if not self.enabled or self.f_sw_hz <= 0:
            return 0.0, 0.0, False
        td = self.p.t_dead_s * self.f_sw_hz
        tmin = self.p.t_in_min_s * self.f_sw_hz
        d = self.duty
        if 1.0 - d < tmin:  # the low pulse is swallowed: the high side stays on for whole periods
            d = 1.0
            f_hs, f_ls = 1.0, 0.0
        elif d < tmin:
            f_hs, f_ls = 0.0, 1.0
        else:
            f_hs = d - td if d > td else 0.0
            f_ls = 1.0 - d - td if 1.0 - d > td else 0.0
        if self.v_boot < self.p.v_hs_th_v:
            f_hs = 0.0
        self._r_hs = self.p.r_hs_ohm if self.v_boot >= self.p.v_hs_min_v else 30.0 * self.p.r_hs_ohm
        return f_hs, f_ls, True

    def _pv_branch(self, vc):
        """Current from the PV side into the input capacitor node, and its derivative, through the backflow
        MOSFET (on: resistive, both ways) or its body diode (off: forward only)."""
        src = self.pv_current
        p = self.p
        if src is None:
            return 0.0, 0.0, 0.0
        if self.backflow_on:
            r = p.r_bf_ohm + p.r_in_wiring_ohm
            voff = 0.0
        else:
            r = p.r_body_ohm + p.r_in_wiring_ohm
            voff = p.v_f_body_v
            i0, _ = src(vc + voff)
            if i0 <= 0.0:
                return 0.0, 0.0, vc + voff  # blocked; PV terminal floats near its own open-circuit point
        i = self.i_pv
        for _ in range(30):
            ip, dip = src(vc + voff + i * r)
            g = i - ip
            dg = 1.0 - dip * r
            di = g / dg
            i -= di
            if abs(di) < 1e-7:  # the slope from this evaluation (1e-7 A away: r * 1e-7 V) serves
                break
        else:
            ip, dip = src(vc + voff + i * r)
        if not self.backflow_on and i < 0.0:
            return 0.0, 0.0, vc + voff
        didv = dip / (1.0 - dip * r)
        return i, didv, vc + voff + i * r

    def _out_current(self, vo):
        """Current drawn from the output node (battery, load, aux supply) and its derivative."""
        p = self.p
        i = 0.0
        di = 0.0
        if self.bat_connected:
            r = self.bat_r_ohm + p.r_out_wiring_ohm
            i += (vo - self.bat_e_v) / r
            di += 1.0 / r
        if self.load is not None:
            il, dil = self.load(vo)
            i += il
            di += dil
        # aux supply: constant power above ~5 V, fading out below (its own regulator drops out)
        p_aux = p.p_aux_w + (p.p_gate_w if self._switching else 0.0)
        v5 = 5.0
        if vo > v5:
            i += p_aux / vo
            di += -p_aux / (vo * vo)
        elif vo > 0:
            i += p_aux / v5 * (vo / v5)
            di += p_aux / (v5 * v5)
        return i, di

    # ------------------------------------------------------------------------------------------------------
    def _static(self, x, f_hs, f_ls, switching, blocked):
        """The state-dependent part g(x) of the model M dx/dt = -g(x), M = diag(C_in, L, C_out), and its Jacobian
        (tridiagonal: (b1, c1), (a2, b2, c2), (a3, b3)). Blocked (driver off, no diode forward-biased): the inductor
        row is the constraint il = 0 (g2 = il, no dynamics)."""
        p = self.p
        vc, il, vo = x
        ipv, dipv, _ = self._pv_branch(vc)
        iout, diout = self._out_current(vo)
        if blocked:
            return (-ipv, il, iout), ((-dipv, 0.0), (0.0, 1.0, 0.0), (0.0, diout))
        f_off = 1.0 - f_hs - f_ls
        if switching:
            s, ds = _smooth_sign_frac(il, p.i_eps_a)
        else:
            s, ds = (1.0, 0.0) if il > 0 else (0.0, 0.0)
        vf = p.v_f_body_v
        # switch node average voltage
        vd = s * (-vf - il * p.r_body_ohm) + (1.0 - s) * (vc + vf - il * p.r_body_ohm)
        vsw = f_hs * (vc - il * self._r_hs) - f_ls * il * p.r_ls_ohm + f_off * vd
        dvsw_dvc = f_hs + f_off * (1.0 - s)
        dvd_dil = ds * (-vf) - ds * (vc + vf) - p.r_body_ohm
        dvsw_dil = -f_hs * self._r_hs - f_ls * p.r_ls_ohm + f_off * dvd_dil
        # current the bridge draws from the input node: high side, high-side diode, switching overlap
        ksw = 2.0 * p.t_sw_s * self.f_sw_hz if (switching and f_hs > 0.0) else 0.0
        ia = math.sqrt(il * il + p.i_eps_a * p.i_eps_a) - p.i_eps_a
        dia = il / (ia + p.i_eps_a)
        isw = f_hs * il + f_off * (1.0 - s) * il + 0.5 * ksw * ia
        disw_dil = f_hs + f_off * ((1.0 - s) - ds * il) + 0.5 * ksw * dia
        g = (isw - ipv, il * p.r_l_ohm + vo - vsw, iout - il)
        return g, ((-dipv, disw_dil), (-dvsw_dvc, p.r_l_ohm - dvsw_dil, 1.0), (-1.0, diout))

    @staticmethod
    def _solve3(jac, f):
        """Solve the tridiagonal 3x3 system J dx = f."""
        (b1, c1), (a2, b2, c2), (a3, b3) = jac
        f1, f2, f3 = f
        # eliminate row1 into row2, row3 into row2
        m1 = a2 / b1
        b2p = b2 - m1 * c1
        f2p = f2 - m1 * f1
        m3 = c2 / b3
        b2pp = b2p - m3 * a3
        f2pp = f2p - m3 * f3
        dx2 = f2pp / b2pp
        dx1 = (f1 - c1 * dx2) / b1
        dx3 = (f3 - a3 * dx2) / b3
        return dx1, dx2, dx3

    def _newton(self, x0, h, fr, blocked, g0, fresh):
        """Backward Euler: solve M (x - x0) / h + g(x) = 0. The first iteration uses g0 (g and its Jacobian at x0,
        possibly carried over from the previous step: then it may not end the iteration, ``fresh`` False); returns
        (x, converged, the last g evaluated: at a point within the tolerance of x)."""
        f_hs, f_ls, switching = fr
        p = self.p
        m1 = p.c_in_f / h
        m2 = 0.0 if blocked else p.l_h / h
        m3 = p.c_out_f / h
        x0c, x0l, x0o = x0
        xc, xl, xo = x0
        gj = g0
        for it in range(12):
            if it:
                gj = self._static((xc, xl, xo), f_hs, f_ls, switching, blocked)
            (g1, g2, g3), ((b1, c1), (a2, b2, c2), (a3, b3)) = gj
            dx = self._solve3(((m1 + b1, c1), (a2, m2 + b2, c2), (a3, m3 + b3)),
                              (m1 * (xc - x0c) + g1, m2 * (xl - x0l) + g2, m3 * (xo - x0o) + g3))
            xc -= dx[0]
            xl -= dx[1]
            xo -= dx[2]
            if (it or fresh) and abs(dx[0]) < 1e-6 * (1.0 + abs(xc)) and abs(dx[1]) < 1e-6 \
                    and abs(dx[2]) < 1e-6 * (1.0 + abs(xo)):
                return (xc, xl, xo), True, gj
        return (xc, xl, xo), False, gj

    def _derivs_of(self, g, blocked):
        p = self.p
        return (-g[0][0] / p.c_in_f, 0.0 if blocked else -g[0][1] / p.l_h, -g[0][2] / p.c_out_f)

    # ------------------------------------------------------------------------------------------------------
    def _is_blocked(self, fr):
        """Driver off and no diode forward-biased: the inductor current stays at zero."""
        if fr[2] or self.il != 0.0:
            return False
        vf = self.p.v_f_body_v
        return -vf <= self.vo <= self.vc + vf

    def _inputs_key(self, fr, blocked):
        """What g depends on besides the state, apart from slowly varying sources (irradiance, the battery's EMF):
        a carried-over g is used only to start Newton's iteration and to estimate the error, never as a result."""
        return (fr, blocked, self.backflow_on, self.bat_connected, self.pv_current, self.load, self._r_hs,
                self.f_sw_hz)

    def step(self, h_max):
        """Advance by at most h_max seconds with an adaptive step; returns the step taken (s)."""
        fr = self.last_fr = self.fractions()
        self._switching = fr[2]
        if not fr[2] and abs(self.il) < 2e-2:
            self.il = 0.0  # the last milliamps through a body diode: the diode recovers, the current stops
        blocked = self._is_blocked(fr)
        x0 = (self.vc, self.il, self.vo)
        key = self._inputs_key(fr, blocked)
        g0 = self._g_carry
        fresh = False
        if g0 is None or self._g_key != key or self._g_x != x0:
            g0 = self._static(x0, fr[0], fr[1], fr[2], blocked)
            fresh = True
        d0 = self._derivs_of(g0, blocked)
        h = min(h_max, self.h_next)
        if self.ovp_v_trip and not self.ovp_tripped and d0[2] > 0.0:
            # the output rising towards the comparator's threshold: no step past the crossing (the chip trips
            # there); a battery resting just below it costs nothing
            h_cross = (self.ovp_v_trip - self.vo) / d0[2]
            if h_cross < h:
                h = h_cross if h_cross > 2e-6 else 2e-6
        while True:
            x1, ok, g1 = self._newton(x0, h, fr, blocked, g0, fresh)
            if ok:
                d1 = self._derivs_of(g1, blocked)
                # local error of backward Euler ~ h/2 * (x'(t1) - x'(t0))
                tol = self.tol
                e_v1 = 0.5 * h * abs(d1[0] - d0[0]) / (tol * (0.01 + 2e-4 * abs(x1[0])))
                e_i = 0.5 * h * abs(d1[1] - d0[1]) / (tol * (0.01 + 2e-3 * abs(x1[1])))
                e_v3 = 0.5 * h * abs(d1[2] - d0[2]) / (tol * (0.005 + 2e-4 * abs(x1[2])))
                err = max(e_v1, e_i, e_v3)
                if err <= 1.0 or h <= 1e-8:
                    break
                h *= max(0.1, 0.8 / math.sqrt(err))
            else:
                h *= 0.25
                if h < 1e-9:
                    raise RuntimeError("power stage integration failed to converge at vc=%.3f il=%.3f vo=%.3f" % x0)
        # grow the next step (bounded: while switching, the PWM-period quantities -- bootstrap, ripple -- and the
        # control loop's milliseconds; with the bridge off only the slow sources move)
        h_cap = 5e-3 if fr[2] else 1e-2
        self.h_next = min(h_cap, h * (min(4.0, 0.9 / math.sqrt(err)) if err > 1e-12 else 4.0))
        vc, il, vo = x1
        # the inductor current cannot reverse through a blocking diode when the bridge is off
        if not fr[2] and not blocked and (il > 0.0) != (self.il > 0.0) and self.il != 0.0:
            il = 0.0
        self.vc, self.il, self.vo = vc, il, vo
        # carry g over to the next step (evaluated within Newton's tolerance of the new state)
        self._g_carry = g1
        self._g_key = key
        self._g_x = (vc, il, vo)
        self._update_outputs(fr, h)
        self._update_bootstrap(fr, h)
        if self.ovp_v_trip:
            self._ovp(vo)
        if self.ideal_diode:
            self._ideal_diode()
        return h

    def refresh_backflow(self):
        """The backflow MOSFET as it conducts: the firmware's command unless the ideal-diode controller blocks it,
        and always when it failed short."""
        self.backflow_on = (self.backflow_cmd and not self.id_blocked) or self.backflow_shorted

    def _ideal_diode(self):
        if self.backflow_on and not self.id_blocked and self.i_pv < -IDEAL_DIODE_TRIP_A:
            self.id_blocked = True
            self.refresh_backflow()
            self.h_next = 1e-7
        elif self.id_blocked and self.i_pv > IDEAL_DIODE_TRIP_A:  # forward again (through the body diode)
            self.id_blocked = False
            self.refresh_backflow()
            self.h_next = 1e-6

    def refresh_enable(self):
        """The IR2104's SD line as the bridge sees it: the firmware's command AND the OVP comparator."""
        self.enabled = self.enable_cmd and not self.ovp_tripped

    def _ovp(self, vo):
        if vo > self.ovp_v_trip:
            if not self.ovp_tripped:
                self.ovp_tripped = True
                self.ovp_trips += 1
                self.refresh_enable()
                self.h_next = 1e-6
        elif self.ovp_tripped and vo < self.ovp_v_trip - self.ovp_hyst_v:
            self.ovp_tripped = False
            self.refresh_enable()
            self.h_next = 1e-6

    def _update_outputs(self, fr, h):
        p = self.p
        ipv, _, vpv = self._pv_branch(self.vc)
        self.i_pv = ipv
        self.v_pv = vpv if self.pv_current is not None else 0.0
        il = self.il
        vo = self.vo
        self.i_bat = (vo - self.bat_e_v) / (self.bat_r_ohm + p.r_out_wiring_ohm) if self.bat_connected else 0.0
        self.i_load = self.load(vo)[0] if self.load is not None else 0.0
        self.i_out = self.i_bat + self.i_load
        f_hs, f_ls, switching = fr
        if switching and f_hs + f_ls > 0:
            ripple = max(0.0, (self.vc - vo)) * max(f_hs, 0.0) / (p.l_h * self.f_sw_hz)
        else:
            ripple = 0.0
        pk = abs(il) + 0.5 * ripple
        if pk > self.il_peak_a:
            self.il_peak_a = pk

    def loss_terms(self, fr=None):
        """Instantaneous losses (W) at the present state, those of LOSS_KEYS in that order (the plant's books add
        them up every step)."""
        p = self.p
        fr = fr or self.fractions()
        f_hs, f_ls, switching = fr
        il = self.il
        f_off = 1.0 - f_hs - f_ls
        if switching:
            s, _ = _smooth_sign_frac(il, p.i_eps_a)
        else:
            s = 1.0 if il > 0 else 0.0
        r_pv = p.r_bf_ohm + p.r_in_wiring_ohm if self.backflow_on else p.r_body_ohm + p.r_in_wiring_ohm
        pv_path = self.i_pv * self.i_pv * r_pv + (0.0 if self.backflow_on else p.v_f_body_v * max(0.0, self.i_pv))
        conduction = il * il * (f_hs * self._r_hs + f_ls * p.r_ls_ohm + p.r_l_ohm)
        ksw = 2.0 * p.t_sw_s * self.f_sw_hz if (switching and f_hs > 0.0) else 0.0
        ia = math.sqrt(il * il + p.i_eps_a * p.i_eps_a) - p.i_eps_a
        switching_w = 0.5 * ksw * ia * self.vc
        # the smoothed commutation slightly blends the two diodes; their exact contribution:
        diode = f_off * (s * (p.v_f_body_v * il + p.r_body_ohm * il * il)
                         + (1.0 - s) * (-p.v_f_body_v * il + p.r_body_ohm * il * il))
        out_wiring = (self.i_bat ** 2) * p.r_out_wiring_ohm if self.bat_connected else 0.0
        bat_internal = (self.i_bat ** 2) * self.bat_r_ohm if self.bat_connected else 0.0
        return pv_path, conduction, diode, switching_w, out_wiring, bat_internal

    def stored_energy_j(self):
        p = self.p
        return 0.5 * p.c_in_f * self.vc ** 2 + 0.5 * p.l_h * self.il ** 2 + 0.5 * p.c_out_f * self.vo ** 2

    def _update_bootstrap(self, fr, h):
        """Per PWM period: the high-side pulse sees V_k (checked), uses its gate charge, then the switch node is
        low and the capacitor recharges towards Vcc - Vf: V_{k+1} = a (V_k - dv) + (1 - a) v_chg. Whole periods
        only (a fractional step carries its phase over), so start-up transients are not counted twice."""
        p = self.p
        f_hs_cmd = self.enabled and self.duty > p.t_dead_s * self.f_sw_hz
        if not fr[2]:
            self.v_boot = max(0.0, self.v_boot - p.i_qbs_a * h / p.c_boot_f)
            self._cycle_acc = 0.0
            self._under_driven = False
            return
        self._cycle_acc += h * self.f_sw_hz
        m = int(self._cycle_acc)
        if m <= 0:
            return
        self._cycle_acc -= m
        period = 1.0 / self.f_sw_hz
        t_low = fr[1] * period
        if self.il > 0.0:
            t_low = period * (1.0 - fr[0])
        tau = p.r_boot_ohm * p.c_boot_f
        a = math.exp(-t_low / tau) if t_low > 0 else 1.0
        v_chg = p.v_cc_v - p.v_f_boot_v
        dv = (p.q_g_hs_c if fr[0] > 0.0 else 0.0) / p.c_boot_f + p.i_qbs_a * period / p.c_boot_f
        v = self.v_boot
        v_star = v_chg - a * dv / (1.0 - a) if a < 1.0 else -1e9
        lo, hi = p.v_hs_th_v, p.v_hs_min_v
        k = 0
        # walk period by period while far from the fixed point (start-up, droop); then jump in closed form
        while k < m and (abs(v - v_star) > 1e-3 or k == 0):
            under = f_hs_cmd and lo <= v < hi
            if under and not self._under_driven:
                self.bootstrap_violations += 1
            self._under_driven = under
            v = a * (v - dv) + (1.0 - a) * v_chg
            if v < 0.0:
                v = 0.0
            k += 1
            if k >= 64:
                break
        if k < m:
            if a < 1.0:
                v = v_star + (a ** (m - k)) * (v - v_star)
            else:
                v = max(0.0, v - (m - k) * dv)
            under = f_hs_cmd and lo <= v < hi
            if under and not self._under_driven:
                self.bootstrap_violations += 1
            self._under_driven = under
        self.v_boot = v
        self.boot_ok = not self._under_driven
