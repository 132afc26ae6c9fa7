"""FUGU MPPT solar charge controller: compose the board, the settings, the control core and the extensions, then run."""

import analogio
import board
import busio
import digitalio
import microcontroller
import pwmio
import watchdog

from fugu import VERSION, forget
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
try:
    hw = Hardware(cfg, mods, cal=calibration(settings), mode=settings.get("mode"))
except (OSError, ValueError) as err:
    # an ADC that does not answer (I2C wiring, chip, address in the board config): the gate pins were never driven
    # (the board holds the driver off); say so and boot again in a while, as often as it takes
    print("FAULT code=SENSOR ch=-1 boot: %s: %s; the converter stays off, restarting in 5 s" % (
        type(err).__name__, err))
    import time

    time.sleep(5)
    microcontroller.reset()
print("board %s: %d stage(s), ADC %s" % (cfg["name"], len(hw.stages), hw.adc_kind))
tel = Telemetry(len(hw.stages), cfg["name"], VERSION, settings.get("mode"))
host = ExtensionHost(ExtContext(cfg, mods, settings, tel, hw.i2c))
if microcontroller.cpu.reset_reason == microcontroller.ResetReason.WATCHDOG:
    # a call that never returned (no budget stops that): the core alone, so a hung extension is no reset loop
    print("extensions: not started after a watchdog reset (the next reset or power-on tries them again)")
    ext = None
else:
    host.discover()
    ext = host if host.running or host.absent else None  # something runs, or a socket is looked at
del host
if ext is None:  # no extension runs or is looked for: the extension machinery need not stay in RAM
    del ExtContext, ExtensionHost
    forget("fugu.extensions", "extensions")
ctl = Controller(hw, settings, Charger(), EnergyMeter(), History(microcontroller.nvm), Thermal(cfg["ntc"]),
                 telemetry=tel, extensions=ext)
del load_board_config, calibration, cfg, mods  # boot-only code and data: the GC takes them back
forget("fugu.boardid", "fugu.boardcfg")
try:
    ctl.run()
finally:
    hw.safe()
    if ext is not None:
        ext.stop_all()
