"""Hardware edges, built once from the board config: the I2C bus, one ADC backend + gate driver + protections per
power stage, the NTC, the fan and the watchdog. The CircuitPython modules are passed in (code.py imports them),
so nothing deep inside the core imports `board`.
"""

from fugu.gate import GateDriver
from fugu.protection import StageProtection
from fugu.sensors import ADS1015Backend, ADS1115Backend
from fugu.stage import Stage

WATCHDOG_TIMEOUT_S = 2.0


def _i2c_backend(kind):
    """The backend class of an I2C ADC; the TLA2024's is imported only for a board that has one (RAM)."""
    if kind == "TLA2024":
        from fugu.adc_tla2024 import TLA2024Backend

        return TLA2024Backend
    return {"ADS1115": ADS1115Backend, "ADS1015": ADS1015Backend}[kind]


def _fitted_adc(i2c_device):
    """Which chip of the ADS1x15 family is on the footprint (board config "type": "auto"): the ADS1115 (16 bit) or a
    12-bit ADS1015 / TLA2024 (the original FUGU ships with an ADS1015 or an ADS1115; the TLA2024 stands in for an
    ADS1015 out of stock). Told apart by one conversion at the lowest data-rate code, DR = 000: 8 SPS on the ADS1115
    (125 ms), 128 SPS on the others (7.8 ms), as all three datasheets say; only the config and conversion registers
    are used (the TLA2024 has no others). A 12-bit chip is read the TLA2024's way, which an ADS1015 accepts too
    (comparator off, no ALERT/RDY). Here and not in a module of its own: every name a module brings stays interned."""
    import time

    from fugu.sensors import SensorError, ticks_diff, ticks_ms

    dev = i2c_device
    # config: AIN0 against GND, +-2.048 V, single shot, DR = 000, comparator bits 00011 (off, and what the TLA2024
    # requires in its reserved bits); OS = 0 first: a chip left converting (continuous mode, after a warm reset) ends
    # that conversion and powers down; then OS = 1: one conversion, timed
    w = bytearray(b"\x01\x45\x03")
    p = w[:1]  # the config register's pointer
    b = bytearray(2)
    dt = 0
    for start in (0x45, 0xC5):
        w[1] = start
        with dev as d:
            d.write(w)
        t0 = ticks_ms()
        while True:
            time.sleep(0.002)
            with dev as d:
                d.write_then_readinto(p, b)
            dt = ticks_diff(ticks_ms(), t0)
            if b[0] & 0x80:  # OS reads 1: no conversion in progress
                break
            if dt > 300:
                raise SensorError("ADC: conversion never finished")
    return "ADS1115" if dt > 50 else "TLA2024"


def calibration(settings):
    """The unit's gain corrections (ppm) per sense channel from the settings (a user calibrates against a meter)."""
    cal = {}
    for k in ("v_in", "v_out", "i_in", "i_out"):
        key = "cal_%s_ppm" % k
        if key in settings:
            cal[k] = settings.get(key)
    return cal


class Hardware:
    def __init__(self, cfg, mods, cal=None, log=print, adc_override=None, mode="buck"):
        """mods: dict of the CircuitPython modules: board, busio, digitalio, pwmio, analogio, microcontroller,
        watchdog (the last two may be None on a host without them). mode: the settings' "buck" or "boost" (the
        power stages are built for it; a change applies at the next start)."""
        self.mode = mode
        stage_cls = Stage
        if mode == "boost":
            from fugu.boost import BoostStage  # imported only in boost mode (RAM)

            stage_cls = BoostStage
        self.log = log
        board = mods["board"]
        self._dio = mods["digitalio"]
        pins = cfg["pins"]

        def pin(name):
            return getattr(board, name)

        r = cfg.get("ratings", {})
        self.ratings = {
            "v_in_max_mv": r.get("v_in_max_mv", 80000), "i_in_max_ma": r.get("i_in_max_ma", 30000),
            "v_out_max_mv": r.get("v_out_max_mv", 50000), "i_out_max_ma": r.get("i_out_max_ma", 35000),
            "p_max_mw": r.get("p_max_mw", 1000000)}
        self.i2c = None
        self.stages = []
        from fugu.boardcfg import channels  # boot-only: code.py drops fugu.boardcfg after setup

        for ch in channels(cfg):
            adc_cfg = ch.get("adc") or {"type": "analogio"}
            kind = adc_override or adc_cfg["type"]
            cp = ch["pins"]
            if kind == "analogio":
                sense = ch["sense"]
                chans = [None] * 4
                for s in sense.values():
                    chans[s["ch"]] = pin(s["pin"])
                from fugu.adc_analogio import AnalogBackend  # imported only for boards that use it (RAM)

                adc = AnalogBackend(mods["analogio"], chans, adc_cfg.get("v_ref_v", 3.3))  # type: object
            else:
                if self.i2c is None:
                    self.i2c = mods["busio"].I2C(pin(pins["scl"]), pin(pins["sda"]),
                                                 frequency=cfg.get("i2c_hz", 400000))
                address = adc_cfg.get("address", 0x48)
                auto = kind == "auto"
                if auto:
                    from adafruit_bus_device.i2c_device import I2CDevice

                    kind = _fitted_adc(I2CDevice(self.i2c, address))  # ValueError when nothing answers
                rdy = None
                if kind != "TLA2024" and cp.get("adc_rdy"):
                    rdy = self._dio.DigitalInOut(pin(cp["adc_rdy"]))
                    rdy.switch_to_input()
                backend = _i2c_backend(kind)(self.i2c, address=address, pga_v=adc_cfg.get("pga_v", 2.048), rdy=rdy)
                if auto:
                    backend.kind = "ADS1115 (auto)" if kind == "ADS1115" else "12-bit ADS1015/TLA2024 (auto)"
                adc = backend
            gate = GateDriver(mods["pwmio"], self._dio, pin(cp["pwm"]), pin(cp["enable"]), pin(cp["backflow"]),
                              ch["power_stage"])
            prot = StageProtection(self.ratings["v_in_max_mv"], self.ratings["i_in_max_ma"],
                                   self.ratings["i_out_max_ma"], self.ratings["v_out_max_mv"])
            self.stages.append(stage_cls(ch["index"], adc, ch["sense"], gate, prot, cal, log))
        self.adc_kind = self.stages[0].adc.kind
        self.ovp = None  # the output over-voltage comparator, on boards that have one (fugu/ovp.py)
        if "ovp" in cfg:
            from fugu.ovp import Ovp

            self.ovp = Ovp(cfg["ovp"], mods["pwmio"], self._dio, pin)
            self.stages[0].ovp_fault = self.ovp.fault
        # NTC on the MCU's ADC (slow reads: once a second)
        self.ntc_cfg = cfg["ntc"]
        self._ntc = mods["analogio"].AnalogIn(pin(pins["ntc"]))
        self.battery_temp_from_heatsink = cfg.get("battery_temp_from_heatsink", True)
        self._fan = self._dio.DigitalInOut(pin(pins["fan"]))
        self._fan.switch_to_output(value=False)
        self._wd = None
        mc = mods.get("microcontroller")
        wdmod = mods.get("watchdog")
        if mc is not None and wdmod is not None and mc.watchdog is not None:
            w = mc.watchdog
            w.timeout = WATCHDOG_TIMEOUT_S
            w.mode = wdmod.WatchDogMode.RESET
            self._wd = w

    def ntc_volts(self):
        a = self._ntc
        return a.value * a.reference_voltage / 65535

    def set_fan(self, on):
        if self._fan.value != on:
            self._fan.value = on

    def feed(self):
        if self._wd is not None:
            self._wd.feed()

    def safe(self):
        """Every stage off (used on any unexpected exception before the watchdog resets the board)."""
        for st in self.stages:
            st.gate.stop()
