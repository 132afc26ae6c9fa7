"""Stand-in for ``pwmio`` with the ESP32 LEDC behaviour: resolution = floor(log2(80 MHz / f)) bits (max 13), the
16-bit duty_cycle shifted down to it. The plant sees the effective duty and frequency."""

import math

from sim.simboard import active

_APB_HZ = 80000000


def _duty_bits(frequency):
    if frequency <= 0 or _APB_HZ / frequency < 2:
        raise ValueError("Invalid frequency")
    return min(13, int(math.floor(math.log2(_APB_HZ / frequency))))


class PWMOut:
    def __init__(self, pin, *, duty_cycle=0, frequency=500, variable_frequency=False):
        self._board = active()
        self._name = pin._name
        if not 0 <= duty_cycle <= 0xFFFF:
            raise ValueError("duty_cycle must be 0-65535")
        self._bits = _duty_bits(frequency)
        self._frequency = int(frequency)
        self._variable = variable_frequency
        self._board.claim(self._name, self)
        self._duty = int(duty_cycle)
        self._deinited = False
        self._emit()

    @property
    def resolution_bits(self):
        """Not in CircuitPython: for tests (the ESP32 port's LEDC resolution at this frequency)."""
        return self._bits

    def _effective(self):
        counts = self._duty >> (16 - self._bits)
        return counts / float(1 << self._bits)

    def _emit(self):
        b = self._board
        b.clock.advance(b.cost.pwm_write_us * 1000)
        b.drive(self._name, "pwm", (self._effective(), float(self._frequency)))

    def deinit(self):
        if not self._deinited:
            self._board.release(self._name, self)
            self._deinited = True

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.deinit()

    def _check(self):
        if self._deinited:
            raise ValueError("Object has been deinitialized and can no longer be used. Create a new object.")

    @property
    def duty_cycle(self):
        self._check()
        return self._duty

    @duty_cycle.setter
    def duty_cycle(self, d):
        self._check()
        d = int(d)
        if not 0 <= d <= 0xFFFF:
            raise ValueError("duty_cycle must be 0-65535")
        self._duty = d
        self._emit()

    @property
    def frequency(self):
        return self._frequency

    @frequency.setter
    def frequency(self, f):
        self._check()
        if not self._variable:
            raise AttributeError("Cannot change frequency without variable_frequency=True")
        self._bits = _duty_bits(f)
        self._frequency = int(f)
        self._emit()
