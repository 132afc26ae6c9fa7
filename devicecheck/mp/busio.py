# Stand-in for CircuitPython's `busio` (MicroPython side): bytes go to the register-level device emulators on the
# simulated board. The host reads and writes the firmware's own buffers (no copies on the MicroPython heap).
# start/end are clamped to the buffer as the core does; the keyword names are CircuitPython 10's.

import sys

import _hostlink as _l
from _hostlink import mark as _mark

_MAX = sys.maxsize


def _adopt(kind, op):
    """board.I2C()/SPI()/UART(): the simulated board's singleton, wrapped."""
    _mark("(", "")
    _l.call(op)
    h = _l.ival()
    _mark(")", "")
    cls = I2C if kind == "i2c" else (SPI if kind == "spi" else UART)
    obj = cls.__new__(cls)
    obj._h = h
    return obj


class I2C:
    def __init__(self, scl, sda, *, frequency=100000, timeout=255):
        _mark("(", "")
        self._h = 0
        _l.call("i2c.new", _l.pin_name(scl) + " " + _l.pin_name(sda), frequency, timeout)
        self._h = _l.ival()
        _mark(")", "")

    def deinit(self):
        _mark("(", "")
        _l.call("i2c.deinit", "", self._h)
        _mark(")", "")

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc_value, traceback):
        self.deinit()

    def probe(self, address):
        _mark("(", "")
        _l.call("i2c.probe", "", self._h, address)
        v = _l.ival() != 0
        _mark(")", "")
        return v

    def scan(self):
        _mark("(", "")
        r = _l.call("i2c.scan", "", self._h)
        _mark(")", "")
        return [int(x) for x in r.split()]

    def try_lock(self):
        _mark("(", "")
        _l.call("i2c.lock", "", self._h)
        v = _l.ival() != 0
        _mark(")", "")
        return v

    def unlock(self):
        _mark("(", "")
        _l.call("i2c.unlock", "", self._h)
        _mark(")", "")

    def readfrom_into(self, address, buffer, *, start=0, end=_MAX):
        _mark("(", "")
        n = len(buffer)
        if end > n:
            end = n
        _l.call("i2c.read", "", self._h, address, _l.addressof(buffer), n, start, end)
        _mark(")", "")

    def writeto(self, address, buffer, *, start=0, end=_MAX):
        _mark("(", "")
        n = len(buffer)
        if end > n:
            end = n
        _l.call("i2c.write", "", self._h, address, _l.addressof(buffer), n, start, end)
        _mark(")", "")

    def writeto_then_readfrom(self, address, out_buffer, in_buffer, *, out_start=0, out_end=_MAX, in_start=0,
                              in_end=_MAX):
        _mark("(", "")
        n_out = len(out_buffer)
        if out_end > n_out:
            out_end = n_out
        n_in = len(in_buffer)
        if in_end > n_in:
            in_end = n_in
        _l.call("i2c.write_read", "", self._h, address, _l.addressof(out_buffer), n_out, out_start, out_end,
                _l.addressof(in_buffer), n_in, in_start, in_end)
        _mark(")", "")


class SPI:
    def __init__(self, clock, MOSI=None, MISO=None, half_duplex=False):
        _mark("(", "")
        self._h = 0
        _l.call("spi.new", _l.pin_name(clock) + " " + _l.pin_name(MOSI) + " " + _l.pin_name(MISO),
                1 if half_duplex else 0)
        self._h = _l.ival()
        _mark(")", "")

    def deinit(self):
        _mark("(", "")
        _l.call("spi.deinit", "", self._h)
        _mark(")", "")

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc_value, traceback):
        self.deinit()

    def configure(self, *, baudrate=100000, polarity=0, phase=0, bits=8):
        _mark("(", "")
        _l.call("spi.configure", "", self._h, baudrate, polarity, phase, bits)
        _mark(")", "")

    def try_lock(self):
        _mark("(", "")
        _l.call("spi.lock", "", self._h)
        v = _l.ival() != 0
        _mark(")", "")
        return v

    def unlock(self):
        _mark("(", "")
        _l.call("spi.unlock", "", self._h)
        _mark(")", "")

    @property
    def frequency(self):
        _mark("(", "")
        _l.call("spi.frequency", "", self._h)
        v = _l.ival()
        _mark(")", "")
        return v

    def write(self, buffer, *, start=0, end=_MAX):
        _mark("(", "")
        n = len(buffer)
        if end > n:
            end = n
        _l.call("spi.write", "", self._h, _l.addressof(buffer), n, start, end)
        _mark(")", "")

    def readinto(self, buffer, *, start=0, end=_MAX, write_value=0):
        _mark("(", "")
        n = len(buffer)
        if end > n:
            end = n
        _l.call("spi.read", "", self._h, _l.addressof(buffer), n, start, end, write_value)
        _mark(")", "")

    def write_readinto(self, out_buffer, in_buffer, *, out_start=0, out_end=_MAX, in_start=0, in_end=_MAX):
        _mark("(", "")
        n_out = len(out_buffer)
        if out_end > n_out:
            out_end = n_out
        n_in = len(in_buffer)
        if in_end > n_in:
            in_end = n_in
        _l.call("spi.write_read", "", self._h, _l.addressof(out_buffer), n_out, out_start, out_end,
                _l.addressof(in_buffer), n_in, in_start, in_end)
        _mark(")", "")


class UART:
    class Parity:
        ODD = "ODD"
        EVEN = "EVEN"

    def __init__(self, tx=None, rx=None, *, rts=None, cts=None, rs485_dir=None, rs485_invert=False,
                 baudrate=9600, bits=8, parity=None, stop=1, timeout=1, receiver_buffer_size=64):
        _mark("(", "")
        self._h = 0
        names = "%s %s %s %s %s %s" % (_l.pin_name(tx), _l.pin_name(rx), _l.pin_name(rts), _l.pin_name(cts),
                                       _l.pin_name(rs485_dir), "-" if parity is None else parity)
        _l.callf("uart.new", names, timeout, baudrate, bits)
        _l.call("uart.config", "", stop, receiver_buffer_size, 1 if rs485_invert else 0)
        self._h = _l.ival()
        _mark(")", "")

    def deinit(self):
        _mark("(", "")
        _l.call("uart.deinit", "", self._h)
        _mark(")", "")

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc_value, traceback):
        self.deinit()

    @property
    def baudrate(self):
        _mark("(", "")
        _l.call("uart.baudrate", "", self._h)
        v = _l.ival()
        _mark(")", "")
        return v

    @property
    def timeout(self):
        _mark("(", "")
        _l.call("uart.timeout", "", self._h)
        v = _l.fval()
        _mark(")", "")
        return v

    @timeout.setter
    def timeout(self, value):
        _mark("(", "")
        _l.callf("uart.settimeout", "", value, self._h)
        _mark(")", "")

    @property
    def in_waiting(self):
        _mark("(", "")
        _l.call("uart.in_waiting", "", self._h)
        v = _l.ival()
        _mark(")", "")
        return v

    def _fetch(self, op, nbytes):
        # the host keeps what it read; the bytes object is allocated here (as the core does) and filled in place
        _mark("(", "")
        _l.call(op, "", self._h, -1 if nbytes is None else nbytes)
        n = _l.ival()
        _mark(")", "")
        if n < 0:
            return None
        out = bytes(n)
        _mark("(", "")
        _l.call("uart.fetch", "", self._h, _l.addressof(out), n)
        _mark(")", "")
        return out

    def read(self, nbytes=None):
        return self._fetch("uart.read", nbytes)

    def readline(self):
        return self._fetch("uart.readline", None)

    def readinto(self, buf):
        _mark("(", "")
        _l.call("uart.readinto", "", self._h, _l.addressof(buf), len(buf))
        n = _l.ival()
        _mark(")", "")
        return None if n < 0 else n

    def write(self, buf):
        _mark("(", "")
        _l.call("uart.write", "", self._h, _l.addressof(buf), len(buf))
        v = _l.ival()
        _mark(")", "")
        return v

    def reset_input_buffer(self):
        _mark("(", "")
        _l.call("uart.reset_input_buffer", "", self._h)
        _mark(")", "")
