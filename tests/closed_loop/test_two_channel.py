"""Two power stages on one battery (boardconfigs/fugu_dual.py, scenarios/dual_channel.toml): each stage tracks its
own array, a fault on one leaves the other working. Tracking per channel from the plant's own books (the energy
each array gave against what it offered at its true MPP) over windows."""

import re

import pytest

from closed_loop_probe import EnergySnapshots, Probed
from sim.runner import SimRun

# 600 W/m2 keeps each stage below its share of the charge current (see the xfail below)
SUN_600 = {"irradiance__profile": "constant", "irradiance__value": 600.0, "irradiance__points": None}
SHADE_CH1_AT_40 = [[0, [1.0] * 6], [40, [1.0] * 6], [41, [1.0, 1.0, 0.3, 0.3, 1.0, 1.0]]]


def _faults_by_channel(r):
    out = []
    for line in r.lines:
        m = re.match(r"FAULT code=(\S+) ch=(-?\d+)", line)
        if m:
            out.append((m.group(1), int(m.group(2))))
    return out


@pytest.fixture(scope="module")
def dual():
    snap = EnergySnapshots([15, 40, 45, 60, 62, 75])
    r = Probed("dual_channel", setup=snap, channel=1, windows=[(60.0, 75.0)], scenario__duration_s=75.5,
               pv2__shade=SHADE_CH1_AT_40, faults=[{"t_s": 60.0, "kind": "pv_disconnect", "value": 1}], **SUN_600)
    r.snap = snap
    return r


def test_each_channel_tracks_its_own_array(dual):
    s = dual.snap
    # channel 1 gets 70 % of the irradiance (another orientation): two different MPPs, both found
    assert s.tracking(15, 40, 0) >= 0.99, s.tracking(15, 40, 0)  # measured 99.97 %
    assert s.tracking(15, 40, 1) >= 0.99, s.tracking(15, 40, 1)  # measured 99.96 %


def test_shade_on_one_channel_moves_only_that_channel(dual):
    s = dual.snap
    scans = [ln for ln in dual.lines if ln.startswith("SCAN")]
    assert any(ln.startswith("SCAN ch=1") and int(re.search(r"t_ms=(\d+)", ln).group(1)) > 40000 for ln in scans)
    assert not any(ln.startswith("SCAN ch=0") and int(re.search(r"t_ms=(\d+)", ln).group(1)) > 40000
                   for ln in scans)
    assert s.tracking(45, 60, 1) >= 0.99, s.tracking(45, 60, 1)  # the shaded array's new global peak: 99.94 %
    assert s.tracking(40, 60, 0) >= 0.99, s.tracking(40, 60, 0)


def test_pv_lost_on_one_channel_leaves_the_other_tracking(dual):
    s = dual.snap
    assert _faults_by_channel(dual) == [("PV_LOST", 1)], _faults_by_channel(dual)
    assert s.tracking(62, 75, 0) >= 0.99, s.tracking(62, 75, 0)  # measured 99.98 %
    assert max(x.v_in for x in dual.probe.samples) < 80.0  # channel 1's input node: no reverse boost
    # channel 1 retries now and then (its input capacitor stays charged) with a growing back-off, harvesting nothing
    idle = [st["state"] == "IDLE" for t, st in dual.stats_ch[1] if t >= 66.0]
    assert sum(idle) >= 0.7 * len(idle), idle
    assert abs(s.at[75][0][1] - s.at[62][0][1]) < 5.0  # J


def test_an_adc_failure_on_one_channel_stops_only_that_channel():
    snap = EnergySnapshots([15, 45])
    r = Probed("dual_channel", setup=snap, scenario__duration_s=45.5,
               faults=[{"t_s": 20.0, "kind": "adc_fail", "value": 1}, {"t_s": 25.0, "kind": "adc_recover", "value": 1}],
               **SUN_600)
    assert _faults_by_channel(r) == [("SENSOR", 1)], _faults_by_channel(r)
    assert snap.tracking(15, 45, 0) >= 0.99, snap.tracking(15, 45, 0)
    ch1 = [(t, s["state"]) for t, s in r.stats_ch[1]]
    assert all(st == "FAULT" for t, st in ch1 if 20.5 <= t <= 25.0), ch1
    assert ch1[-1][1] in ("TRACK", "LIMIT"), ch1  # back after 2 s of good readings


@pytest.mark.xfail(strict=True, reason=(
    "controller (lead): each running stage gets charge_limit // n_on as its output-current limit, so at 950 W/m2 "
    "channel 0 (505 W, ~19 A) is held at 15 A while channel 1 (0.7 x) cannot use its half: 79 % on channel 0 "
    "with the battery's 30 A never reached. Share the limit by what each stage delivers (e.g. each stage may "
    "have the total minus what the others measure, or a share proportional to its last power)"))
def test_a_strong_and_a_weak_channel_share_the_charge_current_by_need():
    snap = EnergySnapshots([15, 40])
    Probed("dual_channel", setup=snap, scenario__duration_s=40.5)
    assert snap.tracking(15, 40, 0) >= 0.99, snap.tracking(15, 40, 0)


@pytest.mark.xfail(strict=True, reason=(
    "runner (lead): run.csv has channel 0's PV columns and the plant's TOTAL mpp_w, so pv_w / mpp_w is not a "
    "tracking figure on a two-channel board; add pv2_v, pv2_a, pv2_w, mpp1_w, mpp2_w (sim.plant.p_pv_ch(), "
    "p_mpp_ch) when the board has two channels, and per-channel energies in summary.json"))
def test_the_csv_has_per_channel_columns_on_a_two_channel_board():
    assert "pv2_w" in SimRun.CSV_HEADER
