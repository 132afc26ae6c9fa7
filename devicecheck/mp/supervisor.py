# Stand-in for CircuitPython's `supervisor` (MicroPython side): ticks_ms on the simulated clock (wraps at 2**29).

import _hostlink as _l
from _hostlink import mark as _mark


def ticks_ms():
    _mark("(", "")
    _l.call("sup.ticks_ms")
    v = _l.ival()
    _mark(")", "")
    return v


class RunReason:
    STARTUP = "STARTUP"
    AUTO_RELOAD = "AUTO_RELOAD"
    SUPERVISOR_RELOAD = "SUPERVISOR_RELOAD"
    REPL_RELOAD = "REPL_RELOAD"


class _Runtime:
    usb_connected = False
    serial_connected = True
    autoreload = False
    ble_workflow = False
    run_reason = RunReason.STARTUP

    @property
    def serial_bytes_available(self):
        return 0


runtime = _Runtime()


def reload():
    _mark("(", "")
    _l.call("sup.reload")
    _mark(")", "")


def set_next_code_file(filename, *, reload_on_success=False, reload_on_error=False, sticky_on_success=False,
                       sticky_on_error=False, sticky_on_reload=False):
    _mark("(", "")
    _l.call("sup.next_code_file", filename)
    _mark(")", "")


def disable_autoreload():
    runtime.autoreload = False


def enable_autoreload():
    runtime.autoreload = True
