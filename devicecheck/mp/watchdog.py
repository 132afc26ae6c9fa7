# Stand-in for CircuitPython's `watchdog`: the mode values and the exception (the timer is
# microcontroller.watchdog).


class WatchDogMode:
    RAISE = "RAISE"
    RESET = "RESET"


class WatchDogTimeout(Exception):
    pass


class WatchDogTimer:
    def __init__(self):
        raise RuntimeError("use microcontroller.watchdog")
