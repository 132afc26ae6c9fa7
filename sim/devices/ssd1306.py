"""Command-level emulator of the Solomon Systech SSD1306 OLED controller on I2C (128x64 and 128x32 modules).

The real drivers (adafruit_displayio_ssd1306 through displayio/busdisplay/i2cdisplaybus) talk to it through the
``busio`` stand-in, so the OLED costs the bus time it costs on the device. Bytes become GDDRAM contents exactly as
the datasheet says; ``to_image()`` shows what the panel would show.

Source: SSD1306 datasheet Rev 1.1 (Apr 2008): 8.1.5 I2C interface (control byte Co / D/C#), 8.7 GDDRAM (8 pages of
128 columns, one byte = 8 vertical pixels, LSB on top), 9 command table, 10.1.3 addressing modes (page, horizontal,
vertical), 10.1.4-10.1.5 column/page address windows, 10.1.8 segment remap, 10.1.14 COM scan direction,
10.1.18 COM pins hardware configuration (Table 10-3), 10.1.12 display ON/OFF; charge pump application note
(8Dh 14h enables the internal DC-DC; without it and without an external VCC the panel stays dark).

MODEL choices are marked. Read-back: on I2C the SSD1306 answers a read with its status byte: D6 = 1 when the
display is OFF; the low nibble reads 0x6 on 128x64 modules and 0x3 on smaller ones (what OLED libraries use to tell
an SSD1306 from an SH1106, 0x8) -- the probe the extension mechanism can use.
"""

# commands with the number of argument bytes that follow them
_ARGS = {0x20: 1, 0x21: 2, 0x22: 2, 0x26: 6, 0x27: 6, 0x29: 5, 0x2A: 5, 0x81: 1, 0x8D: 1, 0xA3: 2, 0xA8: 1,
         0xAD: 1, 0xD3: 1, 0xD5: 1, 0xD9: 1, 0xDA: 1, 0xDB: 1}

MODE_HORIZONTAL = 0
MODE_VERTICAL = 1
MODE_PAGE = 2


def _com_to_pin(com, config, n_com=64):
    """COM signal index -> panel row pin, Table 10-3 (A[4] alternative COM pins, A[5] left/right remap)."""
    half = n_com // 2
    alternative = config & 0x10
    lr_remap = config & 0x20
    if not alternative:
        return (com + half) % n_com if lr_remap else com
    if com < half:
        pin = 2 * com
    else:
        pin = 2 * (com - half) + 1
    if lr_remap:
        pin ^= 1
    return pin


class SSD1306Emulator:
    """One SSD1306 module. ``height`` 64 or 32 (the glass; width is 128). The module is wired as common modules are:
    upright with segment remap (A1h), COM scan remapped (C8h) and the COM pin configuration the module needs
    (DAh 12h for 64 rows, 02h for 32 rows): what every driver sends. A different configuration shows what the real
    glass would (interleaved rows, mirrored image).

    ``present = False`` makes it NACK. Counters: ``writes`` (I2C write transactions), ``command_bytes``,
    ``data_bytes``, ``frames`` (times the host completed its address window, i.e. finished a (partial) frame),
    ``frame_times_ns``. ``on_frame(emulator, t_ns)`` is called after each completed window.
    """

    WIDTH = 128

    def __init__(self, board=None, *, height=64, external_vcc=False, address=0x3C):
        if height not in (64, 32):
            raise ValueError("height must be 64 or 32")
        self.board = board
        self.height = height
        self.address = address
        self.external_vcc = bool(external_vcc)
        self.module_com_config = 0x12 if height == 64 else 0x02
        self.present = True
        self.on_frame = None
        self.writes = 0
        self.command_bytes = 0
        self.data_bytes = 0
        self.frames = 0
        self.frame_times_ns = []
        self.unknown_commands = []
        self.power_on_reset()

    # ------------------------------------------------------------------ state
    def power_on_reset(self):
        """Reset values of the command table (datasheet section 9 and 8.9)."""
        self.gddram = bytearray(8 * self.WIDTH)  # MODEL: the RAM content after power-up is undefined; we use 0
        self.display_on = False
        self.contrast = 0x7F
        self.entire_on = False  # A5h
        self.inverse = False  # A7h
        self.seg_remap = False  # A1h
        self.com_remap = False  # C8h
        self.mux = 63  # A8h: MUX ratio - 1
        self.display_offset = 0  # D3h
        self.start_line = 0  # 40h-7Fh
        self.com_config = 0x12  # DAh
        self.charge_pump = False  # 8Dh 14h
        self.addressing_mode = MODE_PAGE  # 20h
        self.col_start, self.col_end = 0, 127
        self.page_start, self.page_end = 0, 7
        self.col = 0
        self.page = 0
        self.scrolling = False
        self._pending = None  # (command, args so far, args needed)

    def status(self):
        """The status byte a read returns (D6 = display off)."""
        return (0x40 if not self.display_on else 0x00) | (0x06 if self.height == 64 else 0x03)

    @property
    def lit(self):
        """True when the glass emits: display ON and the panel has its drive voltage."""
        return self.display_on and (self.charge_pump or self.external_vcc)

    # ------------------------------------------------------------------ bus interface
    def i2c_write(self, data):
        """One write transaction: control byte(s) then command or data bytes (datasheet 8.1.5.2)."""
        self.writes += 1
        i = 0
        n = len(data)
        while i < n:
            control = data[i]
            i += 1
            co = control & 0x80
            is_data = control & 0x40
            if co:
                # one byte follows, then another control byte
                if i < n:
                    if is_data:
                        self._data(data[i:i + 1])
                    else:
                        self._command_byte(data[i])
                    i += 1
            else:
                # the rest of the transaction is data or commands
                if is_data:
                    self._data(data[i:])
                else:
                    for b in data[i:]:
                        self._command_byte(b)
                return

    def i2c_read(self, n):
        return bytes((self.status(),)) * n

    # ------------------------------------------------------------------ commands
    def _command_byte(self, b):
        self.command_bytes += 1
        p = self._pending
        if p is not None:
            p[1].append(b)
            if len(p[1]) == p[2]:
                self._pending = None
                self._execute(p[0], p[1])
            return
        need = _ARGS.get(b, 0)
        if need:
            self._pending = [b, [], need]
        else:
            self._execute(b, ())

    def _execute(self, cmd, args):
        if cmd <= 0x0F:  # lower nibble of the column start (page addressing mode)
            self.col = (self.col & 0xF0) | cmd
        elif cmd <= 0x1F:
            self.col = ((cmd & 0x0F) << 4) | (self.col & 0x0F)
            self.col &= 0x7F
        elif cmd == 0x20:
            mode = args[0] & 0x03
            if mode != 3:  # 11b is invalid
                self.addressing_mode = mode
        elif cmd == 0x21:
            self.col_start, self.col_end = args[0] & 0x7F, args[1] & 0x7F
            self.col = self.col_start
        elif cmd == 0x22:
            self.page_start, self.page_end = args[0] & 0x07, args[1] & 0x07
            self.page = self.page_start
        elif 0x40 <= cmd <= 0x7F:
            self.start_line = cmd & 0x3F
        elif cmd == 0x81:
            self.contrast = args[0]
        elif cmd == 0x8D:
            self.charge_pump = bool(args[0] & 0x04)
        elif cmd in (0xA0, 0xA1):
            self.seg_remap = cmd == 0xA1
        elif cmd in (0xA4, 0xA5):
            self.entire_on = cmd == 0xA5
        elif cmd in (0xA6, 0xA7):
            self.inverse = cmd == 0xA7
        elif cmd == 0xA8:
            if args[0] & 0x3F >= 15:  # 0..14 are invalid
                self.mux = args[0] & 0x3F
        elif cmd in (0xAE, 0xAF):
            self.display_on = cmd == 0xAF
        elif 0xB0 <= cmd <= 0xB7:
            self.page = cmd & 0x07
        elif cmd in (0xC0, 0xC8):
            self.com_remap = cmd == 0xC8
        elif cmd == 0xD3:
            self.display_offset = args[0] & 0x3F
        elif cmd == 0xDA:
            self.com_config = args[0] & 0x32
        elif cmd == 0x2E:
            self.scrolling = False
        elif cmd == 0x2F:
            self.scrolling = True  # MODEL: scrolling is recorded, not animated
        elif cmd in (0x26, 0x27, 0x29, 0x2A, 0xA3, 0xAD, 0xD5, 0xD9, 0xDB, 0xE3):
            pass  # timing, scroll set-up, IREF, VCOMH, NOP: no visible effect in this model
        else:
            self.unknown_commands.append(cmd)

    # ------------------------------------------------------------------ GDDRAM writes
    def _data(self, data):
        self.data_bytes += len(data)
        ram = self.gddram
        for b in data:
            ram[self.page * self.WIDTH + self.col] = b
            self._advance()

    def _advance(self):
        mode = self.addressing_mode
        if mode == MODE_PAGE:
            # the column pointer wraps within the page; the page does not change (10.1.3)
            self.col = self.col + 1 if self.col < 127 else 0
            return
        if mode == MODE_HORIZONTAL:
            if self.col < self.col_end:
                self.col += 1
                return
            self.col = self.col_start
            if self.page < self.page_end:
                self.page += 1
                return
            self.page = self.page_start
        else:  # vertical
            if self.page < self.page_end:
                self.page += 1
                return
            self.page = self.page_start
            if self.col < self.col_end:
                self.col += 1
                return
            self.col = self.col_start
        self._window_done()

    def _window_done(self):
        self.frames += 1
        t = self.board.clock.now_ns if self.board is not None else 0
        self.frame_times_ns.append(t)
        if len(self.frame_times_ns) > 100000:
            del self.frame_times_ns[:50000]
        if self.on_frame is not None:
            self.on_frame(self, t)

    # ------------------------------------------------------------------ what the glass shows
    def ram_pixel(self, col, row):
        """Bit of GDDRAM at (column address, RAM row)."""
        return (self.gddram[(row >> 3) * self.WIDTH + col] >> (row & 7)) & 1

    def pixels(self):
        """Rows (top to bottom) of 0/1 values (left to right) as the glass shows them now."""
        h = self.height
        out = [[0] * self.WIDTH for _ in range(h)]
        if not self.lit:
            return out
        n = self.mux + 1
        # the glass row each panel pin drives: the inverse of the mapping the module was designed for
        pin_to_row = {}
        for com in range(64):
            pin = _com_to_pin(com, self.module_com_config)
            pin_to_row[pin] = h - 1 - com if com < h else None  # MODEL: module mounted upright with C8h
        for com in range(n):
            row_pin = _com_to_pin(com, self.com_config)
            glass_row = pin_to_row.get(row_pin)
            if glass_row is None:
                continue
            # COM scan direction: in remapped mode COM[n-1] shows the first scanned line (10.1.14)
            line = n - 1 - com if self.com_remap else com
            ram_row = (line + self.start_line + self.display_offset) & 63
            row = out[glass_row]
            for x in range(self.WIDTH):
                col = x if self.seg_remap else 127 - x  # MODEL: glass mounted upright with A1h
                v = 1 if self.entire_on else self.ram_pixel(col, ram_row)
                row[x] = v ^ 1 if self.inverse else v
        return out

    def to_image(self, scale=1):
        """A PIL image (mode 'L', white on black) of what the panel shows; ``scale`` enlarges each pixel."""
        from PIL import Image

        img = Image.new("L", (self.WIDTH, self.height), 0)
        img.putdata([255 if v else 0 for row in self.pixels() for v in row])
        if scale != 1:
            img = img.resize((self.WIDTH * scale, self.height * scale), Image.NEAREST)
        return img

    def save_png(self, path, scale=1):
        self.to_image(scale).save(path)
        return path

    def text_art(self):
        """The panel as lines of '#' and '.', for assertion messages."""
        return "\n".join("".join("#" if v else "." for v in row) for row in self.pixels())
