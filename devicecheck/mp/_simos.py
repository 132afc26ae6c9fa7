# The `os` module the firmware sees in MicroPython (installed as sys.modules["os"] by _devboot): MicroPython's own
# os, plus getenv() answered by the host (CircuitPython reads settings.toml; the simulator reads its environment).

import _hostlink as _l
from _hostlink import mark as _mark
from os import *  # noqa: F401,F403


def getenv(key, default=None):
    _mark("(", "")
    r = _l.call("os.getenv", key)
    found = _l.flag()
    _mark(")", "")
    if not found:
        return default
    return r
