"""Stand-in for ``supervisor``: ticks_ms (wraps at 2**29 like the core), runtime flags, reload()."""

from sim import simboard
from sim.clock import SimReset
from sim.simboard import active

_TICKS_PERIOD = 1 << 29


def ticks_ms():
    # hot: the firmware's conversion-wait loop calls it with every RDY poll, so clock.advance is inlined
    b = simboard._ACTIVE or active()
    c = b.clock
    now = c.now_ns + b.cost.time_read_ns
    c.now_ns = now
    if now >= c.alarm_ns or c.always_guard:
        c._alarm()
    return (c.now_ns // 1000000 + b.ticks_offset_ms) % _TICKS_PERIOD


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
    raise SimReset("supervisor.reload()")


def set_next_code_file(filename, *, reload_on_success=False, reload_on_error=False, sticky_on_success=False,
                       sticky_on_error=False, sticky_on_reload=False):
    active().next_code_file = filename


def disable_autoreload():
    runtime.autoreload = False


def enable_autoreload():
    runtime.autoreload = True
