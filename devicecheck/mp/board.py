# Stand-in for CircuitPython's `board` (MicroPython side): the simulated board's pins (IO0... and aliases such as
# SDA, the same Pin object for both, as on the device), board_id, and the I2C()/SPI()/UART() singletons.

import _hostlink as _l
from microcontroller import _pin

board_id = ""


def _load():
    global board_id
    text = _l.call("board.pins", "")
    g = globals()
    for item in text.split():
        name, _, target = item.partition("=")
        if name == "board_id":
            board_id = target
        else:
            g[name] = _pin(target)


_load()
_singletons = {}


def _singleton(kind, op):
    obj = _singletons.get(kind)
    if obj is None or obj._h == 0:
        import busio

        obj = busio._adopt(kind, op)
        _singletons[kind] = obj
    return obj


def I2C():
    return _singleton("i2c", "board.i2c")


def SPI():
    return _singleton("spi", "board.spi")


def UART():
    return _singleton("uart", "board.uart")
