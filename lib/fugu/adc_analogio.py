"""The MCU's own ADC as a backend (fugu/sensors.py has the others). A module of its own so that boards with an
external ADC do not load it (RAM); hw.py imports it for an "analogio" board."""

from fugu.sensors import SensorError


class AnalogBackend:
    """The MCU's own ADC (analogio): 16-bit scaled values of a calibrated millivolt reading (ESP32-S3: 12 bits,
    12 dB). Pins are created once; on the ESP32 port every read sets the ADC unit up again, so it is slow."""

    kind = "analogio"
    counts_full = 65535
    shift = 0

    def __init__(self, analogio_mod, pins, v_ref_v=3.3):
        self._ins = [analogio_mod.AnalogIn(p) if p is not None else None for p in pins]
        self.uv_per_count = v_ref_v * 1e6 / 65535
        self.transactions = 0

    def read(self, ch):
        a = self._ins[ch]
        if a is None:
            raise SensorError("analog channel %d has no pin" % ch)
        return a.value
