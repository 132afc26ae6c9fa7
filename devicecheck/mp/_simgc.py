# The `gc` module the firmware sees in the MicroPython check: MicroPython's own figures, but collect(), enable()
# and disable() do nothing (a collection in this build frees live objects: see _devboot). Calls are counted.

from gc import mem_alloc, mem_free  # noqa: F401

collects = [0]


def collect():
    collects[0] += 1
    return 0


def enable():
    pass


def disable():
    pass


def isenabled():
    return False


def threshold(amount=None):
    return -1
