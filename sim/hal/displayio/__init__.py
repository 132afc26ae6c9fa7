"""Stand-in for CircuitPython's ``displayio``: the rendering engine of adafruit-blinka-displayio, without its thread.

Blinka's ``displayio`` is a faithful Python port of the core's (Bitmap, Palette, Group, TileGrid, dirty-area
tracking, the display core that turns areas into column/row commands and pixel bytes), but its ``__init__`` starts a
daemon thread at import that calls every display's background refresh each real millisecond. On the simulated board
that thread would advance the simulated clock from another thread at random moments. So this package is blinka's
``displayio`` with our own ``__init__``: the submodules (``displayio._bitmap``, ``displayio._displaycore``...) are
blinka's files, found through ``__path__``, and the background refresh runs in simulated time instead (a board guard,
see ``_background_guard``), at the instants the core would run it, never while the display's bus is locked.

Also as the core: ``release_displays()`` frees displays and buses (display buses here never deinit a shared I2C bus);
displays left over from another simulated board are dropped when a new one allocates (a reset clears them on the
device). Blinka's ``busdisplay``, ``fourwire``, ``terminalio``, ``fontio``, ``bitmaptools`` and ``vectorio`` are
used as they are (they import this package); ``i2cdisplaybus`` is ours (sim/hal/i2cdisplaybus.py).
"""

import importlib.metadata
import os


def _blinka_displayio_dir():
    try:
        dist = importlib.metadata.distribution("adafruit-blinka-displayio")
    except importlib.metadata.PackageNotFoundError:
        raise ImportError("displayio on the simulated board needs adafruit-blinka-displayio") from None
    path = str(dist.locate_file("displayio"))
    if not os.path.exists(os.path.join(path, "_displaycore.py")):
        raise ImportError("adafruit-blinka-displayio has no displayio/_displaycore.py at %s" % path)
    return path


__path__.append(_blinka_displayio_dir())  # noqa: F821 (package __path__)

from ._bitmap import Bitmap  # noqa: E402
from ._colorconverter import ColorConverter  # noqa: E402
from ._colorspace import Colorspace  # noqa: E402
from ._constants import CIRCUITPY_DISPLAY_LIMIT  # noqa: E402
from ._group import Group  # noqa: E402
from ._ondiskbitmap import OnDiskBitmap  # noqa: E402
from ._palette import Palette  # noqa: E402
from ._tilegrid import TileGrid  # noqa: E402

__all__ = ["Bitmap", "ColorConverter", "Colorspace", "Group", "OnDiskBitmap", "Palette", "TileGrid",
           "release_displays", "CIRCUITPY_DISPLAY_LIMIT"]

displays = []
display_buses = []
_owner = {}  # id(display or bus) -> the SimBoard it was made on
_guarded_boards = []  # boards whose clock runs our background refresh
_in_background = [False]


def _active_board():
    from sim.simboard import active_or_none

    return active_or_none()


def _drop_stale():
    """Displays and buses made on another (earlier) simulated board are gone: that board was reset or replaced."""
    b = _active_board()
    for lst in (displays, display_buses):
        for obj in list(lst):
            if _owner.get(id(obj)) is not b:
                lst.remove(obj)
                _owner.pop(id(obj), None)


def release_displays():
    """Releases any actively used displays so their buses and pins can be used again (as the core)."""
    for display in displays:
        display._release()  # noqa: SLF001 (blinka's API)
    displays.clear()
    for bus in display_buses:
        bus.deinit()
    display_buses.clear()
    _owner.clear()


def allocate_display(new_display):
    """Called by busdisplay.BusDisplay.__new__ (blinka's)."""
    _drop_stale()
    if len(displays) >= CIRCUITPY_DISPLAY_LIMIT:
        raise RuntimeError("Too many displays")
    displays.append(new_display)
    b = _active_board()
    _owner[id(new_display)] = b
    if b is not None and b not in _guarded_boards:
        b.guards.append(_background_guard)
        _guarded_boards.append(b)
        del _guarded_boards[:-8]


def allocate_display_bus(new_display_bus):
    _drop_stale()
    if len(display_buses) >= CIRCUITPY_DISPLAY_LIMIT:
        raise RuntimeError("Too many display busses; forgot displayio.release_displays() ?")
    display_buses.append(new_display_bus)
    _owner[id(new_display_bus)] = _active_board()


def _background_guard(now_ns):
    """The core's displayio background task, in simulated time: auto-refreshing displays whose frame period has
    passed are refreshed (the refresh itself skips when the bus is locked by other code, as in the core)."""
    if not displays or _in_background[0]:
        return
    _in_background[0] = True
    try:
        b = _active_board()
        now_ms = now_ns / 1e6
        for d in displays:
            # the core's check (displayio_background), on the clock itself: reading time.monotonic() here would
            # charge a time read to every clock step
            if _owner.get(id(d)) is b and getattr(d, "_auto_refresh", False) and (
                    now_ms - d._core.last_refresh > d._native_ms_per_frame):  # noqa: SLF001
                d.refresh()
    finally:
        _in_background[0] = False
