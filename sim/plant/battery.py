"""Battery model for testing a charger's stages (bulk -> absorption -> float), not an electrochemical model.

Per cell, everything scaled by ``cells`` (series string) and by capacity (resistances ~ 1/capacity):

    terminal v = e + i * r0                          (i > 0 = charging)
    e          = cells * emf(h_surface, T) + v_p

* ``emf`` is the rest OCV table of the chemistry (linear interpolation, 25 C) below full, plus two branches outside
  0..1: an overcharge branch above full (``over_slope_v_per_soc`` V per unit of excess SOC) and a collapse branch
  below empty. Temperature: rest-OCV coefficient ``ocv_tc_v_per_k`` (lead-acid +0.2 mV/K/cell, lithium 0).
* Two-well charge store (the "kinetic battery model", Manwell & McGowan 1993): a surface well (fraction
  ``surface_frac`` of the capacity) that sets the EMF and a bulk well behind it, linked by diffusion with time
  constant ``tau_diff_s``. This is what makes a CV hold taper over minutes to hours instead of instantly: once the
  surface is full the EMF climbs the overcharge branch to the CV set point and the current is then limited to what
  diffuses into the bulk. It also gives the lead-acid "surface charge" that relaxes after charging.
* One RC pair (``v_p``): charge-transfer polarisation, R1 and tau1 = 30..300 s. Lead-acid charge polarisation is
  larger than discharge (separate R1 per direction); the steady target I*R1 is continuous at I = 0.
* Side reactions drain the surface well: a Tafel-like current ``side_ref_c * C * exp((emf - v_ref(T)) / side_vt_v)``
  (lead-acid: gassing, v_ref falls 4 mV/K/cell, so gassing doubles per ~10 K - the reason chargers temperature-
  compensate by about -4 mV/K/cell; lithium: tiny electrolyte oxidation), plus a constant self-discharge.
  In a lead-acid CV hold the current therefore tapers to the gassing current (float/tail current grows ~10x per
  130 mV), in a lithium CV hold it tapers to almost zero.
* Coulombic efficiency ``eta_charge`` applies to charging current (other losses than gassing).
* The overcharge state (soc above 1) relaxes with ``tau_relax_s`` (charge lost): it stands for overvoltage near
  full, not capacity, so a battery rests back near its full OCV after charging while a CV hold needs only a small
  current to keep it (lithium: ~0.1 %C at 3.55 V/cell LFP).

Stiffness: the overcharge branch is steep (lithium 200 V per unit soc per cell). A plant that solves with
``thevenin()`` and holds (e, r) over its step needs dt below ~0.3 s (lithium) / ~1.5 s (lead-acid) in a CV hold (the
simulator's ~36 ms steps are fine); ``thevenin_step(dt)`` folds the step's EMF rise into r and stays stable with
steps up to ~2 min (accurate to a few 10 mV up to ~10 s).

``soc`` is the total stored charge / rated capacity. It may exceed 1 slightly (lithium ~0.1 %, lead-acid ~0.5 % at
2.4 V/cell): that is the overcharge state, charge pushed up the overcharge branch, held only while the voltage is
held (lead-acid: drained by gassing and relaxation; lithium: by relaxation, i.e. the coulombic efficiency above
full is effectively zero). It is removed first on discharge. Below 0 the EMF collapses along a steep branch
(the cell EMF and the battery's e are clamped at 0 V: a dead battery is just its resistance).

The battery's own temperature ``temp_c`` is an input (set it; no self-heating is modelled).

Integration in ``step``: exact exponential updates of the RC pair and of the two-well store for the current held
over dt; the side-reaction current is solved implicitly (at the end-of-step EMF, bracketed Newton, skipped when
negligible) and the overcharge relaxation is backward Euler, so a large dt cannot overshoot.
"""

import math

CHEMISTRIES = ("lifepo4", "li_nmc", "lead_flooded", "lead_agm", "lead_gel")

_SECONDS_PER_MONTH = 30.0 * 86400.0

# Rest OCV per cell at 25 C, (soc, volts). Sources:
#  lifepo4: the widely published 12.8 V LiFePO4 rest-voltage chart (e.g. Battle Born / Victron style tables:
#           13.6 V 100 %, 13.4 V 99 %, 13.3 V 90 %, 13.28 V 80 %, 13.2 V 70 %, 13.16 V 60 %, 13.13 V 50 %,
#           13.0 V 40 %, 12.9 V 30 %, 12.8 V 20 %, 12.0 V 10 %, 10.0 V 0 %) divided by 4.
#  li_nmc:  representative C/20 pseudo-OCV of NMC 18650/pouch cells (3.0 V empty, ~3.75 V at 50 %, 4.20 V full),
#           consolidated from published curves; expect +-30 mV against any particular cell.
#  lead_flooded: Trojan's SOC / specific-gravity / OCV table (per cell: 2.122 V 100 %, 2.103 90 %, 2.083 80 %,
#           2.062 70 %, 2.040 60 %, 2.017 50 %, 1.993 40 %, 1.969 30 %, 1.943 20 %, 1.918 10 %); 0 % extrapolated.
#  lead_agm: typical AGM rest voltages (12 V: 12.84 V full, ~12.30 V 50 %, ~11.70 V empty) / 6.
#  lead_gel: typical gel rest voltages (12 V: 12.90 V full, ~12.36 V 50 %, ~11.76 V empty) / 6.
OCV_TABLES = {
    "lifepo4": (
        (0.00, 2.500), (0.10, 3.000), (0.20, 3.200), (0.30, 3.225), (0.40, 3.250), (0.50, 3.2825),
        (0.60, 3.290), (0.70, 3.300), (0.80, 3.320), (0.90, 3.325), (0.99, 3.350), (1.00, 3.400),
    ),
    "li_nmc": (
        (0.00, 3.000), (0.05, 3.400), (0.10, 3.500), (0.20, 3.600), (0.30, 3.660), (0.40, 3.710),
        (0.50, 3.760), (0.60, 3.830), (0.70, 3.910), (0.80, 3.990), (0.90, 4.080), (1.00, 4.200),
    ),
    "lead_flooded": (
        (0.00, 1.893), (0.10, 1.918), (0.20, 1.943), (0.30, 1.969), (0.40, 1.993), (0.50, 2.017),
        (0.60, 2.040), (0.70, 2.062), (0.80, 2.083), (0.90, 2.103), (1.00, 2.122),
    ),
    "lead_agm": (
        (0.00, 1.950), (0.10, 1.975), (0.20, 1.996), (0.30, 2.015), (0.40, 2.033), (0.50, 2.050),
        (0.60, 2.067), (0.70, 2.085), (0.80, 2.103), (0.90, 2.122), (1.00, 2.140),
    ),
    "lead_gel": (
        (0.00, 1.960), (0.10, 1.985), (0.20, 2.006), (0.30, 2.025), (0.40, 2.043), (0.50, 2.060),
        (0.60, 2.077), (0.70, 2.095), (0.80, 2.113), (0.90, 2.132), (1.00, 2.150),
    ),
}

# Per-chemistry parameters. Resistances are per cell for a 100 Ah cell; the model scales them by 100 Ah / capacity.
#  r0: ohmic (AC-IR-like) resistance. LiFePO4 100 Ah prismatic cells: datasheet AC IR 0.25..0.4 mOhm -> 0.30 mOhm.
#      NMC: ~25 mOhm for a 3 Ah 18650, large pouch ~1 mOhm at 60 Ah -> 0.8 mOhm at 100 Ah.
#      Lead-acid 12 V 100 Ah batteries: flooded ~5.5 mOhm, AGM ~4 mOhm, gel ~6 mOhm (maker datasheets) -> / 6 cells.
#  r1, tau1: polarisation from pulse (HPPC-style) tests: DC resistance after 10..60 s is ~2..3x AC IR for lithium;
#      lead-acid charge acceptance overpotential is larger than the discharge one (charge voltage ~2.2 V/cell at
#      C/5 mid-SOC vs ~2.0 V/cell discharging).
#  surface_frac, tau_diff_s: two-well store, tuned so a CC charge reaches the CV set point at the usual SOC
#      (LiFePO4 ~95 % at 0.5C, NMC ~85 % at 0.5C, lead-acid ~80..85 % at C/5) and the CV tail lasts as long as usual
#      (LiFePO4 ~15..30 min to 0.05C, lead-acid 1..3 h).
#  over_slope: overcharge branch, V per cell per unit SOC above full: lithium 2 V per % of capacity (0.15 V above
#      the rest OCV holds only ~0.08 % of C), lead-acid 0.6 V per %.
#  tau_relax: the overcharge state (total soc above 1) relaxes with this time constant (charge lost): it is
#      overvoltage, not stored capacity. Lithium 40 min (rests back at ~3.40 V/cell LFP within the hour),
#      lead-acid 6 h (gassing drains the high part first: 14.4 V -> ~13.2 V within ~2 h, 12.9 V after a day).
#  side_*: side-reaction current = side_ref_c * capacity_ah at emf = side_ref_v (25 C), x e per side_vt_v.
#      Lead-acid: side_vt 57.7 mV (x2 per 40 mV = 10 K at 4 mV/K), ~1 %C at 2.40 V/cell for AGM (float ~0.1 %C =
#      1 mA/Ah at 2.27 V), 1 %C flooded (more with age/antimony), 0.6 %C gel.
#      Lithium: ~0.05 %C at 3.60 V (LFP) / 0.1 %C at 4.30 V (NMC).
#  side_tc_v_per_k: shift of the side-reaction onset: lead-acid -4 mV/K/cell, lithium 0.
#  r_tc_per_k: resistance temperature factor exp(r_tc * (25 - T)): lead ~1.5x at 0 C, LiFePO4 ~2.4x, NMC ~2x.
#  self_discharge_per_month: LiFePO4 ~3 %, NMC ~3 %, flooded ~5 %, AGM ~3 %, gel ~3 % at 25 C.
_PARAMS = {
    "lifepo4": dict(
        nominal_v_per_cell=3.2, r0_ohm=0.30e-3, r1_charge_ohm=0.60e-3, r1_discharge_ohm=0.60e-3, tau1_s=60.0,
        surface_frac=0.7, tau_diff_s=400.0, over_slope_v_per_soc=200.0, under_slope_v_per_soc=20.0,
        eta_charge=0.999, side_ref_v=3.60, side_ref_c=0.0005, side_vt_v=0.05, side_tc_v_per_k=0.0,
        ocv_tc_v_per_k=0.0, r_tc_per_k=0.035, self_discharge_per_month=0.03, tau_relax_s=2400.0,
    ),
    "li_nmc": dict(
        nominal_v_per_cell=3.6, r0_ohm=0.80e-3, r1_charge_ohm=0.80e-3, r1_discharge_ohm=0.80e-3, tau1_s=40.0,
        surface_frac=0.7, tau_diff_s=600.0, over_slope_v_per_soc=200.0, under_slope_v_per_soc=20.0,
        eta_charge=0.999, side_ref_v=4.30, side_ref_c=0.001, side_vt_v=0.05, side_tc_v_per_k=0.0,
        ocv_tc_v_per_k=0.0, r_tc_per_k=0.028, self_discharge_per_month=0.03, tau_relax_s=2400.0,
    ),
    "lead_flooded": dict(
        nominal_v_per_cell=2.0, r0_ohm=0.90e-3, r1_charge_ohm=5.0e-3, r1_discharge_ohm=1.0e-3, tau1_s=200.0,
        surface_frac=0.4, tau_diff_s=1300.0, over_slope_v_per_soc=60.0, under_slope_v_per_soc=5.0,
        eta_charge=0.98, side_ref_v=2.40, side_ref_c=0.01, side_vt_v=0.0577, side_tc_v_per_k=-0.004,
        ocv_tc_v_per_k=0.0002, r_tc_per_k=0.016, self_discharge_per_month=0.05, tau_relax_s=21600.0,
    ),
    "lead_agm": dict(
        nominal_v_per_cell=2.0, r0_ohm=0.65e-3, r1_charge_ohm=5.0e-3, r1_discharge_ohm=1.0e-3, tau1_s=200.0,
        surface_frac=0.4, tau_diff_s=1200.0, over_slope_v_per_soc=60.0, under_slope_v_per_soc=5.0,
        eta_charge=0.98, side_ref_v=2.40, side_ref_c=0.009, side_vt_v=0.0577, side_tc_v_per_k=-0.004,
        ocv_tc_v_per_k=0.0002, r_tc_per_k=0.016, self_discharge_per_month=0.03, tau_relax_s=21600.0,
    ),
    "lead_gel": dict(
        nominal_v_per_cell=2.0, r0_ohm=1.0e-3, r1_charge_ohm=6.0e-3, r1_discharge_ohm=1.2e-3, tau1_s=250.0,
        surface_frac=0.35, tau_diff_s=1800.0, over_slope_v_per_soc=60.0, under_slope_v_per_soc=5.0,
        eta_charge=0.98, side_ref_v=2.40, side_ref_c=0.006, side_vt_v=0.0577, side_tc_v_per_k=-0.004,
        ocv_tc_v_per_k=0.0002, r_tc_per_k=0.016, self_discharge_per_month=0.03, tau_relax_s=21600.0,
    ),
}

_GRID_N = 200  # OCV tables are resampled on a 0.005 SOC grid at import (all table breakpoints lie on it)


def _resample(table, n):
    """Piecewise-linear table -> list of n+1 values on a uniform 0..1 grid (fast index lookup in the hot path)."""
    out = []
    j = 0
    for k in range(n + 1):
        s = k / n
        while j < len(table) - 2 and s > table[j + 1][0]:
            j += 1
        (s0, v0), (s1, v1) = table[j], table[j + 1]
        out.append(v0 + (v1 - v0) * (s - s0) / (s1 - s0))
    return out


_GRIDS = {chem: _resample(tab, _GRID_N) for chem, tab in OCV_TABLES.items()}


def ocv_per_cell_v(chemistry: str, soc: float, temp_c: float = 25.0) -> float:
    """Rest OCV of one cell (table interpolation within 0..1, clamped outside); for tests and charger set-ups."""
    if chemistry not in _GRIDS:
        raise ValueError(f"unknown chemistry {chemistry!r}; expected one of {CHEMISTRIES}")
    g = _GRIDS[chemistry]
    s = min(1.0, max(0.0, soc))
    x = s * _GRID_N
    k = min(int(x), _GRID_N - 1)
    return g[k] + (g[k + 1] - g[k]) * (x - k) + _PARAMS[chemistry]["ocv_tc_v_per_k"] * (temp_c - 25.0)


class Battery:
    """Series string of identical cells: Thevenin source (e, r) for the plant, states integrated by ``step``."""

    def __init__(self, chemistry: str, cells: int, capacity_ah: float, soc: float = 0.5, temp_c: float = 25.0,
                 r_int_ohm: float | None = None):
        """``r_int_ohm``: ohmic resistance of the whole battery (all cells); default per chemistry and capacity."""
        if not isinstance(chemistry, str) or chemistry.lower() not in CHEMISTRIES:
            raise ValueError(f"unknown battery chemistry {chemistry!r}; expected one of {CHEMISTRIES}")
        if isinstance(cells, bool) or not isinstance(cells, int) or not 1 <= cells <= 200:
            raise ValueError(f"cells must be an integer 1..200, got {cells!r}")
        if not (isinstance(capacity_ah, (int, float)) and math.isfinite(capacity_ah) and 0.0 < capacity_ah <= 1e5):
            raise ValueError(f"capacity_ah must be a finite number > 0, got {capacity_ah!r}")
        if not (isinstance(soc, (int, float)) and 0.0 <= soc <= 1.05):
            raise ValueError(f"soc must be within 0..1 (up to 1.05 for an overcharged start), got {soc!r}")
        if not (isinstance(temp_c, (int, float)) and -40.0 <= temp_c <= 80.0):
            raise ValueError(f"temp_c must be within -40..80 C, got {temp_c!r}")
        if r_int_ohm is not None and not (isinstance(r_int_ohm, (int, float)) and 0.0 < r_int_ohm < 100.0):
            raise ValueError(f"r_int_ohm must be > 0 (whole battery, ohm), got {r_int_ohm!r}")
        chem = chemistry.lower()
        p = _PARAMS[chem]
        self.chemistry = chem
        self.cells = cells
        self.capacity_ah = float(capacity_ah)
        self.soc = float(soc)
        self.temp_c = float(temp_c)
        scale = 100.0 / self.capacity_ah  # per-cell resistance ~ 1/capacity (parallel plates / cells)
        self.r0_ohm = float(r_int_ohm) if r_int_ohm is not None else p["r0_ohm"] * scale * cells
        self.r1_charge_ohm = p["r1_charge_ohm"] * scale * cells
        self.r1_discharge_ohm = p["r1_discharge_ohm"] * scale * cells
        self.tau1_s = p["tau1_s"]
        self.surface_frac = p["surface_frac"]
        self.tau_diff_s = p["tau_diff_s"]
        self.eta_charge = p["eta_charge"]
        self.v_p = 0.0  # RC polarisation voltage (whole battery), V
        self.delta = 0.0  # surface-minus-bulk fullness of the two-well store (0 at rest)
        self.gassing_a = 0.0  # side-reaction current of the last step (gassing for lead-acid), A
        self.last_i_a = 0.0  # terminal current of the last step, A
        self._i_hold_a = 0.0  # peak-hold of recent charging currents for thevenin_step
        self._q_c = self.capacity_ah * 3600.0
        self._grid = _GRIDS[chem]
        self._full_v = self._grid[-1]
        self._empty_v = self._grid[0]
        self._over_slope = p["over_slope_v_per_soc"]
        self._under_slope = p["under_slope_v_per_soc"]
        self._ocv_tc = p["ocv_tc_v_per_k"]
        self._side_ref_v = p["side_ref_v"]
        self._side_i0_a = p["side_ref_c"] * self.capacity_ah
        self._side_vt = p["side_vt_v"]
        self._side_tc = p["side_tc_v_per_k"]
        self._r_tc = p["r_tc_per_k"]
        self._i_sd_a = p["self_discharge_per_month"] * self._q_c / _SECONDS_PER_MONTH
        self._nominal_cell_v = p["nominal_v_per_cell"]
        self.tau_relax_s = p["tau_relax_s"]
        self._t_cache = None
        self._r_factor = 1.0
        self._dt_cache = None
        self._a1 = self._ad = 1.0

    # ---------------------------------------------------------------- per-cell EMF
    def _emf_cell(self, h):
        """EMF of one cell at surface fullness h, and dEMF/dh (the overcharge/collapse branches outside 0..1)."""
        tc = self._ocv_tc * (self.temp_c - 25.0)
        if h >= 1.0:
            return self._full_v + self._over_slope * (h - 1.0) + tc, self._over_slope
        if h <= 0.0:
            e = self._empty_v + self._under_slope * h + tc
            return (e, self._under_slope) if e > 0.0 else (0.0, 0.0)
        g = self._grid
        x = h * _GRID_N
        k = int(x)
        if k >= _GRID_N:
            k = _GRID_N - 1
        g0 = g[k]
        slope = g[k + 1] - g0
        return g0 + slope * (x - k) + tc, slope * _GRID_N

    @property
    def soc_surface(self) -> float:
        """Fullness of the surface well (what the EMF follows); equals soc at rest."""
        return self.soc + (1.0 - self.surface_frac) * self.delta

    def _r_temp(self):
        t = self.temp_c
        if t != self._t_cache:
            self._t_cache = t
            self._r_factor = min(10.0, max(0.5, math.exp(self._r_tc * (25.0 - t))))
        return self._r_factor

    # ---------------------------------------------------------------- plant interface
    def thevenin(self) -> tuple[float, float]:
        """(e_v, r_ohm) with terminal v = e + i*r, i > 0 charging; e = cells*EMF(surface, T) + v_p, r = R0(T)."""
        e = self.cells * self._emf_cell(self.soc + (1.0 - self.surface_frac) * self.delta)[0] + self.v_p
        return (e if e > 0.0 else 0.0), self.r0_ohm * self._r_temp()

    def thevenin_step(self, dt_s: float, charging: bool = True) -> tuple[float, float]:
        """Thevenin source for the terminal voltage at the END of a step of dt with constant current.

        Folds the exact RC update (e += v_p*a, r += R1*(1-a), a = exp(-dt/tau1)) and the linearised rise of the
        surface EMF during the step into (e, r), so a plant that solves with this instead of ``thevenin()`` stays
        stable with long steps. The EMF rise is a secant over the surface fullness that a peak-hold of recent
        currents (decaying with tau_diff) would reach, so it spans the kink at full and errs towards a larger r
        (slower, not oscillating, convergence near full). ``charging`` picks R1 and the coulombic efficiency
        (pass the sign of the expected current).
        """
        if dt_s <= 0.0:
            return self.thevenin()
        a = math.exp(-dt_s / self.tau1_s)
        ad = math.exp(-dt_s / self.tau_diff_s)
        c = self.surface_frac
        r1 = self.r1_charge_ohm if charging else self.r1_discharge_ohm
        eta = self.eta_charge if charging else 1.0
        # surface fullness at the end of the step: h0 (no current) + k * i
        h0 = self.soc + (1.0 - c) * self.delta * ad
        k = eta * (dt_s / self._q_c + (1.0 - c) * self.tau_diff_s * (1.0 - ad) / (self._q_c * c))
        e_cell, slope = self._emf_cell(h0)
        span = k * self._i_hold_a
        if span > 1e-9 or span < -1e-9:
            slope = max(slope, (self._emf_cell(h0 + span)[0] - e_cell) / span)
        rt = self._r_temp()
        e = self.cells * e_cell + self.v_p * a
        return (e if e > 0.0 else 0.0), self.r0_ohm * rt + r1 * rt * (1.0 - a) + self.cells * slope * k

    def terminal_v(self, i_a: float) -> float:
        """Terminal voltage for current i_a (A, > 0 charging) in the present state."""
        e, r = self.thevenin()
        return e + i_a * r

    def rest_v(self) -> float:
        """Terminal voltage after a long rest at the present SOC (no polarisation, surface = bulk)."""
        return self.cells * self._emf_cell(self.soc)[0]

    def nominal_v(self) -> float:
        return self.cells * self._nominal_cell_v

    def step(self, i_a: float, dt_s: float) -> None:
        """Advance by dt with terminal current i_a held constant (A, > 0 charging).

        Called once per plant step (~1000 times per simulated second while the converter switches): attributes
        are read into locals once; the arithmetic is the same, term by term, as the model equations below."""
        if dt_s <= 0.0:
            if dt_s < 0.0:
                raise ValueError(f"dt_s must be >= 0, got {dt_s}")
            return
        self.last_i_a = i_a
        if dt_s != self._dt_cache:
            self._dt_cache = dt_s
            self._a1 = math.exp(-dt_s / self.tau1_s)
            self._ad = math.exp(-dt_s / self.tau_diff_s)
        ad = self._ad
        hold = self._i_hold_a * ad
        self._i_hold_a = i_a if i_a > hold else hold
        c = self.surface_frac
        q_c = self._q_c
        qc = q_c * c
        tau_d = self.tau_diff_s
        i_in = (i_a * self.eta_charge if i_a > 0.0 else i_a) - self._i_sd_a
        soc = self.soc
        emf_cell = self._emf_cell

        # Side reactions (gassing / electrolyte oxidation), implicit: the current held over the step is the one at
        # the END-of-step surface fullness, which is exactly linear in it: h_end = h0 + k * (i_in - i_side).
        h0 = soc + (1.0 - c) * self.delta * ad
        k = dt_s / q_c + (1.0 - c) * tau_d * (1.0 - ad) / qc
        ref = self._side_ref_v + self._side_tc * (self.temp_c - 25.0)
        vt = self._side_vt
        i0 = self._side_i0_a
        h_max = h0 + k * i_in if i_in > 0.0 else h0  # no side current: the highest the surface can get
        arg = (emf_cell(h_max)[0] - ref) / vt
        i_hi = i0 * math.exp(arg if arg < 60.0 else 60.0)
        if i_hi < 1e-9 * self.capacity_ah:
            i_side = i_hi  # negligible (lithium/lead in bulk): skip the solve
        else:
            # F(i) = ln i - ln i0 - (emf(h_end(i)) - ref)/vt is increasing in i (the log form keeps it ~linear).
            # Root in (0, hi]: F(0+) = -inf, and at i = max(i_in, 0) + side(h0) the surface ends at or below h0,
            # so F >= 0 there. Safeguarded Newton (bisection whenever Newton leaves the bracket or slows down).
            arg0 = (emf_cell(h0)[0] - ref) / vt
            hi = min(i_hi, (i_in if i_in > 0.0 else 0.0) + i0 * math.exp(arg0 if arg0 < 60.0 else 60.0))
            lo = 0.0
            ln_i0 = math.log(i0)
            i_side = self.gassing_a if 1e-9 * hi < self.gassing_a < hi else 0.5 * hi
            dx_old = hi
            for _ in range(100):
                e_end, de_dh = emf_cell(h0 + k * (i_in - i_side))
                f = math.log(i_side) - ln_i0 - (e_end - ref) / vt  # log of (i_side / side current at h_end)
                if -1e-9 < f < 1e-9:
                    break
                if f > 0.0:
                    hi = i_side
                else:
                    lo = i_side
                if hi - lo <= 1e-12 * hi:
                    break
                dx = f / (1.0 / i_side + de_dh * k / vt)
                nxt = i_side - dx
                if not lo < nxt < hi or abs(2.0 * dx) > abs(dx_old):
                    nxt = 0.5 * (lo + hi)
                    dx = i_side - nxt
                dx_old = dx
                i_side = nxt
        self.gassing_a = i_side
        i_net = i_in - i_side
        # overcharge state (soc above 1) relaxes, backward Euler (linear in soc)
        x = soc - 1.0 + i_net * dt_s / q_c
        if x > 0.0:
            i_net -= q_c * x / (self.tau_relax_s + dt_s)

        # two-well store: exact for constant i_net
        self.soc = soc + i_net * dt_s / q_c
        d_ss = i_net * tau_d / qc
        self.delta = d_ss + (self.delta - d_ss) * ad

        # RC pair: exact for constant i_a
        t = self.temp_c
        if t != self._t_cache:
            self._r_temp()
        v_ss = i_a * (self.r1_charge_ohm if i_a > 0.0 else self.r1_discharge_ohm) * self._r_factor
        self.v_p = v_ss + (self.v_p - v_ss) * self._a1

    def __repr__(self):
        return (f"Battery({self.chemistry!r}, cells={self.cells}, capacity_ah={self.capacity_ah}, "
                f"soc={self.soc:.4f}, temp_c={self.temp_c})")
