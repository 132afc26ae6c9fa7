# Stand-in for CircuitPython's `analogio` (MicroPython side): the simulated board models the ESP32-S3 ADC.

import _hostlink as _l
from _hostlink import mark as _mark


class AnalogIn:
    def __init__(self, pin):
        _mark("(", "")
        self._h = 0
        _l.call("ain.new", _l.pin_name(pin))
        self._h = _l.ival()
        _mark(")", "")

    def deinit(self):
        _mark("(", "")
        _l.call("ain.deinit", "", self._h)
        _mark(")", "")

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc_value, traceback):
        self.deinit()

    @property
    def value(self):
        _mark("(", "")
        _l.call("ain.value", "", self._h)
        v = _l.ival()
        _mark(")", "")
        return v

    @property
    def reference_voltage(self):
        return 3.3


class AnalogOut:
    def __init__(self, pin):
        raise NotImplementedError("AnalogOut is not supported on the ESP32-S3")
