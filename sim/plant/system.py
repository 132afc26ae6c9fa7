"""The plant: PV array, power stage, battery, load, heatsink, fan and the faults a scenario injects, integrated
together up to any simulated time, with the energy bookkeeping the summary reports.

The plant knows nothing of the firmware. Its inputs are the gate pins (PWM duty and frequency, driver enable,
backflow MOSFET, fan); its outputs are true physical quantities that the sensor front-ends (wiring.py) turn into pin
voltages.
"""

import math


class Plant:
    def __init__(self, stage, pv, battery=None, load=None, heatsink=None, fan=None, irradiance=None,
                 cell_temp=None, ambient=None, shade=None, load_fraction=None, next_change=None,
                 cond_dt_s=0.01):
        self.stage = stage
        self.pv = pv
        self.battery = battery
        self.load = load
        self.heatsink = heatsink
        self.fan = fan
        self.fan_command = 0.0
        self._irr = irradiance or (lambda t: 0.0)
        self._cell_temp = cell_temp or (lambda t, g: 25.0)
        self._ambient = ambient or (lambda t: 25.0)
        self._shade = shade or (lambda t: None)
        self._load_fraction = load_fraction or (lambda t: 1.0)
        self._next_change = next_change or (lambda t: math.inf)
        self.cond_dt_s = cond_dt_s
        self.t_ns = 0
        self.pv_connected = True
        self.pv_short = False
        self.r_pv_short_ohm = 0.01
        self.bat_present = battery is not None
        self.ambient_override_c = None
        # conditions
        self.g_w_m2 = 0.0
        self.t_cell_c = 25.0
        self._shade_now = None
        self._t_cond = -1.0
        self.p_mpp_w = 0.0
        self.v_mpp_v = 0.0
        # energy bookkeeping (J)
        self.e_available_j = 0.0
        self.e_pv_j = 0.0
        self.e_bat_in_j = 0.0  # at the battery terminals, signed (discharge subtracts)
        self.e_bat_charge_j = 0.0  # only the charging part
        self.e_load_j = 0.0
        self.e_aux_j = 0.0
        self.e_loss_j = {}
        self.e_stored0_j = 0.0
        # extremes
        self.max_v_pv = 0.0
        self.max_v_out = 0.0
        self.max_v_bat = 0.0
        self.steps = 0
        self.on_substep = None
        self._loss_w = 0.0
        self._load_frac = 1.0
        self._pv_fn = self._pv_source
        self._load_fn = self._load_current
        self._update_conditions(0.0, force=True)
        self._wire_sources()

    # ---------------------------------------------------------------------------------------------------
    def _pv_source(self, v):
        i, di = self.pv.current_and_slope(v)
        if self.pv_short:
            g = 1.0 / self.r_pv_short_ohm
            i -= v * g
            di -= g
        return i, di

    def _load_current(self, v):
        i, di = self.load.current_and_slope(v)
        f = self._load_frac
        return i * f, di * f

    def _wire_sources(self):
        st = self.stage
        st.pv_current = self._pv_fn if (self.pv_connected or self.pv_short) else None
        if self.pv_short and not self.pv_connected:
            st.pv_current = self._short_only
        st.bat_connected = self.bat_present and self.battery is not None
        st.load = self._load_fn if self.load is not None else None

    def _short_only(self, v):
        g = 1.0 / self.r_pv_short_ohm
        return -v * g, -g

    def set_pv_connected(self, connected):
        self.pv_connected = connected
        self._wire_sources()

    def set_pv_short(self, short):
        self.pv_short = short
        self._wire_sources()

    def set_battery_connected(self, connected):
        self.bat_present = connected
        self._wire_sources()

    def settle(self, t_s=0.0):
        """Initial state: capacitors charged to what the sources give with the converter off."""
        st = self.stage
        if st.bat_connected:
            e, r = self.battery.thevenin()
            st.bat_e_v, st.bat_r_ohm = e, r
            st.vo = e
        if st.pv_current is not None and self.pv_connected:
            st.vc = max(0.0, self.pv.voc() - st.p.v_f_body_v) if self.g_w_m2 > 0 else 0.0
        st.v_boot = 0.0
        self.e_stored0_j = st.stored_energy_j()

    def _update_conditions(self, t_s, force=False):
        if not force and t_s - self._t_cond < self.cond_dt_s:
            return
        self._t_cond = t_s
        g = self._irr(t_s)
        amb = self.ambient_override_c if self.ambient_override_c is not None else self._ambient(t_s)
        tc = self._cell_temp(t_s, g) if self.ambient_override_c is None else amb + (self._cell_temp(t_s, g) -
                                                                                    self._ambient(t_s))
        sh = self._shade(t_s)
        self._load_frac = self._load_fraction(t_s)
        if self.heatsink is not None:
            self.heatsink.t_amb_c = amb
        if force or g != self.g_w_m2 or tc != self.t_cell_c or sh != self._shade_now:
            self.g_w_m2, self.t_cell_c, self._shade_now = g, tc, sh
            self.pv.set_conditions(g, tc, sh)
            if g > 0.0:
                v, i, pmp = self.pv.mpp()
            else:
                v, i, pmp = 0.0, 0.0, 0.0
            self.v_mpp_v, self.p_mpp_w = v, pmp

    # ---------------------------------------------------------------------------------------------------
    def advance_to(self, t_ns):
        """Integrate from self.t_ns to t_ns (the clock calls this before events and observations)."""
        st = self.stage
        bat = self.battery
        while self.t_ns < t_ns:
            t_s = self.t_ns * 1e-9
            self._update_conditions(t_s)
            if st.bat_connected:
                st.bat_e_v, st.bat_r_ohm = bat.thevenin()
            h_max = (t_ns - self.t_ns) * 1e-9
            nc = self._next_change(t_s)
            if nc - t_s > 1e-9:
                h_max = min(h_max, nc - t_s)
            h_max = min(h_max, self.cond_dt_s)
            h = st.step(h_max)
            dt_ns = int(round(h * 1e9))
            if dt_ns <= 0:
                dt_ns = 1
            if self.t_ns + dt_ns > t_ns:
                dt_ns = t_ns - self.t_ns
            h = dt_ns * 1e-9
            self.t_ns += dt_ns
            self.steps += 1
            self._account(h)
            if st.bat_connected and bat is not None:
                bat.step(st.i_bat, h)
            if self.heatsink is not None:
                fan_air = self.fan.airflow(self.fan_command) if self.fan is not None else 0.0
                self.heatsink.step(self._loss_w, fan_air, h)
            if self.on_substep is not None:
                self.on_substep(self)

    def _account(self, h):
        st = self.stage
        p_pv = st.v_pv * st.i_pv
        self.e_available_j += self.p_mpp_w * h
        self.e_pv_j += p_pv * h
        v_bat_term = st.vo - st.i_bat * st.p.r_out_wiring_ohm
        p_bat = st.i_bat * v_bat_term if st.bat_connected else 0.0
        self.e_bat_in_j += p_bat * h
        if p_bat > 0:
            self.e_bat_charge_j += p_bat * h
        self.e_load_j += st.i_load * st.vo * h
        p_aux = self.aux_power_w()
        self.e_aux_j += p_aux * h
        losses = st.losses()
        el = self.e_loss_j
        for k, v in losses.items():
            if k == "bat_internal":
                continue
            el[k] = el.get(k, 0.0) + v * h
        self._loss_w = losses["conduction"] + losses["diode"] + losses["switching"] + losses["pv_path"]
        if st.v_pv > self.max_v_pv:
            self.max_v_pv = st.v_pv
        if st.vc > self.max_v_pv:
            self.max_v_pv = st.vc
        if st.vo > self.max_v_out:
            self.max_v_out = st.vo
        if st.bat_connected and v_bat_term > self.max_v_bat:
            self.max_v_bat = v_bat_term

    def aux_power_w(self):
        st = self.stage
        p = st.p
        p_aux = p.p_aux_w + (p.p_gate_w if st._switching else 0.0)
        vo = st.vo
        if vo > 5.0:
            return p_aux
        if vo > 0.0:
            return p_aux * (vo / 5.0) ** 2
        return 0.0

    def energy_balance(self):
        """(input J, accounted J, relative error): PV energy against battery + load + aux + losses + stored."""
        st = self.stage
        stored = st.stored_energy_j() - self.e_stored0_j
        losses = sum(self.e_loss_j.values())
        accounted = self.e_bat_in_j + self.e_load_j + self.e_aux_j + losses + stored
        # a battery that discharges feeds the aux supply: compare the flows through the converter boundary
        scale = max(abs(self.e_pv_j), abs(self.e_bat_in_j) + self.e_aux_j + self.e_load_j, 1e-9)
        return self.e_pv_j, accounted, (self.e_pv_j - accounted) / scale
