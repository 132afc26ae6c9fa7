"""Custom charge profiles (lib/fugu/charger.py has the built-in ones and the stage machine): user values on top of a
base chemistry, and the checks every profile must pass. A module of its own so that a controller charging a
built-in chemistry does not keep it in RAM; charger.make_custom_profile() and check_profile() import it.
"""

from micropython import const

from fugu.charger import AT_TARGET_MV_CELL, PROFILES, T_HYST_C

_DAY_MS = const(24 * 3600 * 1000)


def make_custom_profile(custom):
    """A profile from user values (dict) on top of a base chemistry, validated; raises ValueError with the reason.

    Required keys: v_absorb_cell_mv, v_float_cell_mv, v_rebulk_cell_mv, tail_ma_per_ah (0 = absorption ends on
    time only). Optional: base (one of CHEMISTRIES; default from the absorption voltage: > 3800 mV li_nmc,
    > 3000 mV lifepo4, else lead_agm, so a lithium-like voltage always gets the lithium cold lock-out),
    v_storage_cell_mv (default = float), and any other profile key. The base supplies everything else (temperature
    window and compensation, cell counts, detection). Re-bulk is lowered to at least 2 * AT_TARGET_MV_CELL below
    the storage (lowest hold) voltage, so a hold that sags within the regulator's accuracy can't re-bulk.
    """
    if not isinstance(custom, dict):
        raise ValueError("custom profile: expected a dict of settings")
    for key in ("v_absorb_cell_mv", "v_float_cell_mv", "v_rebulk_cell_mv", "tail_ma_per_ah"):
        if key not in custom:
            raise ValueError("custom profile: %s missing" % key)
        if not isinstance(custom[key], int) or isinstance(custom[key], bool):
            raise ValueError("custom profile: %s must be an integer" % key)
    v_abs = custom["v_absorb_cell_mv"]
    base = custom.get("base")
    if base is None:
        base = "li_nmc" if v_abs > 3800 else ("lifepo4" if v_abs > 3000 else "lead_agm")
    if base not in PROFILES:
        raise ValueError("custom profile: unknown base %r" % (base,))
    p = dict(PROFILES[base])
    for key in custom:
        if key != "base":
            if key not in p:
                raise ValueError("custom profile: unknown key %s" % key)
            p[key] = custom[key]
    if "v_storage_cell_mv" not in custom:
        p["v_storage_cell_mv"] = p["v_float_cell_mv"]
    gap_max = p["v_storage_cell_mv"] - 2 * AT_TARGET_MV_CELL
    if p["v_rebulk_cell_mv"] > gap_max:
        p["v_rebulk_cell_mv"] = gap_max
    p["name"] = "Custom"
    if base not in ("lead_flooded",) and "v_equalize_cell_mv" not in custom:
        p["v_equalize_cell_mv"] = 0
    check_profile(p)
    return p


def check_profile(p):
    """Order of the voltages (hysteresis) and sane ranges; raises ValueError."""
    if not 1000 <= p["v_absorb_cell_mv"] <= 4500:
        raise ValueError("absorption voltage %d mV/cell out of 1000..4500" % p["v_absorb_cell_mv"])
    if not p["v_absorb_cell_mv"] >= p["v_float_cell_mv"] >= p["v_storage_cell_mv"] > p["v_rebulk_cell_mv"] > 0:
        raise ValueError("need absorption >= float >= storage > re-bulk (mV/cell)")
    if p["v_storage_cell_mv"] - p["v_rebulk_cell_mv"] < 2 * AT_TARGET_MV_CELL:
        raise ValueError("re-bulk must be at least %d mV/cell below storage" % (2 * AT_TARGET_MV_CELL))
    if p["v_equalize_cell_mv"] and p["v_equalize_cell_mv"] <= p["v_absorb_cell_mv"]:
        raise ValueError("equalize voltage must be above absorption")
    if not 0 <= p["tail_ma_per_ah"] <= 500:
        raise ValueError("tail current %d mA/Ah out of 0..500" % p["tail_ma_per_ah"])
    if not 0 < p["absorb_min_ms"] <= p["absorb_max_ms"] <= _DAY_MS:
        raise ValueError("need 0 < absorption min <= max <= 24 h")
    if p["t_charge_min_c"] + 2 * T_HYST_C >= p["t_charge_max_c"]:
        raise ValueError("charge temperature window too narrow")
