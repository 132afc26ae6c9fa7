"""The OLED extension (extensions/oled.py) with the real adafruit_displayio_ssd1306 + adafruit_display_text driving the
SSD1306 emulator on the simulated I2C bus: what the glass shows (pixels, read back as text with the firmware's own
font), what the button does, what each call costs on the bus, and the whole firmware with and without the module."""

import os
import types

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from extensions import oled_pages as pages
from sim.breakout.oled import PNG_SCALE, OledHandle, decode_text
from sim.runner import SimRun
from sim.scenario import load_scenario
from sim.simboard import SimBoard

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PINS = ["IO%d" % i for i in range(49)]
TICK_MS = 50
ONLY_OLED = {"board.modules.oled": True, "board.modules.sd": False, "board.modules.can": False,
             "board.modules.rs485": False, "board.modules.ble": False}
# synthetic closed days (kWh), oldest first: distinct, shuffled, so bar order is a real check
DAY_KWH = [3.1, 1.2, 5.0, 2.2, 4.4, 0.6, 3.7, 1.9, 2.8, 4.9, 0.9, 3.3]


# -- a bench: the extension driven directly on a simulated board ------------------------------------------------
class Bench:
    """A SimBoard with the OLED module (the breakout handle: emulator + button) and the extension on an ExtContext,
    called as the host calls it: tick every 50 ms, observe once a second with a fresh snapshot."""

    def __init__(self, tmp_path, address=0x3C, height=64, plugged=True, other_device=None, history=None):
        self.board = SimBoard(PINS, aliases={"SDA": "IO21", "SCL": "IO22"}).activate()
        import board
        import busio
        import digitalio
        import displayio

        displayio.release_displays()
        self.clock = self.board.clock
        self.handle = None
        if plugged:
            self.handle = OledHandle(types.SimpleNamespace(board=self.board),
                                     {"scl": "IO22", "sda": "IO21", "button": "IO18"}, str(tmp_path),
                                     address=address, height=height)
            self.handle.auto_press_every_s = None
            self.emulator = self.handle.emulator
        if other_device is not None:
            self.board.add_i2c_device(("IO22", "IO21"), 0x3C, other_device)
        from fugu.extensions import ExtContext
        from fugu.settings import Settings
        from fugu.telemetry import Telemetry

        self.tel = Telemetry(1, "bench", "0")
        self.tel.history = history
        self.logs = []
        cfg = {"pins": {"sda": "IO21", "scl": "IO22"}, "breakout": {"button": "IO18"}}
        mods = {"board": board, "busio": busio, "digitalio": digitalio}
        i2c = busio.I2C(board.SCL, board.SDA, frequency=400000)
        self.ctx = ExtContext(cfg, mods, Settings(self.board.nvm, log=lambda *a: None), self.tel, i2c,
                              log=self.logs.append)
        from extensions.oled import OledExtension

        self.ext = OledExtension(self.ctx)
        self.calls_ms = []  # simulated duration of each observe/tick call
        self._t_ms = 0

    def start(self):
        assert self.ext.probe()
        t0 = self.clock.now_ns
        self.ext.start()
        self.start_ms = (self.clock.now_ns - t0) / 1e6

    def sample_telemetry(self, **kw):
        t = self.tel
        t.state = "TRACK"
        t.p_pv_mw, t.v_bat_mv, t.i_bat_ma, t.p_bat_mw = 506234, 27354, 18204, 497800
        t.channels[0].v_in_mv, t.channels[0].i_in_ma = 64100, 7897
        t.today_pv_mwh, t.today_peak_mw, t.lifetime_pv_mwh, t.uptime_s = 1234567, 506300, 45678901, 5000
        t.charge_stage, t.v_target_mv, t.i_limit_ma, t.temp_c, t.fan, t.derate_pct = "bulk", 28400, 30000, 41, True, 90
        for k, v in kw.items():
            setattr(t, k, v)

    def _timed(self, fn, arg):
        t0 = self.clock.now_ns
        fn(arg)
        self.calls_ms.append((self.clock.now_ns - t0) / 1e6)

    def run(self, ms):
        """``ms`` of simulated time as the host would spend it."""
        from supervisor import ticks_ms

        end = self._t_ms + ms
        while self._t_ms < end:
            self.clock.advance(TICK_MS * 1000000)
            self.clock.sync()  # scheduled button edges
            self._t_ms += TICK_MS
            if self._t_ms % 1000 == 0:
                self.tel.seq += 1
                self._timed(self.ext.observe, self.tel)
            self._timed(self.ext.tick, ticks_ms())

    def press(self, hold_ms=200):
        self.handle.press(hold_ms=hold_ms)
        self.run(hold_ms + 800)  # released, and the page redrawn

    def text(self):
        return self.handle.text()

    def close(self):
        import displayio

        try:
            self.ext.stop()
        finally:
            displayio.release_displays()
            self.board.deactivate()


@pytest.fixture
def bench(tmp_path):
    b = Bench(tmp_path)
    yield b
    b.close()


def _history(day_kwh, today_wh=0.0):
    """A History with the given closed days (oldest first), built through its own per-second API: a sunny
    10 hours, then 2 dark hours (the rollover), per day."""
    from fugu.history import History

    h = History(None, log=lambda *a: None)
    minute_ms = 60000  # the energy meter's longest step
    for kwh in day_kwh:
        for _ in range(600):
            h.tick(minute_ms, int(kwh * 100000), 0, 26000, 1, True)  # 10 h at kwh/10 kW
        for _ in range(120):
            h.tick(minute_ms, 0, 0, 26000, 0, False)
    for _ in range(60):
        h.tick(minute_ms, int(today_wh * 1000), 0, 26000, 1, True)  # closes the last day; today: 1 h so far
    return h


def _chart_bar_heights(pixels, height=64):
    """Heights (px) of the 30 bars read off the glass: lit pixels above the axis in each bar's first column."""
    top = pages.CHART_TOP_PX
    axis_row = height - 1
    out = []
    for i in range(pages.CHART_DAYS):
        x = pages.bar_x_px(i)
        out.append(sum(pixels[y][x] for y in range(top, axis_row - 1)))
    return out


# -- probe ---------------------------------------------------------------------------------------------------
class _OtherChip:
    """Something else at 0x3C: acknowledges, answers reads with ``status`` (an SH1106 reads 0x08)."""

    def __init__(self, status):
        self.status = status
        self.written = 0

    def i2c_write(self, data):
        self.written += len(data)

    def i2c_read(self, n):
        return bytes((self.status,)) * n


@pytest.mark.parametrize("address,height", [(0x3C, 64), (0x3D, 64), (0x3C, 32)])
def test_probe_finds_an_ssd1306_by_address_and_status_byte(tmp_path, address, height):
    b = Bench(tmp_path, address=address, height=height)
    try:
        assert b.ext.probe()
        assert (b.ext.address, b.ext.height) == (address, height)
        assert b.emulator.command_bytes == 0 and b.emulator.data_bytes == 0  # the panel is untouched until start()
    finally:
        b.close()


def test_probe_refuses_another_chip_at_the_address_and_an_empty_bus(tmp_path):
    chip = _OtherChip(0x08)
    b = Bench(tmp_path, plugged=False, other_device=chip)
    try:
        assert not b.ext.probe()
        assert chip.written == 0  # never sent SSD1306 commands
        assert any("not an SSD1306" in line and "0x08" in line for line in b.logs), b.logs
    finally:
        b.close()
    b = Bench(tmp_path, plugged=False)
    try:
        assert not b.ext.probe()
    finally:
        b.close()


# -- what the glass shows ------------------------------------------------------------------------------------
def test_live_page_shows_the_telemetry_as_text_on_the_glass(bench):
    bench.sample_telemetry()
    bench.start()
    assert bench.emulator.lit and bench.start_ms < 3000
    bench.run(1500)
    assert bench.text() == [
        "1/4 LIVE        TRACK",
        "PV     506.2W",
        "PV   64.10V   7.90A",
        "BAT  27.35V  18.20A",
        "OUT    497.8W bulk",
    ]
    bench.tel.p_pv_mw = 12345
    bench.run(1500)
    assert bench.text()[1] == "PV      12.3W"


def test_button_cycles_the_four_pages_and_a_glitch_does_not(bench):
    bench.sample_telemetry(last_fault="BAT_OV", fault_count=3)
    bench.tel.history = _history([1.0, 2.0])
    bench.start()
    bench.run(1000)
    titles = [bench.text()[0]]
    for _ in range(4):
        bench.press()
        titles.append(bench.text()[0])
    assert [t.split()[1] for t in titles] == ["LIVE", "TODAY", "CHARGER", "HISTORY", "LIVE"]
    assert bench.handle.presses == 4 and bench.ext.presses == 4
    bench.press()
    assert bench.text() == ["2/4 TODAY", "Yield    1234.6Wh", "Peak      506.3W", "Total    45.678kWh", "Up 1h23m"]
    bench.press()
    assert bench.text() == ["3/4 CHARGER", "Stage bulk", "Target 28.40V 30.0A", "Temp 41C fan on 90%",
                            "Last BAT_OV x3"]
    # a 20 ms contact bounce is shorter than the debounce (2 samples 50 ms apart): no page change
    bench.press(hold_ms=20)
    assert bench.text()[0].startswith("3/4 CHARGER")


def test_ble_pin_notice_is_shown_on_the_live_page(bench):
    bench.sample_telemetry()
    bench.start()
    bench.ctx.notices["ble_pin"] = "482913"
    bench.run(1500)
    assert bench.text()[4] == "BLE PIN 482913"


def test_history_page_draws_one_bar_per_day_in_the_order_of_the_yields(bench):
    bench.sample_telemetry()
    bench.tel.history = _history(DAY_KWH, today_wh=50.0)
    bench.start()
    for _ in range(3):
        bench.press()
    bench.run(1000)  # title and 4 chart strips
    assert bench.text()[0] == "4/4 HISTORY    5000Wh"
    px = bench.emulator.pixels()
    heights = _chart_bar_heights(px)
    n = len(DAY_KWH) + 1  # the closed days and today, right-aligned (today last)
    assert heights[:-n] == [0] * (pages.CHART_DAYS - n)
    closed = heights[-n:-1]
    assert all(h > 0 for h in closed)
    assert sorted(range(len(DAY_KWH)), key=lambda k: closed[k]) == sorted(range(len(DAY_KWH)),
                                                                         key=lambda k: DAY_KWH[k])
    assert closed[DAY_KWH.index(5.0)] == 64 - pages.CHART_TOP_PX - 2  # the best day fills the chart
    assert 1 <= heights[-1] <= 2  # today: 50 Wh of 5 kWh, at least one pixel
    axis = px[63]
    assert all(axis[pages.bar_x_px(i)] for i in range(pages.CHART_DAYS))
    # leaving the page clears the chart: the live page reads cleanly (a leftover bar would garble its text)
    bench.press()
    assert bench.text() == [s.rstrip() for s in pages.page_lines(pages.PAGE_LIVE, bench.tel)]
    px = bench.emulator.pixels()
    assert not any(px[62]) and not any(px[63])


def test_every_call_stays_within_budget_on_the_simulated_bus(bench):
    """One call rewrites at most one text line or one chart strip: the I2C time of a call is what ExtensionHost
    measures against budget_ms. Full-frame redraws only happen in start()."""
    bench.sample_telemetry()
    bench.tel.history = _history(DAY_KWH, today_wh=50.0)
    bench.start()
    for _ in range(5):
        bench.press()
        bench.tel.p_pv_mw += 111111
        bench.tel.v_bat_mv += 1111
    busy = [ms for ms in bench.calls_ms if ms > 0.05]
    assert busy, "no refresh measured"
    print("\nOLED start: %.1f ms; per call: max %.2f ms, mean %.2f ms over %d refreshing calls (budget %d ms)"
          % (bench.start_ms, max(busy), sum(busy) / len(busy), len(busy), bench.ext.budget_ms))
    assert max(bench.calls_ms) <= bench.ext.budget_ms
    # a full 128x64 frame at 400 kHz would be >= 1024 x 9 bits = 23 ms: never sent by a call
    assert max(bench.calls_ms) < 1024 * 9 / 400e3 * 1e3 / 2


def test_no_refresh_when_nothing_changed(bench):
    bench.sample_telemetry()
    bench.start()
    bench.run(2000)
    sent = bench.emulator.data_bytes
    bench.run(3000)  # same snapshot values each second
    assert bench.emulator.data_bytes == sent


def test_long_idle_blanks_the_panel_and_a_press_only_wakes_it(bench):
    bench.sample_telemetry()
    bench.start()
    bench.ext.blank_after_ms = 3000
    bench.run(4000)
    assert not bench.emulator.display_on
    bench.press()
    assert bench.emulator.display_on
    assert bench.text()[0].startswith("1/4 LIVE")  # the waking press does not turn the page
    bench.press()
    assert bench.text()[0].startswith("2/4 TODAY")


def test_stop_switches_the_panel_off_and_frees_the_button(bench):
    bench.sample_telemetry()
    bench.start()
    bench.ext.stop()
    assert not bench.emulator.display_on
    import board
    import digitalio

    digitalio.DigitalInOut(board.IO18).deinit()  # the pin is free again


def test_small_128x32_module_shows_the_first_two_lines(tmp_path):
    b = Bench(tmp_path, height=32)
    try:
        b.sample_telemetry()
        b.start()
        b.run(1500)
        assert b.text() == ["1/4 LIVE        TRACK", "PV     506.2W"]
    finally:
        b.close()


# -- page text, pure -----------------------------------------------------------------------------------------
def test_fixed_point_formatting():
    assert pages.fixed(27354, 2) == "27.35"
    assert pages.fixed(27355, 2) == "27.36"
    assert pages.fixed(-1500, 2) == "-1.50"
    assert pages.fixed(-4, 2) == "0.00"  # no "-0.00"
    assert pages.fixed(999, 0) == "1"
    assert pages.fixed(5, 3) == "0.005"
    assert pages.energy_text(4400) == "4.4Wh"
    assert pages.energy_text(5000000) == "5000Wh"
    assert pages.energy_text(12345678) == "12.35kWh"


_big = st.integers(min_value=-(2 ** 31), max_value=2 ** 31 - 1)


@settings(max_examples=200, deadline=None)
@given(_big, _big, _big, _big, _big, _big, _big, st.one_of(st.none(), st.integers(-60, 200)),
       st.integers(0, 2 ** 32), st.text(min_size=0, max_size=30), st.one_of(st.none(), st.text(max_size=40)))
def test_page_lines_never_exceed_the_panel_width(p, v, i, e, life, vt, il, temp, up, state, fault):
    from fugu.telemetry import Telemetry

    t = Telemetry(1)
    t.p_pv_mw = t.p_bat_mw = p
    t.v_bat_mv = t.channels[0].v_in_mv = v
    t.i_bat_ma = t.channels[0].i_in_ma = i
    t.today_pv_mwh = t.today_peak_mw = e
    t.lifetime_pv_mwh = life
    t.v_target_mv, t.i_limit_ma, t.temp_c, t.uptime_s = vt, il, temp, up
    t.state = t.charge_stage = state
    t.last_fault, t.fault_count = fault, 7
    for page in range(pages.PAGE_COUNT):
        lines = pages.page_lines(page, t, {"ble_pin": "123456"})
        assert len(lines) == 5
        assert all(len(s) <= pages.LINE_CHARS for s in lines), lines


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=10 ** 9), max_size=40), st.integers(1, 60))
def test_bar_heights_follow_the_yields(yields, h_max):
    heights, vmax = pages.bar_heights(yields, h_max)
    vals = yields[-pages.CHART_DAYS:]
    hs = list(heights[pages.CHART_DAYS - len(vals):])
    assert vmax == max(vals, default=0)
    for a in range(len(vals)):
        assert 0 <= hs[a] <= h_max
        assert (hs[a] > 0) == (vals[a] > 0)
        if vals[a] == vmax and vmax > 0:
            assert hs[a] == h_max
        for b in range(len(vals)):
            if vals[a] <= vals[b]:
                assert hs[a] <= hs[b]


def test_page_text_is_the_same_in_micropython():
    """The formatting runs on the device's interpreter (devicecheck: MicroPython) and gives CPython's strings."""
    from devicecheck.harness import check_imports
    from fugu.telemetry import Telemetry

    def lines_of(t):
        out = []
        for page in range(pages.PAGE_COUNT):
            out.extend(pages.page_lines(page, t, {"ble_pin": "123456"}))
        h, m = pages.bar_heights([0, 5, 10, 2000], 46)
        out.append("%r %d %s %s" % (list(h), m, pages.fixed(-5, 2), pages.energy_text(12345678)))
        return out

    setup = ("t.p_pv_mw = 506234\nt.v_bat_mv = 27354\nt.i_bat_ma = -1500\nt.temp_c = None\nt.uptime_s = 7384\n"
             "t.last_fault = 'PV_LOST'\nt.fault_count = 2\nt.lifetime_pv_mwh = 98765432\n")
    t = Telemetry(1)
    exec(setup, {"t": t})
    expected = lines_of(t)
    src = ("from fugu.telemetry import Telemetry\nfrom extensions import oled_pages as pages\nt = Telemetry(1)\n"
           + setup + "out = []\nfor page in range(pages.PAGE_COUNT):\n"
           "    out.extend(pages.page_lines(page, t, {'ble_pin': '123456'}))\n"
           "h, m = pages.bar_heights([0, 5, 10, 2000], 46)\n"
           "out.append('%r %d %s %s' % (list(h), m, pages.fixed(-5, 2), pages.energy_text(12345678)))\n"
           "if out != EXPECTED:\n    raise AssertionError(repr(out))\n").replace("EXPECTED", repr(expected))
    reports = check_imports(modules=["oled_text_check", "extensions.oled", "adafruit_displayio_ssd1306",
                                     "adafruit_display_text.bitmap_label"], compile_files=(),
                            extra_files={"lib/oled_text_check.py": src})
    kinds = {name: (kind, detail) for kind, name, detail in reports if kind != "placeholder"}
    assert all(k == "ok" for k, _ in kinds.values()), kinds


# -- the whole firmware on the simulated board ---------------------------------------------------------------
def _scenario(**overrides):
    ov = dict(ONLY_OLED)
    ov.update(overrides)
    return load_scenario(os.path.join(ROOT, "scenarios", "demo.toml"), ov)


def _tracking(run, t0):
    rows = [r for r in run.rows if r[0] >= t0]
    return sum(r[5] for r in rows) / sum(r[6] for r in rows)


def test_firmware_with_the_oled_shows_every_page_and_writes_pngs(tmp_path):
    out = str(tmp_path / "out")
    run = SimRun(_scenario(**{"scenario.duration_s": 30}), out_dir=out, echo=False, status_every_s=0)
    from fugu.history import History

    hist = _history(DAY_KWH, today_wh=20.0)  # what the controller stored on earlier days
    stored = History(run.sim.board.nvm, log=lambda *a: None)
    stored.decode(hist.encode())
    stored.save()
    oled = [h for h in run.modules if h.name == "oled"][0]
    oled.auto_press_every_s = None
    for t_s in (14, 18, 22):
        oled.press(at_ns=t_s * 1e9)
    summary = run.run()

    lines = run.fw_lines
    assert any(s.startswith("ext oled: started (SSD1306 128x64 at 0x3C, button IO18)") for s in lines), lines
    assert not [f for f in summary["faults"] if f["code"] == "EXT"], lines
    mod = summary["modules"]["oled"]
    assert mod["pages_seen"] == ["page1_live", "page2_today", "page3_charger", "page4_history"]
    assert mod["button_presses"] == 3 and mod["display_on"]
    names = sorted(os.listdir(os.path.join(out, "oled")))
    assert names == ["last.png", "page1_live.png", "page2_today.png", "page3_charger.png", "page4_history.png"]

    # the live page as a user reads it: PV power within 2 % of what the panel delivered
    live = oled.pages["page1_live"][1]
    assert live[0].startswith("1/4 LIVE") and live[0].endswith("TRACK"), live
    shown_w = float(live[1].split()[1].rstrip("W"))
    plant_w = [r[5] for r in run.rows if 10 <= r[0] <= 14]
    assert abs(shown_w / (sum(plant_w) / len(plant_w)) - 1) < 0.02, (live, plant_w)

    # the chart in the PNG file: one bar per stored day, ordered as the yields
    img = Image.open(os.path.join(out, "oled", "page4_history.png"))
    assert img.size == (128 * PNG_SCALE, 64 * PNG_SCALE)
    px = [[1 if img.getpixel((x * PNG_SCALE, y * PNG_SCALE)) else 0 for x in range(128)] for y in range(64)]
    assert decode_text(px, [0])[0] == "4/4 HISTORY    5000Wh"
    closed = _chart_bar_heights(px)[-len(DAY_KWH) - 1:-1]
    assert sorted(range(len(DAY_KWH)), key=lambda k: closed[k]) == sorted(range(len(DAY_KWH)),
                                                                         key=lambda k: DAY_KWH[k])
    assert _tracking(run, 12) >= 0.99
    assert summary["control_rate_hz"] > 120


def test_firmware_without_the_oled_reports_it_missing_and_tracks(tmp_path):
    run = SimRun(_scenario(**{"scenario.duration_s": 20, "board.modules.oled": False}), echo=False,
                 status_every_s=0)
    summary = run.run()
    assert "ext oled: not found" in run.fw_lines
    assert not [f for f in summary["faults"] if f["code"] == "EXT"]
    assert _tracking(run, 12) >= 0.99


def test_extensions_disabled_setting_keeps_the_oled_off(tmp_path):
    run = SimRun(_scenario(**{"scenario.duration_s": 5, "settings.extensions_disabled": "oled"}), echo=False,
                 status_every_s=0)
    summary = run.run()
    assert "ext oled: disabled in settings (extensions_disabled)" in run.fw_lines
    assert not any(s.startswith("ext oled: started") for s in run.fw_lines)
    oled = summary["modules"]["oled"]
    assert oled["frames"] == 0 and oled["i2c_writes"] == 0 and not oled["display_on"]
