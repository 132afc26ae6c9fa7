"""Put the CircuitPython stand-ins first on sys.path and the simulated ``time`` in sys.modules.

Call ``install()`` before anything imports a driver or the firmware. Host libraries that also ship modules named
``board``/``busio``/``digitalio``/``microcontroller`` (Adafruit Blinka, pulled in by the drivers' PyPI metadata) are
shadowed; the drivers cannot tell the difference.
"""

import os
import sys

HAL_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "hal")
PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEVICE_PATHS = (os.path.join(PROJECT_ROOT, "lib"), PROJECT_ROOT)

_SHADOWED = ("board", "busio", "digitalio", "microcontroller", "micropython", "pwmio", "analogio", "countio",
             "watchdog", "supervisor", "storage", "displayio", "busdisplay", "i2cdisplaybus", "_vfsfat")


def _pin_stdlib_code():
    """The project root (on sys.path) has the firmware's code.py; a later `import code` (pdb does it) must get the
    standard library's module, never run the firmware."""
    mod = sys.modules.get("code")
    if mod is not None and os.path.dirname(getattr(mod, "__file__", "") or "") != PROJECT_ROOT:
        return
    import importlib.util

    path = os.path.join(os.path.dirname(os.__file__), "code.py")
    spec = importlib.util.spec_from_file_location("code", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules["code"] = mod
    spec.loader.exec_module(mod)


def install():
    # host libraries that use time must load before the swap, so they keep the real clock
    _pin_stdlib_code()
    import numpy  # noqa: F401
    import pandas  # noqa: F401
    import pvlib  # noqa: F401

    from sim import simtime

    for p in reversed((HAL_DIR,) + DEVICE_PATHS):
        if p in sys.path:
            sys.path.remove(p)
        sys.path.insert(0, p)
    for name in _SHADOWED:
        mod = sys.modules.get(name)
        if mod is not None and not (getattr(mod, "__file__", "") or "").startswith(HAL_DIR):
            del sys.modules[name]
    simtime.install()
