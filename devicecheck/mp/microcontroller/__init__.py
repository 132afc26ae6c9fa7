# Stand-in for CircuitPython's `microcontroller` (MicroPython side): Pin, cpu, nvm, watchdog, reset().
# State lives on the simulated board (host); see _hostlink for the allocation-free calling convention.

import _hostlink as _l
from _hostlink import mark as _mark


class Pin:
    """A GPIO. One object per pin, compared by identity as on the device."""

    def __init__(self, name):
        self._name = name

    def __repr__(self):
        return "board." + self._name


_pins = {}


def _pin(name):
    p = _pins.get(name)
    if p is None:
        p = Pin(name)
        _pins[name] = p
    return p


class RunMode:
    NORMAL = "NORMAL"
    SAFE_MODE = "SAFE_MODE"
    UF2 = "UF2"
    BOOTLOADER = "BOOTLOADER"


class ResetReason:
    POWER_ON = "POWER_ON"
    BROWNOUT = "BROWNOUT"
    SOFTWARE = "SOFTWARE"
    DEEP_SLEEP_ALARM = "DEEP_SLEEP_ALARM"
    RESET_PIN = "RESET_PIN"
    WATCHDOG = "WATCHDOG"
    UNKNOWN = "UNKNOWN"
    RESCUE_DEBUG = "RESCUE_DEBUG"


class Processor:
    @property
    def temperature(self):
        _mark("(", "")
        _l.call("mc.temp")
        v = _l.fval()
        _mark(")", "")
        return v

    @property
    def frequency(self):
        return 240000000

    @property
    def voltage(self):
        return 3.3

    @property
    def reset_reason(self):
        _mark("(", "")
        r = _l.call("mc.reset_reason")
        _mark(")", "")
        return getattr(ResetReason, r)

    @property
    def uid(self):
        return bytearray(b"\x7c\xdf\xa1\x00\x51\x1e")


class ByteArray:
    """microcontroller.nvm: the simulated board's 8 KiB (slow writes, power-cut injection stay on the host)."""

    def __len__(self):
        _mark("(", "")
        _l.call("nvm.len")
        v = _l.ival()
        _mark(")", "")
        return v

    def __getitem__(self, index):
        if isinstance(index, slice):
            n = len(self)
            start, stop = _slice_bounds(index, n)
            out = bytearray(stop - start if stop > start else 0)
            _mark("(", "")
            _l.call("nvm.read", "", start, len(out), _l.addressof(out))
            _mark(")", "")
            return out
        _mark("(", "")
        _l.call("nvm.get", "", index)
        v = _l.ival()
        _mark(")", "")
        return v

    def __setitem__(self, index, value):
        if isinstance(index, slice):
            n = len(self)
            start, stop = _slice_bounds(index, n)
            _mark("(", "")
            _l.call("nvm.write", "", start, stop - start, _l.addressof(value), len(value))
            _mark(")", "")
            return
        _mark("(", "")
        _l.call("nvm.set", "", index, value)
        _mark(")", "")


def _slice_bounds(s, n):
    if s.step is not None and s.step != 1:
        raise NotImplementedError("only slices with step=1 (aka None) are supported")
    start = 0 if s.start is None else s.start
    stop = n if s.stop is None else s.stop
    if start < 0:
        start += n
    if stop < 0:
        stop += n
    start = min(max(start, 0), n)
    stop = min(max(stop, 0), n)
    return start, stop


class WatchDogTimer:
    """microcontroller.watchdog. Each feed() is one control step for the measurement (host decides when to
    measure and when to stop)."""

    @property
    def timeout(self):
        _mark("(", "")
        _l.call("wd.timeout")
        v = _l.fval()
        _mark(")", "")
        return v

    @timeout.setter
    def timeout(self, value):
        _mark("(", "")
        _l.callf("wd.settimeout", "", value)
        _mark(")", "")

    @property
    def mode(self):
        _mark("(", "")
        r = _l.call("wd.mode")
        _mark(")", "")
        if not r:
            return None
        from watchdog import WatchDogMode

        return getattr(WatchDogMode, r)

    @mode.setter
    def mode(self, value):
        _mark("(", "")
        _l.call("wd.setmode", "" if value is None else value)
        _mark(")", "")

    def feed(self):
        _mark("(", "")
        _l.call("wd.feed")
        f = _l.flag()
        if f:
            _l.measure(f)
        _mark(")", "")

    def deinit(self):
        _mark("(", "")
        _l.call("wd.deinit")
        _mark(")", "")


cpu = Processor()
cpus = (cpu,)
nvm = ByteArray()
watchdog = WatchDogTimer()


def reset():
    _mark("(", "")
    _l.call("mc.reset")
    _mark(")", "")


def on_next_reset(run_mode):
    _mark("(", "")
    _l.call("mc.next_reset", run_mode)
    _mark(")", "")


def delay_us(delay):
    _mark("(", "")
    _l.call("mc.delay_us", "", delay)
    _mark(")", "")


def disable_interrupts():
    pass


def enable_interrupts():
    pass


from microcontroller import pin  # noqa: E402 (the submodule, as in CircuitPython)
