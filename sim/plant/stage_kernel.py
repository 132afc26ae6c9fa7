"""The power stage's numerics (converter.py tells the physics) as plain functions over three float arrays, compiled
by numba: a plant step costs about a microsecond instead of the ~25 of the same code as Python objects, which is
what lets a simulated day run in minutes. ``NUMBA_DISABLE_JIT=1`` runs the very same functions as Python (slow, for
a debugger).

Arrays (the index names below are compile-time constants):
  P  the component values, in PARAM_NAMES order (PowerStageParams);
  S  the state and the outputs of the last step, and Newton's g(x) carried from one step to the next;
  U  the inputs (gate pins, sources, the comparator and ideal-diode latches: the step may change these);
  A  the plant's books (energies in J, extremes, the battery/heatsink accumulators, the step count);
  tv, tc, ends: the PV array's monotone cubic table (pv.py) for the condition in force.

The PV port and the output node are data, not callables: the array (table), a short (conductance), a DC source, and
a DC load on either node (kind code, value, fade voltage, profile fraction), less a current injected into the
output node by other channels.
"""

import math

from numba import njit

PARAM_NAMES = ("c_in_f", "c_out_f", "l_h", "r_l_ohm", "r_hs_ohm", "r_ls_ohm", "r_bf_ohm", "r_in_wiring_ohm",
               "r_out_wiring_ohm", "v_f_body_v", "r_body_ohm", "t_dead_s", "t_in_min_s", "t_sw_s", "p_gate_w",
               "p_aux_w", "v_cc_v", "c_boot_f", "r_boot_ohm", "v_f_boot_v", "q_g_hs_c", "i_qbs_a", "v_hs_min_v",
               "v_hs_th_v", "i_eps_a")
(P_CIN, P_COUT, P_L, P_RL, P_RHS, P_RLS, P_RBF, P_RINW, P_ROUTW, P_VF, P_RBODY, P_TDEAD, P_TINMIN, P_TSW, P_PGATE,
 P_PAUX, P_VCC, P_CBOOT, P_RBOOT, P_VFBOOT, P_QG, P_IQBS, P_VHSMIN, P_VHSTH, P_IEPS) = range(25)
NP = 25

STATE_NAMES = ("vc", "il", "vo", "v_boot", "h_next", "cycle_acc", "under_driven", "r_hs", "switching", "fr_hs",
               "fr_ls", "fr_sw", "i_pv", "v_pv", "i_bat", "i_load", "i_out", "il_peak_a", "bootstrap_violations",
               "boot_ok", "tol")
(S_VC, S_IL, S_VO, S_VBOOT, S_HNEXT, S_CYC, S_UNDER, S_RHS, S_SWITCHING, S_FHS, S_FLS, S_FSW, S_IPV, S_VPV, S_IBAT,
 S_ILOAD, S_IOUT, S_ILPEAK, S_BVIOL, S_BOOTOK, S_TOL) = range(21)
S_GOK = 21  # 1 when g below was evaluated at the state (S_GX*) under the inputs in S_K*
S_G = 22  # g1 g2 g3 b1 c1 a2 b2 c2 a3 b3: g(x) and its tridiagonal Jacobian
S_GX = 32  # vc il vo where it was evaluated
S_K = 35  # fr_hs fr_ls switching blocked backflow_on bat_connected src_ver r_hs f_sw
NS = 44

INPUT_NAMES = ("duty", "f_sw_hz", "enabled", "enable_cmd", "backflow_on", "backflow_cmd", "backflow_shorted",
               "ideal_diode", "id_blocked", "ovp_v_trip", "ovp_hyst_v", "ovp_tripped", "ovp_trips", "bat_e_v",
               "bat_r_ohm", "bat_connected")
(U_DUTY, U_FSW, U_ENABLED, U_ENCMD, U_BFON, U_BFCMD, U_BFSHORT, U_IDEAL, U_IDBLK, U_OVPTRIP, U_OVPHYST, U_OVPTRIPPED,
 U_OVPTRIPS, U_BATE, U_BATR, U_BATCONN) = range(16)
# the output node's load (kind code, value, fade_v, profile fraction, under-voltage lockout voltage, 1 while the
# lockout lets it run) and the current other channels inject
U_LD, U_INJ = 16, 22
# the PV port: array connected (its table counts), anything on the port at all, short conductance, DC source (V,
# conductance), a load on the terminals (as U_LD), and a counter bumped at each rewiring
U_PVCONN, U_PVSRC, U_SHG, U_DCV, U_DCG, U_PL, U_SRCVER = 23, 24, 25, 26, 27, 28, 34
NU = 35
UVLO_ON = 1.1  # a locked-out load starts again above this multiple of its lockout voltage

LOAD_CODES = {"off": 0, "resistive": 1, "constant_current": 2, "constant_power": 3}

(A_AVAIL, A_PV, A_BAT_IN, A_BAT_CHG, A_LOAD, A_AUX, A_L_PV, A_L_COND, A_L_DIODE, A_L_SW, A_L_OUTW, A_MAXVPV,
 A_MAXVOUT, A_MAXVBAT, A_SLOWQ, A_SLOWE, A_SLOWH, A_STEPS) = range(18)
NA = 18


@njit(cache=True)
def load_cs(kind, value, fade, v):
    """A DC load (loads.py): (current drawn at v, di/dv)."""
    if kind == 1.0:
        g = 1.0 / value
        return v * g, g
    if kind == 2.0:
        x = v / fade
        if x > 20.0:
            return value, 0.0
        if x < -20.0:
            return -value, 0.0
        t = math.tanh(x)
        return value * t, value * (1.0 - t * t) / fade
    if kind == 3.0:
        v0sq = fade * fade
        v2 = v * v
        d = math.sqrt(v2 * v2 + v0sq * v0sq)
        return value * v / d, value * (v0sq * v0sq - v2 * v2) / (d * d * d)
    return 0.0, 0.0


@njit(cache=True)
def load_at(U, at, v):
    """The load described at U[at:at + 6] at v, scaled by its profile fraction; nothing while locked out."""
    if U[at + 4] > 0.0 and U[at + 5] == 0.0:
        return 0.0, 0.0
    il, dil = load_cs(U[at], U[at + 1], U[at + 2], v)
    f = U[at + 3]
    return il * f, dil * f


@njit(cache=True)
def uvlo_update(S, U, at, v):
    """A DC-DC converter's under-voltage lockout: off below its voltage, on again above UVLO_ON times it (decided
    after each step, like a comparator; the step after a change starts short and with a fresh g)."""
    u = U[at + 4]
    if u <= 0.0:
        return
    on = U[at + 5] != 0.0
    if (on and v < u) or (not on and v > UVLO_ON * u):
        U[at + 5] = 0.0 if on else 1.0
        U[U_SRCVER] += 1.0
        S[S_HNEXT] = 1e-6


@njit(cache=True)
def table_cs(tv, tc, ends, v):
    """The PV table at terminal voltage v: (i, di/dv), di/dv <= 0 (pv.PVSource.current_and_slope)."""
    lo = 0
    hi = tv.shape[0]
    while lo < hi:
        mid = (lo + hi) >> 1
        if v < tv[mid]:
            hi = mid
        else:
            lo = mid + 1
    j = lo - 1
    if j < 0:
        return ends[1] + ends[2] * (v - ends[0]), ends[2]
    if j >= tc.shape[0]:
        return ends[4] + ends[5] * (v - ends[3]), ends[5]
    c1 = tc[j, 1]
    c2 = tc[j, 2]
    c3 = tc[j, 3]
    t = v - tv[j]
    s = c1 + t * (2.0 * c2 + 3.0 * t * c3)
    return tc[j, 0] + t * (c1 + t * (c2 + t * c3)), (s if s < 0.0 else 0.0)


@njit(cache=True)
def port_cs(U, tv, tc, ends, v):
    """What the PV port delivers into the stage at terminal voltage v: the array, less a short, plus a DC source,
    less a load on the terminals."""
    i = 0.0
    di = 0.0
    if U[U_PVCONN] != 0.0:
        i, di = table_cs(tv, tc, ends, v)
    if U[U_SHG] != 0.0:
        i -= v * U[U_SHG]
        di -= U[U_SHG]
    if U[U_DCG] != 0.0:  # set only while the array is connected
        i += (U[U_DCV] - v) * U[U_DCG]
        di -= U[U_DCG]
    if U[U_PL] != 0.0:
        il, dil = load_at(U, U_PL, v)
        i -= il
        di -= dil
    return i, di


@njit(cache=True)
def out_load(U, v):
    """What the output node's load draws besides the battery, less the other channels' injection."""
    il, dil = load_at(U, U_LD, v)
    return il - U[U_INJ], dil


@njit(cache=True)
def smooth_sign_frac(i, eps):
    """0..1, the fraction of the dead time the low-side diode conducts (1 for i >> eps, 0 for i << -eps)."""
    r = math.sqrt(i * i + eps * eps)
    return 0.5 + 0.5 * i / r, 0.5 * eps * eps / (r * r * r)


@njit(cache=True)
def fractions(S, U, P):
    """(f_hs, f_ls, switching) from the gate inputs and the bootstrap state; sets the high side's resistance."""
    f_sw = U[U_FSW]
    if U[U_ENABLED] == 0.0 or f_sw <= 0.0:
        return 0.0, 0.0, 0.0
    td = P[P_TDEAD] * f_sw
    tmin = P[P_TINMIN] * f_sw
    d = U[U_DUTY]
    if 1.0 - d < tmin:  # the low pulse is swallowed: the high side stays on for whole periods
        f_hs, f_ls = 1.0, 0.0
    elif d < tmin:
        f_hs, f_ls = 0.0, 1.0
    else:
        f_hs = d - td if d > td else 0.0
        f_ls = 1.0 - d - td if 1.0 - d > td else 0.0
    if S[S_VBOOT] < P[P_VHSTH]:
        f_hs = 0.0
    S[S_RHS] = P[P_RHS] if S[S_VBOOT] >= P[P_VHSMIN] else 30.0 * P[P_RHS]
    return f_hs, f_ls, 1.0


@njit(cache=True)
def pv_branch(S, U, P, tv, tc, ends, vc):
    """Current from the PV side into the input capacitor node, its derivative, and the terminal voltage: through
    the backflow MOSFET (on: resistive, both ways) or its body diode (off: forward only)."""
    if U[U_PVSRC] == 0.0:
        return 0.0, 0.0, 0.0
    on = U[U_BFON] != 0.0
    if on:
        r = P[P_RBF] + P[P_RINW]
        voff = 0.0
    else:
        r = P[P_RBODY] + P[P_RINW]
        voff = P[P_VF]
        i0, _ = port_cs(U, tv, tc, ends, vc + voff)
        if i0 <= 0.0:
            return 0.0, 0.0, vc + voff  # blocked; PV terminal floats near its own open-circuit point
    i = S[S_IPV]
    dip = 0.0
    done = False
    for _ in range(30):
        ip, dip = port_cs(U, tv, tc, ends, vc + voff + i * r)
        di = (i - ip) / (1.0 - dip * r)
        i -= di
        if abs(di) < 1e-7:  # the slope from this evaluation (1e-7 A away: r * 1e-7 V) serves
            done = True
            break
    if not done:
        ip, dip = port_cs(U, tv, tc, ends, vc + voff + i * r)
    if not on and i < 0.0:
        return 0.0, 0.0, vc + voff
    return i, dip / (1.0 - dip * r), vc + voff + i * r


@njit(cache=True)
def out_current(S, U, P, vo):
    """Current drawn from the output node (battery, load, aux supply) and its derivative."""
    i = 0.0
    di = 0.0
    if U[U_BATCONN] != 0.0:
        r = U[U_BATR] + P[P_ROUTW]
        i += (vo - U[U_BATE]) / r
        di += 1.0 / r
    il, dil = out_load(U, vo)
    i += il
    di += dil
    # aux supply: constant power above ~5 V, fading out below (its own regulator drops out)
    p_aux = P[P_PAUX] + (P[P_PGATE] if S[S_SWITCHING] != 0.0 else 0.0)
    if vo > 5.0:
        i += p_aux / vo
        di += -p_aux / (vo * vo)
    elif vo > 0:
        i += p_aux / 5.0 * (vo / 5.0)
        di += p_aux / 25.0
    return i, di


@njit(cache=True)
def static(S, U, P, tv, tc, ends, vc, il, vo, f_hs, f_ls, switching, blocked):
    """g(x) of the model M dx/dt = -g(x), M = diag(C_in, L, C_out), and its tridiagonal Jacobian, as
    (g1, g2, g3, b1, c1, a2, b2, c2, a3, b3). Blocked (driver off, no diode forward-biased): the inductor row is
    the constraint il = 0."""
    ipv, dipv, _ = pv_branch(S, U, P, tv, tc, ends, vc)
    iout, diout = out_current(S, U, P, vo)
    if blocked:
        return -ipv, il, iout, -dipv, 0.0, 0.0, 1.0, 0.0, 0.0, diout
    f_off = 1.0 - f_hs - f_ls
    eps = P[P_IEPS]
    if switching != 0.0:
        s, ds = smooth_sign_frac(il, eps)
    else:
        s, ds = (1.0, 0.0) if il > 0 else (0.0, 0.0)
    vf = P[P_VF]
    r_body = P[P_RBODY]
    r_hs = S[S_RHS]
    r_ls = P[P_RLS]
    # switch node average voltage
    vd = s * (-vf - il * r_body) + (1.0 - s) * (vc + vf - il * r_body)
    vsw = f_hs * (vc - il * r_hs) - f_ls * il * r_ls + f_off * vd
    dvsw_dvc = f_hs + f_off * (1.0 - s)
    dvd_dil = ds * (-vf) - ds * (vc + vf) - r_body
    dvsw_dil = -f_hs * r_hs - f_ls * r_ls + f_off * dvd_dil
    # current the bridge draws from the input node: high side, high-side diode, switching overlap
    ksw = 2.0 * P[P_TSW] * U[U_FSW] if (switching != 0.0 and f_hs > 0.0) else 0.0
    ia = math.sqrt(il * il + eps * eps) - eps
    dia = il / (ia + eps)
    isw = f_hs * il + f_off * (1.0 - s) * il + 0.5 * ksw * ia
    disw_dil = f_hs + f_off * ((1.0 - s) - ds * il) + 0.5 * ksw * dia
    r_l = P[P_RL]
    return (isw - ipv, il * r_l + vo - vsw, iout - il,
            -dipv, disw_dil, -dvsw_dvc, r_l - dvsw_dil, 1.0, -1.0, diout)


@njit(cache=True)
def newton(S, U, P, tv, tc, ends, x0c, x0l, x0o, h, f_hs, f_ls, switching, blocked, g0, fresh):
    """Backward Euler: solve M (x - x0) / h + g(x) = 0. The first iteration uses g0 (g and its Jacobian at x0,
    possibly carried over from the previous step: then it may not end the iteration, ``fresh`` False); returns
    (xc, xl, xo, converged, the last g evaluated: at a point within the tolerance of x)."""
    m1 = P[P_CIN] / h
    m2 = 0.0 if blocked else P[P_L] / h
    m3 = P[P_COUT] / h
    xc, xl, xo = x0c, x0l, x0o
    gj = g0
    for it in range(12):
        if it:
            gj = static(S, U, P, tv, tc, ends, xc, xl, xo, f_hs, f_ls, switching, blocked)
        g1, g2, g3, b1, c1, a2, b2, c2, a3, b3 = gj
        # the tridiagonal 3x3 system: eliminate rows 1 and 3 into row 2
        b1 += m1
        b2 += m2
        b3 += m3
        f1 = m1 * (xc - x0c) + g1
        f2 = m2 * (xl - x0l) + g2
        f3 = m3 * (xo - x0o) + g3
        q1 = a2 / b1
        q3 = c2 / b3
        dx2 = (f2 - q1 * f1 - q3 * f3) / (b2 - q1 * c1 - q3 * a3)
        dx1 = (f1 - c1 * dx2) / b1
        dx3 = (f3 - a3 * dx2) / b3
        xc -= dx1
        xl -= dx2
        xo -= dx3
        if (it or fresh) and abs(dx1) < 1e-6 * (1.0 + abs(xc)) and abs(dx2) < 1e-6 \
                and abs(dx3) < 1e-6 * (1.0 + abs(xo)):
            return xc, xl, xo, True, gj
    return xc, xl, xo, False, gj


@njit(cache=True)
def step(S, U, P, tv, tc, ends, h_max):
    """Advance by at most h_max seconds with an adaptive step; returns the step taken (s)."""
    f_hs, f_ls, sw = fractions(S, U, P)
    S[S_FHS] = f_hs
    S[S_FLS] = f_ls
    S[S_FSW] = sw
    S[S_SWITCHING] = sw
    il_prev = S[S_IL]
    if sw == 0.0 and abs(il_prev) < 2e-2:
        il_prev = 0.0  # the last milliamps through a body diode: the diode recovers, the current stops
        S[S_IL] = 0.0
    x0c = S[S_VC]
    x0o = S[S_VO]
    vf = P[P_VF]
    blocked = sw == 0.0 and il_prev == 0.0 and -vf <= x0o <= x0c + vf
    bl = 1.0 if blocked else 0.0
    key_same = (S[S_GOK] != 0.0 and S[S_K] == f_hs and S[S_K + 1] == f_ls and S[S_K + 2] == sw
                and S[S_K + 3] == bl and S[S_K + 4] == U[U_BFON] and S[S_K + 5] == U[U_BATCONN]
                and S[S_K + 6] == U[U_SRCVER] and S[S_K + 7] == S[S_RHS] and S[S_K + 8] == U[U_FSW]
                and S[S_GX] == x0c and S[S_GX + 1] == il_prev and S[S_GX + 2] == x0o)
    fresh = False
    if key_same:
        g0 = (S[S_G], S[S_G + 1], S[S_G + 2], S[S_G + 3], S[S_G + 4], S[S_G + 5], S[S_G + 6], S[S_G + 7],
              S[S_G + 8], S[S_G + 9])
    else:
        g0 = static(S, U, P, tv, tc, ends, x0c, il_prev, x0o, f_hs, f_ls, sw, blocked)
        fresh = True
    c_in = P[P_CIN]
    l_h = P[P_L]
    c_out = P[P_COUT]
    d0c = -g0[0] / c_in
    d0l = 0.0 if blocked else -g0[1] / l_h
    d0o = -g0[2] / c_out
    h = min(h_max, S[S_HNEXT])
    v_trip = U[U_OVPTRIP]
    if v_trip != 0.0 and U[U_OVPTRIPPED] == 0.0 and d0o > 0.0:
        # the output rising towards the comparator's threshold: no step past the crossing (the chip trips there);
        # a battery resting just below it costs nothing
        h_cross = (v_trip - x0o) / d0o
        if h_cross < h:
            h = h_cross if h_cross > 2e-6 else 2e-6
    tol = S[S_TOL]
    err = 0.0
    while True:
        xc, xl, xo, ok, g1 = newton(S, U, P, tv, tc, ends, x0c, il_prev, x0o, h, f_hs, f_ls, sw, blocked, g0,
                                    fresh)
        if ok:
            # local error of backward Euler ~ h/2 * (x'(t1) - x'(t0))
            e_v1 = 0.5 * h * abs(-g1[0] / c_in - d0c) / (tol * (0.01 + 2e-4 * abs(xc)))
            e_i = 0.5 * h * abs((0.0 if blocked else -g1[1] / l_h) - d0l) / (tol * (0.01 + 2e-3 * abs(xl)))
            e_v3 = 0.5 * h * abs(-g1[2] / c_out - d0o) / (tol * (0.005 + 2e-4 * abs(xo)))
            err = max(e_v1, e_i, e_v3)
            if err <= 1.0 or h <= 1e-8:
                break
            h *= max(0.1, 0.8 / math.sqrt(err))
        else:
            h *= 0.25
            if h < 1e-9:
                S[S_GOK] = -1.0  # the caller raises
                return h
    # grow the next step (bounded: while switching, the PWM-period quantities -- bootstrap, ripple -- and the
    # control loop's milliseconds; with the bridge off only the slow sources move)
    h_cap = 5e-3 if sw != 0.0 else 1e-2
    S[S_HNEXT] = min(h_cap, h * (min(4.0, 0.9 / math.sqrt(err)) if err > 1e-12 else 4.0))
    # the inductor current cannot reverse through a blocking diode when the bridge is off
    if sw == 0.0 and not blocked and (xl > 0.0) != (il_prev > 0.0) and il_prev != 0.0:
        xl = 0.0
    S[S_VC] = xc
    S[S_IL] = xl
    S[S_VO] = xo
    # carry g over to the next step (evaluated within Newton's tolerance of the new state)
    for k in range(10):
        S[S_G + k] = g1[k]
    S[S_GX] = xc
    S[S_GX + 1] = xl
    S[S_GX + 2] = xo
    S[S_K] = f_hs
    S[S_K + 1] = f_ls
    S[S_K + 2] = sw
    S[S_K + 3] = bl
    S[S_K + 4] = U[U_BFON]
    S[S_K + 5] = U[U_BATCONN]
    S[S_K + 6] = U[U_SRCVER]
    S[S_K + 7] = S[S_RHS]
    S[S_K + 8] = U[U_FSW]
    S[S_GOK] = 1.0
    update_outputs(S, U, P, tv, tc, ends, f_hs, sw)
    update_bootstrap(S, U, P, f_hs, f_ls, sw, h)
    if v_trip != 0.0:
        ovp(S, U, xo)
    if U[U_IDEAL] != 0.0:
        ideal_diode(S, U)
    uvlo_update(S, U, U_PL, S[S_VPV])
    uvlo_update(S, U, U_LD, xo)
    return h


@njit(cache=True)
def refresh_backflow(U):
    """The backflow MOSFET as it conducts: the firmware's command unless the ideal-diode controller blocks it,
    and always when it failed short."""
    on = (U[U_BFCMD] != 0.0 and U[U_IDBLK] == 0.0) or U[U_BFSHORT] != 0.0
    U[U_BFON] = 1.0 if on else 0.0


@njit(cache=True)
def refresh_enable(U):
    """The IR2104's SD line as the bridge sees it: the firmware's command AND the OVP comparator."""
    U[U_ENABLED] = 1.0 if (U[U_ENCMD] != 0.0 and U[U_OVPTRIPPED] == 0.0) else 0.0


@njit(cache=True)
def ideal_diode(S, U):
    if U[U_BFON] != 0.0 and U[U_IDBLK] == 0.0 and S[S_IPV] < -0.5:  # IDEAL_DIODE_TRIP_A
        U[U_IDBLK] = 1.0
        refresh_backflow(U)
        S[S_HNEXT] = 1e-7
    elif U[U_IDBLK] != 0.0 and S[S_IPV] > 0.5:  # forward again (through the body diode)
        U[U_IDBLK] = 0.0
        refresh_backflow(U)
        S[S_HNEXT] = 1e-6


@njit(cache=True)
def ovp(S, U, vo):
    if vo > U[U_OVPTRIP]:
        if U[U_OVPTRIPPED] == 0.0:
            U[U_OVPTRIPPED] = 1.0
            U[U_OVPTRIPS] += 1.0
            refresh_enable(U)
            S[S_HNEXT] = 1e-6
    elif U[U_OVPTRIPPED] != 0.0 and vo < U[U_OVPTRIP] - U[U_OVPHYST]:
        U[U_OVPTRIPPED] = 0.0
        refresh_enable(U)
        S[S_HNEXT] = 1e-6


@njit(cache=True)
def update_outputs(S, U, P, tv, tc, ends, f_hs, sw):
    ipv, _, vpv = pv_branch(S, U, P, tv, tc, ends, S[S_VC])
    S[S_IPV] = ipv
    S[S_VPV] = vpv if U[U_PVSRC] != 0.0 else 0.0
    il = S[S_IL]
    vo = S[S_VO]
    i_bat = (vo - U[U_BATE]) / (U[U_BATR] + P[P_ROUTW]) if U[U_BATCONN] != 0.0 else 0.0
    i_load, _ = out_load(U, vo)
    S[S_IBAT] = i_bat
    S[S_ILOAD] = i_load
    S[S_IOUT] = i_bat + i_load
    ripple = 0.0
    if sw != 0.0 and f_hs + S[S_FLS] > 0:
        ripple = max(0.0, (S[S_VC] - vo)) * max(f_hs, 0.0) / (P[P_L] * U[U_FSW])
    pk = abs(il) + 0.5 * ripple
    if pk > S[S_ILPEAK]:
        S[S_ILPEAK] = pk


@njit(cache=True)
def loss_terms(S, U, P):
    """Instantaneous losses (W) at the present state under the last step's fractions, in converter.LOSS_KEYS
    order."""
    f_hs = S[S_FHS]
    f_ls = S[S_FLS]
    sw = S[S_FSW]
    il = S[S_IL]
    eps = P[P_IEPS]
    vf = P[P_VF]
    r_body = P[P_RBODY]
    f_off = 1.0 - f_hs - f_ls
    if sw != 0.0:
        s, _ = smooth_sign_frac(il, eps)
    else:
        s = 1.0 if il > 0 else 0.0
    on = U[U_BFON] != 0.0
    i_pv = S[S_IPV]
    r_pv = P[P_RBF] + P[P_RINW] if on else r_body + P[P_RINW]
    pv_path = i_pv * i_pv * r_pv + (0.0 if on else vf * max(0.0, i_pv))
    conduction = il * il * (f_hs * S[S_RHS] + f_ls * P[P_RLS] + P[P_RL])
    ksw = 2.0 * P[P_TSW] * U[U_FSW] if (sw != 0.0 and f_hs > 0.0) else 0.0
    ia = math.sqrt(il * il + eps * eps) - eps
    switching_w = 0.5 * ksw * ia * S[S_VC]
    # the smoothed commutation slightly blends the two diodes; their exact contribution:
    diode = f_off * (s * (vf * il + r_body * il * il) + (1.0 - s) * (-vf * il + r_body * il * il))
    i_bat = S[S_IBAT]
    conn = U[U_BATCONN] != 0.0
    out_wiring = i_bat * i_bat * P[P_ROUTW] if conn else 0.0
    bat_internal = i_bat * i_bat * U[U_BATR] if conn else 0.0
    return pv_path, conduction, diode, switching_w, out_wiring, bat_internal


@njit(cache=True)
def update_bootstrap(S, U, P, f_hs, f_ls, sw, h):
    """Per PWM period: the high-side pulse sees V_k (checked), uses its gate charge, then the switch node is low
    and the capacitor recharges towards Vcc - Vf: V_{k+1} = a (V_k - dv) + (1 - a) v_chg. Whole periods only (a
    fractional step carries its phase over), so start-up transients are not counted twice."""
    f_sw = U[U_FSW]
    c_boot = P[P_CBOOT]
    i_qbs = P[P_IQBS]
    f_hs_cmd = U[U_ENABLED] != 0.0 and U[U_DUTY] > P[P_TDEAD] * f_sw
    if sw == 0.0:
        S[S_VBOOT] = max(0.0, S[S_VBOOT] - i_qbs * h / c_boot)
        S[S_CYC] = 0.0
        S[S_UNDER] = 0.0
        return
    S[S_CYC] += h * f_sw
    m = int(S[S_CYC])
    if m <= 0:
        return
    S[S_CYC] -= m
    period = 1.0 / f_sw
    t_low = f_ls * period
    if S[S_IL] > 0.0:
        t_low = period * (1.0 - f_hs)
    tau = P[P_RBOOT] * c_boot
    a = math.exp(-t_low / tau) if t_low > 0 else 1.0
    v_chg = P[P_VCC] - P[P_VFBOOT]
    dv = (P[P_QG] if f_hs > 0.0 else 0.0) / c_boot + i_qbs * period / c_boot
    v = S[S_VBOOT]
    v_star = v_chg - a * dv / (1.0 - a) if a < 1.0 else -1e9
    lo = P[P_VHSTH]
    hi = P[P_VHSMIN]
    under_prev = S[S_UNDER] != 0.0
    k = 0
    # walk period by period while far from the fixed point (start-up, droop); then jump in closed form
    while k < m and (abs(v - v_star) > 1e-3 or k == 0):
        under = f_hs_cmd and lo <= v < hi
        if under and not under_prev:
            S[S_BVIOL] += 1.0
        under_prev = under
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
        if under and not under_prev:
            S[S_BVIOL] += 1.0
        under_prev = under
    S[S_VBOOT] = v
    S[S_UNDER] = 1.0 if under_prev else 0.0
    S[S_BOOTOK] = 0.0 if under_prev else 1.0


@njit(cache=True)
def aux_power_w(S, P):
    """The aux supply's draw (MCU, ADC, gate driver) from the output node."""
    p_aux = P[P_PAUX] + (P[P_PGATE] if S[S_SWITCHING] != 0.0 else 0.0)
    vo = S[S_VO]
    if vo > 5.0:
        return p_aux
    if vo > 0.0:
        return p_aux * (vo / 5.0) ** 2
    return 0.0


@njit(cache=True)
def book_losses(S, U, P, A, h):
    """Add the stage's losses over h to the books; returns the part that heats the heatsink (W)."""
    pv_path, conduction, diode, switching, out_wiring, _ = loss_terms(S, U, P)
    A[A_L_PV] += pv_path * h
    A[A_L_COND] += conduction * h
    A[A_L_DIODE] += diode * h
    A[A_L_SW] += switching * h
    A[A_L_OUTW] += out_wiring * h
    return conduction + diode + switching + pv_path


@njit(cache=True)
def book_extremes(S, A):
    """The highest PV-side voltage (terminals or input capacitor) and output voltage seen so far."""
    v = S[S_VPV] if S[S_VPV] > S[S_VC] else S[S_VC]
    if v > A[A_MAXVPV]:
        A[A_MAXVPV] = v
    if S[S_VO] > A[A_MAXVOUT]:
        A[A_MAXVOUT] = S[S_VO]


@njit(cache=True)
def account(S, U, P, A, h, p_mpp_w):
    """Channel 0's books over a step of h s (energies, losses, extremes); returns its heat into the heatsink (W)."""
    v_pv = S[S_VPV]
    vo = S[S_VO]
    i_bat = S[S_IBAT]
    conn = U[U_BATCONN] != 0.0
    A[A_AVAIL] += p_mpp_w * h
    A[A_PV] += v_pv * S[S_IPV] * h
    v_bat_term = vo - i_bat * P[P_ROUTW]
    p_bat = i_bat * v_bat_term if conn else 0.0
    A[A_BAT_IN] += p_bat * h
    if p_bat > 0:
        A[A_BAT_CHG] += p_bat * h
    A[A_LOAD] += S[S_ILOAD] * vo * h
    A[A_AUX] += aux_power_w(S, P) * h
    heat_w = book_losses(S, U, P, A, h)
    book_extremes(S, A)
    if conn and v_bat_term > A[A_MAXVBAT]:
        A[A_MAXVBAT] = v_bat_term
    return heat_w


@njit(cache=True)
def advance(S, U, P, tv, tc, ends, A, t_ns, t_end_ns, t_cond, cond_dt_s, nc, p_mpp_w, batch_s, max_steps):
    """Single-channel plant steps from t_ns towards t_end_ns with the books; returns the time reached (ns). Stops
    early, for the caller to act, when the conditions are due again (t_cond + cond_dt_s), at the profiles' next
    change nc (s), when the battery and heatsink have a batch due (batch_s) and after max_steps; -1 when the
    integration failed."""
    n = 0
    while t_ns < t_end_ns:
        t_s = t_ns * 1e-9
        h_max = (t_end_ns - t_ns) * 1e-9
        if nc - t_s > 1e-9 and nc - t_s < h_max:
            h_max = nc - t_s
        if cond_dt_s < h_max:
            h_max = cond_dt_s
        h = step(S, U, P, tv, tc, ends, h_max)
        if S[S_GOK] < 0.0:
            return -1
        dt_ns = int(round(h * 1e9))
        if dt_ns <= 0:
            dt_ns = 1
        if t_ns + dt_ns > t_end_ns:
            dt_ns = t_end_ns - t_ns
        h = dt_ns * 1e-9
        t_ns += dt_ns
        A[A_STEPS] += 1.0
        heat_w = account(S, U, P, A, h, p_mpp_w)
        A[A_SLOWQ] += S[S_IBAT] * h
        A[A_SLOWE] += heat_w * h
        A[A_SLOWH] += h
        n += 1
        t_s = t_ns * 1e-9
        if (n >= max_steps or A[A_SLOWH] >= batch_s or not t_s - t_cond < cond_dt_s
                or nc - t_s <= 1e-9):
            break
    return t_ns
