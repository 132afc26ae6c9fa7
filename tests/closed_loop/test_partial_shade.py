"""Partial shade, the cases tests/closed_loop/test_tracking.py does not cover: the global peak on the RIGHT (high
voltage) with a strong local peak on the left, shade arriving while tracking that moves the global peak right, and a
shadow that moves so the other peak becomes the global one WITHOUT any change of power at the operating point
(nothing but a rescan can find it). The tracker must end within 1 % of the global peak power.

Curves (demo array, 2 x CS6K-300P = 6 sub-strings, 950 W/m2, cells ~50 C; sim.plant.pv local_maxima()):
  [1, 1, 1, .5, .5, .5]   left 27.7 V / 246 W, right 61.1 V / 281 W (global right, the left one 88 % of it)
  [.6, .6, .6, .6, 1, 1]  left 17.7 V / 157 W (below the battery), right 59.5 V / 325 W
  [1, 1, 1, 1, .25, .25]  left 37.7 V / 335 W (global), right 63.7 V / 148 W
  [1, 1, 1, 1, .8, .8]    left 37.8 V / 336 W, right 60.1 V / 445 W (global): the left peak did not change
"""

from closed_loop_probe import Probed

FULL = [1.0] * 6


def _tracking(r, t0, t1):
    w = r.window(t0, t1)
    return sum(x["pv_w"] for x in w) / sum(x["mpp_w"] for x in w)


def _scans(r):
    return [ln for ln in r.lines if ln.startswith("SCAN")]


def test_the_start_scan_takes_the_global_peak_on_the_right_over_a_strong_left_one():
    r = Probed("demo", scenario__duration_s=35, shade__points=[[0, [1.0, 1.0, 1.0, 0.5, 0.5, 0.5]]])
    assert _tracking(r, 10, 35) >= 0.99, _tracking(r, 10, 35)  # measured 99.96 %
    assert min(x["pv_v"] for x in r.window(12)) > 50.0  # on the right peak (~61 V), not the left (~28 V)


def test_shade_arriving_while_tracking_moves_the_operating_point_to_the_new_global_peak_on_the_right():
    shade = [[0, FULL], [30, FULL], [31, [0.6, 0.6, 0.6, 0.6, 1.0, 1.0]]]
    r = Probed("demo", scenario__duration_s=55, shade__points=shade)
    # 505 -> 320 W over the 1 s shadow edge; the operating point (~57 V) is on the new global peak's hill, so
    # tracking follows it (the drop is too gradual for the 30 %-drop scan trigger): measured 99.97 %
    assert _tracking(r, 38, 55) >= 0.99, _tracking(r, 38, 55)
    assert min(x["pv_v"] for x in r.window(38)) > 50.0


def test_a_moving_shadow_that_makes_the_other_peak_global_without_a_power_change_is_found_by_a_rescan():
    # the left peak is global (335 W); at 40 s the shadow thins: the right peak (445 W) becomes global while the
    # operating point's power does not move; at 80 s the shadow leaves (one peak, at the right)
    shade = [[0, [1.0, 1.0, 1.0, 1.0, 0.25, 0.25]], [40, [1.0, 1.0, 1.0, 1.0, 0.25, 0.25]],
             [41, [1.0, 1.0, 1.0, 1.0, 0.8, 0.8]], [80, [1.0, 1.0, 1.0, 1.0, 0.8, 0.8]], [81, FULL]]
    # tracking below 70 % of V_oc (bypass diodes conducting) rescans every scan_interval / 5: 60 s here
    r = Probed("demo", scenario__duration_s=100, shade__points=shade, settings={"scan_interval_s": 300})
    assert _tracking(r, 10, 40) >= 0.99, _tracking(r, 10, 40)
    rescans = [ln for ln in _scans(r) if int(ln.split("t_ms=")[1].split()[0]) > 41000]
    assert rescans, _scans(r)
    assert _tracking(r, 72, 80) >= 0.99, _tracking(r, 72, 80)  # measured 99.9 % after the rescan at 68 s
    assert _tracking(r, 86, 100) >= 0.99, _tracking(r, 86, 100)
