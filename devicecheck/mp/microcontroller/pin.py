# microcontroller.pin: the chip's GPIOs by their chip names (GPIO0...), the same objects as board.IO0...

import board  # noqa: F401 (loads the pin objects)
from microcontroller import _pins

for _name in list(_pins):
    if _name.startswith("IO"):
        globals()["GPIO" + _name[2:]] = _pins[_name]
