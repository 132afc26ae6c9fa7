"""Stand-in for CircuitPython's ``busio`` (I2C, SPI, UART), routing bytes to device emulators on the SimBoard.

Signatures and keyword names follow CircuitPython 10 (circuitpython-stubs); the real Adafruit drivers run on it
unmodified. Every transaction advances the simulated clock by its wire time plus the per-call overhead of the
cost model. A missing I2C address raises OSError(ENODEV), as the ESP32 port does.
"""

import sys

from sim.simboard import active, oserror_nodev


def _pin_name(pin):
    return pin._name if pin is not None else None


def _slice(buf, start, end):
    end = len(buf) if end is None or end > len(buf) else end
    return start, end


class I2C:
    def __init__(self, scl, sda, *, frequency=100000, timeout=255):
        self._board = active()
        self._scl = _pin_name(scl)
        self._sda = _pin_name(sda)
        self._board.claim(self._scl, self)
        self._board.claim(self._sda, self)
        self.frequency = int(frequency)
        self.timeout = timeout
        self._locked = False
        self._deinited = False
        self._devices = self._board.i2c_bus(self._scl, self._sda)

    def deinit(self):
        if not self._deinited:
            self._board.release(self._scl, self)
            self._board.release(self._sda, self)
            self._deinited = True

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.deinit()

    def _check(self):
        if self._deinited:
            raise ValueError("Object has been deinitialized and can no longer be used. Create a new object.")

    def _cost(self, nbytes, transactions=1):
        b = self._board
        # one address byte per (repeated) start, 9 clocks a byte, ~2 clocks for start/stop each
        clocks = 9 * (nbytes + transactions) + 2 * transactions
        b.clock.advance(b.cost.i2c_call_us * 1000 + clocks * 1e9 / self.frequency)

    def _ready(self, address):
        """The device at address (OSError ENODEV without one), after the clock's due events ran."""
        dev = self._devices.get(address)
        if dev is None or not getattr(dev, "present", True):
            raise oserror_nodev()
        clock = self._board.clock
        if clock._events and clock._events[0][0] <= clock.now_ns:
            clock.run_events()
        return dev

    def probe(self, address):
        self._check()
        self._cost(0)
        dev = self._devices.get(address)
        return dev is not None and getattr(dev, "present", True)

    def scan(self):
        self._check()
        if not self._locked:
            raise RuntimeError("Function requires lock")
        found = []
        for addr in range(0x08, 0x78):
            self._cost(0)
            dev = self._devices.get(addr)
            if dev is not None and getattr(dev, "present", True):
                found.append(addr)
        return found

    def try_lock(self):
        self._check()
        if self._locked:
            return False
        self._locked = True
        return True

    def unlock(self):
        self._locked = False

    def readfrom_into(self, address, buffer, *, start=0, end=sys.maxsize):
        self._check()
        start, end = _slice(buffer, start, end)
        n = end - start
        self._cost(n)
        dev = self._ready(address)
        data = dev.i2c_read(n)
        buffer[start:end] = bytes(data[:n]).ljust(n, b"\xff")

    def writeto(self, address, buffer, *, start=0, end=sys.maxsize):
        # hot (every ADC conversion starts here): the checks of _check/_slice written out
        if self._deinited:
            self._check()
        if end > len(buffer):
            end = len(buffer)
        self._cost(end - start)
        dev = self._ready(address)
        dev.i2c_write(bytes(buffer[start:end]))

    def writeto_then_readfrom(self, address, out_buffer, in_buffer, *, out_start=0, out_end=sys.maxsize,
                              in_start=0, in_end=sys.maxsize):
        # hot (every ADC result is read here): as writeto
        if self._deinited:
            self._check()
        if out_end > len(out_buffer):
            out_end = len(out_buffer)
        if in_end > len(in_buffer):
            in_end = len(in_buffer)
        n = in_end - in_start
        self._cost(out_end - out_start + n, transactions=2)
        dev = self._ready(address)
        dev.i2c_write(bytes(out_buffer[out_start:out_end]))
        data = dev.i2c_read(n)
        in_buffer[in_start:in_end] = data if len(data) == n else bytes(data[:n]).ljust(n, b"\xff")


class SPI:
    """SPI controller. Devices are selected by their chip-select pin going low (a DigitalInOut the driver owns);
    MISO idles at 0xFF when no device drives it."""

    def __init__(self, clock, MOSI=None, MISO=None, half_duplex=False):
        self._board = active()
        self._names = (_pin_name(clock), _pin_name(MOSI), _pin_name(MISO))
        for n in self._names:
            if n is not None:
                self._board.claim(n, self)
        self._devices = self._board.spi_bus(*self._names)
        self._locked = False
        self._deinited = False
        self.frequency = 250000
        self._polarity = 0
        self._phase = 0

    def deinit(self):
        if not self._deinited:
            for n in self._names:
                if n is not None:
                    self._board.release(n, self)
            self._deinited = True

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.deinit()

    def configure(self, *, baudrate=100000, polarity=0, phase=0, bits=8):
        if bits != 8:
            raise ValueError("bits must be 8")
        # the ESP32 SPI clock divides 80 MHz; never above the request
        div = max(1, -(-80000000 // max(1, int(baudrate))))
        self.frequency = 80000000 // div
        self._polarity = polarity
        self._phase = phase

    def try_lock(self):
        if self._locked:
            return False
        self._locked = True
        return True

    def unlock(self):
        self._locked = False

    def _selected(self):
        out = []
        for cs, dev in self._devices.items():
            p = self._board.pins[cs]
            if p.driven is not None and not p.driven:
                out.append(dev)
        return out

    def _xfer(self, out_bytes):
        b = self._board
        b.clock.advance(b.cost.spi_call_us * 1000 + len(out_bytes) * 8e9 / self.frequency)
        b.clock.run_events()
        result = b"\xff" * len(out_bytes)
        for dev in self._selected():
            r = dev.transfer(out_bytes)
            if r is not None:
                result = bytes(r)
        return result

    def write(self, buffer, *, start=0, end=sys.maxsize):
        start, end = _slice(buffer, start, end)
        self._xfer(bytes(buffer[start:end]))

    def readinto(self, buffer, *, start=0, end=sys.maxsize, write_value=0):
        start, end = _slice(buffer, start, end)
        r = self._xfer(bytes([write_value & 0xFF]) * (end - start))
        buffer[start:end] = r

    def write_readinto(self, out_buffer, in_buffer, *, out_start=0, out_end=sys.maxsize, in_start=0,
                       in_end=sys.maxsize):
        out_start, out_end = _slice(out_buffer, out_start, out_end)
        in_start, in_end = _slice(in_buffer, in_start, in_end)
        if out_end - out_start != in_end - in_start:
            raise ValueError("buffer slices must be of equal length")
        in_buffer[in_start:in_end] = self._xfer(bytes(out_buffer[out_start:out_end]))


class UART:
    """UART with an optional RS485 direction pin. The peer on the other end of (tx, rx) receives what the MCU
    writes (``peer.on_mcu_write(bytes, t_ns)``) and puts bytes for the MCU into ``peer.to_mcu`` (a bytearray)."""

    class Parity:
        ODD = "ODD"
        EVEN = "EVEN"

    def __init__(self, tx=None, rx=None, *, rts=None, cts=None, rs485_dir=None, rs485_invert=False,
                 baudrate=9600, bits=8, parity=None, stop=1, timeout=1, receiver_buffer_size=64):
        self._board = active()
        self._tx = _pin_name(tx)
        self._rx = _pin_name(rx)
        for n in (self._tx, self._rx, _pin_name(rs485_dir)):
            if n is not None:
                self._board.claim(n, self)
        self._rs485_dir = _pin_name(rs485_dir)
        self.baudrate = int(baudrate)
        self.timeout = float(timeout)
        self._bits_per_char = 1 + bits + (1 if parity else 0) + stop
        self._peer = self._board.uart_peers.get((self._tx, self._rx))
        if self._peer is not None and hasattr(self._peer, "on_uart_config"):  # a line that checks the frame format
            self._peer.on_uart_config(self.baudrate, bits, parity, stop)
        self._rx_size = receiver_buffer_size
        self._deinited = False

    def deinit(self):
        if not self._deinited:
            for n in (self._tx, self._rx, self._rs485_dir):
                if n is not None:
                    self._board.release(n, self)
            self._deinited = True

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.deinit()

    def _char_ns(self):
        return self._bits_per_char * 1e9 / self.baudrate

    def _pending(self):
        self._board.clock.run_events()
        if self._peer is None:
            return bytearray()
        buf = self._peer.to_mcu
        if len(buf) > self._rx_size:  # the ring buffer overflows: oldest bytes are lost
            del buf[: len(buf) - self._rx_size]
        return buf

    @property
    def in_waiting(self):
        return len(self._pending())

    def read(self, nbytes=None):
        b = self._board
        b.clock.advance(b.cost.uart_call_us * 1000)
        buf = self._pending()
        if not buf and self.timeout > 0:
            # wait up to timeout for the first byte
            deadline = b.clock.now_ns + int(self.timeout * 1e9)
            while not buf and b.clock.now_ns < deadline:
                b.clock.advance(max(self._char_ns(), 100000))
                buf = self._pending()
        if not buf:
            return None
        n = len(buf) if nbytes is None else min(nbytes, len(buf))
        out = bytes(buf[:n])
        del buf[:n]
        return out

    def readinto(self, buf):
        data = self.read(len(buf))
        if data is None:
            return None
        buf[: len(data)] = data
        return len(data)

    def readline(self):
        b = self._board
        out = bytearray()
        deadline = b.clock.now_ns + int(self.timeout * 1e9)
        while True:
            pend = self._pending()
            if pend:
                i = pend.find(b"\n")
                if i >= 0:
                    out += pend[: i + 1]
                    del pend[: i + 1]
                    return bytes(out)
                out += pend
                del pend[:]
            if b.clock.now_ns >= deadline:
                return bytes(out)
            b.clock.advance(max(self._char_ns(), 100000))

    def write(self, buf):
        b = self._board
        data = bytes(buf)
        b.clock.advance(b.cost.uart_call_us * 1000)
        b.clock.sync()
        t0 = b.clock.now_ns
        if self._peer is not None:
            self._peer.on_mcu_write(data, t0)
        b.clock.advance(len(data) * self._char_ns())
        return len(data)

    def reset_input_buffer(self):
        del self._pending()[:]
