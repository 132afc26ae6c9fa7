"""Stand-in for CircuitPython's ``i2cdisplaybus`` (CircuitPython 9+), following the core's
shared-module/i2cdisplaybus/I2CDisplayBus.c rather than blinka's port, where they differ in ways firmware notices:

* the constructor pulses the reset pin (low 4 us) and then PROBES the address: no display there raises
  ``ValueError("Unable to find I2C Display at 3c")`` -- the hook for auto-detecting an OLED;
* ``deinit()`` (and so ``displayio.release_displays()``) never deinits the I2C bus it was given: on the device the
  bus is shared (board.I2C() also serves the ADC); blinka's version deinits it.

Framing as the core: commands go as (0x80, byte) pairs in one write; pixel data as 0x40 followed by the bytes.
"""

import digitalio
import microcontroller

from displayio._constants import DISPLAY_COMMAND  # blinka's constants, through our displayio package


class I2CDisplayBus:
    def __new__(cls, *args, **kwargs):
        from displayio import allocate_display_bus

        obj = super().__new__(cls)
        allocate_display_bus(obj)
        return obj

    def __init__(self, i2c_bus, *, device_address, reset=None):
        self._reset = None
        if reset is not None:
            self._reset = digitalio.DigitalInOut(reset)
            self._reset.switch_to_output(value=True)
            self.reset()
        if not i2c_bus.probe(device_address):
            import displayio

            if self in displayio.display_buses:
                displayio.display_buses.remove(self)
            if self._reset is not None:
                self._reset.deinit()
            raise ValueError("Unable to find I2C Display at %x" % device_address)
        self._i2c = i2c_bus
        self._dev_addr = device_address
        self._holds_lock = False

    def deinit(self):
        if self._reset is not None:
            self._reset.deinit()
            self._reset = None

    def _release(self):
        self.deinit()

    def reset(self):
        """Hardware reset through the reset pin (RuntimeError when there is none, as the core)."""
        if self._reset is None:
            raise RuntimeError("No reset pin")
        self._reset.value = False
        microcontroller.delay_us(4)
        self._reset.value = True

    def send(self, command, data):
        """Sends the command byte followed by the data bytes, all as commands (the core's binding)."""
        if not 0 <= command <= 255:
            raise ValueError("command must be 0-255")
        while not self._begin_transaction():
            pass
        try:
            self._send(DISPLAY_COMMAND, 0, bytes((command,)) + bytes(data))
        finally:
            self._end_transaction()

    # -- the interface blinka's display core uses ------------------------------------------------------------
    def _send(self, data_type, _chip_select, data, command=None):
        if command is not None:
            data = bytes((command,)) + bytes(data)
        if data_type == DISPLAY_COMMAND:
            out = bytearray(2 * len(data))
            out[0::2] = b"\x80" * len(data)
            out[1::2] = data
        else:
            out = bytearray(len(data) + 1)
            out[0] = 0x40
            out[1:] = data
        self._i2c.writeto(self._dev_addr, out)

    def _free(self):
        if not self._i2c.try_lock():
            return False
        self._i2c.unlock()
        return True

    def _begin_transaction(self):
        ok = self._i2c.try_lock()
        if ok:
            self._holds_lock = True
        return ok

    def _end_transaction(self):
        if self._holds_lock:  # never release a lock another driver holds
            self._holds_lock = False
            self._i2c.unlock()
