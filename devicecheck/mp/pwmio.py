# Stand-in for CircuitPython's `pwmio` (MicroPython side): the simulated board applies the ESP32 LEDC resolution.

import _hostlink as _l
from _hostlink import mark as _mark


class PWMOut:
    def __init__(self, pin, *, duty_cycle=0, frequency=500, variable_frequency=False):
        _mark("(", "")
        self._h = 0
        _l.call("pwm.new", _l.pin_name(pin), duty_cycle, frequency, 1 if variable_frequency else 0)
        self._h = _l.ival()
        _mark(")", "")

    def deinit(self):
        _mark("(", "")
        _l.call("pwm.deinit", "", self._h)
        _mark(")", "")

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc_value, traceback):
        self.deinit()

    @property
    def duty_cycle(self):
        _mark("(", "")
        _l.call("pwm.duty", "", self._h)
        v = _l.ival()
        _mark(")", "")
        return v

    @duty_cycle.setter
    def duty_cycle(self, value):
        _mark("(", "")
        _l.call("pwm.setduty", "", self._h, value)
        _mark(")", "")

    @property
    def frequency(self):
        _mark("(", "")
        _l.call("pwm.freq", "", self._h)
        v = _l.ival()
        _mark(")", "")
        return v

    @frequency.setter
    def frequency(self, value):
        _mark("(", "")
        _l.call("pwm.setfreq", "", self._h, value)
        _mark(")", "")
