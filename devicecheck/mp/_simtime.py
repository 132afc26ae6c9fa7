# The `time` module the firmware and the drivers see in MicroPython (installed as sys.modules["time"] by _devboot):
# CircuitPython's names, on the simulated clock. monotonic() is CircuitPython's 30-bit float (the host rounds it).

import _hostlink as _l
from _hostlink import mark as _mark
from collections import namedtuple

struct_time = namedtuple("struct_time", ("tm_year", "tm_mon", "tm_mday", "tm_hour", "tm_min", "tm_sec",
                                         "tm_wday", "tm_yday", "tm_isdst"))


def monotonic_ns():
    _mark("(", "")
    _l.call("t.monotonic_ns")
    v = _l.ival()
    _mark(")", "")
    return v


def monotonic():
    _mark("(", "")
    _l.call("t.monotonic")
    v = _l.fval()
    _mark(")", "")
    return v


def sleep(seconds):
    _mark("(", "")
    if seconds < 0:
        _mark(")", "")
        raise ValueError("sleep length must be non-negative")
    _l.callf("t.sleep", "", seconds)
    _mark(")", "")


def time():
    _mark("(", "")
    _l.call("t.time")
    v = _l.ival()
    _mark(")", "")
    return v


def localtime(secs=None):
    _mark("(", "")
    if secs is None:
        _l.call("t.time")
        secs = _l.ival()
    r = _l.call("t.localtime", "", secs)
    _mark(")", "")
    return struct_time(*[int(x) for x in r.split()])


def mktime(t):
    _mark("(", "")
    _l.call("t.mktime", "", t[0], t[1], t[2], t[3], t[4], t[5])
    v = _l.ival()
    _mark(")", "")
    return v
