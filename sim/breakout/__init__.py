"""The simulated board's stackable breakout: which extension modules a scenario plugs in ([board.modules]), each
attached as a register/command-level emulator on the bus and pins the board config's "breakout" entry names, with a
host-side view of what it did (OLED frames as PNG, the SD card image, CAN frames, Modbus traffic, BLE sessions).

Each module here is ``sim/breakout/<name>.py`` with ``attach(sim, pins, work_dir) -> handle``; ``pins`` is the board
config's "breakout" dict plus its "pins" (sda, scl, buttons); ``work_dir`` is a folder for files the run makes (the
SD image ...). A handle has ``name``, ``summary() -> dict`` (small, JSON-able: goes into summary.json under
"modules") and ``write(out_dir)`` (copies what a user looks at into the run's output folder).
"""

import importlib
import sys

MODULES = ("oled", "sd", "can", "rs485", "ble")
CORE_MODULES = ("sdcardio", "canio")  # native modules of the ESP32 and ESP32-S3 CircuitPython builds (sim/hal)


def without_core_modules(board, *names):
    """Simulate a CircuitPython build that lacks these native modules (e.g. sdcardio: the SD log then uses
    adafruit_sdcard): while ``board`` is active, ``import sdcardio`` raises ImportError. Call before the run; a copy
    imported by an earlier run is dropped so the next import asks again."""
    for name in names:
        if name not in CORE_MODULES:
            raise ValueError("%r is not one of the simulated native modules %s" % (name, CORE_MODULES))
        sys.modules.pop(name, None)
    board.without_modules = tuple(getattr(board, "without_modules", ())) + tuple(names)


def attach_modules(sim, plugged, work_dir):
    """Attach every module whose flag in ``plugged`` (dict name -> bool) is true. Returns the handles."""
    cfg = sim.config
    pins = dict(cfg.get("breakout", {}))
    for k in ("sda", "scl", "buttons"):
        if k in cfg["pins"]:
            pins[k] = cfg["pins"][k]
    handles = []
    for name in MODULES:
        if not plugged.get(name):
            continue
        if name in ("sd", "can", "rs485") and not cfg.get("breakout"):
            raise ValueError("board config %s has no 'breakout' pins: module %r cannot be plugged"
                             % (cfg.get("name", "?"), name))
        mod = importlib.import_module("sim.breakout." + name)
        handles.append(mod.attach(sim, pins, work_dir))
    return handles
