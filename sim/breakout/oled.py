"""The OLED module on the simulated breakout: an SSD1306 128x64 (sim/devices/ssd1306.py) on the board's I2C bus at
0x3C, and the breakout's push button (to ground, pull-up: idle high) that a test or the demo presses.

What a user looks at: the frames. The handle keeps the last complete frame of each page it saw (a frame is complete
when the display has been quiet for QUIET_MS: the firmware redraws a page line by line) and writes them as PNG
(``oled/page1_live.png`` ...) plus ``oled/last.png``. It reads the text back from the pixels with the font the
firmware uses (terminalio's 6x12 cells on the line grid of extensions/oled_pages.py), so the summary says what the
panel said.

For the demo (and any scenario that plugs the OLED), the button is pressed every ``AUTO_PRESS_EVERY_S`` simulated
seconds so one run shows every page; set ``handle.auto_press_every_s = None`` to stop that.
"""

import os

from sim.devices.ssd1306 import SSD1306Emulator

ADDRESS = 0x3C
QUIET_MS = 300
PRESS_HOLD_MS = 200
AUTO_PRESS_EVERY_S = 20.0
PNG_SCALE = 4  # a 128x64 frame is small on a screen: PNGs are enlarged (nearest neighbour)
_MS = 1000000


_GLYPHS = {}


def _glyph_table():
    """{72-bit cell pattern: character} for the printable ASCII of terminalio.FONT (blinka's: the Terminus 6x12 font
    CircuitPython builds in)."""
    if _GLYPHS:
        return _GLYPHS
    import terminalio

    font = terminalio.FONT
    table = _GLYPHS
    for code in range(0x20, 0x7F):
        g = font.get_glyph(code)
        if g is None:
            continue
        bits = 0
        for y in range(12):
            for x in range(6):
                bits = (bits << 1) | (1 if x < g.width and y < g.height and g.bitmap[x, y] else 0)
        table.setdefault(bits, chr(code))
    return table


def decode_text(pixels, line_tops, n_chars=21, x0=0):
    """The text lines a frame shows (rows of 0/1 pixels), cell by cell; an unknown cell reads '?'."""
    table = _glyph_table()
    lines = []
    for top in line_tops:
        if top + 12 > len(pixels):
            break
        chars = []
        for c in range(n_chars):
            bits = 0
            for y in range(12):
                row = pixels[top + y]
                for x in range(6):
                    bits = (bits << 1) | row[x0 + 6 * c + x]
            chars.append(table.get(bits, "?"))
        lines.append("".join(chars).rstrip())
    return lines


def page_key(title):
    """'1/4 LIVE    TRACK' -> 'page1_live' (None when the line is no page title)."""
    parts = title.split()
    if len(parts) < 2 or "/" not in parts[0]:
        return None
    num = parts[0].split("/")[0]
    if not num.isdigit():
        return None
    word = "".join(ch for ch in parts[1].lower() if ch.isalnum())
    return "page%s_%s" % (num, word or "x")


class OledHandle:
    name = "oled"

    def __init__(self, sim, pins, work_dir, address=ADDRESS, height=64):
        self.sim = sim
        self.board = sim.board
        self.clock = sim.board.clock
        self.emulator = SSD1306Emulator(self.board, height=height, address=address)
        self.board.add_i2c_device((pins["scl"], pins["sda"]), address, self.emulator)
        self.emulator.on_frame = self._on_frame
        self.button_pin = pins.get("button")
        self.pressed = False
        self.presses = 0
        if self.button_pin is not None:
            self.board.set_input(self.button_pin, source=lambda: not self.pressed)
        self.auto_press_every_s = AUTO_PRESS_EVERY_S
        if self.button_pin is not None:
            self.clock.schedule(int(AUTO_PRESS_EVERY_S * 1e9), self._auto_press)
        from extensions.oled_pages import LINE_CHARS, line_count, line_top_px

        self._line_tops = [line_top_px(k) for k in range(line_count(height))]
        self._line_chars = LINE_CHARS
        self._last_frame_ns = None
        self._check_pending = False
        self._snapped_frames = 0
        self.pages = {}  # page key -> (PIL image, text lines) of its last complete frame
        self.page_order = []
        self.last_image = None
        self.last_text = []
        self.snapshots = []  # (t_s, page key, text lines)

    # -- the button -----------------------------------------------------------------------------------------
    def press(self, at_ns=None, hold_ms=PRESS_HOLD_MS):
        """Press the button at ``at_ns`` (default: now) for ``hold_ms`` of simulated time."""
        if self.button_pin is None:
            raise ValueError("this board config has no breakout button")
        t = self.clock.now_ns if at_ns is None else int(at_ns)
        self.clock.schedule(t, self._down)
        self.clock.schedule(t + int(hold_ms * _MS), self._up)

    def _down(self, t_ns):
        self.pressed = True
        self.presses += 1

    def _up(self, t_ns):
        self.pressed = False

    def _auto_press(self, t_ns):
        every = self.auto_press_every_s
        if not every:
            return
        self.press(t_ns)
        self.clock.schedule(t_ns + int(every * 1e9), self._auto_press)

    # -- frames ---------------------------------------------------------------------------------------------
    def _on_frame(self, emulator, t_ns):
        self._last_frame_ns = t_ns
        if not self._check_pending:
            self._check_pending = True
            self.clock.schedule(t_ns + QUIET_MS * _MS, self._check_quiet)

    def _check_quiet(self, t_ns):
        quiet_at = self._last_frame_ns + QUIET_MS * _MS
        if t_ns < quiet_at:
            self.clock.schedule(quiet_at, self._check_quiet)
            return
        self._check_pending = False
        self.snapshot(t_ns)

    def text(self):
        """The text lines the panel shows now."""
        return decode_text(self.emulator.pixels(), self._line_tops, self._line_chars)

    def snapshot(self, t_ns=None):
        """Keep what the panel shows now as the latest frame of its page."""
        t_ns = self.clock.now_ns if t_ns is None else t_ns
        emu = self.emulator
        pixels = emu.pixels()
        lines = decode_text(pixels, self._line_tops, self._line_chars)
        key = page_key(lines[0]) if lines else None
        img = emu.to_image()
        self._snapped_frames = emu.frames
        self.last_image = img
        self.last_text = lines
        if key is not None:
            if key not in self.pages:
                self.page_order.append(key)
            self.pages[key] = (img, lines)
        self.snapshots.append((round(t_ns / 1e9, 3), key, lines))
        del self.snapshots[:-200]
        return key, lines

    # -- what the runner asks -------------------------------------------------------------------------------
    def summary(self):
        emu = self.emulator
        return {
            "address": "0x%02X" % emu.address,
            "display_on": emu.display_on,
            "frames": emu.frames,
            "i2c_writes": emu.writes,
            "data_bytes": emu.data_bytes,
            "button_presses": self.presses,
            "pages_seen": list(self.page_order),
            "last_page_text": list(self.last_text),
        }

    def write(self, out_dir):
        d = os.path.join(out_dir, "oled")
        os.makedirs(d, exist_ok=True)
        from PIL import Image

        written = []
        for key in self.page_order:
            img = self.pages[key][0]
            path = os.path.join(d, key + ".png")
            img.resize((img.width * PNG_SCALE, img.height * PNG_SCALE), Image.NEAREST).save(path)
            written.append(path)
        img = self.emulator.to_image()  # the glass at the end of the run
        path = os.path.join(d, "last.png")
        img.resize((img.width * PNG_SCALE, img.height * PNG_SCALE), Image.NEAREST).save(path)
        written.append(path)
        return written


def attach(sim, pins, work_dir):
    return OledHandle(sim, pins, work_dir)
