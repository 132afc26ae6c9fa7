"""The TLA2024 ADC backend (fugu/sensors.py has the fast read path it shares with the ADS1x15). A module of its own
so that boards with another ADC do not load it (RAM); hw.py imports it for a TLA2024."""

from fugu.sensors import _DR_ADS1015, _AdsBase, forget_driver


class TLA2024Backend(_AdsBase):
    """TLA2024: no ALERT/RDY pin and no threshold registers; the OS bit is polled (our poll waits while OS=0,
    the datasheet meaning; the driver's own one-shot loop has it backwards, see CIRCUITPYTHON-FACTS)."""

    kind = "TLA2024"
    counts_full = 2047
    shift = 4

    def __init__(self, i2c, address=0x48, pga_v=2.048, rdy=None, data_rate=3300):
        from adafruit_tla202x import TLA2024, DataRate, Range

        drv = TLA2024(i2c, address=address)
        # the driver adds the Range constants at import time (CV.add_values): by name, so a type checker follows
        drv.range = getattr(Range, "RANGE_%s_%sV" % tuple(("%.3f" % pga_v).split(".")))
        drv.data_rate = getattr(DataRate, "RATE_%dSPS" % data_rate)
        _AdsBase.__init__(self, drv.i2c_device, pga_v, _DR_ADS1015.index(data_rate),
                          1000000 // data_rate + 10, None)
        self._cfg_base &= ~0x001F
        self._cfg_base |= 0x0003  # bits 4:0 reserved: write 00011b
        forget_driver("adafruit_tla202x")
        forget_driver("adafruit_register")
