# Stand-in for CircuitPython's `countio` (MicroPython side): edges counted by the simulated board (ESP32 PCNT).

import _hostlink as _l
from _hostlink import mark as _mark


class Edge:
    RISE = "RISE"
    FALL = "FALL"
    RISE_AND_FALL = "RISE_AND_FALL"


class Counter:
    def __init__(self, pin, *, edge=Edge.FALL, pull=None):
        _mark("(", "")
        self._h = 0
        _l.call("cnt.new", _l.pin_name(pin) + " " + edge + " " + ("-" if pull is None else pull))
        self._h = _l.ival()
        _mark(")", "")

    def deinit(self):
        _mark("(", "")
        _l.call("cnt.deinit", "", self._h)
        _mark(")", "")

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc_value, traceback):
        self.deinit()

    @property
    def count(self):
        _mark("(", "")
        _l.call("cnt.get", "", self._h)
        v = _l.ival()
        _mark(")", "")
        return v

    @count.setter
    def count(self, value):
        _mark("(", "")
        _l.call("cnt.set", "", self._h, value)
        _mark(")", "")

    def reset(self):
        _mark("(", "")
        _l.call("cnt.reset", "", self._h)
        _mark(")", "")
