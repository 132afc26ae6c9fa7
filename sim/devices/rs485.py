"""A half-duplex two-wire RS485 line: the MCU's UART behind a MAX485-style transceiver (DE and /RE tied to one
direction pin), and host-side ports (a Modbus master's USB adapter) on the same pair.

What it models, byte by byte at the line's baud rate (8N1: 10 bit times a character):
- the MCU's bytes reach the line only while its DE pin is high for the whole character; a byte started with DE low
  or cut by DE falling is lost (counted: ``mcu_bytes_lost``);
- the MCU's receiver is off while DE is high (/RE tied to DE): it neither hears itself nor a host talking then;
  ``receiver_always_on`` models a module whose /RE is grounded (or an auto-direction one): the MCU hears its own
  answer echoed;
- two drivers at once (a host byte while DE is high) garble both: counted as ``collisions``, delivered to nobody;
- a UART set to another baud rate or format than the line's receives and sends garbage: counted as
  ``framing_errors``, nothing delivered;
- the timing a user's master sees: each byte arrives when its stop bit ends; DE edges are logged, so the time DE is
  held after the last stop bit (``de_tail_ns``) and the silence before each answer can be checked.

The busio.UART stand-in finds the line by its (tx, rx) pins (SimBoard.add_uart_peer) and calls on_mcu_write() and
on_uart_config(); it reads what the MCU received from ``to_mcu``.
"""

CHAR_BITS_8N1 = 10


class RS485Line:
    def __init__(self, board, tx, rx, de, baudrate=19200):
        self.board = board
        self.clock = board.clock
        self.baudrate = int(baudrate)
        self.char_ns = CHAR_BITS_8N1 * 1e9 / self.baudrate
        self.to_mcu = bytearray()  # the MCU UART's receive side (the stand-in reads and trims it)
        self.receiver_always_on = False  # /RE grounded: the MCU receives its own bytes too
        self.ports = []  # host-side ports: on_line_byte(byte, t_end_ns)
        self.mcu_format_ok = True  # the MCU's UART matches the line (set by on_uart_config)
        self.mcu_format = None
        self.de_edges = [(0, False)]  # (t_ns, level): low (receive) at power-on, the module pulls DE down
        self.de_tail_ns = []  # per answer: DE fall minus the end of the last stop bit driven before it
        self.mcu_bytes = 0
        self.mcu_bytes_lost = 0
        self.host_bytes = 0
        self.collisions = 0
        self.framing_errors = 0
        self._host_busy = []  # (start_ns, end_ns) of host characters on the line, recent ones
        self._last_mcu_end_ns = None
        board.add_uart_peer(tx, rx, self)
        board.listen(de, self._on_de)

    # -- the MCU side (busio.UART stand-in and the DE pin) --------------------------------------------------
    def on_uart_config(self, baudrate, bits, parity, stop):
        self.mcu_format = (int(baudrate), bits, parity, stop)
        self.mcu_format_ok = int(baudrate) == self.baudrate and bits == 8 and parity is None and stop == 1

    def _on_de(self, name, kind, value):
        level = bool(value) if kind == "digital" else False
        t = self.clock.now_ns
        if level == self.de_edges[-1][1]:
            return
        self.de_edges.append((t, level))
        if not level and self._last_mcu_end_ns is not None:
            self.de_tail_ns.append(t - self._last_mcu_end_ns)
            self._last_mcu_end_ns = None

    def de_level_at(self, t_ns):
        for t, level in reversed(self.de_edges):
            if t <= t_ns:
                return level
        return False

    def _de_changed_between(self, start_ns, end_ns):
        for t, _ in reversed(self.de_edges):
            if t <= start_ns:
                return False
            if t < end_ns:
                return True
        return False

    def on_mcu_write(self, data, t0_ns):
        """The MCU's UART starts sending ``data`` at t0 (back to back, as the hardware FIFO does)."""
        c = self.char_ns
        for i, byte in enumerate(bytes(data)):
            start = t0_ns + i * c
            self.clock.schedule(start + c, self._mcu_byte_end(byte, int(start)))

    def _mcu_byte_end(self, byte, start_ns):
        def done(t_end):
            self.mcu_bytes += 1
            if not self.de_level_at(start_ns) or self._de_changed_between(start_ns, t_end):
                self.mcu_bytes_lost += 1  # the driver was off for (part of) the character
                return
            self._last_mcu_end_ns = t_end
            if self.receiver_always_on and self.mcu_format_ok:
                self.to_mcu.append(byte)  # the echo
            if self._host_overlaps(start_ns, t_end):
                self.collisions += 1
                return
            if not self.mcu_format_ok:
                self.framing_errors += 1
                return
            for p in self.ports:
                p.on_line_byte(byte, t_end)

        return done

    # -- the host side --------------------------------------------------------------------------------------
    def host_send(self, data, t0_ns):
        """A host port drives ``data`` onto the line from t0 (back to back). Returns the end of the last stop bit."""
        c = self.char_ns
        t = t0_ns
        for byte in bytes(data):
            start = int(t)
            end = int(t + c)
            self._host_busy.append((start, end))
            self.clock.schedule(end, self._host_byte_end(byte, start))
            t += c
        if len(self._host_busy) > 600:
            del self._host_busy[:300]
        return int(t)

    def _host_overlaps(self, start_ns, end_ns):
        for s, e in reversed(self._host_busy):
            if e <= start_ns:
                return False
            if s < end_ns:
                return True
        return False

    def _host_byte_end(self, byte, start_ns):
        def done(t_end):
            self.host_bytes += 1
            if self.de_level_at(start_ns) or self._de_changed_between(start_ns, t_end):
                self.collisions += 1  # both drive the pair; the MCU's receiver is off anyway
                return
            if not self.mcu_format_ok:
                self.framing_errors += 1
                return
            self.to_mcu.append(byte)

        return done

    def summary(self):
        tails = self.de_tail_ns
        return {
            "baudrate": self.baudrate,
            "mcu_uart": list(self.mcu_format) if self.mcu_format else None,
            "mcu_bytes": self.mcu_bytes,
            "mcu_bytes_lost": self.mcu_bytes_lost,
            "host_bytes": self.host_bytes,
            "collisions": self.collisions,
            "framing_errors": self.framing_errors,
            "de_tail_us_max": round(max(tails) / 1000.0, 1) if tails else None,
        }


class HostPort:
    """A host's transceiver on the line (a USB-RS485 adapter): sends bytes at a simulated time and cuts what it
    receives into frames at the 3.5-character silence, as a Modbus master does. ``on_frame(data, t_first_start_ns,
    t_last_end_ns)`` is called for each frame received."""

    def __init__(self, line, on_frame=None):
        self.line = line
        self.on_frame = on_frame
        self.frames = []  # (t_first_start_ns, t_last_end_ns, bytes)
        self._buf = bytearray()
        self._t_first = None
        self._t_last = None
        self.silence_ns = 3.5 * line.char_ns
        line.ports.append(self)

    def send(self, data, t_ns):
        """Schedule ``data`` to go out at t_ns (now if earlier). Returns the time its last stop bit ends."""
        clock = self.line.clock
        t = max(int(t_ns), clock.now_ns)
        end = int(t + len(data) * self.line.char_ns)
        clock.schedule(t, lambda t0: self.line.host_send(data, t0))
        return end

    def on_line_byte(self, byte, t_end_ns):
        if not self._buf:
            self._t_first = int(t_end_ns - self.line.char_ns)
        self._buf.append(byte)
        self._t_last = t_end_ns
        self.line.clock.schedule(t_end_ns + self.silence_ns, self._silence_check)

    def _silence_check(self, t_ns):
        if self._buf and self._t_last is not None and t_ns - self._t_last >= self.silence_ns - 1:
            frame = bytes(self._buf)
            first, last = self._t_first, self._t_last
            self._buf = bytearray()
            self.frames.append((first, last, frame))
            if self.on_frame is not None:
                self.on_frame(frame, first, last)
