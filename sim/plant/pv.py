"""PV array plant model for the simulated FUGU MPPT board (host-only CPython).

Physics: every module is split into ``n_substrings`` equal sub-strings (cells in series), each
with an anti-parallel bypass diode.  A *pair* (sub-string + its bypass diode) is written in an
explicit parametric form (v(t), i(t)), so no implicit equation has to be solved to sample it:

* single-diode sub-strings (CEC / EN 50530): t = internal diode voltage vd,
  i_s = IL - I0*(exp(vd/a) - 1) - vd/Rsh,  v = vd - i_s*Rs;
* tabulated sub-strings (CSV): t = terminal voltage, i_s from a monotone PCHIP of the data;
* bypass diode (Schottky, see ``BYPASS_*``): i_bd = Is*(exp(-v/nVt) - 1), pair current i = i_s + i_bd.

Series pairs share one current, v_string(i) = sum of pair voltages; n_parallel identical strings
multiply the current.  Per operating condition a table (V_k, I_k, dI/dV_k) of *exact* model points
is built with numpy, then evaluated on the hot path by a monotone (Fritsch-Carlson limited) cubic
Hermite interpolant in pure-Python floats.  ``mpp``/``voc``/``isc``/``current_exact`` use the exact
model (scalar root finding), not the table.

Conditions are quantised (G to 0.1 W/m2, T to 0.01 C, shade factors to 1e-3) and the *quantised*
condition is the model's truth; built tables live in an LRU cache so slowly varying or repeating
conditions do not rebuild.
"""
from __future__ import annotations

import difflib
import functools
import math
import time
from bisect import bisect_right
from collections import OrderedDict
from typing import Callable

import numpy as np

from sim.plant.stage_kernel import table_cs

__all__ = ["PVSource", "EN50530_TECHNOLOGIES", "BYPASS_VF_V", "BYPASS_IF_A", "BYPASS_NVT_V"]

# --- Bypass diode: generic 10-15 A power Schottky (e.g. SB1045/15SQ045 class) -----------------
# Exponential law i = Is*(exp(v_f/nVt) - 1) through the datasheet-like point 0.45 V @ 10 A with
# n*Vt = 35 mV: gives ~0.37 V @ 1 A and Is ~ 26 uA (the reverse leakage the diode steals from
# an active sub-string).  No series resistance: beyond the table the slope is frozen anyway.
BYPASS_VF_V = 0.45
BYPASS_IF_A = 10.0
BYPASS_NVT_V = 0.035

# --- EN 50530 "simple" PV generator model, technology parameters -----------------------------
# EN 50530:2010 (+A1:2013), Annex B ("PV generator simulation"), Table B.1; the same model and
# numbers are used by IEC 62891 and by PV simulators that offer an "EN50530" mode (e.g. the
# Typhoon HIL PV generator API reproduces the thin-film row: FF_U 0.72, FF_I 0.8, C_G 1.252e-3,
# C_V 8.419e-2, C_R 1.476e-4, alpha 2e-4, beta -2e-3).  C_G in W/m2, C_R in m2/W, alpha/beta in 1/K.
EN50530_TECHNOLOGIES = {
    "cSi": dict(ff_u=0.80, ff_i=0.90, c_g=2.514e-3, c_v=8.593e-2, c_r=1.088e-4,
                alpha=4e-4, beta=-4e-3),
    "thin_film": dict(ff_u=0.72, ff_i=0.80, c_g=1.252e-3, c_v=8.419e-2, c_r=1.476e-4,
                      alpha=2e-4, beta=-2e-3),
}

G_STC_W_M2 = 1000.0
T_STC_C = 25.0
_CACHE_SIZE = 64
_G_MIN_SCALED_W_M2 = 0.01   # models whose current/voltage scale with G need G > 0

# Grid spacing of the per-condition table, in units of the local exponential scale.  Hermite
# error of an exponential with exact slopes ~ I*(h/a)^4/384: h = 0.2*a gives ~4e-6 relative.
_H_DIODE = 0.2      # * a (sub-string n*Ns*Vth) in the diode region
_H_BYPASS = 0.2     # * n*Vt of the bypass diode in the bypass region
_I_TOP_FRAC = 0.005  # table starts at max(IL) + 0.5 % (all bypass diodes just conducting)
_I_BOT_FRAC = 0.10   # table ends at -10 % of max(IL) (forward-biased, beyond Voc)


def _exp(x: float) -> float:
    return math.exp(x if x < 700.0 else 700.0)


def _np_exp(x):
    return np.exp(np.minimum(x, 700.0))


# ----------------------------------------------------------------------------------------------
# Pairs: one sub-string with its bypass diode, in explicit parametric form
# ----------------------------------------------------------------------------------------------
class _Pair:
    """Base: subclasses give eval_py/eval_np(t) -> (v, i, dv/dt, di/dt) with i decreasing in t."""

    i_ref = 0.0     # photocurrent-like scale (A)
    t_scale = 1.0   # typical t step for bracketing (V)

    def t_guess(self, i: float) -> float:
        raise NotImplementedError

    def t_from_i(self, i_target: float, lo: float | None = None, hi: float | None = None) -> float:
        """Parameter t with pair current == i_target: bracketed Newton (bisection fallback)."""
        ev = self.eval_py
        if lo is None or hi is None:
            t0 = self.t_guess(i_target)
            step = self.t_scale
            lo = t0
            while ev(lo)[1] < i_target:
                lo -= step
                step *= 2.0
            step = self.t_scale
            hi = t0
            while ev(hi)[1] > i_target:
                hi += step
                step *= 2.0
        tol_i = 1e-13 * (abs(i_target) + self.i_ref + 1e-9)
        t = 0.5 * (lo + hi)
        for _ in range(200):
            _, i, _, di = ev(t)
            f = i - i_target
            if f > 0.0:
                lo = t
            else:
                hi = t
            if abs(f) <= tol_i or hi - lo <= 1e-15 * (1.0 + abs(t)):
                return t
            tn = t - f / di if di < 0.0 else lo - 1.0
            if not (lo <= tn <= hi):
                tn = 0.5 * (lo + hi)
            t = tn
        return t


class _DiodePair(_Pair):
    """Single-diode sub-string (IL, I0, Rs, 1/Rsh, a=n*Ns*Vth) + bypass diode; t = diode voltage."""

    def __init__(self, il, i0, rs, gsh, a, isb, nvtb):
        self.il, self.i0, self.rs, self.gsh, self.a = float(il), float(i0), float(rs), float(gsh), float(a)
        self.isb, self.nvtb = isb, nvtb
        self.i_ref = max(self.il, 0.0)
        self.t_scale = max(self.a, nvtb)

    def _eval(self, vd, exp):
        """(v, i, dv/dvd, di/dvd) of the sub-string plus its bypass diode at internal diode voltage vd; ``exp`` is
        math.exp for the scalar hot path or numpy.exp for vectorised table builds."""
        e = exp(vd / self.a)
        i_s = self.il - self.i0 * (e - 1.0) - vd * self.gsh
        di_s = -self.i0 * e / self.a - self.gsh
        v = vd - i_s * self.rs
        dv = 1.0 - self.rs * di_s
        eb = exp(-v / self.nvtb)
        return v, i_s + self.isb * (eb - 1.0), dv, di_s - self.isb * eb / self.nvtb * dv

    def eval_py(self, vd):
        return self._eval(vd, _exp)

    def eval_np(self, vd):
        return self._eval(vd, _np_exp)

    def t_guess(self, i):
        if i < self.il and self.i0 > 0.0:
            return self.a * math.log1p((self.il - i) / self.i0)
        return -self.nvtb * math.log1p(max(i - self.il, 0.0) / self.isb)

    def grid(self, t_lo, t_hi):
        vd0 = min(max(self.il * self.rs, t_lo), t_hi)   # ~ where the pair voltage crosses 0
        n_b = int(math.ceil((vd0 - t_lo) / (_H_BYPASS * self.nvtb))) + 1
        n_d = int(math.ceil((t_hi - vd0) / (_H_DIODE * self.a))) + 1
        return np.concatenate((np.linspace(t_lo, vd0, max(n_b, 2))[:-1],
                               np.linspace(vd0, t_hi, max(n_d, 2))))


class _CurvePair(_Pair):
    """Sub-string from a tabulated module curve i_mod(v_mod) (monotone cubic) + bypass diode.

    t = sub-string terminal voltage; i_s(t) = k_i*i_mod(n_sub*t/k_v) - g_min*t.  g_min (1e-6 of
    Isc/Voc) keeps the curve strictly decreasing even if the data has flat runs.
    """

    def __init__(self, curve, k_i, k_v, n_sub, isb, nvtb):
        self.c = curve
        self.k_i, self.k_v, self.n_sub = k_i, k_v, n_sub
        self.isb, self.nvtb = isb, nvtb
        self.sx = n_sub / k_v                       # d v_mod / d t
        self.g_min = 1e-6 * curve.i_max / curve.v_span * self.sx * k_i
        self.i_ref = k_i * curve.i_max
        self.t_scale = max(curve.v_span / self.sx / 50.0, nvtb)

    def eval_py(self, t):
        im, dim = self.c.eval_py(t * self.sx)
        i_s = self.k_i * im - self.g_min * t
        di_s = self.k_i * dim * self.sx - self.g_min
        eb = _exp(-t / self.nvtb)
        return t, i_s + self.isb * (eb - 1.0), 1.0, di_s - self.isb * eb / self.nvtb

    def eval_np(self, t):
        im, dim = self.c.eval_np(t * self.sx)
        i_s = self.k_i * im - self.g_min * t
        di_s = self.k_i * dim * self.sx - self.g_min
        eb = _np_exp(-t / self.nvtb)
        return t, i_s + self.isb * (eb - 1.0), np.ones_like(t), di_s - self.isb * eb / self.nvtb

    def t_guess(self, i):
        return 0.0 if i >= self.i_ref else self.c.v[-1] / self.sx * 0.5

    def grid(self, t_lo, t_hi):
        nodes = np.asarray(self.c.v) / self.sx
        nodes = nodes[(nodes > t_lo) & (nodes < t_hi)]
        pts = [np.linspace(t_lo, min(0.0, t_hi), max(int(math.ceil(-t_lo / (_H_BYPASS * self.nvtb))) + 1, 2))]
        knots = np.concatenate(([max(t_lo, 0.0)], nodes, [t_hi]))
        for a, b in zip(knots[:-1], knots[1:]):
            if b > a:
                pts.append(np.linspace(a, b, 5)[1:])   # 4 sub-intervals per data interval
        return np.unique(np.concatenate(pts))


class _Curve:
    """Monotone piecewise-cubic (PCHIP) i(v) of one module at STC, linear beyond the data."""

    def __init__(self, v, i):
        from scipy.interpolate import PchipInterpolator
        v = np.asarray(v, float)
        i = np.asarray(i, float)
        d = PchipInterpolator(v, i).derivative()(v)
        d = np.minimum(d, 0.0)
        self.v, self.i, self.d = v.tolist(), i.tolist(), d.tolist()
        self._va, self._ia, self._da = v, i, d
        h = np.diff(v)
        delta = np.diff(i) / h
        self._c2 = (3 * delta - 2 * d[:-1] - d[1:]) / h
        self._c3 = (d[:-1] + d[1:] - 2 * delta) / h ** 2
        self.c2, self.c3 = self._c2.tolist(), self._c3.tolist()
        self.i_max = float(i[0])
        self.v_span = float(v[-1] - v[0])

    def eval_py(self, x):
        v = self.v
        j = bisect_right(v, x) - 1
        if j < 0:
            return self.i[0] + self.d[0] * (x - v[0]), self.d[0]
        if j >= len(v) - 1:
            return self.i[-1] + self.d[-1] * (x - v[-1]), self.d[-1]
        t = x - v[j]
        c1, c2, c3 = self.d[j], self.c2[j], self.c3[j]
        return self.i[j] + t * (c1 + t * (c2 + t * c3)), c1 + t * (2.0 * c2 + 3.0 * t * c3)

    def eval_np(self, x):
        v = self._va
        j = np.clip(np.searchsorted(v, x, side="right") - 1, 0, len(v) - 2)
        t = x - v[j]
        c1, c2, c3 = self._da[j], self._c2[j], self._c3[j]
        inside = (x >= v[0]) & (x <= v[-1])
        val = np.where(inside, self._ia[j] + t * (c1 + t * (c2 + t * c3)),
                       np.where(x < v[0], self._ia[0] + self._da[0] * (x - v[0]),
                                self._ia[-1] + self._da[-1] * (x - v[-1])))
        der = np.where(inside, c1 + t * (2 * c2 + 3 * t * c3),
                       np.where(x < v[0], self._da[0], self._da[-1]))
        return val, der


# ----------------------------------------------------------------------------------------------
# Per-condition state
# ----------------------------------------------------------------------------------------------
class _Condition:
    """Everything built for one quantised condition: pairs, exact-model helpers, hot-path table."""

    def __init__(self, key, g, t, shade, types, n_par, i_floor):
        self.key, self.g, self.t, self.shade = key, g, t, shade
        self.types = types            # [(pair, multiplicity)]
        self.n_par = n_par
        s = max(max(p.i_ref for p, _ in types), i_floor)
        self.i_scale = s
        self.i_top = max(p.i_ref for p, _ in types) + _I_TOP_FRAC * s
        self.i_bot = -_I_BOT_FRAC * s
        self._mpp = self._maxima = self._voc = self._isc = None
        self.table_np = None
        self._build()

    # -- table ---------------------------------------------------------------------------------
    def _build(self):
        grids = []
        for pair, _ in self.types:
            t_lo = pair.t_from_i(self.i_top)
            t_hi = pair.t_from_i(self.i_bot)
            tg = pair.grid(t_lo, t_hi)
            _, ig, _, _ = pair.eval_np(tg)
            grids.append((tg, ig))
        # per-type (t, -i) samples: brackets for the scalar exact solves
        self._brackets = [(tg.tolist(), (-ig).tolist()) for tg, ig in grids]

        if len(self.types) == 1:
            (pair, m), = self.types
            v, i, dv, di = pair.eval_np(grids[0][0])
            V, I, dVdI = m * v, i, m * dv / di
        else:
            I = np.unique(np.concatenate([ig for _, ig in grids]))[::-1]
            I = I[(I <= self.i_top) & (I >= self.i_bot)]
            V = np.zeros_like(I)
            dVdI = np.zeros_like(I)
            for (pair, m), (tg, ig) in zip(self.types, grids):
                v, _, dv, di = pair.eval_np(_solve_t_np(pair, tg, ig, I))
                V += m * v
                dVdI += m * dv / di
        order = np.argsort(V, kind="stable")
        V, I, dVdI = V[order], I[order], dVdI[order]
        keep = np.concatenate(([True], np.diff(V) > 1e-12 * (1.0 + np.abs(V[1:]))))
        V, I, dVdI = V[keep], I[keep] * self.n_par, dVdI[keep]
        D = np.minimum(self.n_par / dVdI, 0.0)
        self.node_v, self.node_i = V, I
        self.table = _hermite(V, I, D)

    # -- exact model ---------------------------------------------------------------------------
    def string_v(self, i_string: float) -> float:
        """Exact string voltage at string current i (sum over pairs)."""
        total = 0.0
        for (pair, m), (tl, negi) in zip(self.types, self._brackets):
            k = bisect_right(negi, -i_string)
            if 0 < k < len(tl):
                t = pair.t_from_i(i_string, tl[k - 1], tl[k])
            else:
                t = pair.t_from_i(i_string)
            total += m * pair.eval_py(t)[0]
        return total

    def current_exact(self, v: float) -> float:
        from scipy.optimize import brentq
        V, I = self.node_v, self.node_i
        n = self.n_par
        k = int(np.searchsorted(V, v))
        # neighbouring nodes bracket the root (one extra node each side against round-off)
        lo = I[min(k + 1, len(I) - 1)] / n
        hi = I[max(k - 2, 0)] / n
        f = lambda x: self.string_v(x) - v  # noqa: E731
        span = self.i_scale
        while f(lo) < 0.0:
            lo -= span
            span *= 2.0
        span = self.i_scale
        while f(hi) > 0.0:
            hi += span
            span *= 2.0
        if lo == hi:
            return lo * n
        return n * brentq(f, lo, hi, xtol=1e-14 * self.i_scale, rtol=1e-15)

    def _refine_max(self, j):
        from scipy.optimize import minimize_scalar
        I = self.node_i / self.n_par
        a, b = I[min(j + 1, len(I) - 1)], I[max(j - 1, 0)]
        res = minimize_scalar(lambda x: -x * self.string_v(x), bounds=(a, b), method="bounded",
                              options={"xatol": 1e-10 * self.i_scale})
        i = float(res.x)
        v = self.string_v(i)
        p_node = float(self.node_v[j] * self.node_i[j])
        if p_node > i * v * self.n_par:   # never worse than the exact node
            return float(self.node_v[j]), float(self.node_i[j]), p_node
        return v, i * self.n_par, v * i * self.n_par

    def maxima(self):
        if self._maxima is None:
            P = self.node_v * self.node_i
            idx = [j for j in range(1, len(P) - 1) if P[j] > 0 and P[j] >= P[j - 1] and P[j] >= P[j + 1]]
            res = [self._refine_max(j) for j in idx]
            res.sort()
            # merge duplicates from plateaus
            out = []
            for r in res:
                if out and abs(r[0] - out[-1][0]) < 1e-6 * (1 + abs(r[0])):
                    if r[2] > out[-1][2]:
                        out[-1] = r
                else:
                    out.append(r)
            self._maxima = out
        return self._maxima

    def mpp(self):
        if self._mpp is None:
            m = self.maxima()
            self._mpp = max(m, key=lambda r: r[2]) if m else (0.0, 0.0, 0.0)
        return self._mpp

    def voc(self):
        if self._voc is None:
            self._voc = self.string_v(0.0)
        return self._voc

    def isc(self):
        if self._isc is None:
            self._isc = self.current_exact(0.0)
        return self._isc


def _solve_t_np(pair, tg, ig, I):
    """Vectorised bracketed Newton: t with pair current == I (I inside the pair's grid range)."""
    neg = -ig
    k = np.clip(np.searchsorted(neg, -I, side="left"), 1, len(tg) - 1)
    lo, hi = tg[k - 1].copy(), tg[k].copy()
    i_lo, i_hi = ig[k - 1], ig[k]
    w = np.where(i_lo != i_hi, (i_lo - I) / np.where(i_lo != i_hi, i_lo - i_hi, 1.0), 0.5)
    t = lo + np.clip(w, 0.0, 1.0) * (hi - lo)
    tol = 1e-13 * (np.abs(I) + pair.i_ref + 1e-9)
    for _ in range(60):
        _, i, _, di = pair.eval_np(t)
        f = i - I
        pos = f > 0
        lo = np.where(pos, t, lo)
        hi = np.where(pos, hi, t)
        with np.errstate(divide="ignore", invalid="ignore"):
            tn = t - f / di
        bad = ~((tn >= lo) & (tn <= hi))
        tn = np.where(bad, 0.5 * (lo + hi), tn)
        if np.all((np.abs(f) <= tol) | (np.abs(tn - t) <= 1e-14 * (1.0 + np.abs(t)))):
            return tn
        t = tn
    return t


def _hermite(V, I, D):
    """Monotone cubic Hermite table: exact node slopes limited by Fritsch-Carlson (a^2+b^2<=9).

    Returns (V list, [(c0,c1,c2,c3)] per interval, ends); PVSource keeps them as arrays (table_np).
    """
    h = np.diff(V)
    delta = np.diff(I) / h
    with np.errstate(divide="ignore", invalid="ignore"):
        al = np.where(delta < 0, D[:-1] / delta, 0.0)
        be = np.where(delta < 0, D[1:] / delta, 0.0)
    r2 = al * al + be * be
    tau = np.where(r2 > 9.0, 3.0 / np.sqrt(np.maximum(r2, 9.0)), 1.0)
    tau = np.where(delta < 0, tau, 0.0)
    f = np.ones_like(D)
    f[:-1] = np.minimum(f[:-1], tau)
    f[1:] = np.minimum(f[1:], tau)
    D = D * f
    c2 = (3.0 * delta - 2.0 * D[:-1] - D[1:]) / h
    c3 = (D[:-1] + D[1:] - 2.0 * delta) / (h * h)
    coefs = list(zip(I[:-1].tolist(), D[:-1].tolist(), c2.tolist(), c3.tolist()))
    return V.tolist(), coefs, (float(V[0]), float(I[0]), float(D[0]), float(V[-1]), float(I[-1]), float(D[-1]))


def table_of(pv):
    """The (V, coefficients, ends) arrays of an array model's table for the compiled power stage: a PVSource's own,
    or, for a model without one (a closed-form source in a test), its current and slope at 400 points up to 1.3 Voc
    under a monotone cubic."""
    tab = getattr(pv, "table_np", None)
    if tab is not None:
        return tab
    V = np.linspace(0.0, max(1.0, 1.3 * pv.voc()), 401)
    I, D = (np.array(x) for x in zip(*(pv.current_and_slope(float(v)) for v in V)))
    tv, tc, ends = _hermite(V, I, np.minimum(D, 0.0))
    return np.array(tv), np.array(tc).reshape(-1, 4), np.array(ends)


@functools.lru_cache(maxsize=1)
def _cec_db():
    import pvlib
    return pvlib.pvsystem.retrieve_sam("CECMod")


# ----------------------------------------------------------------------------------------------
# Public class
# ----------------------------------------------------------------------------------------------
class PVSource:
    """n_series modules in series per string, n_parallel identical strings; each module is split into
    n_substrings equal sub-strings (cells in series), each with its own bypass diode.

    Build with ``from_cec``, ``from_en50530`` or ``from_iv_csv``; then ``set_conditions`` and call
    ``current(v)`` / ``current_and_slope(v)`` on the hot path.  Starts at STC (1000 W/m2, 25 C).
    """

    def __init__(self, pair_factory: Callable[[np.ndarray, float], list], *, n_series=1, n_parallel=1,
                 n_substrings=3, i_floor_a=1e-3, name="pv"):
        """pair_factory(g_sub_w_m2_array, t_cell_c) -> list of _Pair (one per distinct sub-string G)."""
        if int(n_series) < 1 or int(n_parallel) < 1 or int(n_substrings) < 1:
            raise ValueError("n_series, n_parallel and n_substrings must be >= 1")
        self.name = name
        self.n_series = int(n_series)
        self.n_parallel = int(n_parallel)
        self.n_substrings = int(n_substrings)
        self._factory = pair_factory
        self._i_floor = i_floor_a
        self._cache: OrderedDict = OrderedDict()
        self._raw = None
        self._cond: _Condition | None = None
        self.last_build_ms = 0.0
        self.builds = 0
        self.set_conditions(G_STC_W_M2, T_STC_C)

    # -- constructors ----------------------------------------------------------------------------
    @classmethod
    def from_cec(cls, module_name: str, n_series=1, n_parallel=1, n_substrings=3) -> "PVSource":
        """CEC module from pvlib's SAM database; per-condition params by pvlib calcparams_cec."""
        import pvlib
        db = _cec_db()
        if module_name not in db.columns:
            names = list(db.columns)
            close = difflib.get_close_matches(module_name, names, n=5, cutoff=0.5)
            raise ValueError(f"unknown CEC module {module_name!r}; close matches: {close}")
        m = db[module_name]
        kw = {k: float(m[k]) for k in ("alpha_sc", "a_ref", "I_L_ref", "I_o_ref", "R_sh_ref", "R_s", "Adjust")}
        n = int(n_substrings)
        isb = BYPASS_IF_A / math.expm1(BYPASS_VF_V / BYPASS_NVT_V)

        def factory(g_arr, t_c):
            with np.errstate(divide="ignore"):
                il, i0, rs, rsh, a = pvlib.pvsystem.calcparams_cec(np.asarray(g_arr, float), t_c, **kw)
            il, i0, rs, rsh, a = (np.broadcast_to(x, np.shape(g_arr)) for x in (il, i0, rs, rsh, a))
            return [_DiodePair(il[k], i0[k], rs[k] / n, n / rsh[k] if rsh[k] > 0 else 0.0, a[k] / n,
                               isb, BYPASS_NVT_V) for k in range(len(g_arr))]

        src = cls(factory, n_series=n_series, n_parallel=n_parallel, n_substrings=n,
                  i_floor_a=1e-3 * kw["I_L_ref"], name=module_name)
        src.module_params = dict(m)
        return src

    @classmethod
    def from_en50530(cls, p_mpp_w: float, v_mpp_v: float, technology="cSi", n_substrings=3) -> "PVSource":
        """EN 50530 simple PV generator model (whole generator; P_mpp, V_mpp at STC).

        Source: EN 50530:2010, Annex B (B.2 equations, Table B.1 technology parameters), also IEC 62891:
          V_OC,STC = V_MPP,STC/FF_U;  I_SC,STC = I_MPP,STC/FF_I;  C_AQ = (FF_U - 1)/ln(1 - FF_I)
          I_SC = I_SC,STC * G/G_STC * (1 + alpha*(T - T_STC))
          I_0  = I_SC,STC * G/G_STC * (1 - FF_I)^(1/(1 - FF_U))
          V_OC = V_OC,STC * (1 + beta*(T - T_STC)) * (C_V*ln(G/C_G + 1) - C_R*G)
          I(V) = I_SC - I_0*(exp(V/(V_OC*C_AQ)) - 1)
        i.e. a single-diode law with IL = I_SC, a = V_OC*C_AQ, Rs = 0, Rsh = inf.  For partial shade
        the voltage is split evenly over n_substrings copies (a/n each), each with a bypass diode.
        The standard's curve has its true maximum slightly off the nominal point (at STC, cSi:
        P -0.08 %, V -0.3 %; thin film: P +0.07 %, V -0.8 %) -- reproduced as specified, not tuned.
        G is floored at 0.01 W/m2 (the formulas degenerate at G = 0).
        """
        if technology not in EN50530_TECHNOLOGIES:
            raise ValueError(f"technology must be one of {sorted(EN50530_TECHNOLOGIES)}")
        if not (p_mpp_w > 0 and v_mpp_v > 0):
            raise ValueError("p_mpp_w and v_mpp_v must be > 0")
        c = EN50530_TECHNOLOGIES[technology]
        i_mpp = p_mpp_w / v_mpp_v
        voc_stc = v_mpp_v / c["ff_u"]
        isc_stc = i_mpp / c["ff_i"]
        caq = (c["ff_u"] - 1.0) / math.log(1.0 - c["ff_i"])
        i0_rel = (1.0 - c["ff_i"]) ** (1.0 / (1.0 - c["ff_u"]))
        n = int(n_substrings)
        isb = BYPASS_IF_A / math.expm1(BYPASS_VF_V / BYPASS_NVT_V)

        def factory(g_arr, t_c):
            out = []
            for g in np.asarray(g_arr, float).tolist():
                g = max(g, _G_MIN_SCALED_W_M2)
                isc = isc_stc * g / G_STC_W_M2 * (1.0 + c["alpha"] * (t_c - T_STC_C))
                i0 = isc_stc * g / G_STC_W_M2 * i0_rel
                voc = voc_stc * (1.0 + c["beta"] * (t_c - T_STC_C)) * (c["c_v"] * math.log(g / c["c_g"] + 1.0) - c["c_r"] * g)
                out.append(_DiodePair(isc, i0, 0.0, 0.0, voc * caq / n, isb, BYPASS_NVT_V))
            return out

        src = cls(factory, n_series=1, n_parallel=1, n_substrings=n, i_floor_a=1e-3 * isc_stc,
                  name=f"EN50530 {technology} {p_mpp_w:g} W @ {v_mpp_v:g} V")
        src.en50530 = dict(c, p_mpp_w=p_mpp_w, v_mpp_v=v_mpp_v, voc_stc=voc_stc, isc_stc=isc_stc,
                           caq=caq, i0_rel=i0_rel)
        return src

    @classmethod
    def from_iv_csv(cls, path, n_series=1, n_parallel=1, alpha_isc_per_k=0.0005, beta_voc_per_k=-0.003,
                    n_substrings=3, voc_log_coeff=0.04) -> "PVSource":
        """One module's measured STC curve (CSV header ``v_v,i_a``), scaled to other conditions.

        Approximation (shape-preserving): I scales with k_i = G/1000*(1 + alpha*(T-25)) and V with
        k_v = (1 + beta*(T-25))*(1 + voc_log_coeff*ln(G/1000)) -- the log term mimics the diode's
        Voc(G) ~ Voc + n*Ns*Vt*ln(G/1000) (0.04 ~ n*Ns*Vt/Voc for c-Si).  Fill-factor changes with G
        (Rs, Rsh) are ignored.  G is floored at 0.01 W/m2.  The data is interpolated with a monotone
        PCHIP and continued linearly beyond its ends.
        """
        v, i = _read_iv_csv(path)
        curve = _Curve(v, i)
        n = int(n_substrings)
        isb = BYPASS_IF_A / math.expm1(BYPASS_VF_V / BYPASS_NVT_V)

        def factory(g_arr, t_c):
            out = []
            for g in np.asarray(g_arr, float).tolist():
                g = max(g, _G_MIN_SCALED_W_M2)
                k_i = g / G_STC_W_M2 * (1.0 + alpha_isc_per_k * (t_c - T_STC_C))
                k_v = (1.0 + beta_voc_per_k * (t_c - T_STC_C)) * max(0.05, 1.0 + voc_log_coeff * math.log(g / G_STC_W_M2))
                out.append(_CurvePair(curve, k_i, k_v, n, isb, BYPASS_NVT_V))
            return out

        return cls(factory, n_series=n_series, n_parallel=n_parallel, n_substrings=n,
                   i_floor_a=1e-3 * curve.i_max, name=str(path))

    # -- conditions ------------------------------------------------------------------------------
    def set_conditions(self, g_w_m2: float, t_cell_c: float, shade=None) -> None:
        """Set irradiance (W/m2, negatives clamp to 0), cell temperature (C) and optional shade.

        shade: None or n_series*n_substrings factors 0..1 (same for every parallel string).  The
        condition is quantised (G 0.1 W/m2, T 0.01 C, shade 1e-3); that quantised condition is what
        the model computes.  Tables are kept in an LRU cache of 64 conditions.
        """
        raw = (g_w_m2, t_cell_c, shade if shade is None else tuple(shade))
        if raw == self._raw:
            return
        g = float(g_w_m2)
        t = float(t_cell_c)
        if not (math.isfinite(g) and math.isfinite(t)):
            raise ValueError("g_w_m2 and t_cell_c must be finite")
        if not -100.0 < t < 200.0:
            raise ValueError(f"t_cell_c out of range: {t}")
        gq = max(0, int(round(g * 10.0)))
        tq = int(round(t * 100.0))
        sk = None
        if shade is not None:
            n_need = self.n_series * self.n_substrings
            if len(raw[2]) != n_need:
                raise ValueError(f"shade needs {n_need} factors (n_series*n_substrings), got {len(raw[2])}")
            q = []
            for s in raw[2]:
                s = float(s)
                if not 0.0 <= s <= 1.0:
                    raise ValueError(f"shade factors must be in [0, 1], got {s}")
                q.append(int(round(s * 1000.0)))
            if any(x != 1000 for x in q):
                sk = tuple(sorted(q))       # series order does not matter physically
        key = (gq, tq, sk)
        self._raw = raw
        if self._cond is not None and self._cond.key == key:
            return
        cond = self._cache.get(key)
        if cond is None:
            t0 = time.perf_counter()
            cond = self._build(key)
            self.last_build_ms = (time.perf_counter() - t0) * 1e3
            self.builds += 1
            self._cache[key] = cond
            if len(self._cache) > _CACHE_SIZE:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(key)
        self._activate(cond)

    def _build(self, key):
        gq, tq, sk = key
        g, t = gq / 10.0, tq / 100.0
        total = self.n_series * self.n_substrings
        if sk is None:
            levels, mults = [1000], [total]
        else:
            levels = sorted(set(sk), reverse=True)
            mults = [sk.count(x) for x in levels]
        pairs = self._factory(np.array([g * x / 1000.0 for x in levels]), t)
        types = list(zip(pairs, mults))
        shade = None if sk is None else tuple(x / 1000.0 for x in sk)
        return _Condition(key, g, t, shade, types, self.n_parallel, self._i_floor)

    def _activate(self, cond):
        self._cond = cond
        if cond.table_np is None:
            tv, tc, ends = cond.table
            cond.table_np = (np.array(tv), np.array(tc).reshape(-1, 4), np.array(ends))
        self.table_np = cond.table_np  # what the compiled power stage evaluates (stage_kernel.table_cs)

    @property
    def conditions(self):
        """The quantised condition in force: (g_w_m2, t_cell_c, sorted shade factors or None)."""
        c = self._cond
        return c.g, c.t, c.shade

    # -- the table -------------------------------------------------------------------------------
    def current(self, v: float) -> float:
        """Terminal current (A, + = delivering) at terminal voltage v (V); table path, any v."""
        tv, tc, ends = self.table_np
        return table_cs(tv, tc, ends, float(v))[0]

    def current_and_slope(self, v: float) -> tuple[float, float]:
        """(i, di/dv) at terminal voltage v; di/dv <= 0, continuous in v."""
        tv, tc, ends = self.table_np
        return table_cs(tv, tc, ends, float(v))

    # -- exact model -----------------------------------------------------------------------------
    def current_exact(self, v: float) -> float:
        """Terminal current from the exact model (root finding; slow, for checks)."""
        return self._cond.current_exact(float(v))

    def voltage_exact(self, i_a: float) -> float:
        """Terminal voltage at array current i_a from the exact model."""
        return self._cond.string_v(float(i_a) / self.n_parallel)

    def mpp(self) -> tuple[float, float, float]:
        """(v_mp, i_mp, p_mp) of the GLOBAL maximum power point, exact model, cached per condition."""
        return self._cond.mpp()

    def local_maxima(self) -> list[tuple[float, float]]:
        """(v, p) of every local power maximum, ascending in v (exact model)."""
        return [(v, p) for v, _, p in self._cond.maxima()]

    def voc(self) -> float:
        """Open-circuit voltage (V), exact model."""
        return self._cond.voc()

    def isc(self) -> float:
        """Short-circuit current (A), exact model."""
        return self._cond.isc()

    def table_size(self) -> int:
        return len(self.table_np[0])

    def __repr__(self):
        g, t, s = self.conditions
        return (f"PVSource({self.name!r}, {self.n_series}s{self.n_parallel}p x{self.n_substrings} sub, "
                f"G={g} W/m2, T={t} C, shade={s})")


def _read_iv_csv(path):
    """Parse a ``v_v,i_a`` CSV; errors raise ValueError naming the file and line."""
    with open(path, "r", encoding="utf-8") as fh:
        lines = fh.read().splitlines()
    v, i, lineno_of = [], [], []
    header_seen = False
    last = 0
    for n, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        last = n
        if not header_seen:
            if line.replace(" ", "").lower() != "v_v,i_a":
                raise ValueError(f"{path}:{n}: expected header 'v_v,i_a', got {raw!r}")
            header_seen = True
            continue
        parts = line.split(",")
        if len(parts) != 2:
            raise ValueError(f"{path}:{n}: expected 2 comma-separated values, got {raw!r}")
        try:
            vv, ii = float(parts[0]), float(parts[1])
        except ValueError:
            raise ValueError(f"{path}:{n}: not a number: {raw!r}") from None
        if not (math.isfinite(vv) and math.isfinite(ii)):
            raise ValueError(f"{path}:{n}: non-finite value: {raw!r}")
        if v and vv <= v[-1]:
            raise ValueError(f"{path}:{n}: voltage must increase strictly ({vv} after {v[-1]})")
        if i and ii > i[-1]:
            raise ValueError(f"{path}:{n}: current must not increase with voltage ({ii} after {i[-1]})")
        v.append(vv)
        i.append(ii)
        lineno_of.append(n)
    if not header_seen:
        raise ValueError(f"{path}:{last or 1}: empty file, expected header 'v_v,i_a'")
    if len(v) < 4:
        raise ValueError(f"{path}:{last}: need at least 4 data rows, got {len(v)}")
    if i[0] <= 0.0:
        raise ValueError(f"{path}:{lineno_of[0]}: first current must be > 0 (near short circuit)")
    if i[-1] > 0.05 * i[0]:
        raise ValueError(f"{path}:{lineno_of[-1]}: curve must reach open circuit (last current <= 5 % of first)")
    return v, i
