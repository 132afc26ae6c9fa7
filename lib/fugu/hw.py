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
                rdy = None
                if kind != "TLA2024" and cp.get("adc_rdy"):
                    rdy = self._dio.DigitalInOut(pin(cp["adc_rdy"]))
                    rdy.switch_to_input()
                adc = _i2c_backend(kind)(self.i2c, address=adc_cfg.get("address", 0x48),
                                         pga_v=adc_cfg.get("pga_v", 2.048), rdy=rdy)
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
