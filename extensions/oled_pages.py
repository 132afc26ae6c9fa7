"""What the OLED pages say, as plain strings and numbers: no display code here, so the layout is tested on the host
and costs nothing to import. extensions/oled.py puts these lines on the glass.

Geometry (128x64 SSD1306, terminalio.FONT = 6x12 cells): 5 text lines of 21 characters, line k on rows 12k..12k+11.
Each line spans 2 of the controller's 8-row RAM pages, so rewriting one line sends at most 2 x 128 bytes.
Page 4 is a bar chart of the last 30 days under the title line, in CHART_* rows (RAM pages 2..7).
All numbers are formatted from the telemetry's integers (mV, mA, mW, mWh) without floats.
"""

LINE_CHARS = 21  # 128 px / 6 px per character
LINE_PITCH_PX = 12  # terminalio.FONT glyph height
CHART_TOP_PX = 16  # first row of the bar chart (RAM page 2): the title line ends at row 11
CHART_DAYS = 30
BAR_PITCH_PX = 4  # 3 px bar + 1 px gap
BAR_WIDTH_PX = 3
STRIP_WIDTH_PX = 32  # the chart is redrawn in 4 vertical strips (one small I2C refresh each)

PAGE_LIVE = 0
PAGE_TODAY = 1
PAGE_CHARGER = 2
PAGE_HISTORY = 3
PAGE_COUNT = 4
PAGE_TITLES = ("LIVE", "TODAY", "CHARGER", "HISTORY")


def line_count(height_px):
    """Text lines that fit a panel (5 on 128x64, 2 on 128x32)."""
    return height_px // LINE_PITCH_PX


def line_top_px(k):
    return k * LINE_PITCH_PX


def chart_height_px(height_px):
    return height_px - CHART_TOP_PX


def fixed(milli, decimals):
    """An integer in thousandths as a decimal string, rounded half away from zero: fixed(27354, 2) -> '27.35'."""
    neg = milli < 0
    if neg:
        milli = -milli
    if decimals <= 0:
        s = "%d" % ((milli + 500) // 1000)
    else:
        scale = 10 ** decimals
        v = (milli * scale + 500) // 1000
        whole, frac = divmod(v, scale)
        fs = "%d" % frac
        s = "%d.%s%s" % (whole, "0" * (decimals - len(fs)), fs)
    if neg and s.strip("0.") != "":
        s = "-" + s
    return s


def clip(s):
    """A line never wraps: what does not fit is cut."""
    return s if len(s) <= LINE_CHARS else s[:LINE_CHARS]


def full_width(s):
    """Exactly LINE_CHARS characters (cut or padded with spaces). Every line then keeps one size, so the label reuses
    its bitmap and a change redraws one fixed area (2 RAM pages x 126 columns) instead of the old and the new one."""
    n = len(s)
    if n >= LINE_CHARS:
        return s[:LINE_CHARS]
    return s + " " * (LINE_CHARS - n)


def title(page, right=""):
    """'1/4 LIVE' with ``right`` right-aligned on the same line."""
    left = "%d/%d %s" % (page + 1, PAGE_COUNT, PAGE_TITLES[page])
    gap = LINE_CHARS - len(left) - len(right)
    if gap < 1:
        return clip(left + " " + right)
    return left + " " * gap + right


def _duration(s):
    h, rest = divmod(int(s), 3600)
    return "%dh%02dm" % (h, rest // 60)


def live_lines(tel, ble_pin=None):
    ch = tel.channels[0] if tel.channels else None
    v_in = ch.v_in_mv if ch is not None else 0
    i_in = ch.i_in_ma if ch is not None else 0
    lines = [
        title(PAGE_LIVE, tel.state),
        "PV  %8sW" % fixed(tel.p_pv_mw, 1),
        "PV  %6sV %6sA" % (fixed(v_in, 2), fixed(i_in, 2)),
        "BAT %6sV %6sA" % (fixed(tel.v_bat_mv, 2), fixed(tel.i_bat_ma, 2)),
    ]
    if ble_pin:
        lines.append("BLE PIN %s" % ble_pin)
    else:
        lines.append("OUT %8sW %s" % (fixed(tel.p_bat_mw, 1), tel.charge_stage))
    return lines


def today_lines(tel):
    return [
        title(PAGE_TODAY),
        "Yield %9sWh" % fixed(tel.today_pv_mwh, 1),
        "Peak  %9sW" % fixed(tel.today_peak_mw, 1),
        "Total %9skWh" % fixed(tel.lifetime_pv_mwh // 1000, 3),
        "Up %s" % _duration(tel.uptime_s),
    ]


def charger_lines(tel):
    temp = "--" if tel.temp_c is None else "%d" % tel.temp_c
    active = tel.fault_active()
    if active is not None:
        fault = "FAULT %s now" % active
    elif tel.last_fault is not None:
        fault = "Last %s x%d" % (tel.last_fault, tel.fault_count)
    else:
        fault = "Faults none"
    return [
        title(PAGE_CHARGER),
        "Stage %s" % tel.charge_stage,
        "Target %sV %sA" % (fixed(tel.v_target_mv, 2), fixed(tel.i_limit_ma, 1)),
        "Temp %sC fan %s %d%%" % (temp, "on" if tel.fan else "off", tel.derate_pct),
        fault,
    ]


def energy_text(mwh):
    """An energy in the unit that keeps it short: '4.4Wh', '512Wh', '12.35kWh'."""
    if mwh < 10000:
        return "%sWh" % fixed(mwh, 1)
    if mwh < 10000000:
        return "%sWh" % fixed(mwh, 0)
    return "%skWh" % fixed(mwh // 1000, 2)


def history_title(max_mwh):
    """The chart's title carries its scale: the best day of the 30 (the tallest bar)."""
    if max_mwh <= 0:
        return title(PAGE_HISTORY, "no data")
    return title(PAGE_HISTORY, energy_text(max_mwh))


def page_lines(page, tel, notices=None):
    """The 5 lines of a text page (the history page: its title and 4 blank lines), each LINE_CHARS wide."""
    if page == PAGE_LIVE:
        lines = live_lines(tel, notices.get("ble_pin") if notices else None)
    elif page == PAGE_TODAY:
        lines = today_lines(tel)
    elif page == PAGE_CHARGER:
        lines = charger_lines(tel)
    else:
        lines = [history_title(0), "", "", "", ""]
    return [full_width(s) for s in lines]


def daily_yields_mwh(days, n=CHART_DAYS):
    """Oldest first, today last, from History.days() (newest first); negative nets count as 0."""
    out = []
    for d in days[:n]:
        v = d.get("pv_mwh", 0) or 0
        out.append(v if v > 0 else 0)
    out.reverse()
    return out


def bar_heights(yields_mwh, h_max_px, n=CHART_DAYS):
    """Bar heights (px) for n slots, right-aligned (today in the last slot), scaled to the best day; a day with any
    yield gets at least 1 px. Returns (bytearray of n heights, max_mwh)."""
    out = bytearray(n)
    vals = yields_mwh[-n:]
    vmax = 0
    for v in vals:
        if v > vmax:
            vmax = v
    if vmax <= 0:
        return out, 0
    first = n - len(vals)
    for k in range(len(vals)):
        v = vals[k]
        h = (v * h_max_px + vmax // 2) // vmax
        if v > 0 and h == 0:
            h = 1
        out[first + k] = h
    return out, vmax


def chart_x0_px(width_px=128, n=CHART_DAYS):
    """Left edge of the first bar: the bars are centred."""
    return (width_px - (n * BAR_PITCH_PX - 1)) // 2


def bar_x_px(slot, width_px=128, n=CHART_DAYS):
    return chart_x0_px(width_px, n) + slot * BAR_PITCH_PX
