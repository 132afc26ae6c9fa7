"""FUGU MPPT solar charge controller: compose the board, the settings, the control core and the extensions, then run."""

import analogio
import board
import busio
import digitalio
import microcontroller
import pwmio
import watchdog

from fugu import VERSION
from fugu.boardid import load_board_config
from fugu.charger import Charger
from fugu.controller import Controller
from fugu.energy import EnergyMeter
from fugu.extensions import ExtContext, ExtensionHost
from fugu.history import History
from fugu.hw import Hardware, calibration
from fugu.settings import Settings
from fugu.telemetry import Telemetry
from fugu.thermal import Thermal

print("FUGU MPPT firmware %s" % VERSION)
cfg = load_board_config(microcontroller.nvm)
settings = Settings(microcontroller.nvm)
mods = {"board": board, "busio": busio, "digitalio": digitalio, "pwmio": pwmio, "analogio": analogio,
        "microcontroller": microcontroller, "watchdog": watchdog}
hw = Hardware(cfg, mods, cal=calibration(settings), mode=settings.get("mode"))
print("board %s: %d stage(s), ADC %s" % (cfg["name"], len(hw.stages), hw.adc_kind))
tel = Telemetry(len(hw.stages), cfg["name"], VERSION, settings.get("mode"))
ext = ExtensionHost(ExtContext(cfg, mods, settings, tel, hw.i2c))
ext.discover()
ctl = Controller(hw, settings, Charger(), EnergyMeter(), History(microcontroller.nvm), Thermal(cfg["ntc"]),
                 telemetry=tel, extensions=ext)
try:
    ctl.run()
finally:
    hw.safe()
    ext.stop_all()
