"""Stand-in for ``analogio`` with the ESP32-S3 port's behaviour: 12-bit conversion at 12 dB attenuation,
calibrated to millivolts, reported as value = mV * 65535 / 3300; the top of the range saturates near 3.1 V and the
calibrated curve has a small nonlinearity (a few tens of mV near the ends)."""

from sim.simboard import active

_V_SAT = 3.1


def _esp_adc_mv(v):
    v = 0.0 if v < 0 else (_V_SAT if v > _V_SAT else v)
    # residual nonlinearity after eFuse curve fitting: bowed, ~ +-15 mV, worst near the ends
    err_mv = 15.0 * ((2.0 * v / _V_SAT - 1.0) ** 3)
    raw = int(v / _V_SAT * 4095.0 + 0.5)  # 12-bit code, then calibrated back to mV
    mv = raw * _V_SAT * 1000.0 / 4095.0 + err_mv
    return max(0, int(mv + 0.5))


class AnalogIn:
    def __init__(self, pin):
        self._board = active()
        self._name = pin._name
        self._board.claim(self._name, self)
        self._deinited = False

    def deinit(self):
        if not self._deinited:
            self._board.release(self._name, self)
            self._deinited = True

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.deinit()

    @property
    def value(self):
        if self._deinited:
            raise ValueError("Object has been deinitialized and can no longer be used. Create a new object.")
        mv = _esp_adc_mv(self._board.read_analog_v(self._name))
        return min(65535, mv * 65535 // 3300)

    @property
    def reference_voltage(self):
        return 3.3


class AnalogOut:
    def __init__(self, pin):
        raise NotImplementedError("AnalogOut is not supported on the ESP32-S3")
