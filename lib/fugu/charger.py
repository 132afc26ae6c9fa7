"""Charge profiles and stages (pure logic): measurements in, a voltage set point and a current limit out.

The charger does not regulate. Each control step the controller calls ``update`` and hands ``v_target_mv`` and
``i_limit_ma`` to its output-voltage and output-current regulators (with the input-current and power regulators,
the lowest duty wins). Integers only (mV, mA, ms, degC); nothing is allocated per call.

Stages: off -> bulk -> absorb -> float -> storage, optional equalize between absorb and float (flooded lead only).
Every threshold is debounced with time and has hysteresis:
* bulk -> absorb: the battery stays within ``AT_TARGET_MV_CELL`` of the absorption voltage for ``_REACH_MS``.
* absorb ends on the tail current (battery current, averaged over ~``_TAIL_AVG_MS`` against sensor noise, at or
  below ``tail_ma_per_ah * capacity`` for ``_TAIL_MS`` WHILE the voltage is held: a weak sun also gives a small
  current, that is not a full battery) or on the adaptive maximum time (see ``absorb_time_ms``). The absorption
  clock runs only while the voltage is held (a cloud pauses it).
* re-bulk: the voltage stays below the re-bulk threshold for ``REBULK_MS`` while PV is there (a motor start or a
  short load peak is not a discharged battery; at night a low voltage is expected and is handled by the night rule).
* night: ``pv_ok`` False pauses everything. After ``_NIGHT_MS`` without PV the next sunrise starts a new cycle (bulk),
  whose absorption time adapts to the battery's voltage at that moment - except a battery in storage that was not
  discharged overnight: it stays in storage (no daily top-up of an unused battery).
* storage: after ``storage_after_ms`` (24 h) of "rested full" time - time in float or storage, nights included,
  carried over a new cycle when the battery was found not discharged at sunrise - the hold drops to the storage
  voltage (Victron's AC chargers: storage mode after 24 h without discharge). The same rule for every chemistry;
  lithium float and storage are both holds at or below the battery's full rest voltage, so a full lithium battery
  gets no current (Li-ion must not be trickle charged, Battery University BU-409) while PV still runs the loads.
  Lead-acid gets a refresh (a new cycle with a short absorption) every ``refresh_ms`` (7 days) in storage (Victron
  Blue Smart chargers: 1 h absorption every 7 days in storage), lithium none.
* temperature: lead-acid set points are compensated per cell relative to 25 degC (temperature clamped to
  ``_T_COMP_MIN_C..T_COMP_MAX_C``, +-1 degC deadband so a dithering sensor doesn't flicker the set point), all
  profile voltages together (re-bulk included) so their order holds. Outside the profile's charge
  window (lithium: below 0 degC; every chemistry: above an upper limit) the charger reports stage off with
  ``i_limit_ma`` 0; it resumes ``T_HYST_C`` inside the window. ``t_bat_c`` None means no battery sensor: no
  compensation (25 degC is assumed) and no temperature lock-out (lithium without a sensor is then unprotected
  against cold charging: the settings layer should warn about it). ``t_upper_bound`` True says the reading is
  only an upper bound of the battery's temperature (FUGU has no battery sensor: the heatsink NTC, which our own
  losses warm above the ambient the battery sits in): the cold lock-out and the compensation use it (a warmer
  reading lowers lead-acid set points: the safe side), the hot limit does not (it would stop charging whenever
  the heatsink is warm).

``i_bat_ma`` should be the battery current (positive = charging). When only the charger's output current is known
and DC loads hang on the battery, the tail current is never seen while a load runs; absorption then ends on the
adaptive maximum time, which is why that time exists.
"""

from micropython import const

STAGE_OFF = const(0)
STAGE_BULK = const(1)
STAGE_ABSORB = const(2)
STAGE_FLOAT = const(3)
STAGE_STORAGE = const(4)
STAGE_EQUALIZE = const(5)
STAGE_NAMES = ("off", "bulk", "absorb", "float", "storage", "equalize")

CHEMISTRIES = ("lifepo4", "li_nmc", "lead_flooded", "lead_agm", "lead_gel")

SYSTEM_NOMINAL_V = (12, 24, 48)

_REACH_MS = const(10000)  # bulk -> absorb: voltage held this long
_TAIL_MS = const(60000)  # tail current held this long (with the voltage at target)
_TAIL_AVG_MS = const(10000)  # the tail test uses the battery current averaged over ~this long: near the threshold one
# noisy sample (a shunt amplifier's offset and noise are tens of mA) must not restart the _TAIL_MS timer
REBULK_MS = const(60000)  # below the re-bulk threshold this long (with PV)
_NIGHT_MS = const(2 * 3600 * 1000)  # no PV this long: new cycle at the next sunrise
TEMP_MS = const(5000)  # charge-window entry/exit debounce
DETECT_MS = const(5000)  # the cell count must read the same this long at rest
T_HYST_C = const(3)  # resume this far inside the charge window
_T_COMP_MIN_C = const(-10)  # temperature compensation clamp (a cold sensor reading must not push 16 V into a 12 V bank)
_T_COMP_MAX_C = const(50)
_T_REF_C = const(25)
AT_TARGET_MV_CELL = const(20)  # "voltage held": within this of the set point (regulator accuracy + sense noise)
_REST_MA_PER_AH = const(20)  # detection only at rest: |i| below 2 % of C
_DEPTH_FULL_PERMILLE = const(500)  # bulk charge of >= 50 % of capacity counts as a deep discharge (full
# absorption time)
_TIMER_MAX_MS = const((1 << 30) - (1 << 24))  # timers saturate here (~12 days): MicroPython small ints end at 2**30 - 1
_DT_MAX_MS = const(1 << 24)  # a longer step is clipped (so timer + dt stays a small int)
_HOUR_MS = const(3600 * 1000)

# Reasons (constant strings: the console/OLED shows them; no allocation per call).
R_DETECT = "detecting battery voltage"
R_RANGE = "battery voltage not 12/24/48 V"
R_NO_PV = "no PV: waiting"
R_BULK = "bulk: max current"
R_ABSORB = "absorb: holding voltage"
R_FLOAT = "float: battery full"
R_FLOAT_TAIL = "float: tail current reached"
R_FLOAT_TIME = "float: absorption time over"
R_FLOAT_EQ = "float: equalize done"
R_STORAGE = "storage: unused, lower hold"
R_EQUALIZE = "equalize: flooded lead"
R_REBULK = "bulk: re-bulk after discharge"
R_REFRESH = "bulk: storage refresh"

# Per-cell values in mV. Sources:
#  lifepo4: Victron's LiFePO4 preset (SmartSolar MPPT manual; Blue Smart charger Li-ion mode): absorption 14.2 V,
#     float 13.5 V per 12.8 V battery -> 3550 / 3375 mV. Storage 13.4 V (our choice, Victron keeps 13.5): just below
#     the ~13.6 V full rest voltage, so an unused battery drifts off 100 % (LFP calendar ageing is fastest full).
#     Re-bulk 13.2 V (3300: in the flat middle of the curve, clearly discharged). Tail 0.05 C (LFP cell specs, e.g.
#     EVE LF280K: CC-CV, cut-off 0.05 C). Absorption max 2 h (Victron LiFePO4 preset), min 30 min (Victron Blue
#     Smart adaptive absorption minimum). Charge window 0..45 degC (cell specs: no charging below 0 degC; 45 is the
#     conservative end of the 45..55 degC makers give). No temperature compensation (Victron: disabled for LiFePO4).
#  li_nmc: cell datasheets charge CC-CV to 4.20 V (Panasonic NCR18650B, Samsung INR18650-25R); we use 4.10 V
#     (Battery University BU-808: 4.10 V/cell roughly doubles cycle life for ~10 % less capacity). No float charge
#     for Li-ion (BU-409): float 4.05 V and storage 3.95 V are holds below the rest voltage after charge, re-bulk
#     3.90 V (~70 %). Tail 0.04 C (Samsung 25R: 100 mA cut-off for 2.5 Ah). Charge window 0..45 degC (NCR18650B).
#  lead_flooded: Trojan user's guide, deep-cycle flooded: absorption ("bulk") 2.35..2.45 V/cell -> 2.45 (14.7 V,
#     Victron "high" preset for flooded lead-calcium), float 2.20 (13.2 V), equalize 2.58 V/cell (15.5 V) at 3..5 %
#     of C -> 50 mA/Ah, storage 2.17 (13.0 V, below Trojan's float), temperature compensation 5.0 mV/cell/degC.
#  lead_agm: Trojan AGM / Victron default preset: absorption 2.40 (14.4 V), float 2.25 (13.5 V), storage 2.20
#     (13.2 V, Victron storage mode), -5 mV/cell/degC.
#  lead_gel: Trojan deep-cycle gel table: absorption 2.40 (14.4 V), float 2.25 (13.5 V), "gel batteries should
#     always use temperature compensated charging: 5.0 mV per cell / degC"; storage 2.20 (13.2 V).
#  Lead-acid common: re-bulk 2.10 V/cell (12.6 V: can't be held at 12.6 V with PV available = being discharged);
#     tail 2 % of C; absorption max 6 h (Victron MPPT default, x1 class) and min 1 h (Victron's x1/6 class for a
#     battery found above 12.6 V); charge window -20..50 degC (charging stops at 50 degC like Victron chargers;
#     a frozen lead battery must not be charged).
# Depth-of-discharge rest voltages (full_rest / deep_rest) for the adaptive absorption: lead per Victron's MPPT
# table (12.6 V -> x1/6 ... 11.9 V -> x1); lithium from the rest OCV curves (LFP 90 % / 20 %, NMC ~85 % / ~20 %).
# Detection window: the per-cell range of a resting or lightly loaded battery from empty to just charged.
PROFILES = {  # type: dict
    "lifepo4": {
        "name": "LiFePO4", "lithium": True, "v_nominal_cell_mv": 3200, "cells_by_system": (4, 8, 16),
        "v_absorb_cell_mv": 3550, "v_float_cell_mv": 3375, "v_storage_cell_mv": 3350, "v_rebulk_cell_mv": 3300,
        "v_equalize_cell_mv": 0, "tail_ma_per_ah": 50, "absorb_max_ms": 2 * _HOUR_MS, "absorb_min_ms": _HOUR_MS // 2,
        "temp_comp_uv_per_c_cell": 0, "t_charge_min_c": 0, "t_charge_max_c": 45,
        "v_detect_min_cell_mv": 2500, "v_detect_max_cell_mv": 3650,
        "v_full_rest_cell_mv": 3325, "v_deep_rest_cell_mv": 3200,
        "storage_after_ms": 24 * _HOUR_MS, "refresh_ms": 0,
        "equalize_ma_per_ah": 0, "equalize_max_ms": 0, "equalize_interval_s": 0,
        "reason_cold": "cold: LiFePO4 below 0 C", "reason_hot": "hot: LiFePO4 above 45 C",
    },
    "li_nmc": {
        "name": "Li-ion NMC", "lithium": True, "v_nominal_cell_mv": 3650, "cells_by_system": (3, 7, 13),
        "v_absorb_cell_mv": 4100, "v_float_cell_mv": 4050, "v_storage_cell_mv": 3950, "v_rebulk_cell_mv": 3900,
        "v_equalize_cell_mv": 0, "tail_ma_per_ah": 40, "absorb_max_ms": 2 * _HOUR_MS, "absorb_min_ms": _HOUR_MS // 2,
        "temp_comp_uv_per_c_cell": 0, "t_charge_min_c": 0, "t_charge_max_c": 45,
        "v_detect_min_cell_mv": 2800, "v_detect_max_cell_mv": 4250,
        "v_full_rest_cell_mv": 4050, "v_deep_rest_cell_mv": 3600,
        "storage_after_ms": 24 * _HOUR_MS, "refresh_ms": 0,
        "equalize_ma_per_ah": 0, "equalize_max_ms": 0, "equalize_interval_s": 0,
        "reason_cold": "cold: Li-ion below 0 C", "reason_hot": "hot: Li-ion above 45 C",
    },
    "lead_flooded": {
        "name": "Lead flooded", "lithium": False, "v_nominal_cell_mv": 2000, "cells_by_system": (6, 12, 24),
        "v_absorb_cell_mv": 2450, "v_float_cell_mv": 2200, "v_storage_cell_mv": 2170, "v_rebulk_cell_mv": 2100,
        "v_equalize_cell_mv": 2580, "tail_ma_per_ah": 20, "absorb_max_ms": 6 * _HOUR_MS, "absorb_min_ms": _HOUR_MS,
        "temp_comp_uv_per_c_cell": -5000, "t_charge_min_c": -20, "t_charge_max_c": 50,
        "v_detect_min_cell_mv": 1800, "v_detect_max_cell_mv": 2650,
        "v_full_rest_cell_mv": 2100, "v_deep_rest_cell_mv": 1983,
        "storage_after_ms": 24 * _HOUR_MS, "refresh_ms": 7 * 24 * _HOUR_MS,
        # Equalize: Trojan 3..5 % of C; at most 2 h (between Victron's 1 h and Xantrex's 6 h safety time-out);
        # at most every 28 days (Trojan: "once a month to once or twice a year", only when needed).
        "equalize_ma_per_ah": 50, "equalize_max_ms": 2 * _HOUR_MS, "equalize_interval_s": 28 * 86400,
        "reason_cold": "cold: lead below -20 C", "reason_hot": "hot: battery above 50 C",
    },
    "lead_agm": {
        "name": "Lead AGM", "lithium": False, "v_nominal_cell_mv": 2000, "cells_by_system": (6, 12, 24),
        "v_absorb_cell_mv": 2400, "v_float_cell_mv": 2250, "v_storage_cell_mv": 2200, "v_rebulk_cell_mv": 2100,
        "v_equalize_cell_mv": 0, "tail_ma_per_ah": 20, "absorb_max_ms": 6 * _HOUR_MS, "absorb_min_ms": _HOUR_MS,
        "temp_comp_uv_per_c_cell": -5000, "t_charge_min_c": -20, "t_charge_max_c": 50,
        "v_detect_min_cell_mv": 1800, "v_detect_max_cell_mv": 2650,
        "v_full_rest_cell_mv": 2100, "v_deep_rest_cell_mv": 1983,
        "storage_after_ms": 24 * _HOUR_MS, "refresh_ms": 7 * 24 * _HOUR_MS,
        "equalize_ma_per_ah": 0, "equalize_max_ms": 0, "equalize_interval_s": 0,
        "reason_cold": "cold: lead below -20 C", "reason_hot": "hot: battery above 50 C",
    },
    "lead_gel": {
        "name": "Lead gel", "lithium": False, "v_nominal_cell_mv": 2000, "cells_by_system": (6, 12, 24),
        "v_absorb_cell_mv": 2400, "v_float_cell_mv": 2250, "v_storage_cell_mv": 2200, "v_rebulk_cell_mv": 2100,
        "v_equalize_cell_mv": 0, "tail_ma_per_ah": 20, "absorb_max_ms": 6 * _HOUR_MS, "absorb_min_ms": _HOUR_MS,
        "temp_comp_uv_per_c_cell": -5000, "t_charge_min_c": -20, "t_charge_max_c": 50,
        "v_detect_min_cell_mv": 1800, "v_detect_max_cell_mv": 2650,
        "v_full_rest_cell_mv": 2100, "v_deep_rest_cell_mv": 1983,
        "storage_after_ms": 24 * _HOUR_MS, "refresh_ms": 7 * 24 * _HOUR_MS,
        "equalize_ma_per_ah": 0, "equalize_max_ms": 0, "equalize_interval_s": 0,
        "reason_cold": "cold: lead below -20 C", "reason_hot": "hot: battery above 50 C",
    },
}

PROFILE_NAMES = CHEMISTRIES + ("custom",)


def make_custom_profile(custom):
    """A profile from user values (dict) on top of a base chemistry, validated; raises ValueError with the reason.
    See fugu/charger_custom.py (loaded only for a custom chemistry: it needs no RAM otherwise)."""
    from fugu.charger_custom import make_custom_profile as make

    return make(custom)


def check_profile(p):
    """Order of the voltages (hysteresis) and sane ranges; raises ValueError (fugu/charger_custom.py)."""
    from fugu.charger_custom import check_profile as check

    check(p)


def detection_window_mv(chem_or_profile, cells):
    """(min, max) battery voltage that detects as ``cells`` cells."""
    p = PROFILES[chem_or_profile] if isinstance(chem_or_profile, str) else chem_or_profile
    return cells * p["v_detect_min_cell_mv"], cells * p["v_detect_max_cell_mv"]


def detect_cells(chem, v_bat_mv):
    """Cell count of a 12/24/48 V battery from its resting voltage, or 0 if out of range or ambiguous.

    Each system class accepts cells * (v_detect_min .. v_detect_max) per cell: empty (lead 1.80 V, LFP 2.50 V, NMC
    2.80 V per cell) to just charged (lead 2.65 V, LFP 3.65 V, NMC 4.25 V per cell). The windows are disjoint as long
    as max/min per cell stays below the ratio of neighbouring cell counts (2x; lead 1.47, LFP 1.46, NMC 1.52), so a
    flat 24 V lead bank (12 x 1.80 = 21.6 V) can't read as a charging 12 V one (6 x 2.65 = 15.9 V). A voltage in a
    gap (e.g. 18 V lead) is 0: the user must set the cell count. ``chem`` is a chemistry name or a profile dict.
    """
    p = PROFILES[chem] if isinstance(chem, str) else chem
    lo = p["v_detect_min_cell_mv"]
    hi = p["v_detect_max_cell_mv"]
    found = 0
    for n in p["cells_by_system"]:
        if n * lo <= v_bat_mv <= n * hi:
            if found:
                return 0
            found = n
    return found


class Charger:
    """Stage machine for one battery. See the module docstring for the rules; attributes are the outputs."""

    def __init__(self, chem="lifepo4", cells=0, capacity_ah=100, i_max_ma=30000, custom=None, equalize=False,
                 temp_comp_uv_per_c_cell=None):
        self.stage = STAGE_OFF
        self.v_target_mv = 0
        self.i_limit_ma = 0
        self.reason = R_DETECT
        self._why = R_BULK  # the reason of the logical stage (reason adds lock-out / no PV on top)
        self.cells = 0
        self.chem = None
        self.absorb_ms = 0  # absorption time held so far in this cycle
        self.absorb_limit_ms = 0  # adaptive maximum for this cycle
        self.bulk_charge_mah = 0  # charge put in during bulk in this cycle
        self.cycle_start_mv = 0  # battery voltage when this cycle started (adaptive absorption)
        self.temp_comp_mv = 0  # compensation applied to every set point (whole battery)
        self.equalize_enabled = False
        self._stage = STAGE_OFF  # logical stage (self.stage shows off during a temperature lock-out)
        self._started = False
        self._t_detect = 0
        self._detect_n = 0
        self._t_reach = 0
        self._t_tail = 0
        self._i_avg_ma = 0  # battery current averaged over ~_TAIL_AVG_MS while the absorption voltage is held
        self._t_rebulk = 0
        self._t_temp = 0
        self._block = None  # None, or the reason string of a temperature lock-out
        self._t_known = False  # the first temperature reading sets the lock-out directly (no state to hold yet)
        self.t_upper_bound = False  # t_bat_c is only an upper bound (heatsink NTC): no hot lock-out from it
        self._dark_ms = 0
        self._rested_ms = 0
        self._storage_ms = 0
        self._eq_ms = 0
        self._eq_due = False
        self._eq_since_s = 0
        self._eq_acc_ms = 0
        self._q_acc = 0  # mA*ms remainder of the bulk charge
        self._t_comp_c = None
        self.configure(chem, cells, capacity_ah, i_max_ma, custom, equalize, temp_comp_uv_per_c_cell)

    def configure(self, chem="lifepo4", cells=0, capacity_ah=100, i_max_ma=30000, custom=None, equalize=False,
                  temp_comp_uv_per_c_cell=None):
        """Apply settings (the full set, same meaning as __init__) keeping the stage and its progress.

        cells 0 = auto-detect (a count known before is kept if it is a 12/24/48 V count of the new chemistry).
        custom is used only with chem "custom". temp_comp_uv_per_c_cell None = the profile's; lithium profiles
        ignore it (always 0). equalize is honoured only where the profile has an equalize voltage (flooded lead,
        or a custom profile that sets one): it allows one equalization every equalize_interval_s of uptime (not
        at every boot: configure runs at every boot; ``request_equalize`` asks for one now). Raises ValueError
        before changing anything when a value is bad.
        """
        if chem == "custom":
            p = make_custom_profile(custom)
        elif chem in PROFILES:
            p = PROFILES[chem]
        else:
            raise ValueError("unknown chemistry %r; expected one of %s" % (chem, ", ".join(PROFILE_NAMES)))
        if not isinstance(cells, int) or not 0 <= cells <= 64:
            raise ValueError("cells must be 0 (auto) or 1..64")
        if not 0 < capacity_ah <= 100000:
            raise ValueError("capacity_ah must be 1..100000")
        if not 0 <= i_max_ma <= 1000000:
            raise ValueError("i_max_ma must be 0..1000000")
        if temp_comp_uv_per_c_cell is not None and not -10000 <= temp_comp_uv_per_c_cell <= 0:
            raise ValueError("temp_comp_uv_per_c_cell must be -10000..0 (uV/degC/cell)")
        self.chem = chem
        self.profile = p
        self.capacity_ah = int(capacity_ah)
        self.i_max_ma = int(i_max_ma)
        if p["lithium"]:
            self._tc_uv = 0
        elif temp_comp_uv_per_c_cell is None:
            self._tc_uv = p["temp_comp_uv_per_c_cell"]
        else:
            self._tc_uv = temp_comp_uv_per_c_cell
        if cells:
            self.cells = cells
        elif self.cells not in p["cells_by_system"]:
            self.cells = 0
        if self.cells == 0:
            self._stage = STAGE_OFF
            self._started = False
            self._t_detect = 0
        self._tail_ma = p["tail_ma_per_ah"] * self.capacity_ah
        self._rest_ma = _REST_MA_PER_AH * self.capacity_ah
        self._eq_ma = p["equalize_ma_per_ah"] * self.capacity_ah
        en = bool(equalize) and p["v_equalize_cell_mv"] > 0 and p["equalize_max_ms"] > 0
        if not en:
            self._eq_due = False
            if self._stage == STAGE_EQUALIZE:
                self._stage = STAGE_FLOAT
        self.equalize_enabled = en
        self._t_comp_c = None  # recompute the set points on the next update
        self._set_points(_T_REF_C)

    def request_equalize(self):
        """Equalize after the next absorption (a user's command); False if the profile/settings don't allow it."""
        if self.equalize_enabled:
            self._eq_due = True
        return self.equalize_enabled

    # ---------------------------------------------------------------- set points
    def _set_points(self, t_c):
        """Temperature-compensated set points for the whole battery (only when the rounded temperature changes)."""
        if t_c < _T_COMP_MIN_C:
            t_c = _T_COMP_MIN_C
        elif t_c > _T_COMP_MAX_C:
            t_c = _T_COMP_MAX_C
        if t_c == self._t_comp_c:
            return
        self._t_comp_c = t_c
        p = self.profile
        n = self.cells
        comp = self._tc_uv * (t_c - _T_REF_C) // 1000  # mV per cell
        self.temp_comp_mv = n * comp
        self._v_abs = n * (p["v_absorb_cell_mv"] + comp)
        self._v_float = n * (p["v_float_cell_mv"] + comp)
        self._v_storage = n * (p["v_storage_cell_mv"] + comp)
        self._v_rebulk = n * (p["v_rebulk_cell_mv"] + comp)
        self._v_eq = n * (p["v_equalize_cell_mv"] + comp) if p["v_equalize_cell_mv"] else 0
        self._margin = n * AT_TARGET_MV_CELL

    def absorb_time_ms(self, v_start_mv, bulk_charge_mah):
        """Adaptive absorption limit: min + (max - min) * depth, depth 0..1 from the larger of two estimates.

        * the battery voltage when the cycle started (Victron's MPPT rule: 12.6 V -> x1/6 ... 11.9 V -> x1 for lead,
          here a linear ramp between the profile's full and deep rest voltages);
        * the charge put in during bulk relative to capacity (>= 50 % = deep). This is what AC chargers' "bulk time"
          rule measures at constant current; with solar the bulk time mostly measures the weather, the charge
          doesn't. It also catches a start voltage lifted by another charger or read under no load after a rest.
        The larger wins: a too-long absorption is cut by the tail current and bounded by the profile maximum, a
        too-short one leaves lead-acid sulphating.
        """
        p = self.profile
        n = self.cells or 1
        full = p["v_full_rest_cell_mv"]
        deep = p["v_deep_rest_cell_mv"]
        d_v = (full - v_start_mv // n) * 1000 // (full - deep)
        cap_half = self.capacity_ah * _DEPTH_FULL_PERMILLE  # mAh at "deep" (capacity_ah * 1000 * 0.5)
        d_q = bulk_charge_mah * 1000 // cap_half if cap_half > 0 else 0
        d = d_v if d_v > d_q else d_q
        if d < 0:
            d = 0
        elif d > 1000:
            d = 1000
        lo_s = p["absorb_min_ms"] // 1000
        hi_s = p["absorb_max_ms"] // 1000
        return (lo_s + (hi_s - lo_s) * d // 1000) * 1000

    # ---------------------------------------------------------------- transitions
    def _start_cycle(self, v_bat_mv, keep_rested):
        self._stage = STAGE_BULK
        self.cycle_start_mv = v_bat_mv
        self.bulk_charge_mah = 0
        self._q_acc = 0
        self.absorb_ms = 0
        self.absorb_limit_ms = 0
        self._t_reach = 0
        self._t_tail = 0
        self._t_rebulk = 0
        self._storage_ms = 0
        self._started = True
        if not keep_rested:
            self._rested_ms = 0

    def _not_discharged(self, v_bat_mv):
        return v_bat_mv >= self.cells * self.profile["v_full_rest_cell_mv"]

    def _end_absorb(self, reason):
        self._t_tail = 0
        if self._eq_due:
            self._stage = STAGE_EQUALIZE
            self._eq_ms = 0
            self._why = R_EQUALIZE
        else:
            self._enter_hold(reason)

    def _enter_hold(self, reason):
        if self._rested_ms >= self.profile["storage_after_ms"]:
            self._stage = STAGE_STORAGE
            self._storage_ms = 0
            self._why = R_STORAGE
        else:
            self._stage = STAGE_FLOAT
            self._why = reason

    # ---------------------------------------------------------------- per control step
    def update(self, dt_ms, v_bat_mv, i_bat_ma, t_bat_c, pv_ok):
        """Advance by dt_ms with the latest measurements; sets stage, v_target_mv, i_limit_ma, reason, cells."""
        if dt_ms < 0:
            dt_ms = 0
        elif dt_ms > _DT_MAX_MS:
            dt_ms = _DT_MAX_MS
        if self.cells == 0 and not self._detect(dt_ms, v_bat_mv, i_bat_ma):
            self.stage = STAGE_OFF
            self.v_target_mv = 0
            self.i_limit_ma = 0
            return
        self._temperature(dt_ms, t_bat_c)
        if self.equalize_enabled and not self._eq_due:
            self._eq_acc_ms += dt_ms
            if self._eq_acc_ms >= 1000:
                self._eq_since_s += self._eq_acc_ms // 1000
                self._eq_acc_ms %= 1000
                if self._eq_since_s >= self.profile["equalize_interval_s"]:
                    self._eq_due = True

        if not pv_ok:
            # Night or no PV: progress is kept, timers pause; the battery resting full still counts as rested.
            if self._dark_ms < _TIMER_MAX_MS:
                self._dark_ms += dt_ms
            if self._stage == STAGE_FLOAT or self._stage == STAGE_STORAGE:
                self._rest(dt_ms)
            self._t_reach = self._t_tail = self._t_rebulk = 0
            self._outputs()
            if self._block is None:
                self.reason = R_NO_PV
            return

        if not self._started or self._dark_ms >= _NIGHT_MS:
            self._sunrise(v_bat_mv)
        self._dark_ms = 0
        if self._block is not None:
            self._outputs()
            return

        st = self._stage
        held = False
        if st == STAGE_BULK:
            if i_bat_ma > 0:
                self._q_acc += i_bat_ma * dt_ms
                if self._q_acc >= 3600000:
                    self.bulk_charge_mah += self._q_acc // 3600000
                    self._q_acc %= 3600000
            if v_bat_mv >= self._v_abs - self._margin:
                self._t_reach += dt_ms
                if self._t_reach >= _REACH_MS:
                    self._t_reach = 0
                    self._stage = STAGE_ABSORB
                    self.absorb_ms = 0
                    self._i_avg_ma = i_bat_ma
                    self.absorb_limit_ms = self.absorb_time_ms(self.cycle_start_mv, self.bulk_charge_mah)
                    self._why = R_ABSORB
            else:
                self._t_reach = 0
        elif st == STAGE_ABSORB:
            if v_bat_mv >= self._v_abs - self._margin:
                held = True
                if self.absorb_ms < _TIMER_MAX_MS:
                    self.absorb_ms += dt_ms
                self._i_avg_ma += (i_bat_ma - self._i_avg_ma) * dt_ms // (dt_ms + _TAIL_AVG_MS)
                if self._tail_ma and self._i_avg_ma <= self._tail_ma:
                    self._t_tail += dt_ms
                else:
                    self._t_tail = 0
            else:
                self._t_tail = 0
            if self._t_tail >= _TAIL_MS:
                self._end_absorb(R_FLOAT_TAIL)
            elif self.absorb_ms >= self.absorb_limit_ms:
                self._end_absorb(R_FLOAT_TIME)
        elif st == STAGE_EQUALIZE:
            self._eq_ms += dt_ms
            if self._eq_ms >= self.profile["equalize_max_ms"]:
                self._eq_due = False
                self._eq_since_s = 0
                self._eq_acc_ms = 0
                self._enter_hold(R_FLOAT_EQ)
        elif st == STAGE_FLOAT:
            self._rest(dt_ms)
            if self._rested_ms >= self.profile["storage_after_ms"]:
                self._enter_hold(R_STORAGE)
        elif st == STAGE_STORAGE:
            self._rest(dt_ms)
            if self._storage_ms < _TIMER_MAX_MS:
                self._storage_ms += dt_ms
            refresh = self.profile["refresh_ms"]
            if refresh and self._storage_ms >= refresh:
                self._start_cycle(v_bat_mv, True)
                self._why = R_REFRESH

        # Re-bulk: held below the threshold with PV available = the loads are discharging the battery.
        if self._stage >= STAGE_ABSORB and not held:
            if v_bat_mv < self._v_rebulk:
                self._t_rebulk += dt_ms
                if self._t_rebulk >= REBULK_MS:
                    self._start_cycle(v_bat_mv, False)
                    self._why = R_REBULK
            else:
                self._t_rebulk = 0
        else:
            self._t_rebulk = 0
        self._outputs()

    def _rest(self, dt_ms):
        if self._rested_ms < _TIMER_MAX_MS:
            self._rested_ms += dt_ms

    def _sunrise(self, v_bat_mv):
        """First PV after a long night (or the first ever): a new cycle, unless an unused battery rests in storage."""
        full = self._not_discharged(v_bat_mv)
        if self._started and self._stage == STAGE_STORAGE and full:
            return
        keep = full and (self._stage == STAGE_FLOAT or self._stage == STAGE_STORAGE)
        self._start_cycle(v_bat_mv, keep)
        self._why = R_BULK

    def _outputs(self):
        if self._block is not None:
            self.stage = STAGE_OFF
            self.v_target_mv = 0
            self.i_limit_ma = 0
            self.reason = self._block
            return
        st = self._stage
        self.stage = st
        self.reason = self._why
        i = self.i_max_ma
        if st == STAGE_BULK or st == STAGE_ABSORB:
            v = self._v_abs
        elif st == STAGE_FLOAT:
            v = self._v_float
        elif st == STAGE_STORAGE:
            v = self._v_storage
        elif st == STAGE_EQUALIZE:
            v = self._v_eq
            if self._eq_ma < i:
                i = self._eq_ma
        else:
            v = 0
            i = 0
        self.v_target_mv = v
        self.i_limit_ma = i

    def _detect(self, dt_ms, v_bat_mv, i_bat_ma):
        """Cell count from the resting voltage, the same answer for DETECT_MS; True once known."""
        n = detect_cells(self.profile, v_bat_mv)
        self.reason = R_DETECT if n else R_RANGE
        if not -self._rest_ma <= i_bat_ma <= self._rest_ma:
            n = 0  # not at rest: the voltage says little about the cell count
        if n and n == self._detect_n:
            self._t_detect += dt_ms
        else:
            self._t_detect = 0
            self._detect_n = n
        if n and self._t_detect >= DETECT_MS:
            self.cells = n
            self._t_comp_c = None
            self._set_points(_T_REF_C)
            return True
        return False

    def _temperature(self, dt_ms, t_bat_c):
        """Compensated set points and the debounced charge window (lock-out with hysteresis)."""
        if t_bat_c is None:
            self._set_points(_T_REF_C)
            want = None
        else:
            cur = self._t_comp_c
            # deadband of +-1 degC: a sensor dithering between two readings must not flicker the set point
            if cur is None or not cur - 1 <= t_bat_c <= cur + 1:
                self._set_points(round(t_bat_c))
            p = self.profile
            blk = self._block
            lo = p["t_charge_min_c"]
            hi = p["t_charge_max_c"]
            if blk is not None:  # resume only well inside the window
                lo += T_HYST_C
                hi -= T_HYST_C
            if t_bat_c < lo:
                want = p["reason_cold"]
            elif t_bat_c > hi and not self.t_upper_bound:
                want = p["reason_hot"]
            else:
                want = None
        if not self._t_known:
            self._t_known = True
            self._block = want
            return
        if want == self._block or (want is not None and self._block is not None):
            self._t_temp = 0  # no change wanted (cold <-> hot directly is not a real case)
            return
        self._t_temp += dt_ms
        if self._t_temp >= TEMP_MS:
            self._t_temp = 0
            self._block = want
            self._t_reach = self._t_tail = self._t_rebulk = 0
