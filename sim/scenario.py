"""Scenarios: TOML files describing one simulated run, validated completely when they are loaded.

A malformed scenario raises ONE ``ScenarioError`` naming the file, the section and the key, e.g.::

    scenarios/x.toml: [battery] chemistry: 'lipo' is not one of lifepo4, li_nmc, lead_flooded, lead_agm, lead_gel

Unknown sections and keys are errors too, with a "did you mean" suggestion. Everything (the CEC module name, the
board config file, the I-V table, the profiles) is checked and precomputed in ``load_scenario``, so nothing
half-runs. ``load_scenario(path, overrides={"scenario.duration_s": 600})`` replaces values by dotted key before
validation; ``parse_override("battery.soc=0.3")`` turns a command-line ``key=value`` into such a pair (the value is
read as a TOML literal when it is one, else kept as a string).

Schema (scenarios/README.md has the same with examples)::

    [scenario]
    name = "clear_day"                 # required string
    description = "..."                # optional
    duration_s = 86400                 # required, > 0
    start = "2026-06-21T00:00:00Z"     # optional ISO date-time (a TOML date-time or a string; no offset = UTC);
                                       #   default 2026-06-21T00:00:00Z; sets the device's wall clock
    seed = 1                           # optional int, default 1
    realtime_status_s = 60             # optional, > 0: how often the runner prints a status line (sim seconds)

    [board]
    config = "fugu_v1"                 # required: boardconfigs/<config>.py must exist (relative to the project root)
    adc = "ADS1115"                    # optional override: ADS1115 | ADS1015 | TLA2024 | internal (default: None,
                                       #   i.e. what the board config says; an ADS1115 where it says "auto")
    current_sensor = "acs712"          # optional override: acs712 | shunt (default None)
    tolerances = true                  # optional: draw divider/sensor tolerances from the seed (default true)
    [board.cost]                       # optional: overrides of sim.simboard.CostModel attributes (numbers >= 0)
    [board.modules]                    # optional bools: oled, sd, can, rs485, ble (missing ones are false)

    [pv]
    source = "cec"                     # cec | en50530 | iv_csv
    module = "..."                     # cec: a name in pvlib's CEC module database (retrieve_sam('CECMod'))
    p_mpp_w = 700.0                    # en50530: STC MPP power of the whole array (> 0)
    v_mpp_v = 48.0                     # en50530: STC MPP voltage of the whole array (> 0)
    technology = "cSi"                 # en50530: cSi | thin_film (default cSi)
    file = "scenarios/iv/x.csv"        # iv_csv: header v_v,i_a, one module at STC; path relative to the project
                                       #   root or to the scenario file
    series = 1                         # cec, iv_csv: modules in series, >= 1 (default 1)
    parallel = 1                       # cec, iv_csv: parallel strings, >= 1 (default 1)
    substrings = 3                     # bypass-diode sub-strings per module, >= 1 (default 3; en50530: default 1,
                                       #   the array's curve split into that many equal parts)
                                       # (en50530 describes the whole array: series = parallel = 1)

    [pv2]                              # optional, boards with two power stages only: the second channel's array
    source = "cec"                     # the [pv] keys; without source the array is a copy of [pv]'s
    irradiance_scale = 0.6             # factor on [irradiance] for this array, 0..2 (default 1): another orientation
    shade = [[0, [1.0, 0.5, 1.0]], ...]  # as [shade] points, for this array (series * substrings entries)
                                       # (without [pv2] a two-channel board gets a copy of [pv] on channel 1)

    [irradiance]                       # plane-of-array W/m2 (0..2000) over time
    profile = "constant"               # constant: value
                                       # points: points = [[t_s, w_m2], ...], piecewise linear, clamped outside;
                                       #   t must not decrease; two points at one t make a step
                                       # clear_sky: latitude, longitude, tilt_deg, azimuth_deg; optional peak (W/m2
                                       #   the curve is scaled to at its maximum), step_s (60), albedo (0.25),
                                       #   altitude_m (0); for the scenario's start and duration
                                       # broken_clouds: the clear_sky keys plus cloud_cover (0..1)
                                       # en50530_seq1 | en50530_seq2: optional start_s (stabilisation time at the
                                       #   low level before the first ramp, default 300) and slopes = [...] (a
                                       #   subset of the standard's slopes); Scenario.profile_duration_s is the
                                       #   duration the sequence needs

    [temperature]                      # optional section
    ambient_c = 25.0                   # a number, or {profile = "points", points = [[t_s, c], ...]} (default 25)
    cell = "noct"                      # "noct": T_amb + (noct_c - 20) / 800 * G; "ambient"; or a number (fixed)
    noct_c = 45.0                      # default 45

    [shade]                            # optional: per-sub-string irradiance factors 0..1, piecewise linear
    points = [[0, [1.0, 1.0, 0.3]], [600, [1.0, 0.3, 1.0]]]   # vectors of length series * substrings

    [battery]                          # required section
    present = true                     # false: no battery connected (the other keys become optional)
    chemistry = "lifepo4"              # lifepo4 | li_nmc | lead_flooded | lead_agm | lead_gel (required if present)
    cells = 4                          # cells in series, 1..64 (required if present)
    capacity_ah = 100.0                # > 0 (required if present)
    soc = 0.5                          # 0..1, default 0.5
    temp_c = 25.0                      # default: ambient at t = 0

    [load]                             # optional DC load on the battery terminals
    kind = "resistive"                 # resistive (value ohm, > 0) | constant_power (W) | constant_current (A) | off
    value = 10.0                       # required unless kind = "off"
    schedule = [[0, 1.0], [3600, 0.0]] # optional on-fraction 0..1, piecewise constant: a value applies from its
                                       #   t_s on; before the first entry the load is off. No schedule: always on.
    port = "battery"                   # battery (default) | pv: on the PV terminals (boost mode's high side); it
                                       #   stays there when the array is disconnected (fault pv_disconnect)
    uvlo_v = 36.0                      # optional, constant_power/constant_current: a DC-DC converter's under-
                                       #   voltage lockout (off below it, on again above 1.1 x uvlo_v)

    [[faults]]                         # zero or more, any order (sorted by t_s, stable)
    t_s = 3600.0                       # >= 0 (a fault after the end of the run simply never happens)
    kind = "battery_disconnect"        # battery_disconnect | battery_reconnect | pv_disconnect | pv_reconnect |
                                       # pv_short | pv_short_clear | adc_fail | adc_recover | adc_stuck | ntc_open |
                                       # ntc_short | ntc_ok | fan_fail | fan_ok | mcu_reset | ambient_step |
                                       # backflow_short | backflow_ok | heatsink_heat (sim/faults.py)
    value = 45.0                       # ambient_step (required): the new ambient in C, which ambient_c(t) returns
                                       #   from t_s on; heatsink_heat (required): W; the pv_*, adc_* and backflow_*
                                       #   kinds (optional): the channel hit (default: all); others: none

    [settings]                         # firmware settings overrides: str -> bool/int/float/str, validated by the
                                       # firmware itself; kept as a dict

The ``Scenario`` object keeps the validated sections as plain attributes and answers the plant's questions fast:
``irradiance_w_m2(t)``, ``ambient_c(t)``, ``cell_temp_c(t, g)``, ``shade(t)``, ``load_fraction(t)`` and
``next_change_s(t)`` (the next breakpoint of any profile or fault after t, so the plant can land on it exactly).
"""

import copy
import datetime as _dt
import difflib
import math
import os
import re
import tomllib
from bisect import bisect_right
from functools import lru_cache
from pathlib import Path

from sim import profiles
from sim.faults import FAULT_CHANNEL_KINDS, FAULT_KINDS, FAULT_VALUE_RANGE  # the fault schema lives with the faults

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_START = "2026-06-21T00:00:00Z"

SECTIONS = ("scenario", "board", "pv", "pv2", "irradiance", "temperature", "shade", "battery", "load", "faults",
            "settings")
REQUIRED_SECTIONS = ("scenario", "board", "pv", "irradiance", "battery")

ADCS = ("ADS1115", "ADS1015", "TLA2024", "internal")
CURRENT_SENSORS = ("acs712", "shunt")
EXTENSION_MODULES = ("oled", "sd", "can", "rs485", "ble")
PV_SOURCES = ("cec", "en50530", "iv_csv")
PV_KEYS = {
    "cec": ("source", "module", "series", "parallel", "substrings"),
    "en50530": ("source", "p_mpp_w", "v_mpp_v", "technology", "substrings"),
    "iv_csv": ("source", "file", "series", "parallel", "substrings"),
}
PV2_EXTRA_KEYS = ("irradiance_scale", "shade")
EN50530_TECHNOLOGIES = ("cSi", "thin_film")
IRRADIANCE_PROFILES = ("constant", "points", "clear_sky", "broken_clouds", "en50530_seq1", "en50530_seq2")
_CLEAR_SKY_KEYS = ("latitude", "longitude", "tilt_deg", "azimuth_deg", "peak", "step_s", "albedo", "altitude_m")
IRRADIANCE_KEYS = {
    "constant": ("profile", "value"),
    "points": ("profile", "points"),
    "clear_sky": ("profile",) + _CLEAR_SKY_KEYS,
    "broken_clouds": ("profile", "cloud_cover") + _CLEAR_SKY_KEYS,
    "en50530_seq1": ("profile", "start_s", "slopes"),
    "en50530_seq2": ("profile", "start_s", "slopes"),
}
MAX_IRRADIANCE = 2000.0
CHEMISTRIES = ("lifepo4", "li_nmc", "lead_flooded", "lead_agm", "lead_gel")
LOAD_KINDS = ("resistive", "constant_power", "constant_current", "off")
LOAD_PORTS = ("battery", "pv")  # where the [load] hangs: the battery node, or the PV terminals (boost mode)
AMBIENT_RANGE = (-60.0, 100.0)


class ScenarioError(ValueError):
    """A scenario file (or an override) is malformed. The message names the file, the section and the key."""


# ---------------------------------------------------------------------------------------------------------------
# The scenario
# ---------------------------------------------------------------------------------------------------------------

class Scenario:
    """A validated scenario. Attributes (all plain data):

    name, description, duration_s (float), start_epoch_s (int, UTC), seed (int), status_every_s (float),
    board (dict: config, config_path, adc, current_sensor, tolerances, cost, modules),
    pv (dict; always has source, series, parallel, substrings; cec adds module, params (the CEC row as floats/str),
    cells_in_series; en50530 adds p_mpp_w, v_mpp_v, technology; iv_csv adds file (absolute) and iv_curve
    [(v, i), ...]), irradiance (dict: the [irradiance] section as given, with defaults), irradiance_points
    [(t_s, w_m2), ...] or None for a constant, profile_duration_s (what an en50530 sequence needs; else None),
    temperature (dict: ambient_c (number or the points list), cell ("noct" | "ambient" | number), noct_c),
    shade_points (list or None), pv2 (dict like pv plus irradiance_scale and shade_points, or None without
    [pv2]), board_channels (power stages of the board config), battery (dict), load (dict or None), faults (list
    of dicts t_s, kind, value, sorted by t_s), settings (dict), path (Path of the file), overrides (dict as given).
    """

    def __init__(self):
        self.name = None
        self.description = ""
        self.duration_s = None
        self.start_epoch_s = None
        self.seed = 1
        self.status_every_s = 60.0
        self.board = None
        self.pv = None
        self.irradiance = None
        self.irradiance_points = None
        self.profile_duration_s = None
        self.temperature = None
        self.shade_points = None
        self.pv2 = None
        self.board_channels = 1
        self.battery = None
        self.load = None
        self.faults = []
        self.settings = {}
        self.path = None
        self.overrides = {}
        # compiled profiles
        self._irr = None
        self._irr_const = 0.0
        self._amb = None
        self._amb_const = 25.0
        self._amb_step_ts = []
        self._amb_step_vs = []
        self._cell_mode = "noct"
        self._cell_fixed = None
        self._noct_k = (45.0 - 20.0) / 800.0
        self._shade = None
        self._shade2 = None
        self._load = None
        self._load_const = 0.0
        self._amb_points = []
        self._changes = []

    def __repr__(self):
        return "<Scenario %r from %s, %g s>" % (self.name, self.path, self.duration_s)

    # --- profiles: called every few ms of simulated time -------------------------------------------------------

    def irradiance_w_m2(self, t_s):
        """Plane-of-array irradiance (W/m2) at t_s (seconds since the start), before partial shade."""
        irr = self._irr
        return self._irr_const if irr is None else irr(t_s)

    def ambient_c(self, t_s):
        """Ambient temperature (C) at t_s; an ambient_step fault replaces it from its time on."""
        steps = self._amb_step_ts
        if steps and t_s >= steps[0]:
            return self._amb_step_vs[bisect_right(steps, t_s) - 1]
        amb = self._amb
        return self._amb_const if amb is None else amb(t_s)

    def cell_temp_c(self, t_s, g_w_m2):
        """Cell temperature (C) at t_s under irradiance g_w_m2 ([temperature] cell: noct, ambient or fixed)."""
        mode = self._cell_mode
        if mode == "noct":
            return self.ambient_c(t_s) + self._noct_k * g_w_m2
        if mode == "ambient":
            return self.ambient_c(t_s)
        return self._cell_fixed

    def shade(self, t_s):
        """Per-sub-string irradiance factors (tuple of series * substrings floats) at t_s, or None without
        [shade]."""
        sh = self._shade
        return None if sh is None else sh(t_s)

    def shade2(self, t_s):
        """[pv2] shade: per-sub-string factors of the second channel's array at t_s, or None."""
        sh = self._shade2
        return None if sh is None else sh(t_s)

    def load_fraction(self, t_s):
        """0..1: how much of the [load] is on at t_s (0 without a load or with kind = "off")."""
        ld = self._load
        return self._load_const if ld is None else ld(t_s)

    def next_change_s(self, t_s):
        """The first breakpoint (of irradiance, ambient, shade, load schedule, or a fault) strictly after t_s;
        math.inf if there is none."""
        ch = self._changes
        i = bisect_right(ch, t_s)
        return ch[i] if i < len(ch) else math.inf


# ---------------------------------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------------------------------

def parse_override(text):
    """'battery.soc=0.3' -> ('battery.soc', 0.3). The value is read as a TOML literal (numbers, true/false,
    quoted strings, arrays, inline tables) when it is one, else kept as the raw string."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ScenarioError("override %r: expected key=value, e.g. scenario.duration_s=600" % (text,))
    raw = raw.strip()
    try:
        value = tomllib.loads("v = " + raw)["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return key, value


def load_scenario(path, overrides=None, *, root=None):
    """Read, validate and compile a scenario file. ``overrides``: {"dotted.key": value} applied before validation
    ("scenario.duration_s", "board.cost.control_step_us", "faults" (a whole list), ...; the value None removes
    the key). ``root``: the project
    root the board config and relative paths are resolved against (default: this checkout). Raises ScenarioError
    (one, for the first problem found)."""
    root = Path(root).resolve() if root is not None else PROJECT_ROOT
    path = Path(path)
    label = _label(path, root)
    try:
        with open(path, "rb") as f:
            raw = tomllib.load(f)
    except FileNotFoundError:
        raise ScenarioError("%s: no such scenario file" % label) from None
    except tomllib.TOMLDecodeError as e:
        raise ScenarioError("%s: invalid TOML: %s" % (label, e)) from None
    except OSError as e:
        raise ScenarioError("%s: cannot read: %s" % (label, e.strerror or e)) from None
    overrides = dict(overrides or {})
    raw = _apply_overrides(raw, overrides, label)
    v = _Validator(label, path.resolve(), root, set(overrides))
    sc = v.build(raw)
    sc.overrides = overrides
    return sc


def _label(path, root):
    try:
        return Path(os.path.relpath(path.resolve(), root)).as_posix() if path.resolve().is_relative_to(root) \
            else str(path)
    except (OSError, ValueError):
        return str(path)


def _apply_overrides(raw, overrides, label):
    raw = copy.deepcopy(raw)
    for key, value in overrides.items():
        parts = str(key).split(".")
        if not all(parts):
            raise ScenarioError("%s: override %r: not a dotted key like scenario.duration_s" % (label, key))
        node = raw
        for i, part in enumerate(parts[:-1]):
            nxt = node.get(part)
            if nxt is None:
                nxt = node[part] = {}
            elif not isinstance(nxt, dict):
                raise ScenarioError("%s: override %r: %s is not a table" % (label, key, ".".join(parts[:i + 1])))
            node = nxt
        if value is None:
            node.pop(parts[-1], None)  # None removes the key (TOML has no null)
        else:
            node[parts[-1]] = value
    return raw


@lru_cache(maxsize=1)
def _cec_modules():
    from pvlib.pvsystem import retrieve_sam

    return retrieve_sam("CECMod")


def _type_name(v):
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int):
        return "integer"
    if isinstance(v, float):
        return "float"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    if isinstance(v, dict):
        return "table"
    if isinstance(v, (_dt.datetime, _dt.date, _dt.time)):
        return "date-time"
    return type(v).__name__


def _show(v):
    if isinstance(v, float):
        return "%g" % v
    if isinstance(v, (list, dict)):
        s = repr(v)
        return s if len(s) <= 60 else s[:57] + "..."
    return repr(v)


def _fmt(x):
    return "%g" % x


class _Validator:
    def __init__(self, label, path, root, overridden):
        self.label = label
        self.path = path
        self.root = root
        self.overridden = overridden

    # --- errors and primitive checks ---------------------------------------------------------------------------

    def fail(self, sec, key, msg):
        where = (sec if sec.startswith("[") else "[%s]" % sec) if sec else ""
        if key is not None:
            where = "%s %s" % (where, key) if where else str(key)
            dotted = ("%s.%s" % (sec, key)) if sec else str(key)
            if dotted in self.overridden:
                msg += " (value set by an override)"
        raise ScenarioError("%s: %s: %s" % (self.label, where, msg))

    def table(self, raw, sec, required=False):
        v = raw.get(sec)
        if v is None:
            if required:
                self.fail(sec, None, "missing required section")
            return None
        if not isinstance(v, dict):
            self.fail(None, sec, "expected a table ([%s]), got %s %s" % (sec, _type_name(v), _show(v)))
        return v

    def subtable(self, tab, sec, key):
        v = tab.get(key)
        if v is None:
            return {}
        if not isinstance(v, dict):
            self.fail(sec, key, "expected a table ([%s.%s]), got %s %s" % (sec, key, _type_name(v), _show(v)))
        return v

    def keys(self, tab, sec, allowed, required=(), others=None, other_what=""):
        """Unknown keys (with a suggestion) and missing required keys. ``others``: {key: [contexts]} of keys that
        exist but not here (e.g. [pv] module with source en50530)."""
        for k in tab:
            if k in allowed:
                continue
            if others and k in others:
                self.fail(sec, k, "not used %s (it applies to: %s)" % (other_what, ", ".join(others[k])))
            known = list(allowed) + list(others or ())
            close = difflib.get_close_matches(str(k), known, n=1, cutoff=0.6)
            hint = "; did you mean %r?" % close[0] if close else "; known keys: %s" % ", ".join(allowed)
            self.fail(sec, k, "unknown key%s" % hint)
        for k in required:
            if k not in tab:
                self.fail(sec, k, "missing required key")

    def num(self, sec, key, v, lo=None, hi=None, lo_open=False, hi_open=False, integer=False):
        if integer:
            if isinstance(v, bool) or not isinstance(v, int):
                self.fail(sec, key, "expected an integer, got %s %s" % (_type_name(v), _show(v)))
        elif isinstance(v, bool) or not isinstance(v, (int, float)):
            self.fail(sec, key, "expected a number, got %s %s" % (_type_name(v), _show(v)))
        elif not math.isfinite(v):
            self.fail(sec, key, "expected a finite number, got %s" % _show(v))
        if lo is not None and (v <= lo if lo_open else v < lo):
            self.fail(sec, key, "%s is out of range: must be %s %s%s" % (
                _show(v), ">" if lo_open else ">=", _fmt(lo), "" if hi is None else " and %s %s" % (
                    "<" if hi_open else "<=", _fmt(hi))))
        if hi is not None and (v >= hi if hi_open else v > hi):
            self.fail(sec, key, "%s is out of range: must be %s%s %s" % (
                _show(v), "" if lo is None else "%s %s and " % (">" if lo_open else ">=", _fmt(lo)),
                "<" if hi_open else "<=", _fmt(hi)))
        return v if integer else float(v)

    def boolean(self, sec, key, v):
        if not isinstance(v, bool):
            self.fail(sec, key, "expected true or false, got %s %s" % (_type_name(v), _show(v)))
        return v

    def string(self, sec, key, v, nonempty=True):
        if not isinstance(v, str):
            self.fail(sec, key, "expected a string, got %s %s" % (_type_name(v), _show(v)))
        if nonempty and not v.strip():
            self.fail(sec, key, "must not be empty")
        return v

    def enum(self, sec, key, v, choices):
        if not isinstance(v, str):
            self.fail(sec, key, "expected one of %s, got %s %s" % (", ".join(choices), _type_name(v), _show(v)))
        for c in choices:
            if c.lower() == v.lower():
                return c
        close = difflib.get_close_matches(v, choices, n=1, cutoff=0.6)
        self.fail(sec, key, "%r is not one of %s%s" % (v, ", ".join(choices),
                                                      "; did you mean %r?" % close[0] if close else ""))

    def series_points(self, sec, key, v, lo=None, hi=None, what="value"):
        """[[t_s, x], ...]: t >= 0, not decreasing, at most two points at one t; x a number in lo..hi."""
        if not isinstance(v, list):
            self.fail(sec, key, "expected an array of [t_s, %s] pairs, got %s %s" % (what, _type_name(v), _show(v)))
        if not v:
            self.fail(sec, key, "needs at least one [t_s, %s] pair" % what)
        out = []
        for i, p in enumerate(v):
            k = "%s[%d]" % (key, i)
            if not isinstance(p, list) or len(p) != 2:
                self.fail(sec, k, "expected a [t_s, %s] pair, got %s" % (what, _show(p)))
            t = self.num(sec, k + " t_s", p[0], lo=0.0)
            x = self.num(sec, k + " " + what, p[1], lo=lo, hi=hi)
            self._check_time_order(sec, k, out, t)
            out.append((t, x))
        return out

    def _check_time_order(self, sec, k, out, t):
        if out and t < out[-1][0]:
            self.fail(sec, k, "t_s %s comes before the previous point's %s (times must not decrease)"
                      % (_fmt(t), _fmt(out[-1][0])))
        if len(out) >= 2 and t == out[-1][0] == out[-2][0]:
            self.fail(sec, k, "three points at t_s %s (a step needs two)" % _fmt(t))

    # --- sections ----------------------------------------------------------------------------------------------

    def build(self, raw):
        sc = Scenario()
        sc.path = self.path
        for k in raw:
            if k not in SECTIONS:
                close = difflib.get_close_matches(str(k), SECTIONS, n=1, cutoff=0.6)
                hint = "; did you mean [%s]?" % close[0] if close else "; known sections: %s" % ", ".join(SECTIONS)
                if isinstance(raw[k], dict):
                    self.fail(k, None, "unknown section%s" % hint)
                self.fail(None, k, "unknown top-level key%s" % hint)
        for s in REQUIRED_SECTIONS:
            self.table(raw, s, required=True)
        self._scenario(sc, self.table(raw, "scenario"))
        self._board(sc, self.table(raw, "board"))
        self._pv(sc, self.table(raw, "pv"))
        self._pv2(sc, self.table(raw, "pv2"))
        self._temperature(sc, self.table(raw, "temperature") or {})
        self._faults(sc, raw.get("faults"))  # before [battery]: an ambient_step at t = 0 sets its default temp_c
        self._irradiance(sc, self.table(raw, "irradiance"))
        self._shade(sc, self.table(raw, "shade"))
        self._battery(sc, self.table(raw, "battery"))
        self._load(sc, self.table(raw, "load"))
        self._settings(sc, self.table(raw, "settings"))
        self._compile_changes(sc)
        return sc

    def _scenario(self, sc, tab):
        sec = "scenario"
        self.keys(tab, sec, ("name", "description", "duration_s", "start", "seed", "realtime_status_s"),
                  required=("name", "duration_s"))
        sc.name = self.string(sec, "name", tab["name"])
        sc.description = self.string(sec, "description", tab.get("description", ""), nonempty=False)
        sc.duration_s = self.num(sec, "duration_s", tab["duration_s"], lo=0.0, lo_open=True)
        sc.start_epoch_s = self._start(sec, "start", tab.get("start", DEFAULT_START))
        sc.seed = self.num(sec, "seed", tab.get("seed", 1), integer=True)
        sc.status_every_s = self.num(sec, "realtime_status_s", tab.get("realtime_status_s", 60), lo=0.0,
                                     lo_open=True)

    def _start(self, sec, key, v):
        if isinstance(v, _dt.datetime):
            dt = v
        elif isinstance(v, _dt.date):
            dt = _dt.datetime(v.year, v.month, v.day)
        elif isinstance(v, str):
            s = v.strip()
            if s.endswith(("Z", "z")):
                s = s[:-1] + "+00:00"
            try:
                dt = _dt.datetime.fromisoformat(s)
            except ValueError:
                self.fail(sec, key, "%r is not an ISO 8601 date-time like 2026-06-21T00:00:00Z" % v)
        else:
            self.fail(sec, key, "expected an ISO 8601 date-time like \"2026-06-21T00:00:00Z\", got %s %s"
                      % (_type_name(v), _show(v)))
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=_dt.timezone.utc)
        return int(math.floor(dt.timestamp()))

    def _board(self, sc, tab):
        sec = "board"
        self.keys(tab, sec, ("config", "adc", "current_sensor", "tolerances", "cost", "modules"),
                  required=("config",))
        config = self.string(sec, "config", tab["config"])
        if not re.fullmatch(r"[A-Za-z0-9_]+", config):
            self.fail(sec, "config", "%r is not a board config name (letters, digits, _)" % config)
        cfg_dir = self.root / "boardconfigs"
        cfg_path = cfg_dir / (config + ".py")
        if not cfg_path.is_file():
            have = sorted(p.stem for p in cfg_dir.glob("*.py") if p.stem != "__init__") if cfg_dir.is_dir() else []
            close = difflib.get_close_matches(config, have, n=1, cutoff=0.6)
            self.fail(sec, "config", "%r: there is no file boardconfigs/%s.py%s" % (
                config, config, "; did you mean %r?" % close[0] if close else
                " (available: %s)" % ", ".join(have) if have else ""))
        adc = tab.get("adc")
        cs = tab.get("current_sensor")
        board = {
            "config": config,
            "config_path": str(cfg_path),
            "adc": None if adc is None else self.enum(sec, "adc", adc, ADCS),
            "current_sensor": None if cs is None else self.enum(sec, "current_sensor", cs, CURRENT_SENSORS),
            "tolerances": self.boolean(sec, "tolerances", tab.get("tolerances", True)),
        }
        from sim.simboard import CostModel

        known_cost = tuple(sorted(vars(CostModel())))
        cost_tab = self.subtable(tab, sec, "cost")
        self.keys(cost_tab, "board.cost", known_cost)
        board["cost"] = {k: self.num("board.cost", k, v, lo=0.0) for k, v in cost_tab.items()}
        mod_tab = self.subtable(tab, sec, "modules")
        self.keys(mod_tab, "board.modules", EXTENSION_MODULES)
        board["modules"] = {m: self.boolean("board.modules", m, mod_tab.get(m, False)) for m in EXTENSION_MODULES}
        sc.board = board
        sc.board_channels = self._board_channels(sec, cfg_path)

    def _board_channels(self, sec, cfg_path):
        """How many power stages the board config has (it is read here, so a broken file fails at load time)."""
        import importlib.util

        spec = importlib.util.spec_from_file_location("_scenario_boardconfig_check", cfg_path)
        mod = importlib.util.module_from_spec(spec)
        try:
            spec.loader.exec_module(mod)
            cfg = mod.BOARD
            chans = cfg.get("channels")
        except Exception as e:  # noqa: BLE001 - any error in the config file is the scenario's problem to report
            self.fail(sec, "config", "boardconfigs/%s: cannot read its BOARD dict: %s: %s"
                      % (cfg_path.name, type(e).__name__, e))
        return len(chans) if chans else 1

    def _pv(self, sc, tab):
        sc.pv = self._pv_block("pv", tab)

    def _pv2(self, sc, tab):
        if tab is None:
            return
        sec = "pv2"
        if sc.board_channels < 2:
            self.fail(sec, None, "board %r has one power stage: [pv2] needs a two-channel board (e.g. fugu_dual)"
                      % sc.board["config"])
        all_pv_keys = tuple(sorted(set(k for ks in PV_KEYS.values() for k in ks)))
        self.keys(tab, sec, PV2_EXTRA_KEYS + all_pv_keys)
        block = {k: v for k, v in tab.items() if k not in PV2_EXTRA_KEYS}
        if block:
            if "source" not in block:
                self.fail(sec, next(iter(block)), "without source = ... [pv2] copies [pv]; give a whole PV block "
                          "(source and its keys) or only %s" % ", ".join(PV2_EXTRA_KEYS))
            pv2 = self._pv_block(sec, block)
        else:
            pv2 = copy.deepcopy(sc.pv)
        pv2["irradiance_scale"] = self.num(sec, "irradiance_scale", tab.get("irradiance_scale", 1.0), 0.0, 2.0)
        pv2["shade_points"] = None
        if "shade" in tab:
            pv2["shade_points"] = self._shade_points(sec, "shade", tab["shade"], pv2)
            sc._shade2 = profiles.PiecewiseLinearVec(pv2["shade_points"])
        sc.pv2 = pv2

    def _pv_block(self, sec, tab):
        if "source" not in tab:
            self.fail(sec, "source", "missing required key (one of %s)" % ", ".join(PV_SOURCES))
        source = self.enum(sec, "source", tab["source"], PV_SOURCES)
        allowed = PV_KEYS[source]
        others = {}
        for src, ks in PV_KEYS.items():
            for k in ks:
                if k not in allowed:
                    others.setdefault(k, []).append(src)
        required = {"cec": ("module",), "en50530": ("p_mpp_w", "v_mpp_v"), "iv_csv": ("file",)}[source]
        self.keys(tab, sec, allowed, required=required, others=others, other_what="by source %r" % source)
        pv = {"source": source}
        if source == "en50530":
            pv["p_mpp_w"] = self.num(sec, "p_mpp_w", tab["p_mpp_w"], lo=0.0, lo_open=True)
            pv["v_mpp_v"] = self.num(sec, "v_mpp_v", tab["v_mpp_v"], lo=0.0, lo_open=True)
            pv["technology"] = self.enum(sec, "technology", tab.get("technology", "cSi"), EN50530_TECHNOLOGIES)
            pv["series"] = pv["parallel"] = 1
            pv["substrings"] = self.num(sec, "substrings", tab.get("substrings", 1), lo=1, integer=True)
            return pv
        pv["series"] = self.num(sec, "series", tab.get("series", 1), lo=1, integer=True)
        pv["parallel"] = self.num(sec, "parallel", tab.get("parallel", 1), lo=1, integer=True)
        pv["substrings"] = self.num(sec, "substrings", tab.get("substrings", 3), lo=1, integer=True)
        if source == "cec":
            name = self.string(sec, "module", tab["module"])
            db = _cec_modules()
            if name not in db.columns:
                close = difflib.get_close_matches(name, list(db.columns), n=3, cutoff=0.6)
                self.fail(sec, "module", "%r is not in the CEC module database (pvlib retrieve_sam('CECMod'))%s"
                          % (name, "; did you mean %s?" % " or ".join(repr(c) for c in close) if close else ""))
            row = db[name]
            params = {}
            for k, x in row.items():
                try:
                    params[k] = float(x)
                except (TypeError, ValueError):
                    params[k] = str(x)
            pv["module"] = name
            pv["params"] = params
            pv["cells_in_series"] = int(params["N_s"])
            if pv["substrings"] > pv["cells_in_series"]:
                self.fail(sec, "substrings", "%d sub-strings but the module has %d cells"
                          % (pv["substrings"], pv["cells_in_series"]))
        else:
            pv["file"], pv["iv_curve"] = self._iv_csv(sec, "file", tab["file"])
        return pv

    def _iv_csv(self, sec, key, v):
        name = self.string(sec, key, v)
        p = Path(name)
        candidates = [p] if p.is_absolute() else [self.root / p, self.path.parent / p]
        found = next((c for c in candidates if c.is_file()), None)
        if found is None:
            self.fail(sec, key, "%r: no such file (looked in %s)" % (
                name, " and ".join(_label(c, self.root) for c in candidates)))
        try:
            lines = found.read_text(encoding="utf-8-sig").splitlines()
        except (OSError, UnicodeDecodeError) as e:
            self.fail(sec, key, "%r: cannot read: %s" % (name, e))
        rows = [ln.strip() for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]
        header = [h.strip().lower() for h in rows[0].split(",")] if rows else []
        if header != ["v_v", "i_a"]:
            self.fail(sec, key, "%r: the first line must be the header v_v,i_a, got %r"
                      % (name, rows[0] if rows else ""))
        curve = []
        for n, ln in enumerate(rows[1:], start=2):
            cells = ln.split(",")
            try:
                vv, ii = (float(c) for c in cells)
            except ValueError:
                self.fail(sec, key, "%r: row %d: expected two numbers v_v,i_a, got %r" % (name, n, ln))
            if not (math.isfinite(vv) and math.isfinite(ii)) or vv < 0.0:
                self.fail(sec, key, "%r: row %d: voltage must be >= 0 and both values finite" % (name, n))
            if curve and vv <= curve[-1][0]:
                self.fail(sec, key, "%r: row %d: voltages must increase" % (name, n))
            curve.append((vv, ii))
        if len(curve) < 3:
            self.fail(sec, key, "%r: needs at least 3 (v, i) rows" % name)
        return str(found.resolve()), curve

    def _temperature(self, sc, tab):
        sec = "temperature"
        self.keys(tab, sec, ("ambient_c", "cell", "noct_c"))
        amb = tab.get("ambient_c", 25.0)
        temp = {}
        if isinstance(amb, dict):
            k = "ambient_c"
            self.keys(amb, "temperature.ambient_c", ("profile", "points"), required=("profile", "points"))
            if amb["profile"] != "points":
                self.fail("temperature.ambient_c", "profile", "%r: only \"points\" is supported here (or give "
                          "ambient_c as a number)" % (amb["profile"],))
            pts = self.series_points(sec, k, amb["points"], *AMBIENT_RANGE, what="c")
            temp["ambient_c"] = pts
            sc._amb = profiles.PiecewiseLinear(pts)
            sc._amb_points = pts
        else:
            temp["ambient_c"] = self.num(sec, "ambient_c", amb, *AMBIENT_RANGE)
            sc._amb_const = temp["ambient_c"]
            sc._amb_points = []
        cell = tab.get("cell", "noct")
        if isinstance(cell, str):
            cell = self.enum(sec, "cell", cell, ("noct", "ambient"))
            sc._cell_mode = cell
        elif isinstance(cell, (int, float)) and not isinstance(cell, bool):
            cell = self.num(sec, "cell", cell, -60.0, 150.0)
            sc._cell_mode = "fixed"
            sc._cell_fixed = cell
        else:
            self.fail(sec, "cell", "expected \"noct\", \"ambient\" or a number, got %s %s"
                      % (_type_name(cell), _show(cell)))
        temp["cell"] = cell
        temp["noct_c"] = self.num(sec, "noct_c", tab.get("noct_c", 45.0), lo=20.0, hi=100.0)
        sc._noct_k = (temp["noct_c"] - 20.0) / 800.0
        sc.temperature = temp

    def _irradiance(self, sc, tab):
        sec = "irradiance"
        if "profile" not in tab:
            self.fail(sec, "profile", "missing required key (one of %s)" % ", ".join(IRRADIANCE_PROFILES))
        prof = self.enum(sec, "profile", tab["profile"], IRRADIANCE_PROFILES)
        allowed = IRRADIANCE_KEYS[prof]
        others = {}
        for p, ks in IRRADIANCE_KEYS.items():
            for k in ks:
                if k not in allowed:
                    others.setdefault(k, [])
                    if p not in others[k]:
                        others[k].append(p)
        required = {"constant": ("value",), "points": ("points",),
                    "clear_sky": ("latitude", "longitude", "tilt_deg", "azimuth_deg"),
                    "broken_clouds": ("latitude", "longitude", "tilt_deg", "azimuth_deg", "cloud_cover"),
                    }.get(prof, ())
        self.keys(tab, sec, allowed, required=required, others=others, other_what="by profile %r" % prof)
        irr = {"profile": prof}
        pts = None
        if prof == "constant":
            irr["value"] = self.num(sec, "value", tab["value"], 0.0, MAX_IRRADIANCE)
            sc._irr_const = irr["value"]
        elif prof == "points":
            pts = self.series_points(sec, "points", tab["points"], 0.0, MAX_IRRADIANCE, what="w_m2")
            irr["points"] = pts
        elif prof in ("clear_sky", "broken_clouds"):
            irr["latitude"] = self.num(sec, "latitude", tab["latitude"], -90.0, 90.0)
            irr["longitude"] = self.num(sec, "longitude", tab["longitude"], -180.0, 180.0)
            irr["tilt_deg"] = self.num(sec, "tilt_deg", tab["tilt_deg"], 0.0, 180.0)
            irr["azimuth_deg"] = self.num(sec, "azimuth_deg", tab["azimuth_deg"], 0.0, 360.0)
            irr["peak"] = None if tab.get("peak") is None else self.num(sec, "peak", tab["peak"], 0.0,
                                                                         MAX_IRRADIANCE, lo_open=True)
            irr["step_s"] = self.num(sec, "step_s", tab.get("step_s", 60.0), lo=0.0, lo_open=True, hi=3600.0)
            irr["albedo"] = self.num(sec, "albedo", tab.get("albedo", 0.25), 0.0, 1.0)
            irr["altitude_m"] = self.num(sec, "altitude_m", tab.get("altitude_m", 0.0), -500.0, 9000.0)
            pts = profiles.clear_sky_points(
                irr["latitude"], irr["longitude"], irr["tilt_deg"], irr["azimuth_deg"], sc.start_epoch_s,
                sc.duration_s, step_s=irr["step_s"], peak=irr["peak"], albedo=irr["albedo"],
                altitude_m=irr["altitude_m"])
            if prof == "broken_clouds":
                irr["cloud_cover"] = self.num(sec, "cloud_cover", tab["cloud_cover"], 0.0, 1.0)
                pts = profiles.broken_clouds_points(pts, irr["cloud_cover"], sc.seed)
        else:
            seq = 1 if prof == "en50530_seq1" else 2
            irr["start_s"] = self.num(sec, "start_s", tab.get("start_s", profiles.EN50530_START_S), lo=0.0)
            slopes = tab.get("slopes")
            if slopes is not None:
                if not isinstance(slopes, list) or not slopes:
                    self.fail(sec, "slopes", "expected a non-empty array of slopes (W/m2/s), got %s"
                              % _show(slopes))
                allowed_slopes = profiles.en50530_slopes(seq)
                seen = []
                for i, s in enumerate(slopes):
                    s = self.num(sec, "slopes[%d]" % i, s)
                    if s not in allowed_slopes:
                        self.fail(sec, "slopes[%d]" % i, "%s W/m2/s is not a slope of EN 50530 sequence %d "
                                  "(slopes: %s)" % (_fmt(s), seq, ", ".join(_fmt(a) for a in allowed_slopes)))
                    if s in seen:
                        self.fail(sec, "slopes[%d]" % i, "slope %s is listed twice" % _fmt(s))
                    seen.append(s)
                slopes = seen
            irr["slopes"] = slopes
            pts = profiles.en50530_sequence(seq, slopes, start_s=irr["start_s"])
            sc.profile_duration_s = pts[-1][0]
        if pts is not None:
            sc.irradiance_points = pts
            sc._irr = profiles.PiecewiseLinear(pts)
        sc.irradiance = irr

    def _shade(self, sc, tab):
        if tab is None:
            return
        sec = "shade"
        self.keys(tab, sec, ("points",), required=("points",))
        sc.shade_points = self._shade_points(sec, "points", tab["points"], sc.pv)
        sc._shade = profiles.PiecewiseLinearVec(sc.shade_points)

    def _shade_points(self, sec, key, v, pv):
        """[[t_s, [factor, ...]], ...] for an array of pv["series"] * pv["substrings"] sub-strings."""
        n = pv["series"] * pv["substrings"]
        if not isinstance(v, list) or not v:
            self.fail(sec, key, "expected a non-empty array of [t_s, [factor, ...]] pairs, got %s" % _show(v))
        out = []
        for i, p in enumerate(v):
            k = "%s[%d]" % (key, i)
            if not isinstance(p, list) or len(p) != 2 or not isinstance(p[1], list):
                self.fail(sec, k, "expected [t_s, [factor, ...]], got %s" % _show(p))
            t = self.num(sec, k + " t_s", p[0], lo=0.0)
            if len(p[1]) != n:
                self.fail(sec, k, "the factor vector has %d entries but the array has %d sub-strings "
                          "(series %d x substrings %d)" % (len(p[1]), n, pv["series"], pv["substrings"]))
            vec = tuple(self.num(sec, "%s[%d]" % (k, j), x, 0.0, 1.0) for j, x in enumerate(p[1]))
            self._check_time_order(sec, k, out, t)
            out.append((t, vec))
        return out

    def _battery(self, sc, tab):
        sec = "battery"
        self.keys(tab, sec, ("present", "chemistry", "cells", "capacity_ah", "soc", "temp_c"))
        present = self.boolean(sec, "present", tab.get("present", True))
        if present:
            for k in ("chemistry", "cells", "capacity_ah"):
                if k not in tab:
                    self.fail(sec, k, "missing required key (or set present = false)")
        bat = {"present": present}
        bat["chemistry"] = None if "chemistry" not in tab else self.enum(sec, "chemistry", tab["chemistry"],
                                                                           CHEMISTRIES)
        bat["cells"] = None if "cells" not in tab else self.num(sec, "cells", tab["cells"], 1, 64, integer=True)
        bat["capacity_ah"] = None if "capacity_ah" not in tab else self.num(
            sec, "capacity_ah", tab["capacity_ah"], lo=0.0, lo_open=True)
        bat["soc"] = self.num(sec, "soc", tab.get("soc", 0.5), 0.0, 1.0)
        bat["temp_c"] = (self.num(sec, "temp_c", tab["temp_c"], *AMBIENT_RANGE) if "temp_c" in tab
                         else sc.ambient_c(0.0))
        sc.battery = bat

    def _load(self, sc, tab):
        if tab is None:
            sc.load = None
            sc._load_const = 0.0
            return
        sec = "load"
        self.keys(tab, sec, ("kind", "value", "schedule", "port", "uvlo_v"), required=("kind",))
        kind = self.enum(sec, "kind", tab["kind"], LOAD_KINDS)
        load = {"kind": kind, "port": self.enum(sec, "port", tab.get("port", "battery"), LOAD_PORTS)}
        if kind == "off":
            load["value"] = 0.0 if "value" not in tab else self.num(sec, "value", tab["value"], lo=0.0)
        else:
            if "value" not in tab:
                self.fail(sec, "value", "missing required key (%s)" % {
                    "resistive": "ohm", "constant_power": "W", "constant_current": "A"}[kind])
            load["value"] = self.num(sec, "value", tab["value"], lo=0.0, lo_open=(kind == "resistive"))
        if "uvlo_v" in tab:
            if kind not in ("constant_power", "constant_current"):
                self.fail(sec, "uvlo_v", "an under-voltage lockout needs kind constant_power or constant_current, "
                                         "not %r" % kind)
            load["uvlo_v"] = self.num(sec, "uvlo_v", tab["uvlo_v"], lo=0.0, lo_open=True)
        sched = tab.get("schedule")
        if sched is not None:
            pts = self.series_points(sec, "schedule", sched, 0.0, 1.0, what="fraction")
            for i in range(1, len(pts)):
                if pts[i][0] == pts[i - 1][0]:
                    self.fail(sec, "schedule[%d]" % i, "two entries at t_s %s (the schedule is piecewise constant)"
                              % _fmt(pts[i][0]))
            load["schedule"] = pts
        else:
            load["schedule"] = None
        sc.load = load
        if kind == "off":
            sc._load_const = 0.0
        elif sched is None:
            sc._load_const = 1.0
        else:
            sc._load = profiles.PiecewiseConstant(load["schedule"], before=0.0)

    def _faults(self, sc, v):
        if v is None:
            sc.faults = []
            return
        if isinstance(v, dict):
            self.fail(None, "faults", "expected an array of tables: write [[faults]] (double brackets)")
        if not isinstance(v, list):
            self.fail(None, "faults", "expected an array of tables ([[faults]]), got %s %s" % (_type_name(v), _show(v)))
        out = []
        for i, f in enumerate(v, start=1):
            s_lbl = "[[faults]] #%d" % i
            if not isinstance(f, dict):
                self.fail(s_lbl, None, "expected a table, got %s %s" % (_type_name(f), _show(f)))
            if isinstance(f.get("t_s"), (int, float)) and not isinstance(f.get("t_s"), bool):
                s_lbl += " (t_s=%s)" % _fmt(f["t_s"])
            self.keys(f, s_lbl, ("t_s", "kind", "value"), required=("t_s", "kind"))
            t = self.num(s_lbl, "t_s", f["t_s"], lo=0.0)
            kind = self.enum(s_lbl, "kind", f["kind"], FAULT_KINDS)
            if kind in FAULT_VALUE_RANGE:
                if "value" not in f:
                    self.fail(s_lbl, "value", "missing required key (%s takes a value)" % kind)
                value = self.num(s_lbl, "value", f["value"], *FAULT_VALUE_RANGE[kind])
            elif kind in FAULT_CHANNEL_KINDS and "value" in f:  # optional: the channel it hits (none: all)
                value = self.num(s_lbl, "value", f["value"], 0, sc.board_channels - 1, integer=True)
            else:
                if "value" in f:
                    self.fail(s_lbl, "value", "fault kind %r takes no value (only %s do; the pv_*, adc_* and "
                              "backflow_* kinds take a channel)" % (kind, ", ".join(FAULT_VALUE_RANGE)))
                value = None
            out.append({"t_s": t, "kind": kind, "value": value})
        out.sort(key=lambda d: d["t_s"])  # stable: same-time faults keep the file's order
        sc.faults = out
        steps = [(f["t_s"], f["value"]) for f in out if f["kind"] == "ambient_step"]
        sc._amb_step_ts = [t for t, _ in steps]
        sc._amb_step_vs = [x for _, x in steps]

    def _settings(self, sc, tab):
        sec = "settings"
        out = {}
        for k, v in (tab or {}).items():
            if isinstance(v, (bool, int, str)) or (isinstance(v, float) and math.isfinite(v)):
                out[k] = v
            else:
                self.fail(sec, k, "expected a boolean, number or string, got %s %s" % (_type_name(v), _show(v)))
        sc.settings = out

    def _compile_changes(self, sc):
        ts = set()
        if sc.irradiance_points:
            ts.update(t for t, _ in sc.irradiance_points)
        ts.update(t for t, _ in getattr(sc, "_amb_points", []))
        if sc.shade_points:
            ts.update(t for t, _ in sc.shade_points)
        if sc.pv2 and sc.pv2["shade_points"]:
            ts.update(t for t, _ in sc.pv2["shade_points"])
        if sc.load and sc.load.get("schedule"):
            ts.update(t for t, _ in sc.load["schedule"])
        ts.update(f["t_s"] for f in sc.faults)
        sc._changes = sorted(ts)
