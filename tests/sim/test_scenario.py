"""Scenario files: the shipped ones load, the profiles are right, malformed files fail with one clear error.

EN 50530 facts checked here (EN 50530:2010 + A1:2013, Annex B, dynamic MPPT efficiency; same test in
IEC 62891:2020): sequence 1 ramps 100 <-> 500 W/m2 at 0.5, 1, 2, 3, 5, 7, 10, 14, 20, 30, 50 W/m2/s with
2, 2, 3, 4, 6, 8, 10, 10, 10, 10, 10 cycles; sequence 2 ramps 300 <-> 1000 W/m2 at 10, 14, 20, 30, 50, 100 W/m2/s
with 10 cycles each; a cycle is ramp up, 10 s dwell, ramp down, 10 s dwell; 300 s at the low level first.
See scenarios/README.md for the sources and the caveat on the repetition counts.
"""

import math
import random
import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim import profiles
from sim.scenario import PROJECT_ROOT, Scenario, ScenarioError, load_scenario, parse_override

SCEN_DIR = PROJECT_ROOT / "scenarios"
SHIPPED = {  # file stem -> duration_s as specified
    "demo": 600.0,
    "clear_day": 86400.0,
    "broken_clouds": 21600.0,
    "partial_shade": 1200.0,
    "en50530_seq1": None,  # the sequence's own duration
    "en50530_seq2": None,
    "battery_disconnect": 300.0,
    "pv_disconnect": 300.0,
    "lead_acid_day": 28800.0,
    "night": 7200.0,
    "dual_channel": 600.0,
    "shunt": 900.0,
    "s3_internal_adc": 600.0,
    # protections and charge profiles (tests/closed_loop/test_faults_more.py, test_charge_profiles.py)
    "input_overcurrent": 120.0,
    "output_overcurrent": 90.0,
    "reverse_current": 45.0,
    "over_temperature": 130.0,
    "fan_failure": 300.0,
    "charge_lifepo4": 240.0,
    "charge_lead_agm": 60.0,
    "boost": 40.0,  # tests/closed_loop/test_boost.py
}


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    """The project root, or a stand-in with a stub board config if boardconfigs/fugu_v1.py is not there (yet)."""
    if (PROJECT_ROOT / "boardconfigs" / "fugu_v1.py").is_file():
        return PROJECT_ROOT
    r = tmp_path_factory.mktemp("root")
    (r / "boardconfigs").mkdir()
    (r / "boardconfigs" / "fugu_v1.py").write_text("BOARD = {}\n")
    shutil.copytree(SCEN_DIR, r / "scenarios")
    return r


@pytest.fixture(scope="module")
def loaded(root):
    return {stem: load_scenario(SCEN_DIR / (stem + ".toml"), root=root) for stem in SHIPPED}


# ---------------------------------------------------------------------------------------------------------------
# shipped scenarios
# ---------------------------------------------------------------------------------------------------------------

def test_the_shipped_set_is_complete():
    assert {p.stem for p in SCEN_DIR.glob("*.toml")} == set(SHIPPED)


@pytest.mark.parametrize("stem", sorted(SHIPPED))
def test_every_shipped_scenario_loads(loaded, stem):
    sc = loaded[stem]
    assert isinstance(sc, Scenario)
    assert sc.name == stem
    if SHIPPED[stem] is None:
        assert sc.profile_duration_s is not None
        assert sc.profile_duration_s <= sc.duration_s < sc.profile_duration_s + 0.1
    else:
        assert sc.duration_s == SHIPPED[stem]
    assert sc.board["config"] in ("fugu_v1", "fugu_dual", "fugu_s3_internal_adc", "fugu_shunt", "fugu_s3")
    assert isinstance(sc.start_epoch_s, int)
    for t in (0.0, sc.duration_s / 3, sc.duration_s):
        g = sc.irradiance_w_m2(t)
        assert 0.0 <= g <= 1100.0
        assert -20.0 < sc.cell_temp_c(t, g) < 90.0
    assert sc.battery["present"]


def test_shipped_scenario_details(loaded):
    demo = loaded["demo"]
    assert all(demo.board["modules"].values()) and set(demo.board["modules"]) == {"oled", "sd", "can", "rs485", "ble"}
    assert demo.pv["source"] == "cec" and demo.pv["series"] == 2 and demo.pv["cells_in_series"] == 60
    assert 280 <= demo.pv["params"]["STC"] <= 320
    assert (demo.battery["chemistry"], demo.battery["cells"], demo.battery["capacity_ah"], demo.battery["soc"]) == \
        ("lifepo4", 8, 100.0, 0.5)
    assert demo.shade(0) == (1.0,) * 6 and min(demo.shade(400)) < 0.5
    assert min(demo.irradiance_w_m2(t) for t in range(0, 600, 5)) < 500  # the cloud edge

    day = loaded["clear_day"]
    assert day.load["kind"] == "constant_power" and day.load["value"] == 60.0
    assert day.load_fraction(12 * 3600) == 0.0 and day.load_fraction(20 * 3600) == 1.0
    assert (day.battery["capacity_ah"], day.battery["soc"]) == (400.0, 0.3)

    for stem in ("en50530_seq1", "en50530_seq2"):
        sc = loaded[stem]
        assert sc.pv["source"] == "en50530" and 20.0 <= sc.pv["v_mpp_v"] <= 80.0
        assert sc.pv["p_mpp_w"] / sc.pv["v_mpp_v"] < 30.0
        assert (sc.battery["chemistry"], sc.battery["cells"], sc.battery["capacity_ah"], sc.battery["soc"]) == \
            ("lifepo4", 8, 400.0, 0.5)

    assert loaded["battery_disconnect"].faults == [{"t_s": 120.0, "kind": "battery_disconnect", "value": None}]
    assert loaded["battery_disconnect"].irradiance_w_m2(50) == 800.0
    assert [f["kind"] for f in loaded["pv_disconnect"].faults] == ["pv_disconnect", "pv_reconnect"]
    la = loaded["lead_acid_day"]
    assert (la.battery["chemistry"], la.battery["cells"], la.battery["capacity_ah"], la.battery["soc"]) == \
        ("lead_agm", 6, 100.0, 0.6)
    assert loaded["night"].irradiance_w_m2(3600) == 0.0


# ---------------------------------------------------------------------------------------------------------------
# EN 50530
# ---------------------------------------------------------------------------------------------------------------

EN_SEQ1 = [(0.5, 2), (1, 2), (2, 3), (3, 4), (5, 6), (7, 8), (10, 10), (14, 10), (20, 10), (30, 10), (50, 10)]
EN_SEQ2 = [(10, 10), (14, 10), (20, 10), (30, 10), (50, 10), (100, 10)]


def _cycles(points, lo, hi):
    """Split a sequence into cycles: [(slope_up, dwell_hi, slope_down, dwell_lo), ...] (after the start)."""
    segs = list(zip(points, points[1:]))
    assert segs[0][0][1] == lo and segs[0][1][1] == lo  # the start hold
    out = []
    body = segs[1:]
    assert len(body) % 4 == 0
    for k in range(0, len(body), 4):
        (a, b), (c, d), (e, f), (g, h) = body[k:k + 4]
        assert (a[1], b[1], c[1], d[1], e[1], f[1], g[1], h[1]) == (lo, hi, hi, hi, hi, lo, lo, lo)
        out.append(((hi - lo) / (b[0] - a[0]), d[0] - c[0], (hi - lo) / (f[0] - e[0]), h[0] - g[0]))
    return out


@pytest.mark.parametrize("seq,table,lo,hi", [(1, EN_SEQ1, 100.0, 500.0), (2, EN_SEQ2, 300.0, 1000.0)])
def test_en50530_sequence_matches_the_standard(seq, table, lo, hi):
    assert profiles.en50530_slopes(seq) == [float(s) for s, _ in table]
    pts = profiles.en50530_sequence(seq)
    assert pts[0] == (0.0, lo) and pts[1] == (300.0, lo)  # 300 s stabilisation at the low level
    cycles = _cycles(pts, lo, hi)
    expected = [float(s) for s, n in table for _ in range(n)]
    assert len(cycles) == len(expected)
    for (up, dwell_hi, down, dwell_lo), slope in zip(cycles, expected):
        assert up == pytest.approx(slope, rel=1e-9) and down == pytest.approx(slope, rel=1e-9)
        assert dwell_hi == pytest.approx(10.0) and dwell_lo == pytest.approx(10.0)
    # total: 300 s + sum over slopes of n * (2 * ramp + 2 * 10 s)
    total = 300.0 + sum(n * (2 * (hi - lo) / s + 20.0) for s, n in table)
    assert pts[-1][0] == pytest.approx(total, abs=1e-6)
    assert profiles.en50530_duration_s(seq) == pytest.approx(total, abs=1e-6)


def test_en50530_total_durations():
    assert profiles.en50530_duration_s(1) == pytest.approx(300.0 + 12639.047619, abs=1e-3)  # about 3.6 h
    assert profiles.en50530_duration_s(2) == pytest.approx(300.0 + 5186.666667, abs=1e-3)  # about 1.5 h
    assert profiles.en50530_block_duration_s(1, 0.5) == pytest.approx(3240.0)
    assert profiles.en50530_block_duration_s(2, 100) == pytest.approx(340.0)


def test_en50530_subset_and_errors(root, tmp_path):
    pts = profiles.en50530_sequence(2, slopes=[100, 10], start_s=60)
    assert pts[1] == (60.0, 300.0)
    assert pts[-1][0] == pytest.approx(60.0 + 1600.0 + 340.0)  # run in the standard's order
    assert profiles.en50530_sequence(1, start_s=0)[0:2] == [(0.0, 100.0), (800.0, 500.0)]
    with pytest.raises(ValueError, match="not a slope"):
        profiles.en50530_sequence(1, slopes=[100])
    with pytest.raises(ValueError):
        profiles.en50530_sequence(3)
    sc = load_scenario(SCEN_DIR / "en50530_seq2.toml", {"irradiance.slopes": [50, 100], "irradiance.start_s": 30},
                       root=root)
    assert sc.profile_duration_s == pytest.approx(30.0 + 480.0 + 340.0)
    assert sc.irradiance_w_m2(0) == 300.0 and sc.irradiance_w_m2(30 + 7) == pytest.approx(650.0)
    split = load_scenario(SCEN_DIR / "en50530_seq2.toml", {"pv.substrings": 3, "shade.points": [[0, [1, 1, 0.5]]]},
                          root=root)
    assert (split.pv["series"], split.pv["substrings"]) == (1, 3) and split.shade(10) == (1.0, 1.0, 0.5)


# ---------------------------------------------------------------------------------------------------------------
# interpolation
# ---------------------------------------------------------------------------------------------------------------

def test_piecewise_linear_points_profile(root):
    sc = load_scenario(SCEN_DIR / "demo.toml", {
        "irradiance.points": [[10, 100.0], [20, 200.0], [20, 50.0], [40, 250.0]], "shade": None}, root=root)
    assert sc.irradiance_w_m2(0) == 100.0  # clamped before
    assert sc.irradiance_w_m2(15) == pytest.approx(150.0)
    assert sc.irradiance_w_m2(19.999) == pytest.approx(199.99)
    assert sc.irradiance_w_m2(20) == 50.0  # a step: the later value from its time on
    assert sc.irradiance_w_m2(30) == pytest.approx(150.0)
    assert sc.irradiance_w_m2(1e6) == 250.0  # clamped after
    assert sc.irradiance_w_m2(12) == pytest.approx(120.0)  # going back works
    assert sc.next_change_s(0) == 10.0 and sc.next_change_s(10) == 20.0 and sc.next_change_s(20) == 40.0
    assert sc.next_change_s(40) == math.inf
    assert sc.shade(5) is None


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(0, 1000, allow_nan=False), min_size=2, max_size=12, unique=True),
       st.lists(st.floats(-50, 1100, allow_nan=False), min_size=1, max_size=40),
       st.randoms(use_true_random=False))
def test_piecewise_linear_matches_numpy(ts, queries, rnd):
    ts = sorted(ts)
    vs = [rnd.uniform(0, 1000) for _ in ts]
    f = profiles.PiecewiseLinear(list(zip(ts, vs)))
    for q in queries + sorted(queries):
        assert f(q) == pytest.approx(float(np.interp(q, ts, vs)), rel=1e-9, abs=1e-6)


def test_vector_and_constant_profiles():
    f = profiles.PiecewiseLinearVec([(0, (1.0, 1.0)), (10, (0.0, 1.0)), (20, (0.0, 1.0))])
    assert f(-1) == (1.0, 1.0) and f(5) == pytest.approx((0.5, 1.0)) and f(15) == (0.0, 1.0) and f(99) == (0.0, 1.0)
    g = profiles.PiecewiseConstant([(10, 1.0), (20, 0.25)], before=0.0)
    assert [g(t) for t in (0, 9.99, 10, 19, 20, 1e9, 5)] == [0.0, 0.0, 1.0, 1.0, 0.25, 0.25, 0.0]


def test_irradiance_lookup_is_fast(loaded):
    import time

    sc = loaded["clear_day"]
    t0 = time.perf_counter()
    t = 0.0
    while t < 86400.0:  # 432k calls walking forward in 0.2 s steps
        sc.irradiance_w_m2(t)
        t += 0.2
    assert time.perf_counter() - t0 < 2.0


# ---------------------------------------------------------------------------------------------------------------
# other profiles
# ---------------------------------------------------------------------------------------------------------------

def test_clear_sky_peak_near_noon(loaded):
    sc = loaded["clear_day"]
    pts = sc.irradiance_points
    t_peak, g_peak = max(pts, key=lambda p: p[1])
    solar_noon_s = 11 * 3600 + 15 * 60  # 11:15 UTC at 11.6 E on June 21
    assert abs(t_peak - solar_noon_s) <= 45 * 60
    assert 800.0 <= g_peak <= 1100.0
    assert sc.irradiance_w_m2(1 * 3600) == 0.0 and sc.irradiance_w_m2(23 * 3600) == 0.0  # night
    assert sc.irradiance_w_m2(6 * 3600) > 100.0  # 08:00 local
    scaled = profiles.clear_sky_points(48.1, 11.6, 30, 180, sc.start_epoch_s, 86400, step_s=300, peak=500.0)
    assert max(g for _, g in scaled) == pytest.approx(500.0)


def test_broken_clouds_reproducible_with_fast_edges(loaded):
    clear = profiles.clear_sky_points(48.1, 11.6, 30, 180, loaded["broken_clouds"].start_epoch_s, 21600)
    a = profiles.broken_clouds_points(clear, 0.5, seed=7)
    assert a == profiles.broken_clouds_points(clear, 0.5, seed=7)
    assert a != profiles.broken_clouds_points(clear, 0.5, seed=8)
    assert profiles.broken_clouds_points(clear, 0.0, seed=7) == clear
    rates = [abs(g1 - g0) / (t1 - t0) for (t0, g0), (t1, g1) in zip(a, a[1:]) if t1 > t0]
    assert max(rates) > 100.0  # W/m2/s: cloud edges take a second or two
    assert sum(r > 50.0 for r in rates) > 50
    # never brighter than clear sky; about half of the time under a cloud (10 % or more below clear sky)
    clear_f = profiles.PiecewiseLinear(clear)
    cloudy_f = profiles.PiecewiseLinear(a)
    samples = [(clear_f(t), cloudy_f(t)) for t in range(0, 21600, 5)]
    assert all(c <= s + 0.01 for s, c in samples)  # values are rounded to 1e-3 W/m2
    shaded = sum(c < 0.95 * s for s, c in samples) / len(samples)
    assert 0.3 < shaded < 0.7
    # the scenario uses its seed
    sc = loaded["broken_clouds"]
    assert sc.irradiance_points == profiles.broken_clouds_points(clear, 0.5, seed=sc.seed)


def test_temperatures_shade_load_and_faults(root):
    sc = load_scenario(SCEN_DIR / "demo.toml", {
        "temperature.ambient_c": {"profile": "points", "points": [[0, 10.0], [100, 20.0]]},
        "temperature.noct_c": 46.0,
        "load": {"kind": "resistive", "value": 5.0, "schedule": [[50, 1.0], [80, 0.5]]},
        "faults": [{"t_s": 300, "kind": "ambient_step", "value": 40.0}, {"t_s": 200, "kind": "fan_fail"},
                   {"t_s": 200, "kind": "ntc_open"}],
    }, root=root)
    assert sc.ambient_c(50) == pytest.approx(15.0)
    assert sc.cell_temp_c(50, 800.0) == pytest.approx(15.0 + 26.0)
    assert sc.ambient_c(299.9) == 20.0 and sc.ambient_c(300) == 40.0 and sc.ambient_c(1e5) == 40.0
    assert [f["kind"] for f in sc.faults] == ["fan_fail", "ntc_open", "ambient_step"]  # sorted, stable
    assert sc.battery["temp_c"] == 10.0  # ambient at t = 0
    assert [sc.load_fraction(t) for t in (0, 50, 79, 80, 1000)] == [0.0, 1.0, 1.0, 0.5, 0.5]
    assert sc.shade(335) == pytest.approx((1.0, 1.0, 1.0, 1.0, 0.625, 0.625))
    changes = [0.0]
    while math.isfinite(changes[-1]):
        changes.append(sc.next_change_s(changes[-1]))
    assert {50.0, 80.0, 100.0, 180.0, 181.5, 200.0, 300.0, 330.0, 340.0}.issubset(changes)
    fixed = load_scenario(SCEN_DIR / "demo.toml", {"temperature.cell": 33.0}, root=root)
    assert fixed.cell_temp_c(10, 1000) == 33.0
    amb = load_scenario(SCEN_DIR / "demo.toml", {"temperature.cell": "ambient"}, root=root)
    assert amb.cell_temp_c(10, 1000) == 24.0
    no_load = load_scenario(SCEN_DIR / "demo.toml", root=root)
    assert no_load.load is None and no_load.load_fraction(10) == 0.0


def test_iv_csv_source(root, tmp_path):
    sc = load_scenario(SCEN_DIR / "demo.toml", {
        "pv": {"source": "iv_csv", "file": "scenarios/iv/example_module.csv", "series": 2}}, root=root)
    curve = sc.pv["iv_curve"]
    assert Path(sc.pv["file"]).name == "example_module.csv"
    assert curve[0][0] == 0.0 and 9.0 < curve[0][1] < 11.0  # I_sc
    assert 36.0 < curve[-1][0] < 42.0 and curve[-1][1] == 0.0  # V_oc
    assert 280.0 < max(v * i for v, i in curve) < 320.0
    # relative to the scenario file works too
    scen = tmp_path / "s.toml"
    scen.write_text((SCEN_DIR / "night.toml").read_text())
    shutil.copy(SCEN_DIR / "iv" / "example_module.csv", tmp_path / "panel.csv")
    sc2 = load_scenario(scen, {"pv": {"source": "iv_csv", "file": "panel.csv", "series": 2}}, root=root)
    assert sc2.pv["iv_curve"] == curve


def test_overrides_and_parse_override(root):
    assert parse_override("scenario.duration_s=600") == ("scenario.duration_s", 600)
    assert parse_override("battery.chemistry = lead_agm") == ("battery.chemistry", "lead_agm")
    assert parse_override("board.tolerances=false") == ("board.tolerances", False)
    assert parse_override('settings.name="x y"') == ("settings.name", "x y")
    with pytest.raises(ScenarioError):
        parse_override("novalue")
    sc = load_scenario(SCEN_DIR / "night.toml", dict([parse_override("scenario.duration_s=60"),
                                                      parse_override("board.cost.control_step_us=1500"),
                                                      parse_override("settings.some_flag=true")]), root=root)
    assert sc.duration_s == 60.0 and sc.board["cost"] == {"control_step_us": 1500.0}
    assert sc.settings == {"some_flag": True}
    assert sc.overrides["scenario.duration_s"] == 60


# ---------------------------------------------------------------------------------------------------------------
# malformed files
# ---------------------------------------------------------------------------------------------------------------

BASE = """\
[scenario]
name = "bad"
duration_s = 60
start = "2026-06-21T10:00:00Z"

[board]
config = "fugu_v1"
tolerances = true

[pv]
source = "cec"
module = "Canadian_Solar_Inc__CS6K_300P"
series = 2
substrings = 3

[irradiance]
profile = "constant"
value = 800.0

[temperature]
ambient_c = 25.0

[battery]
chemistry = "lifepo4"
cells = 4
capacity_ah = 100.0
soc = 0.5
"""

MALFORMED = [
    # (id, (old, new) replacement in BASE or text appended, substrings the message must contain)
    ("missing required key", ("duration_s = 60\n", ""), ["[scenario] duration_s", "missing required key"]),
    ("missing section", ("[battery]\nchemistry = \"lifepo4\"\ncells = 4\ncapacity_ah = 100.0\nsoc = 0.5\n", ""),
     ["[battery]", "missing required section"]),
    ("unknown key with suggestion", ("capacity_ah = 100.0", "capacty_ah = 100.0"),
     ["[battery] capacty_ah", "unknown key", "did you mean 'capacity_ah'"]),
    ("unknown section", ("[temperature]", "[temperatur]"), ["[temperatur]", "did you mean [temperature]"]),
    ("wrong type", ("duration_s = 60", 'duration_s = "one hour"'),
     ["[scenario] duration_s", "expected a number", "'one hour'"]),
    ("wrong type bool", ("tolerances = true", 'tolerances = "yes"'), ["[board] tolerances", "expected true or false"]),
    ("wrong type int", ("cells = 4", "cells = 4.5"), ["[battery] cells", "expected an integer"]),
    ("out of range", ("soc = 0.5", "soc = 1.5"), ["[battery] soc", "out of range"]),
    ("out of range cells", ("cells = 4", "cells = 65"), ["[battery] cells", "out of range"]),
    ("bad enum", ('chemistry = "lifepo4"', 'chemistry = "lipo"'),
     ["[battery] chemistry: 'lipo' is not one of lifepo4, li_nmc, lead_flooded, lead_agm, lead_gel"]),
    ("unknown module", ("CS6K_300P", "CS6K_999P"), ["[pv] module", "CEC module database"]),
    ("key of another source", ("series = 2", "series = 2\np_mpp_w = 500"), ["[pv] p_mpp_w", "not used by source"]),
    ("key of another profile", ("value = 800.0", "value = 800.0\nlatitude = 48"),
     ["[irradiance] latitude", "not used by profile 'constant'"]),
    ("no board config", ('config = "fugu_v1"', 'config = "fugu_v9"'), ["[board] config", "boardconfigs/fugu_v9.py"]),
    ("unknown cost key", None, "[board.cost]\ncontrol_step_uss = 100\n",
     ["[board.cost] control_step_uss", "did you mean 'control_step_us'"]),
    ("shade vector of wrong length", None, "[shade]\npoints = [[0, [1.0, 1.0, 0.3]]]\n",
     ["[shade] points[0]", "3 entries", "6 sub-strings"]),
    ("shade factor out of range", None, "[shade]\npoints = [[0, [1.0, 1.0, 1.0, 1.0, 1.0, 1.5]]]\n",
     ["[shade] points[0][5]", "out of range"]),
    ("points time goes back", ('profile = "constant"\nvalue = 800.0', 'profile = "points"\npoints = [[10, 1], [5, 2]]'),
     ["[irradiance] points[1]", "must not decrease"]),
    ("bad fault kind", None, "[[faults]]\nt_s = 5\nkind = \"battery_unplug\"\n",
     ["[[faults]] #1", "kind", "'battery_unplug' is not one of"]),
    ("value for a fault that takes none", None, "[[faults]]\nt_s = 5\nkind = \"battery_disconnect\"\nvalue = 3\n",
     ["[[faults]] #1", "value", "takes no value"]),
    ("ambient_step without value", None, "[[faults]]\nt_s = 5\nkind = \"ambient_step\"\n",
     ["[[faults]] #1", "value", "missing required key"]),
    ("fault without t_s", None, "[[faults]]\nkind = \"fan_fail\"\n", ["[[faults]] #1 t_s", "missing required key"]),
    ("faults as a single table", None, "[faults]\nt_s = 5\nkind = \"fan_fail\"\n", ["faults", "[[faults]]"]),
    ("bad start", ('start = "2026-06-21T10:00:00Z"', 'start = "noon"'), ["[scenario] start", "ISO 8601"]),
    ("bad settings value", None, "[settings]\nlimits = { a = 1 }\n", ["[settings] limits", "expected a boolean"]),
    ("bad EN 50530 slope", ('profile = "constant"\nvalue = 800.0', 'profile = "en50530_seq2"\nslopes = [10, 15]'),
     ["[irradiance] slopes[1]", "not a slope of EN 50530 sequence 2"]),
    ("unreadable TOML", ("series = 2\n", "series = = 2\n"), ["invalid TOML", "line 13"]),
    ("lockout on a resistor", None, "[load]\nkind = \"resistive\"\nvalue = 5.0\nuvlo_v = 36.0\n",
     ["[load] uvlo_v", "constant_power or constant_current"]),
    ("lockout at 0 V", None, "[load]\nkind = \"constant_power\"\nvalue = 50.0\nuvlo_v = 0\n", ["[load] uvlo_v"]),
]


def _malformed_cases():
    for case in MALFORMED:
        if len(case) == 3:
            name, (old, new), expect = case
            assert old in BASE, name
            yield pytest.param(BASE.replace(old, new, 1), expect, id=name)
        else:
            name, _, extra, expect = case
            yield pytest.param(BASE + "\n" + extra, expect, id=name)


def test_base_of_the_malformed_table_is_valid(root, tmp_path):
    p = tmp_path / "base.toml"
    p.write_text(BASE)
    sc = load_scenario(p, root=root)
    assert sc.name == "bad" and sc.start_epoch_s == 1782036000


@pytest.mark.parametrize("text,expect", list(_malformed_cases()))
def test_malformed_scenario_gives_one_clear_error(root, tmp_path, text, expect):
    p = tmp_path / "broken_scenario.toml"
    p.write_text(text)
    with pytest.raises(ScenarioError) as ei:
        load_scenario(p, root=root)
    msg = str(ei.value)
    assert msg.startswith(str(p) + ": "), msg  # names the file
    assert "\n" not in msg
    for part in expect:
        assert part in msg, msg


def test_errors_name_project_relative_paths_and_overrides(root):
    with pytest.raises(ScenarioError, match=r"^scenarios/nope\.toml: no such scenario file$"):
        load_scenario(PROJECT_ROOT / "scenarios" / "nope.toml")
    with pytest.raises(ScenarioError) as ei:
        load_scenario(SCEN_DIR / "demo.toml", {"battery.soc": -0.1}, root=root)
    assert "[battery] soc" in str(ei.value) and "override" in str(ei.value)
    with pytest.raises(ScenarioError, match="not a table"):
        load_scenario(SCEN_DIR / "demo.toml", {"scenario.name.x": 1}, root=root)


def test_random_single_key_corruption_never_escapes_as_another_exception(root, tmp_path):
    """Replacing any value of the base file by a value of another type gives a ScenarioError or loads, never a
    TypeError/KeyError from deep inside."""
    rnd = random.Random(5)
    lines = BASE.splitlines()
    junk = ['"text"', "true", "-3", "1e9", "[1, 2]", "{ a = 1 }", "2026-06-21T00:00:00Z", "0"]
    idx = [i for i, ln in enumerate(lines) if "=" in ln]
    for k in range(40):
        i = rnd.choice(idx)
        key = lines[i].split("=")[0].strip()
        mutated = list(lines)
        mutated[i] = "%s = %s" % (key, rnd.choice(junk))
        p = tmp_path / ("m%d.toml" % k)
        p.write_text("\n".join(mutated) + "\n")
        try:
            load_scenario(p, root=root)
        except ScenarioError as e:
            assert str(e).startswith(str(p))
