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
tridiagonal Jacobian and adaptive step size from a local error estimate; the numerics live in stage_kernel.py
(compiled), this class holds the arrays and names their fields. Losses are computed from the solution
(conduction, diodes, switching, backflow FET, wiring), so the energy balance in = out + losses + stored is a real
check of the integration, not an identity.
"""

import numpy as np

from sim.plant import stage_kernel as K


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


def field(arr, idx, conv=float, doc=None):
    """A property naming element idx of the instance's float array ``arr`` (read as conv)."""
    def get(self):
        return conv(getattr(self, arr)[idx])

    def put(self, value):
        getattr(self, arr)[idx] = value

    return property(get, put, doc=doc)


class PowerStage:
    """Inputs are set by the plant (gate pins; the PV port and the output node as data: set_port, set_output_load);
    ``step(h)`` integrates. Every state, input and output is a named field of the kernel's arrays (S, U)."""

    def __init__(self, params=None):
        p = self.p = params or PowerStageParams()
        self.P = np.array([getattr(p, name) for name in K.PARAM_NAMES], dtype=np.float64)
        self.S = np.zeros(K.NS)
        self.U = np.zeros(K.NU)
        self.S[K.S_HNEXT] = 1e-6
        self.S[K.S_TOL] = TOL_SCALE
        self.S[K.S_RHS] = p.r_hs_ohm
        self.S[K.S_BOOTOK] = 1.0
        self.U[K.U_FSW] = 39000.0
        self.U[K.U_BATR] = 0.02
        self.U[K.U_OVPHYST] = 0.5
        self.U[K.U_LD + 2] = self.U[K.U_PL + 2] = 1.0  # fade voltages (unused while the kinds are "off")
        self.U[K.U_LD + 3] = self.U[K.U_PL + 3] = 1.0
        # the PV array's table for the condition in force (pv.PVSource.table_np); a port with no array: a stub
        self.tab = _NO_TABLE

    # -- the sources, as data ---------------------------------------------------------------------------------------
    def set_port(self, array_connected, short_ohm=None, dc_source=None, load=None, load_frac=1.0):
        """What hangs on the PV terminals: the array (its table in ``tab``), a short (ohm), a DC source (v, ohm),
        a DC load (loads.DCLoad) scaled by load_frac. Nothing at all: the terminals are open."""
        U = self.U
        U[K.U_PVCONN] = 1.0 if array_connected else 0.0
        U[K.U_SHG] = 1.0 / short_ohm if short_ohm else 0.0
        U[K.U_DCV], U[K.U_DCG] = (dc_source[0], 1.0 / dc_source[1]) if (dc_source and array_connected) else (0.0, 0.0)
        _put_load(U, K.U_PL, load, load_frac)
        U[K.U_PVSRC] = 1.0 if (array_connected or short_ohm or load is not None) else 0.0
        U[K.U_SRCVER] += 1.0

    def set_output_load(self, load, load_frac=1.0, inject_a=0.0):
        """The DC load on the output node (loads.DCLoad or None) scaled by load_frac, and the current other channels
        inject into it (A)."""
        _put_load(self.U, K.U_LD, load, load_frac)
        self.U[K.U_INJ] = inject_a
        self.U[K.U_SRCVER] += 1.0

    @property
    def has_source(self):
        """Anything on the PV terminals at all."""
        return self.U[K.U_PVSRC] != 0.0

    def port_load_on(self):
        """False while the PV-terminal load's under-voltage lockout holds it off."""
        U = self.U
        return U[K.U_PL + 4] <= 0.0 or U[K.U_PL + 5] != 0.0

    def port_current(self, v):
        """(i, di/dv) the PV port delivers at terminal voltage v."""
        tv, tc, ends = self.tab
        return K.port_cs(self.U, tv, tc, ends, v)

    # ------------------------------------------------------------------------------------------------------
    def step(self, h_max):
        """Advance by at most h_max seconds with an adaptive step; returns the step taken (s)."""
        tv, tc, ends = self.tab
        h = K.step(self.S, self.U, self.P, tv, tc, ends, h_max)
        if self.S[K.S_GOK] < 0.0:
            self.raise_failed()
        return h

    def raise_failed(self):
        raise RuntimeError("power stage integration failed to converge at vc=%.3f il=%.3f vo=%.3f"
                           % (self.vc, self.il, self.vo))

    def aux_power_w(self):
        """The aux supply's draw (MCU, ADC, gate driver) from the output node."""
        return K.aux_power_w(self.S, self.P)

    def refresh_backflow(self):
        """The backflow MOSFET as it conducts: the firmware's command unless the ideal-diode controller blocks it,
        and always when it failed short."""
        K.refresh_backflow(self.U)

    def refresh_enable(self):
        """The IR2104's SD line as the bridge sees it: the firmware's command AND the OVP comparator."""
        K.refresh_enable(self.U)

    def stored_energy_j(self):
        p = self.p
        return 0.5 * p.c_in_f * self.vc ** 2 + 0.5 * p.l_h * self.il ** 2 + 0.5 * p.c_out_f * self.vo ** 2


for _idx, _name in enumerate(K.STATE_NAMES):
    setattr(PowerStage, _name, field("S", _idx, float))
PowerStage.bootstrap_violations = field("S", K.S_BVIOL, int)
PowerStage.boot_ok = field("S", K.S_BOOTOK, bool)
PowerStage.switching = field("S", K.S_SWITCHING, bool)
for _idx, _name in enumerate(K.INPUT_NAMES):
    setattr(PowerStage, _name, field("U", _idx, float))
for _name in ("enabled", "enable_cmd", "backflow_on", "backflow_cmd", "backflow_shorted", "ideal_diode",
              "id_blocked", "ovp_tripped", "bat_connected"):
    setattr(PowerStage, _name, field("U", K.INPUT_NAMES.index(_name), bool))
PowerStage.ovp_trips = field("U", K.U_OVPTRIPS, int)
del _name, _idx

_NO_TABLE = (np.array([0.0, 1.0]), np.zeros((1, 4)), np.zeros(6))


def _put_load(U, at, load, frac):
    if load is None:
        U[at], U[at + 1], U[at + 4] = 0.0, 0.0, 0.0
        return
    U[at] = K.LOAD_CODES[load.kind]
    U[at + 1] = load.value
    U[at + 2] = load.fade_v
    U[at + 3] = frac
    U[at + 4] = load.uvlo_v or 0.0
    U[at + 5] = 0.0  # a converter with a lockout starts off: the first step turns it on above UVLO_ON x uvlo_v
