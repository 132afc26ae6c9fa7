# MicroPython side of the host link: the stand-ins for CircuitPython's core modules call the simulated board
# (CPython, devicecheck/bridge.py) through host.call().
#
# The link allocates NO heap per call, so gc.mem_alloc() deltas measure the firmware alone: integer arguments go
# through a preallocated request buffer (struct.pack_into), results come back in a preallocated response buffer
# (ints read with int.from_bytes: a small int costs nothing) and byte data is read and written by the host directly
# in the firmware's own buffers (uctypes.addressof). host.call returns "" (the interned empty string) except for
# rare calls that return text (pin lists, error messages).
#
# Every stand-in wraps its work in marks (see mark below): the host reads the interpreter's instruction counter (Wasmtime
# fuel) at both marks and counts only what runs between a leave() and the next enter() as firmware work.

import gc
import host
import uctypes
from array import array
from struct import pack_into

addressof = uctypes.addressof
_hc = host.call
_req = bytearray(48)  # ten int32 arguments, then one double at offset 40
_resp = bytearray(16)  # [0] status, [1] flag, [2] sign, [8:16] unsigned little-endian integer result
_ival = memoryview(_resp)[8:16]
_fval = array("d", [0.0])

OK = 0
ERROR = 1

MEASURE_BASELINE = 1  # (before code.py) collect, report the heap in use: the host ends the run
MEASURE_BOOT_LIVE = 2  # (first feed) collect, report the heap in use: the host ends the run
MEASURE_BOOT = 3  # (first feed) report the heap allocated so far: allocation counting starts
MEASURE_CHECK = 4  # (every 100 feeds) report the free heap: the host ends the run if it runs low
MEASURE_END = 5  # (last feed) report the heap allocated: the host ends the run
MEASURE_UNWOUND = 6  # (first feed) leave every firmware frame (Unwound), then collect, report the heap in use


class Unwound(BaseException):
    """Raised out of the first watchdog feed for MEASURE_UNWOUND: it passes the firmware's `except Exception`
    handlers (its finally blocks run), and _devboot measures once no firmware frame is left."""


def setup():
    _hc("link.setup", "%d %d %d" % (addressof(_req), addressof(_resp), addressof(_fval)))


# The marks: stand-ins call mark("(", "") first and mark(")", "") last. It is host.call itself, so the firmware
# is charged only for calling the stand-in, as on the device it is charged for calling a C function.
mark = host.call


def enter():
    _hc("(", "")


def leave():
    _hc(")", "")


def call(op, payload="", a=0, b=0, c=0, d=0, e=0, f=0, g=0, h=0, i=0, j=0):
    pack_into("<10i", _req, 0, a, b, c, d, e, f, g, h, i, j)
    r = _hc(op, payload)
    if _resp[0]:
        _fail(r)
    return r


def callf(op, payload, x, a=0, b=0):
    pack_into("<d", _req, 40, x)
    return call(op, payload, a, b)


def ival():
    v = int.from_bytes(_ival, "little")
    if _resp[2]:
        return -v
    return v


def fval():
    return _fval[0]


def flag():
    return _resp[1]


_EXC = {
    "OSError": OSError, "ValueError": ValueError, "RuntimeError": RuntimeError, "TypeError": TypeError,
    "AttributeError": AttributeError, "IndexError": IndexError, "KeyError": KeyError,
    "NotImplementedError": NotImplementedError, "MemoryError": MemoryError,
}


def _fail(r):
    kind, _, rest = r.partition("\n")
    if kind == "WatchDogTimeout":
        from watchdog import WatchDogTimeout

        raise WatchDogTimeout(rest)
    errno, _, msg = rest.partition("\n")
    cls = _EXC.get(kind, RuntimeError)
    if errno:
        raise cls(int(errno), msg)
    raise cls(msg)


def pin_name(pin):
    if pin is None:
        return "-"
    return pin._name


def measure(kind):
    """Heap figures for the host. The GC never runs on its own here (see _devboot): gc.collect() in this build
    frees live objects, so the two measurements that collect are each the last thing their run does."""
    if kind == MEASURE_UNWOUND:
        raise Unwound()
    if kind == MEASURE_BASELINE or kind == MEASURE_BOOT_LIVE:
        call("m.heap", "", kind + 10, gc.mem_alloc(), gc.mem_free())  # before the collection
        gc.collect()
    call("m.heap", "", kind, gc.mem_alloc(), gc.mem_free())


def measure_unwound():
    """After Unwound reached _devboot: collect (no firmware frame is running) and report the heap in use."""
    gc.collect()
    call("m.heap", "", MEASURE_UNWOUND, gc.mem_alloc(), gc.mem_free())
