"""OLED status display: an SSD1306 (128x64 or 128x32, I2C address 0x3C or 0x3D) on the breakout's I2C bus, with four
pages (live power, today's yield, charger state and faults, 30-day yield chart) that the breakout button cycles.

Why it is built this way (the display shares the control loop's thread and I2C bus with the ADC):
- auto_refresh is off. CircuitPython's background refresh would push a changed frame (up to 1 KB, 24 ms at
  400 kHz) in the middle of a control step at any moment; here the extension refreshes itself, inside the host's
  timed call.
- One small piece per call: tick() rewrites at most ONE text line (2 RAM pages x 126 bytes: every line is padded to
  21 characters, so the label reuses its bitmap and one fixed area is resent) or ONE 32-px strip of the chart
  (6 pages x 32 bytes) and refreshes, so a call holds the bus for 6.5 ms (simulated: tests/ext/test_oled.py)
  instead of 24 ms for a whole frame (1024 bytes). A line is rewritten only when its text changed; the telemetry
  changes once a second, so the live page costs at most 5 such calls a second.
- observe() only formats strings (no bus traffic); displayio objects are all made once in start().
- The drivers (adafruit_displayio_ssd1306, adafruit_display_text) are imported in start(), after the probe found a
  panel: a board without an OLED does not spend heap on them.
- No auto-advance (a user's choice): only the button changes pages. After ``blank_after_ms`` without a press the
  panel is switched off (OLED burn-in); the next press only wakes it.
- Probe: the address acknowledges AND the status byte (a one-byte read) has the SSD1306's identity bits, so another
  chip at 0x3C/0x3D (an SH1106 OLED, a sensor) is not driven with SSD1306 commands.
"""

from extensions import oled_pages as pages
from fugu.extensions import Extension
from fugu.sensors import ticks_diff

try:
    from supervisor import ticks_ms
except ImportError:
    from fugu.sensors import ticks_ms

ADDRESSES = (0x3C, 0x3D)
WIDTH_PX = 128
# SSD1306 status byte (a one-byte read): D6 = 1 while the display is off; the low bits identify the controller:
# 0x6 on 128x64 modules, 0x3 on 128x32 ones (an SH1106 reads 0x8: another controller, another driver)
STATUS_ID_MASK = 0x3F  # D7 (busy on some parts) and D6 (off) are state, not identity
STATUS_ID_HEIGHT = {0x06: 64, 0x03: 32}
CHART_REFRESH_OBSERVES = 60  # the history chart is recomputed once a minute (today's bar grows)
DEBOUNCE_SAMPLES = 2  # consecutive equal button samples (tick period apart) before a change counts


def read_status(i2c, address):
    """The SSD1306 status byte at ``address``, or None when nothing answers."""
    buf = bytearray(1)
    while not i2c.try_lock():
        pass
    try:
        i2c.readfrom_into(address, buf)
    except OSError:
        return None
    finally:
        i2c.unlock()
    return buf[0]


def panel_height(status):
    """Rows of the SSD1306 a status byte identifies, or None when it is not an SSD1306."""
    return STATUS_ID_HEIGHT.get(status & STATUS_ID_MASK)


class OledExtension(Extension):
    name = "oled"
    period_ms = 50  # button sampling and one piece of display work
    # the busiest call rewrites one full-width line: 6.5 ms of I2C in the simulation (2 window commands + 252 data
    # bytes at 400 kHz, ESP-IDF's per-transaction overhead included), plus the label's re-render on the CPU (a few
    # glyph blits into a reused bitmap) that the simulation does not charge: 12 ms leaves that ~5 ms
    budget_ms = 12
    blank_after_ms = 10 * 60 * 1000  # no press for this long: panel off (burn-in); the next press wakes it

    def __init__(self, ctx):
        super().__init__(ctx)
        self.address = ADDRESSES[0]  # set by probe()
        self.height = 64
        self.display = None
        self.page = pages.PAGE_LIVE
        self.blanked = False
        self.presses = 0
        self._button = None
        self._labels = []
        self._want = []  # text each line should show
        self._shown = []  # text each line shows
        self._bars_want = bytearray(pages.CHART_DAYS)
        self._bars_shown = bytearray(pages.CHART_DAYS)
        self._axis_want = False
        self._axis_strips = 0  # bit k: strip k shows the axis
        self._history_title = pages.full_width(pages.history_title(0))
        self._strips_dirty = 0  # bit k: chart strip k must be redrawn
        self._chart_bitmap = None
        self._fill = _fill_region  # bitmaptools.fill_region when the build has it (start())
        self._observes = 0
        self._sample_run = 0
        self._raw_last = False
        self._pressed = False
        self._last_press_ms = 0

    # -- lifecycle ----------------------------------------------------------------------------------------------
    def probe(self):
        i2c = self.ctx.i2c
        if i2c is None:
            return False
        for addr in ADDRESSES:
            if not self.ctx.i2c_present(addr):
                continue
            status = read_status(i2c, addr)
            if status is None:
                continue
            height = panel_height(status)
            if height is None:
                self.ctx.log("ext oled: device at 0x%02X reads status 0x%02X: not an SSD1306" % (addr, status))
                continue
            self.address = addr
            self.height = height
            return True
        return False

    def start(self):
        try:
            import displayio
            import i2cdisplaybus
            import terminalio
            import adafruit_displayio_ssd1306
            from adafruit_display_text import bitmap_label as label
        except ImportError as e:
            raise ImportError("%s (needs adafruit_displayio_ssd1306 and adafruit_display_text: see circup.json)" % e)
        try:
            from bitmaptools import fill_region
        except ImportError:  # a build without bitmaptools: the same, pixel by pixel
            fill_region = _fill_region
        self._fill = fill_region
        displayio.release_displays()
        bus = i2cdisplaybus.I2CDisplayBus(self.ctx.i2c, device_address=self.address)
        self.display = adafruit_displayio_ssd1306.SSD1306(bus, width=WIDTH_PX, height=self.height,
                                                          auto_refresh=False)
        root = displayio.Group()
        chart_h = pages.chart_height_px(self.height)
        self._chart_bitmap = displayio.Bitmap(WIDTH_PX, chart_h, 2)
        palette = displayio.Palette(2)
        palette[0] = 0x000000
        palette[1] = 0xFFFFFF
        palette.make_transparent(0)
        root.append(displayio.TileGrid(self._chart_bitmap, pixel_shader=palette, x=0, y=pages.CHART_TOP_PX))
        n = pages.line_count(self.height)
        half = pages.LINE_PITCH_PX // 2
        for k in range(n):
            # a Label's y is the middle of its line: the glyph cell then covers rows 12k..12k+11
            blank = pages.full_width("")
            lbl = label.Label(terminalio.FONT, text=blank, color=0xFFFFFF, x=0, y=pages.line_top_px(k) + half - 1)
            root.append(lbl)
            self._labels.append(lbl)
            self._want.append(blank)
            self._shown.append(blank)
        self.display.root_group = root
        pin = self.ctx.pin("button")
        if pin is not None:
            dio = self.ctx.mods["digitalio"]
            try:
                self._button = dio.DigitalInOut(pin)
                self._button.switch_to_input(pull=dio.Pull.UP)
            except ValueError as e:  # the pin is taken: the display still shows page 1
                self.ctx.log("ext oled: button pin unavailable (%s): pages do not change" % e)
                self._button = None
        self._last_press_ms = ticks_ms()
        # the first page at once (start() may take a whole frame's time)
        self._format_page(self.ctx.telemetry)
        for k in range(n):
            self._apply_line(k)
        self.display.refresh()

    def stop(self):
        d = self.display
        self.display = None
        if d is not None:
            try:
                d.sleep()  # no frozen numbers on a display nobody updates
            except Exception:
                pass
            try:
                import displayio

                displayio.release_displays()
            except Exception:
                pass
        if self._button is not None:
            try:
                self._button.deinit()
            except Exception:
                pass
            self._button = None

    def status(self):
        btn = self.ctx.breakout.get("button")
        return "SSD1306 128x%d at 0x%02X, %s" % (self.height, self.address,
                                                  ("button " + btn) if self._button is not None else "no button")

    # -- work ---------------------------------------------------------------------------------------------------
    def observe(self, tel):
        self._observes += 1
        self._format_page(tel)
        if self.page == pages.PAGE_HISTORY and self._observes % CHART_REFRESH_OBSERVES == 0:
            self._compute_chart(tel)

    def tick(self, now_ms):
        self._sample_button(now_ms)
        if self.display is None:
            return
        if not self.blanked and ticks_diff(now_ms, self._last_press_ms) > self.blank_after_ms:
            self.display.sleep()
            self.blanked = True
            return
        if self.blanked:
            return
        for k in range(len(self._labels)):
            if self._want[k] != self._shown[k]:
                self._apply_line(k)
                self.display.refresh()
                return
        if self._strips_dirty:
            k = 0
            while not self._strips_dirty & (1 << k):
                k += 1
            self._strips_dirty &= ~(1 << k)
            self._draw_strip(k)
            self.display.refresh()

    # -- the button ---------------------------------------------------------------------------------------------
    def _sample_button(self, now_ms):
        if self._button is None:
            return
        raw = not self._button.value  # active low: pressed pulls the pin to ground
        if raw == self._raw_last:
            self._sample_run += 1
        else:
            self._raw_last = raw
            self._sample_run = 1
        if self._sample_run >= DEBOUNCE_SAMPLES and raw != self._pressed:
            self._pressed = raw
            if raw:
                self._on_press(now_ms)

    def _on_press(self, now_ms):
        self.presses += 1
        self._last_press_ms = now_ms
        if self.blanked:
            self.blanked = False
            if self.display is not None:
                self.display.wake()
            return
        self.page = (self.page + 1) % pages.PAGE_COUNT
        tel = self.ctx.telemetry
        self._format_page(tel)
        if self.page == pages.PAGE_HISTORY:
            self._compute_chart(tel)
        else:
            self._clear_chart()

    # -- content ------------------------------------------------------------------------------------------------
    def _format_page(self, tel):
        lines = pages.page_lines(self.page, tel, self.ctx.notices)
        if self.page == pages.PAGE_HISTORY:
            lines[0] = self._history_title
        for k in range(len(self._want)):
            self._want[k] = lines[k]

    def _compute_chart(self, tel):
        hist = tel.history
        days = hist.days() if hist is not None else []
        heights, vmax = pages.bar_heights(pages.daily_yields_mwh(days), pages.chart_height_px(self.height) - 2)
        for i in range(pages.CHART_DAYS):
            self._bars_want[i] = heights[i]
        self._axis_want = True
        self._history_title = pages.full_width(pages.history_title(vmax))
        self._want[0] = self._history_title
        self._mark_strips()

    def _clear_chart(self):
        for i in range(len(self._bars_want)):
            self._bars_want[i] = 0
        self._axis_want = False
        self._mark_strips()

    def _mark_strips(self):
        for i in range(pages.CHART_DAYS):
            bit = 1 << (pages.bar_x_px(i, WIDTH_PX) // pages.STRIP_WIDTH_PX)
            if self._bars_want[i] != self._bars_shown[i] or bool(self._axis_strips & bit) != self._axis_want:
                self._strips_dirty |= bit

    def _apply_line(self, k):
        text = self._want[k]
        self._labels[k].text = text
        self._shown[k] = text

    def _draw_strip(self, k):
        """Redraw columns [32k, 32k+32) of the chart: clear, the axis, the bars that fall in it."""
        bmp = self._chart_bitmap
        if bmp is None:
            return
        h = bmp.height
        x1 = k * pages.STRIP_WIDTH_PX
        x2 = x1 + pages.STRIP_WIDTH_PX
        fill = self._fill
        fill(bmp, x1, 0, x2, h, 0)
        self._axis_strips &= ~(1 << k)
        if self._axis_want:
            ax1 = pages.chart_x0_px(WIDTH_PX)
            ax2 = pages.bar_x_px(pages.CHART_DAYS - 1, WIDTH_PX) + pages.BAR_WIDTH_PX
            a = ax1 if ax1 > x1 else x1
            b = ax2 if ax2 < x2 else x2
            if a < b:
                fill(bmp, a, h - 1, b, h, 1)
                self._axis_strips |= 1 << k
        for i in range(pages.CHART_DAYS):
            bx = pages.bar_x_px(i, WIDTH_PX)
            if bx < x1 or bx >= x2:
                continue
            bh = self._bars_want[i]
            if bh:
                fill(bmp, bx, h - 2 - bh, bx + pages.BAR_WIDTH_PX, h - 2, 1)
            self._bars_shown[i] = bh


def _fill_region(bmp, x1, y1, x2, y2, value):
    for y in range(y1, y2):
        for x in range(x1, x2):
            bmp[x, y] = value


EXTENSION = OledExtension
