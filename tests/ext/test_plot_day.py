"""tools/plot_day.py: a day's CSV from the SD card (made by the firmware on the simulated board, read out of the card
image with the host FAT reader) becomes a PNG whose pixels show the logged values where they belong."""

import importlib.util
import os
import subprocess
import sys

import pytest
from PIL import Image

from sim.devices.sdcard import FatImage
from sim.install import PROJECT_ROOT
from sim.runner import SimRun
from sim.scenario import load_scenario

TOOL = os.path.join(PROJECT_ROOT, "tools", "plot_day.py")
_spec = importlib.util.spec_from_file_location("plot_day", TOOL)
plot_day = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(plot_day)


def run_tool(*args):
    return subprocess.run([sys.executable, TOOL] + list(args), capture_output=True, text=True, timeout=120)


def panel_box(i):
    y0 = plot_day.MARGIN_T_PX + i * (plot_day.PANEL_H_PX + plot_day.GAP_PX) + 10
    return plot_day.MARGIN_L_PX, y0, plot_day.WIDTH_PX - plot_day.MARGIN_R_PX, y0 + plot_day.PANEL_H_PX - 30


def near(px, color, tol=40):
    return sum(abs(a - b) for a, b in zip(px[:3], color)) <= tol


def column_hits(img, x, y0, y1, color):
    """Rows (y) in column x between y0 and y1 where the image has (about) this colour."""
    return [y for y in range(y0, y1 + 1) if near(img.getpixel((x, y)), color)]


@pytest.fixture(scope="module")
def day_csv(tmp_path_factory):
    """A 20 s demo run with only the SD module, a row a second; the day file copied out of the card image."""
    ov = {"scenario.duration_s": 20, "settings.log_interval_s": 1}
    ov.update({"board.modules.%s" % m: False for m in ("oled", "can", "rs485", "ble")})
    sc = load_scenario(os.path.join(PROJECT_ROOT, "scenarios", "demo.toml"), ov)
    run = SimRun(sc, echo=False, status_every_s=0)
    card = next(m for m in run.modules if m.name == "sd")
    run.run()
    out = tmp_path_factory.mktemp("plot")
    path = out / "20260621.csv"
    with FatImage(card.image) as img:
        path.write_bytes(img.read("/fugu/20260621.csv"))
    return path


def test_a_day_csv_from_the_card_becomes_a_png_with_the_power_where_it_belongs(day_csv, tmp_path):
    import pandas as pd

    out = tmp_path / "day.png"
    r = run_tool(str(day_csv), "-o", str(out))
    assert r.returncode == 0, r.stderr
    assert "power (W), voltage (V), controller state / charge stage, heatsink temperature (C)" in r.stdout
    img = Image.open(out).convert("RGB")
    assert img.size == (plot_day.WIDTH_PX, plot_day.MARGIN_T_PX + 4 * (plot_day.PANEL_H_PX + plot_day.GAP_PX) + 30)
    df = pd.read_csv(day_csv)
    p_w = df["pv_w"].iloc[-1]
    assert p_w > 400
    # the power axis runs 0..600 W; near the right edge the pv_w line (first colour) is at the logged power
    x0, y0, x1, y1 = panel_box(0)
    y_expect = y1 - p_w / 600.0 * (y1 - y0)
    hits = column_hits(img, x1 - 3, y0, y1, plot_day.PALETTE[0])
    assert hits and min(abs(y - y_expect) for y in hits) <= 3, (hits, y_expect)
    # at the left edge (before the converter started) PV and battery power are at 0 W (bat_w drawn over pv_w)
    hits = column_hits(img, x0 + 2, y0, y1, plot_day.PALETTE[1])
    assert hits and min(hits) >= y1 - 3
    assert not [y for y in column_hits(img, x0 + 2, y0, y1, plot_day.PALETTE[0]) if y < y1 - 3]
    # the state panel shows both steps (state and stage) in their colours
    x0, y0, x1, y1 = panel_box(2)
    assert column_hits(img, x1 - 3, y0, y1, plot_day.PALETTE[0]) and column_hits(img, x1 - 3, y0, y1,
                                                                                  plot_day.PALETTE[1])


def test_two_channels_a_gap_and_an_unset_clock(tmp_path):
    """A two-channel board's log (rows made by the firmware's own csvlog), the clock never set (year 2000: the
    uptime is the axis), the card out for a while: both channels are drawn, the gap is left empty."""
    from extensions import csvlog
    from fugu.telemetry import Telemetry

    tel = Telemetry(2)
    lines = [csvlog.header(2)]
    for t in list(range(0, 600, 10)) + list(range(1200, 1800, 10)):
        tel.uptime_s = t
        tel.state = "TRACK"
        tel.charge_stage = "bulk"
        for k, c in enumerate(tel.channels):
            c.state = "TRACK"
            c.v_in_mv = 56000
            c.i_in_ma = 5000
            c.p_in_mw = 300000 + 100000 * k
        tel.p_pv_mw = 700000
        tel.v_bat_mv = 26400
        tel.temp_c = 30.0 + t / 100
        lines.append(csvlog.row(tel, (2000, 1, 1, 0, t // 60 % 60, t % 60, 5, 1, -1)))
    path = tmp_path / "DAY0001.csv"
    path.write_text("".join(lines))
    out = tmp_path / "day.png"
    r = run_tool(str(path), "-o", str(out))
    assert r.returncode == 0, r.stderr
    img = Image.open(out).convert("RGB")
    x0, y0, x1, y1 = panel_box(0)  # power: pv1_w, pv2_w, pv_w in the first three colours
    for k in range(3):
        assert column_hits(img, x1 - 3, y0, y1, plot_day.PALETTE[k]), k
    # uptime 600..1200 s has no rows: the middle of the panel has no line in it
    x_mid = int(x0 + (900 - 0) / (1790 - 0) * (x1 - x0))
    for k in range(3):
        assert not column_hits(img, x_mid, y0 + 1, y1 - 1, plot_day.PALETTE[k]), k


def test_a_file_that_is_not_a_day_log_gets_a_clear_error_and_no_png(tmp_path):
    bad = tmp_path / "notes.csv"
    bad.write_text("a,b\n1,2\n")
    out = tmp_path / "x.png"
    r = run_tool(str(bad), "-o", str(out))
    assert r.returncode == 2 and "not a FUGU day log" in r.stderr and not out.exists()
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    r = run_tool(str(empty), "-o", str(out))
    assert r.returncode == 2 and "plot_day:" in r.stderr and not out.exists()
    r = run_tool(str(tmp_path / "missing.csv"), "-o", str(out))
    assert r.returncode == 2 and not out.exists()
