"""Plot a day's SD log (a /fugu/*.csv file the sd_log extension writes) as one PNG: power (and the true MPP when the
CSV has an ``mpp_w`` column, as the simulator's run.csv does), voltages, controller state and charge stage,
temperature.

    python tools/plot_day.py 20260621.csv [-o 20260621.png]

Drawn with Pillow only (no matplotlib: lighter, and enough for four line charts). The time axis is the clock time
when the log has it (the controller's clock was set), else the controller's uptime. Gaps in the log (card removed,
power off) are left as gaps.
"""

import argparse
import math
import os
import sys

import pandas as pd
from PIL import Image, ImageDraw, ImageFont

WIDTH_PX = 1200
PANEL_H_PX = 230
MARGIN_L_PX = 80
MARGIN_R_PX = 170  # room for the legend
MARGIN_T_PX = 40
GAP_PX = 30
BACKGROUND = (255, 255, 255)
AXIS = (60, 60, 60)
GRID = (225, 225, 225)
TEXT = (20, 20, 20)
PALETTE = ((31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75),
           (227, 119, 194), (127, 127, 127))
MPP_COLOR = (150, 150, 150)
GAP_FACTOR = 3  # a step longer than this many typical intervals is a gap in the log
CLOCK_SET_YEAR = 2024  # as the firmware (extensions/csvlog.py): earlier times are the unset clock


class LogError(ValueError):
    """The file is not a day log this tool can plot (the message says why)."""


def read_log(path):
    """The day log as a DataFrame with an ``x_s`` column (seconds) and ``x_kind`` ('clock' or 'uptime')."""
    try:
        df = pd.read_csv(path, on_bad_lines="skip", keep_default_na=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise LogError("%s: not a CSV log (%s)" % (path, e)) from None
    if df.empty:
        raise LogError("%s: no rows" % path)
    x = None
    kind = "uptime"
    if "time" in df.columns:
        t = pd.to_datetime(df["time"], errors="coerce", format="%Y-%m-%d %H:%M:%S")
        if t.notna().all() and (t.dt.year >= CLOCK_SET_YEAR).all():
            day0 = t.iloc[0].normalize()
            x = (t - day0).dt.total_seconds()
            kind = "clock"
    if x is None:
        if "t_s" not in df.columns:
            raise LogError("%s: not a FUGU day log (no 'time' or 't_s' column; columns: %s)"
                           % (path, ", ".join(map(str, df.columns[:8]))))
        x = pd.to_numeric(df["t_s"], errors="coerce")
    df = df.assign(x_s=x)
    df = df[df["x_s"].notna()].sort_values("x_s").reset_index(drop=True)
    if df.empty:
        raise LogError("%s: no row has a usable time" % path)
    df.attrs["x_kind"] = kind
    return df


def columns_like(df, prefix, suffix):
    """pv_v, pv1_v, pv2_v ... (prefix, optional channel number, suffix) in the file's order."""
    out = []
    for c in df.columns:
        if c.startswith(prefix) and c.endswith(suffix):
            mid = c[len(prefix):len(c) - len(suffix)]
            if mid == "" or mid.isdigit():
                out.append(c)
    return out


def nice_ticks(lo, hi, n=5):
    """Round tick values covering lo..hi."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return [0.0, 1.0]
    if hi <= lo:
        hi = lo + 1.0
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    start = math.floor(lo / step) * step
    ticks = [round(start, 10)]
    while ticks[-1] < hi - step * 1e-6 and len(ticks) < 50:
        ticks.append(round(ticks[-1] + step, 10))
    if len(ticks) < 2:
        ticks.append(round(start + step, 10))
    return ticks


def time_ticks(lo, hi, kind):
    """(value_s, label) for the x axis: clock time (HH:MM) or uptime (s, min or h)."""
    span = max(hi - lo, 1.0)
    for step in (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600):
        if span / step <= 10:
            break
    first = math.ceil(lo / step) * step
    out = []
    v = first
    while v <= hi:
        if kind == "clock":
            s = int(v) % 86400
            label = "%02d:%02d" % (s // 3600, s // 60 % 60) if step >= 60 else "%02d:%02d:%02d" % (
                s // 3600, s // 60 % 60, s % 60)
        elif span >= 7200:
            label = "%.1f h" % (v / 3600)
        elif span >= 300:
            label = "%d min" % round(v / 60)
        else:
            label = "%d s" % v
        out.append((v, label))
        v += step
    return out


class Panel:
    def __init__(self, draw, font, box, title, x_range, x_kind):
        self.d = draw
        self.font = font
        self.x0, self.y0, self.x1, self.y1 = box
        self.title = title
        self.xlo, self.xhi = x_range
        self.x_kind = x_kind
        self.legend = []

    def xpx(self, x):
        return self.x0 + (x - self.xlo) / max(self.xhi - self.xlo, 1e-9) * (self.x1 - self.x0)

    def ypx(self, y):
        return self.y1 - (y - self.ylo) / max(self.yhi - self.ylo, 1e-9) * (self.y1 - self.y0)

    def frame(self, ylo, yhi, y_labels=None):
        """Axes, grid and tick labels; y_labels: [(value, text)] instead of numeric ticks."""
        d = self.d
        if y_labels is None:
            ticks = nice_ticks(ylo, yhi)
            self.ylo, self.yhi = ticks[0], ticks[-1]
            y_labels = [(t, ("%g" % t)) for t in ticks]
        else:
            self.ylo, self.yhi = ylo, yhi
        d.text((self.x0, self.y0 - 22), self.title, fill=TEXT, font=self.font)
        for v, label in y_labels:
            y = self.ypx(v)
            d.line([(self.x0, y), (self.x1, y)], fill=GRID)
            tw = d.textlength(label, font=self.font)
            d.text((self.x0 - 6 - tw, y - 7), label, fill=TEXT, font=self.font)
        for v, label in time_ticks(self.xlo, self.xhi, self.x_kind):
            x = self.xpx(v)
            d.line([(x, self.y0), (x, self.y1)], fill=GRID)
            tw = d.textlength(label, font=self.font)
            d.text((x - tw / 2, self.y1 + 4), label, fill=TEXT, font=self.font)
        d.rectangle([self.x0, self.y0, self.x1, self.y1], outline=AXIS)

    def series(self, xs, ys, color, label, width=2, step=False, gap_s=None):
        """A line through the finite points, broken at gaps longer than gap_s."""
        pts = []
        last_x = None
        for x, y in zip(xs, ys):
            if y is None or not math.isfinite(y):
                self._flush(pts, color, width)
                pts = []
                last_x = None
                continue
            if last_x is not None and gap_s is not None and x - last_x > gap_s:
                self._flush(pts, color, width)
                pts = []
            px, py = self.xpx(x), self.ypx(y)
            if step and pts:
                pts.append((px, pts[-1][1]))
            pts.append((px, py))
            last_x = x
        self._flush(pts, color, width)
        self.legend.append((label, color))

    def _flush(self, pts, color, width):
        if len(pts) == 1:
            x, y = pts[0]
            self.d.ellipse([x - 2, y - 2, x + 2, y + 2], fill=color)
        elif pts:
            self.d.line(pts, fill=color, width=width, joint="curve")

    def draw_legend(self):
        x = self.x1 + 12
        y = self.y0
        for label, color in self.legend:
            self.d.line([(x, y + 7), (x + 22, y + 7)], fill=color, width=3)
            self.d.text((x + 28, y), label, fill=TEXT, font=self.font)
            y += 18


def _finite_range(df, cols, floor_zero=False):
    vals = pd.concat([pd.to_numeric(df[c], errors="coerce") for c in cols]) if cols else pd.Series(dtype=float)
    vals = vals[vals.notna()]
    if vals.empty:
        return (0.0, 1.0)
    lo, hi = float(vals.min()), float(vals.max())
    if floor_zero:
        lo = min(lo, 0.0)
    if hi - lo < 1e-9:
        hi = lo + 1.0
    return lo, hi


def _numeric(df, col):
    return [float(v) for v in pd.to_numeric(df[col], errors="coerce")]


def plot(df, out_path, title=""):
    """Write the PNG; returns the list of panel titles drawn."""
    xs = list(df["x_s"].astype(float))
    xlo, xhi = xs[0], xs[-1]
    if xhi <= xlo:
        xhi = xlo + 1.0
    steps = pd.Series(xs).diff().dropna()
    gap_s = float(steps.median()) * GAP_FACTOR if len(steps) else None
    kind = df.attrs.get("x_kind", "uptime")
    panels = []
    power = columns_like(df, "pv", "_w") + [c for c in ("bat_w", "mpp_w") if c in df.columns]
    volts = columns_like(df, "pv", "_v") + [c for c in ("bat_v", "v_target_v") if c in df.columns]
    has_state = any(c in df.columns for c in ("state", "stage"))
    temps = [c for c in ("temp_c",) if c in df.columns]
    if power:
        panels.append(("power (W)", power))
    if volts:
        panels.append(("voltage (V)", volts))
    if has_state:
        panels.append(("controller state / charge stage", None))
    if temps:
        panels.append(("heatsink temperature (C)", temps))
    if not panels:
        raise LogError("nothing to plot: no power, voltage, state or temperature column")
    height = MARGIN_T_PX + len(panels) * (PANEL_H_PX + GAP_PX) + 30
    img = Image.new("RGB", (WIDTH_PX, height), BACKGROUND)
    d = ImageDraw.Draw(img)
    font = ImageFont.load_default()
    d.text((MARGIN_L_PX, 8), title, fill=TEXT, font=font)
    drawn = []
    for i, (name, cols) in enumerate(panels):
        y0 = MARGIN_T_PX + i * (PANEL_H_PX + GAP_PX) + 10
        box = (MARGIN_L_PX, y0, WIDTH_PX - MARGIN_R_PX, y0 + PANEL_H_PX - 30)
        p = Panel(d, font, box, name, (xlo, xhi), kind)
        if cols is None:
            _state_panel(p, df, xs, gap_s)
        else:
            p.frame(*_finite_range(df, cols, floor_zero=(name != "heatsink temperature (C)")))
            for k, c in enumerate(cols):
                color = MPP_COLOR if c == "mpp_w" else PALETTE[k % len(PALETTE)]
                p.series(xs, _numeric(df, c), color, c, width=1 if c == "mpp_w" else 2, gap_s=gap_s)
        p.draw_legend()
        drawn.append(name)
    img.save(out_path, "PNG")
    return drawn


def _state_panel(p, df, xs, gap_s):
    """Both state columns as step lines on one categorical axis (the names found in the file)."""
    cols = [c for c in ("state", "stage") if c in df.columns]
    names = []
    for c in cols:
        for v in df[c].fillna("-").astype(str):
            if v not in names:
                names.append(v)
    levels = {n: i for i, n in enumerate(names)}
    p.frame(-0.5, len(names) - 0.5, y_labels=[(i, n) for n, i in levels.items()])
    for k, c in enumerate(cols):
        ys = [float(levels[v]) + (0.08 if k else -0.08) for v in df[c].fillna("-").astype(str)]
        p.series(xs, ys, PALETTE[k], c, step=True, gap_s=gap_s)


def main(argv=None):
    ap = argparse.ArgumentParser(prog="plot_day.py", description=__doc__.split("\n\n")[0])
    ap.add_argument("csv", help="a day's log from the SD card (/fugu/YYYYMMDD.csv or DAYnnnn.csv)")
    ap.add_argument("-o", "--out", help="the PNG to write (default: the CSV's name with .png)")
    args = ap.parse_args(argv)
    out = args.out or os.path.splitext(args.csv)[0] + ".png"
    try:
        df = read_log(args.csv)
        drawn = plot(df, out, title="%s: %d rows" % (os.path.basename(args.csv), len(df)))
    except (LogError, OSError) as e:
        print("plot_day: %s" % e, file=sys.stderr)
        return 2
    print("%s: %s" % (out, ", ".join(drawn)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
