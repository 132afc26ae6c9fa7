"""The ADS1x15 backends (lib/fugu/sensors.py) set the chip up without adafruit_ads1x15 (whose ~100 names would stay
interned in the device's RAM) but with the very same I2C transactions its constructor makes, in the same order,
so the chip ends in the same state: checked on the register-level emulators, with and without a RDY pin."""

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from sim.install import install  # noqa: E402

install()

import pytest  # noqa: E402

from sim.devices.ads1x15 import ADS1015Emulator, ADS1115Emulator  # noqa: E402
from sim.simboard import SimBoard  # noqa: E402

PINS = ["IO%d" % i for i in range(49)]
ADDR = 0x48


class _Plant:
    t_ns = 0

    def advance_to(self, t_ns):
        self.t_ns = t_ns


def _transactions(emu_cls, setup):
    """The bus traffic (("w", bytes) / ("r", n)) that setup(i2c, rdy_pin) makes on a fresh emulator, and its
    registers afterwards."""
    board = SimBoard(PINS, aliases={"SDA": "IO21", "SCL": "IO22"}).activate()
    try:
        board.clock.plant = _Plant()
        emu = emu_cls(board, [lambda: 0.5] * 4)
        log = []
        write, read = emu.i2c_write, emu.i2c_read

        def logged_write(data):
            log.append(("w", bytes(data)))
            return write(data)

        def logged_read(n):
            log.append(("r", n))
            return read(n)

        emu.i2c_write = logged_write
        emu.i2c_read = logged_read
        board.add_i2c_device(("IO22", "IO21"), ADDR, emu)
        import board as board_mod
        import busio
        import digitalio

        i2c = busio.I2C(board_mod.SCL, board_mod.SDA, frequency=400000)
        rdy = digitalio.DigitalInOut(board_mod.IO34)
        try:
            setup(i2c, rdy)
        finally:
            rdy.deinit()
            i2c.deinit()
        regs = []
        for ptr in (1, 2, 3):
            emu.i2c_write(bytes((ptr,)))
            hi, lo = emu.i2c_read(2)
            regs.append(hi << 8 | lo)
        return log, regs
    finally:
        board.deactivate()


@pytest.mark.parametrize("with_rdy", [True, False])
@pytest.mark.parametrize("kind", ["ADS1115", "ADS1015"])
def test_backend_sets_the_chip_up_as_the_adafruit_driver_does(kind, with_rdy):
    from fugu import sensors

    emu_cls = ADS1115Emulator if kind == "ADS1115" else ADS1015Emulator
    backend_cls = sensors.ADS1115Backend if kind == "ADS1115" else sensors.ADS1015Backend

    def by_driver(i2c, rdy):
        from adafruit_ads1x15 import ADS1015, ADS1115

        kw = {}
        if with_rdy:
            kw = {"comparator_queue_length": 1, "comparator_low_threshold": 0, "comparator_high_threshold": -32768}
        cls = ADS1115 if kind == "ADS1115" else ADS1015
        cls(i2c, gain=2, data_rate=backend_cls.default_rate, address=ADDR, **kw)

    def by_backend(i2c, rdy):
        backend_cls(i2c, address=ADDR, pga_v=2.048, rdy=rdy if with_rdy else None)

    want = _transactions(emu_cls, by_driver)
    got = _transactions(emu_cls, by_backend)
    assert got == want
    assert len(want[0]) >= 5  # probe, Lo_thresh, Hi_thresh, config read, config write
