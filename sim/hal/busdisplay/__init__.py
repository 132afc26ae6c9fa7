"""Stand-in for CircuitPython's ``busdisplay``: blinka-displayio's BusDisplay (a port of the core's: init sequence
with the core's 10 ms between commands, dirty-area refresh, column/row windows, brightness command) behind the core's
exact constructor signature (blinka also accepts ``reverse_bytes_in_word``, which the device rejects).

MODEL: blinka sends each dirty area in one piece; the core splits areas larger than its 512-byte buffer (a full
128x64 frame goes as two 512-byte writes instead of one 1024-byte write: ~0.5 ms of I2C overhead per full frame).
"""

import importlib.metadata
import importlib.util
import os
import sys


_BLINKA_DIR = str(importlib.metadata.distribution("adafruit-blinka-displayio").locate_file("busdisplay"))
__path__.append(_BLINKA_DIR)  # noqa: F821 (busdisplay._displaybus, imported by displayio._displaycore)


def _load_blinka_busdisplay():
    name = "_blinka_busdisplay"
    if name in sys.modules:
        return sys.modules[name]
    path = _BLINKA_DIR
    spec = importlib.util.spec_from_file_location(name, os.path.join(path, "__init__.py"),
                                                  submodule_search_locations=[path])
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


_BlinkaBusDisplay = _load_blinka_busdisplay().BusDisplay


class BusDisplay(_BlinkaBusDisplay):
    def __init__(self, display_bus, init_sequence, *, width, height, colstart=0, rowstart=0, rotation=0,
                 color_depth=16, grayscale=False, pixels_in_byte_share_row=True, bytes_per_cell=1,
                 reverse_pixels_in_byte=False, set_column_command=0x2A, set_row_command=0x2B,
                 write_ram_command=0x2C, backlight_pin=None, brightness_command=None, brightness=1.0,
                 single_byte_bounds=False, data_as_commands=False, auto_refresh=True, native_frames_per_second=60,
                 backlight_on_high=True, SH1107_addressing=False):  # noqa: N803 (the core's name)
        super().__init__(display_bus, init_sequence, width=width, height=height, colstart=colstart,
                         rowstart=rowstart, rotation=rotation, color_depth=color_depth, grayscale=grayscale,
                         pixels_in_byte_share_row=pixels_in_byte_share_row, bytes_per_cell=bytes_per_cell,
                         reverse_pixels_in_byte=reverse_pixels_in_byte, set_column_command=set_column_command,
                         set_row_command=set_row_command, write_ram_command=write_ram_command,
                         backlight_pin=backlight_pin, brightness_command=brightness_command, brightness=brightness,
                         single_byte_bounds=single_byte_bounds, data_as_commands=data_as_commands,
                         auto_refresh=auto_refresh, native_frames_per_second=native_frames_per_second,
                         backlight_on_high=backlight_on_high, SH1107_addressing=SH1107_addressing)

    def _get_refresh_areas(self):
        """As the core: a full refresh redraws everything and leaves nothing owed. (Blinka keeps every change flag
        set across a full refresh, for its background thread, so the next refresh would resend the whole frame.)"""
        core = self._core
        if core.full_refresh and core.current_group is not None:
            core.current_group._prepare_full_refresh()  # noqa: SLF001
            core.current_group._get_refresh_areas([])  # noqa: SLF001 (consume the change flags: all drawn now)
            return [core.area]
        return super()._get_refresh_areas()

    def _refresh_display(self):
        """As the core's displayio_display_core_start_refresh: skip this refresh while the bus is taken (blinka
        goes on and sends the window commands through a bus another driver has locked)."""
        if not self._core.bus_free():
            return False
        return super()._refresh_display()
