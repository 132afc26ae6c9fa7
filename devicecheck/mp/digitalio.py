# Stand-in for CircuitPython's `digitalio` (MicroPython side): pin levels go to and come from the simulated board.

import _hostlink as _l
from _hostlink import mark as _mark


class Direction:
    INPUT = "INPUT"
    OUTPUT = "OUTPUT"


class Pull:
    UP = "UP"
    DOWN = "DOWN"


class DriveMode:
    PUSH_PULL = "PUSH_PULL"
    OPEN_DRAIN = "OPEN_DRAIN"


_DIRECTIONS = (Direction.INPUT, Direction.OUTPUT)
_PULLS = (None, Pull.UP, Pull.DOWN)
_DRIVES = (DriveMode.PUSH_PULL, DriveMode.OPEN_DRAIN)


class DigitalInOut:
    def __init__(self, pin):
        _mark("(", "")
        self._h = 0
        _l.call("dio.new", _l.pin_name(pin))
        self._h = _l.ival()
        _mark(")", "")

    def deinit(self):
        _mark("(", "")
        _l.call("dio.deinit", "", self._h)
        _mark(")", "")

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc_value, traceback):
        self.deinit()

    def switch_to_output(self, value=False, drive_mode=DriveMode.PUSH_PULL):
        _mark("(", "")
        _l.call("dio.out", drive_mode, self._h, 1 if value else 0)
        _mark(")", "")

    def switch_to_input(self, pull=None):
        _mark("(", "")
        _l.call("dio.in", "" if pull is None else pull, self._h)
        _mark(")", "")

    @property
    def direction(self):
        _mark("(", "")
        _l.call("dio.dir", "", self._h)
        v = _DIRECTIONS[_l.ival()]
        _mark(")", "")
        return v

    @direction.setter
    def direction(self, value):
        _mark("(", "")
        _l.call("dio.setdir", value, self._h)
        _mark(")", "")

    @property
    def value(self):
        _mark("(", "")
        _l.call("dio.get", "", self._h)
        v = _l.ival() != 0
        _mark(")", "")
        return v

    @value.setter
    def value(self, value):
        _mark("(", "")
        _l.call("dio.set", "", self._h, 1 if value else 0)
        _mark(")", "")

    @property
    def pull(self):
        _mark("(", "")
        _l.call("dio.pull", "", self._h)
        v = _PULLS[_l.ival()]
        _mark(")", "")
        return v

    @pull.setter
    def pull(self, value):
        _mark("(", "")
        _l.call("dio.setpull", "" if value is None else value, self._h)
        _mark(")", "")

    @property
    def drive_mode(self):
        _mark("(", "")
        _l.call("dio.drive", "", self._h)
        v = _DRIVES[_l.ival()]
        _mark(")", "")
        return v

    @drive_mode.setter
    def drive_mode(self, value):
        _mark("(", "")
        _l.call("dio.setdrive", value, self._h)
        _mark(")", "")
