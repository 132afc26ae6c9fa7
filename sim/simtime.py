"""The ``time`` module the firmware and the drivers see: monotonic clocks and sleep read the simulated clock.

``time`` is built into CPython, so it cannot be shadowed through sys.path; ``sim.install`` puts this module into
``sys.modules['time']`` instead, before any firmware or driver is imported. Everything not redirected falls through
to the real module. Without an active SimBoard the functions behave like the real ones.

CircuitPython's ``time.monotonic()`` returns a 30-bit float (22-bit mantissa): it loses precision as the device
stays up (about 16 ms steps after a day). We reproduce that so firmware that integrates with it is caught; use
``monotonic_ns()`` or ``supervisor.ticks_ms()`` for time steps.
"""

import math
import sys
import time as _real_time
import types

from sim import simboard

EPOCH_OFFSET_S = 1767225600  # 2026-01-01T00:00:00Z; scenarios override with a start date


def _cp_float(x):
    """Round x to CircuitPython's float precision (IEEE single with the two low mantissa bits dropped)."""
    if x == 0.0:
        return 0.0
    m, e = math.frexp(x)
    scale = float(1 << 22)
    return math.ldexp(math.floor(m * scale) / scale, e)


def monotonic_ns():
    b = simboard._ACTIVE
    if b is None:
        return _real_time.monotonic_ns()
    b.clock.advance(b.cost.time_read_ns)
    return b.clock.now_ns


def monotonic():
    b = simboard._ACTIVE
    if b is None:
        return _real_time.monotonic()
    b.clock.advance(b.cost.time_read_ns)
    return _cp_float(b.clock.now_ns / 1e9)


def sleep(seconds):
    b = simboard.active_or_none()
    if b is None:
        return _real_time.sleep(seconds)
    if seconds < 0:
        raise ValueError("sleep length must be non-negative")
    # the core rounds to the nearest whole millisecond (shared-bindings/time: msecs = 1000 * s + 0.5)
    b.clock.advance(int(seconds * 1000.0 + 0.5) * 1000000)
    # the events due (an ADC's mid-window sample, the recorder) run, each with the plant integrated to its own
    # time; the plant itself is left for the next observation: integrating it to the end of every sleep would
    # split its step for nothing (a conversion wait is a sleep)
    b.clock.run_events()


def time():
    b = simboard.active_or_none()
    if b is None:
        return _real_time.time()
    return int(getattr(b, "epoch_offset_s", EPOCH_OFFSET_S) + b.clock.now_ns // 1000000000)


def localtime(secs=None):
    if secs is None:
        secs = time()
    return _real_time.gmtime(secs)


def mktime(t):
    import calendar

    return int(calendar.timegm(tuple(t)[:6] + (0, 0, 0)))


def _build():
    mod = types.ModuleType("time", __doc__)
    for name in ("monotonic_ns", "monotonic", "sleep", "time", "localtime", "mktime"):
        setattr(mod, name, globals()[name])
    mod.struct_time = _real_time.struct_time

    def __getattr__(name):
        return getattr(_real_time, name)

    mod.__getattr__ = __getattr__
    mod.__file__ = __file__
    return mod


module = _build()


def install():
    sys.modules["time"] = module
