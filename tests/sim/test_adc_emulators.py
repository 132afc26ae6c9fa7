"""The ADS1115 / ADS1015 / TLA2024 emulators (sim/devices/ads1x15.py), driven through the REAL Adafruit drivers
(adafruit_ads1x15 3.0.5, adafruit_tla202x 1.0.23, unmodified) and through raw register access, and compared with
the TI datasheets (ADS111x SBAS444E, ADS101x SBAS473E, TLA202x SBAS846).

Some tests pin down behaviour of the drivers that follows from the datasheet but is surprising (the TLA2024
one-shot OS-bit bug, adafruit_ads1x15 3.0.5 in continuous mode); they are named ``test_driver_...``. If a driver
release fixes one of them, that test fails on purpose: update the test and the firmware notes together.
"""

import math
import os
import statistics
import sys
import time as _host_time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from sim.install import install  # noqa: E402

install()

import time  # noqa: E402  (the simulated `time` put in sys.modules by install(): sleep advances the sim clock)

import pytest  # noqa: E402
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from sim.clock import SimulationEnd  # noqa: E402
from sim.devices.ads1x15 import (  # noqa: E402
    ADS1015Emulator,
    ADS1115Emulator,
    TLA2024Emulator,
    RDY_PULSE_NS,
    WAKEUP_NS,
)
from sim.simboard import SimBoard  # noqa: E402

PINS = ["IO%d" % i for i in range(49)]
ADDR = 0x48
FSR = {2 / 3: 6.144, 1: 4.096, 2: 2.048, 4: 1.024, 8: 0.512, 16: 0.256}
ALL = (ADS1115Emulator, ADS1015Emulator, TLA2024Emulator)
WITH_COMPARATOR = (ADS1115Emulator, ADS1015Emulator)


class _TimePlant:
    """Stands in for the plant: remembers the time it was integrated to (what the inputs see)."""

    def __init__(self):
        self.t_ns = 0

    def advance_to(self, t_ns):
        self.t_ns = t_ns


class Rig:
    """A fresh simulated board with one ADC emulator at 0x48 on SCL=IO22/SDA=IO21 and a busio.I2C on it.

    ``volts[i]`` is a float or a function of the plant time (ns) giving the voltage at AINi."""

    def __init__(self, cls, volts=(0.0, 0.0, 0.0, 0.0), frequency=400000, **kw):
        self.board = SimBoard(PINS, aliases={"SDA": "IO21", "SCL": "IO22"}).activate()
        self.clock = self.board.clock
        self.plant = _TimePlant()
        self.clock.plant = self.plant
        self.volts = list(volts)
        self.emu = cls(self.board, [self._source(i) for i in range(4)], **kw)
        self.board.add_i2c_device(("IO22", "IO21"), ADDR, self.emu)
        import board
        import busio

        self.i2c = busio.I2C(board.SCL, board.SDA, frequency=frequency)

    def _source(self, i):
        def read():
            v = self.volts[i]
            return v(self.plant.t_ns) if callable(v) else v

        return read

    # raw register access (what a driver does, without a driver)
    def write(self, ptr, value):
        self.i2c.writeto(ADDR, bytes((ptr, value >> 8, value & 0xFF)))

    def read(self, ptr):
        buf = bytearray(2)
        self.i2c.writeto_then_readfrom(ADDR, bytes((ptr,)), buf)
        return buf[0] << 8 | buf[1]

    def read_plain(self, n=2):
        buf = bytearray(n)
        self.i2c.readfrom_into(ADDR, buf)
        return bytes(buf)

    def run_to(self, t_ns):
        """Let simulated time pass (no bus traffic) until t_ns."""
        if t_ns > self.clock.now_ns:
            self.clock.advance(t_ns - self.clock.now_ns)
        self.clock.sync()

    def close(self):
        self.i2c.deinit()
        self.board.deactivate()


@pytest.fixture
def rigs():
    made = []

    def make(cls, volts=(0.0, 0.0, 0.0, 0.0), **kw):
        r = Rig(cls, volts, **kw)
        made.append(r)
        return r

    yield make
    for r in made:
        r.close()


def ideal_code(emu_cls, v, fsr):
    """Ideal output code (SBAS444E 7.5.4 / Table 7-3), nearest code, clipped at +-FS; 12-bit parts in 12 bits."""
    full = 1 << (emu_cls.BITS - 1)
    return max(-full, min(full - 1, math.floor(v / fsr * full + 0.5)))


def s16(v):
    return v - 0x10000 if v & 0x8000 else v


def config_word(mux, pga=2, mode_single=1, dr=4, os_bit=1, comp=0b00011):
    return (os_bit << 15) | (mux << 12) | (pga << 9) | (mode_single << 8) | (dr << 5) | comp


# ====================================================================================== raw registers vs datasheet


@pytest.mark.parametrize("cls", ALL)
def test_power_on_register_values(rigs, cls):
    """Reset values (SBAS444E 8.1: conversion 0000h, config 8583h, Lo_thresh 8000h, Hi_thresh 7FFFh; SBAS846:
    conversion 0, config 8583h; the TLA202x has no threshold registers)."""
    r = rigs(cls)
    assert r.read(0) == 0x0000
    assert r.read(1) == 0x8583  # OS=1: not converting (power-down state after reset, 7.4.1)
    if cls is TLA2024Emulator:
        assert r.read(2) == 0xFFFF and r.read(3) == 0xFFFF  # no register there (MODEL: bus released)
    else:
        assert r.read(2) == 0x8000
        assert r.read(3) == 0x7FFF
    assert r.emu.conversions == 0  # power-down state: nothing converts until told to


def test_ads1015_threshold_low_nibble_is_read_only(rigs):
    """SBAS473E 8.6.4: Lo_thresh/Hi_thresh hold 12-bit values in bits 15:4; bits 3:0 read 0h (Lo) and Fh (Hi)."""
    r = rigs(ADS1015Emulator)
    r.write(2, 0x123F)
    r.write(3, 0x4560)
    assert r.read(2) == 0x1230
    assert r.read(3) == 0x456F
    r16 = rigs(ADS1115Emulator)
    r16.write(2, 0x123F)
    r16.write(3, 0x4560)
    assert (r16.read(2), r16.read(3)) == (0x123F, 0x4560)  # ADS1115: all 16 bits R/W (Table 8-5)


def test_tla2024_two_registers_only_and_reserved_bits(rigs):
    """SBAS846: only the conversion data (00h) and configuration (01h) registers exist; config bits 4:0 are
    RESERVED, R/W, reset 03h ("always write 03h" -- they read back as written)."""
    r = rigs(TLA2024Emulator, volts=(1.0, 0, 0, 0), noise=False)
    r.write(2, 0x1234)
    r.write(3, 0x4321)
    assert r.read(1) == 0x8583 and r.read(0) == 0
    r.write(1, 0x4480)  # continuous, AIN0-GND, +-2.048 V, 1600 SPS, reserved bits written as 0
    assert r.read(1) & 0x7FFF == 0x4480
    r.write(1, 0x4483)
    assert r.read(1) & 0x1F == 0x03
    r.run_to(r.clock.now_ns + 2_000_000)
    assert r.read(0) == ideal_code(TLA2024Emulator, 1.0, 2.048) << 4


@pytest.mark.parametrize("cls", ALL)
def test_pointer_register_semantics(rigs, cls):
    """SBAS444E 7.5.3: a write sets the pointer (P[1:0]); reads return the pointed register MSB first and the
    pointer is kept until the next write; writing needs pointer + 2 data bytes; the conversion register is
    read-only."""
    r = rigs(cls)
    r.i2c.writeto(ADDR, bytes((0x01,)))  # pointer only
    assert r.read_plain() == b"\x85\x83"
    assert r.read_plain() == b"\x85\x83"  # still the config register
    assert r.read_plain(4) == b"\x85\x83\x85\x83"  # longer reads repeat the register (MODEL)
    assert r.read_plain(1) == b"\x85"
    r.i2c.writeto(ADDR, bytes((0x01, 0x44)))  # pointer + a lone byte: no register write
    assert r.read(1) == 0x8583
    r.write(0, 0x1234)  # conversion register is read-only
    assert r.read(0) == 0
    r.i2c.writeto(ADDR, b"")  # the adafruit_bus_device probe: address only
    assert r.read_plain() == b"\x00\x00"  # pointer still 0 from the last write


def test_os_bit_semantics(rigs):
    """SBAS444E Table 8-3 / 7.4.2.1: writing OS=1 in power-down starts one conversion; OS reads 0 while
    converting and 1 when not; OS=0 writes do nothing; OS=1 while converting has no effect; in continuous mode
    the device is always converting."""
    r = rigs(ADS1115Emulator, volts=(1.0, 2.0, 0, 0), noise=False)
    emu = r.emu
    r.write(1, config_word(mux=4, os_bit=0))  # single-shot, OS=0: stays powered down
    assert r.read(1) >> 15 == 1 and emu.conversions == 0
    r.write(1, config_word(mux=4, dr=0))  # 8 SPS, start
    t_write = r.clock.now_ns
    t_end = t_write + WAKEUP_NS + emu.conversion_time_ns(0)
    assert r.read(1) >> 15 == 0  # converting
    r.write(1, config_word(mux=5, dr=0))  # OS=1 again mid-conversion (and another MUX): no effect on this one
    assert r.read(1) >> 15 == 0
    r.run_to(t_end - 300_000)
    assert r.read(1) >> 15 == 0  # (this read takes 272.5 us of bus time: it still ends before t_end)
    r.run_to(t_end - 1)
    assert emu.conversions == 0
    r.run_to(t_end)
    assert emu.conversions == 1
    assert r.read(1) >> 15 == 1  # done, powered down again
    assert s16(r.read(0)) == ideal_code(ADS1115Emulator, 1.0, 2.048)  # AIN0: the settings it started with
    r.run_to(r.clock.now_ns + 500_000_000)
    assert emu.conversions == 1  # the ignored OS=1 did not queue a second conversion
    r.write(1, config_word(mux=4, mode_single=0, os_bit=0))  # continuous
    for _ in range(5):
        assert r.read(1) >> 15 == 0
        r.run_to(r.clock.now_ns + 3_000_000)


@pytest.mark.parametrize("cls", ALL)
@pytest.mark.parametrize("osc_error", [0.0, 0.1, -0.1])
def test_single_shot_conversion_time_is_wakeup_plus_one_over_dr(rigs, cls, osc_error):
    """SBAS444E 7.4.2.1 (~25 us power-up), 7.3.6 (conversion time = 1/DR), 5.5 (data rate +-10 %)."""
    r = rigs(cls, volts=(0.5, 0, 0, 0), osc_error=osc_error)
    for dr_code, dr in enumerate(cls.DATA_RATES):
        t_conv = int(round(1e9 / dr * (1 + osc_error)))
        assert r.emu.conversion_time_ns(dr_code) == t_conv
        n0 = r.emu.conversions
        r.write(1, config_word(mux=4, dr=dr_code))
        t0 = r.clock.now_ns
        r.run_to(t0 + WAKEUP_NS + t_conv - 1)
        assert r.emu.conversions == n0
        r.run_to(t0 + WAKEUP_NS + t_conv)
        assert r.emu.conversions == n0 + 1


def test_input_is_sampled_at_mid_conversion_window(rigs):
    """MODEL (documented in the emulator): one sample of the inputs at the middle of the conversion window."""
    slope = 1e-9  # 1 V/s, as a function of plant time in ns
    r = rigs(ADS1115Emulator, volts=(lambda t: 0.1 + slope * t, 0, 0, 0), noise=False)
    r.run_to(1_000_000_000)
    r.write(1, config_word(mux=4, pga=1, dr=0))  # 8 SPS, +-4.096 V
    t0 = r.clock.now_ns
    t_conv = r.emu.conversion_time_ns(0)
    r.run_to(t0 + WAKEUP_NS + t_conv)
    v_mid = 0.1 + slope * (t0 + WAKEUP_NS + t_conv // 2)
    assert s16(r.read(0)) == ideal_code(ADS1115Emulator, v_mid, 4.096)


def test_continuous_config_write_completes_ongoing_conversion(rigs):
    """SBAS444E 7.4.2.2: "When writing new configuration settings, the currently ongoing conversion completes
    with the previous configuration settings. Thereafter, continuous conversions with the new configuration
    settings start." -- so a new channel's first result can take up to two conversion periods."""
    r = rigs(ADS1115Emulator, volts=(1.0, 2.0, 0, 0), noise=False)
    emu = r.emu
    code0, code1 = ideal_code(ADS1115Emulator, 1.0, 4.096), ideal_code(ADS1115Emulator, 2.0, 4.096)
    r.write(1, config_word(mux=4, pga=1, mode_single=0, dr=4, os_bit=0))  # continuous AIN0, 128 SPS
    t_conv = emu.conversion_time_ns()
    start = r.clock.now_ns + WAKEUP_NS
    r.run_to(start + 3 * t_conv + t_conv // 4)  # a quarter into the 4th conversion
    assert s16(r.read(0)) == code0
    r.write(1, config_word(mux=5, pga=1, mode_single=0, dr=4, os_bit=0))  # switch to AIN1 mid-conversion
    r.run_to(start + 4 * t_conv)  # the ongoing (4th) conversion ends: still AIN0
    assert emu.conversions == 4
    assert s16(r.read(0)) == code0
    r.run_to(start + 5 * t_conv)  # first full conversion with the new settings
    assert s16(r.read(0)) == code1
    assert emu.conversions == 5


def test_continuous_restart_option_restarts_on_config_write(rigs):
    """The non-datasheet variant (``continuous_restart=True``): a config write aborts and restarts."""
    r = rigs(ADS1115Emulator, volts=(1.0, 2.0, 0, 0), noise=False, continuous_restart=True)
    r.write(1, config_word(mux=4, pga=1, mode_single=0, dr=4, os_bit=0))
    t_conv = r.emu.conversion_time_ns()
    start = r.clock.now_ns + WAKEUP_NS
    r.run_to(start + 3 * t_conv + t_conv // 4)
    r.write(1, config_word(mux=5, pga=1, mode_single=0, dr=4, os_bit=0))
    t_w = r.clock.now_ns
    r.run_to(t_w + t_conv)
    assert r.emu.conversions == 4  # the interrupted conversion never completed
    assert s16(r.read(0)) == ideal_code(ADS1115Emulator, 2.0, 4.096)


def test_stuck_conversion_register(rigs):
    r = rigs(ADS1115Emulator, volts=(1.0, 0, 0, 0), noise=False)
    r.write(1, config_word(mux=4, pga=1, mode_single=0, dr=7, os_bit=0))
    r.run_to(r.clock.now_ns + 5_000_000)
    frozen = r.read(0)
    r.emu.stuck = True
    n = r.emu.conversions
    r.volts[0] = 2.0
    r.run_to(r.clock.now_ns + 10_000_000)
    assert r.read(0) == frozen
    assert r.emu.conversions > n + 5  # it still converts (and counts)
    r.emu.stuck = False
    r.run_to(r.clock.now_ns + 3_000_000)
    assert s16(r.read(0)) == ideal_code(ADS1115Emulator, 2.0, 4.096)


def test_general_call_reset(rigs):
    """SBAS444E 7.4.1 / 7.5.1.2: general-call reset = internal reset as at power-up, then power-down."""
    r = rigs(ADS1115Emulator, volts=(1.0, 0, 0, 0))
    r.write(2, 0x0100)
    r.write(3, 0x0200)
    r.write(1, config_word(mux=4, mode_single=0, os_bit=0))
    r.run_to(r.clock.now_ns + 20_000_000)
    assert r.read(0) != 0
    r.emu.reset()
    assert [r.read(p) for p in range(4)] == [0x0000, 0x8583, 0x8000, 0x7FFF]
    n = r.emu.conversions
    r.run_to(r.clock.now_ns + 50_000_000)
    assert r.emu.conversions == n  # powered down


@settings(max_examples=150, deadline=None)
@given(
    cls=st.sampled_from(ALL),
    mux=st.integers(0, 7),
    pga=st.integers(0, 7),
    volts=st.lists(st.floats(0.0, 5.0, allow_nan=False), min_size=4, max_size=4),
)
def test_code_follows_ideal_transfer_function(cls, mux, pga, volts):
    """SBAS444E 7.5.4 / Table 7-3 (ideal codes, clipping at 7FFFh/8000h), Table 8-3 (MUX, PGA incl. 110b/111b),
    12-bit parts left-justified (SBAS473E, SBAS846)."""
    r = Rig(cls, volts, noise=False)
    try:
        r.write(1, config_word(mux=mux, pga=pga, dr=7))
        r.run_to(r.clock.now_ns + 10_000_000)
        pairs = ((0, 1), (0, 3), (1, 3), (2, 3), (0, None), (1, None), (2, None), (3, None))
        p, n = pairs[mux]
        v = volts[p] - (volts[n] if n is not None else 0.0)
        fsr = (6.144, 4.096, 2.048, 1.024, 0.512, 0.256, 0.256, 0.256)[pga]
        raw = r.read(0)
        assert raw == (ideal_code(cls, v, fsr) << (16 - cls.BITS)) & 0xFFFF
        if cls.BITS == 12:
            assert raw & 0xF == 0
    finally:
        r.close()


# ====================================================================================== ADS1115 / ADS1015 via driver


def _ads_driver(cls):
    from adafruit_ads1x15 import ADS1015, ADS1115

    return ADS1115 if cls is ADS1115Emulator else ADS1015


def _timing_of(r, fn):
    t0 = r.clock.now_ns
    out = fn()
    return r.clock.now_ns - t0, out


@pytest.mark.parametrize("cls", WITH_COMPARATOR)
@pytest.mark.parametrize("gain", [2 / 3, 1, 2, 4, 8, 16])
def test_single_ended_reads_match_input(rigs, cls, gain):
    from adafruit_ads1x15 import AnalogIn, ads1x15

    fsr = FSR[gain]
    volts = (0.93 * fsr, 0.37 * fsr, 0.011 * fsr, 0.0)
    volts = tuple(min(v, 3.3) for v in volts)  # VDD = 3.3 V: inputs above it are not possible
    r = rigs(cls, volts=volts, seed=3)
    ads = _ads_driver(cls)(r.i2c, gain=gain)
    lsb = fsr / (1 << (cls.BITS - 1))
    # datasheet noise at the driver's default rate (ADS1115 128 SPS: <= 12.35 uVpp; ADS1015: < 1 LSB)
    tol = 2 * lsb if cls is ADS1115Emulator else lsb
    for pin, v in zip((ads1x15.Pin.A0, ads1x15.Pin.A1, ads1x15.Pin.A2, ads1x15.Pin.A3), volts):
        chan = AnalogIn(ads, pin)
        assert chan.voltage == pytest.approx(v, abs=tol)
        code = chan.value
        if cls is ADS1015Emulator:
            assert code & 0xF == 0
            code >>= 4
        assert abs(code - ideal_code(cls, v, fsr)) <= 2


@pytest.mark.parametrize("cls", WITH_COMPARATOR)
def test_differential_reads(rigs, cls):
    from adafruit_ads1x15 import AnalogIn, ads1x15

    volts = (1.25, 2.0, 0.5, 1.0)
    r = rigs(cls, volts=volts, noise=False)
    ads = _ads_driver(cls)(r.i2c, gain=2)  # +-2.048 V
    P = ads1x15.Pin
    lsb = 2.048 / (1 << (cls.BITS - 1))
    for (p, n), expect in {(P.A0, P.A1): -0.75, (P.A0, P.A3): 0.25, (P.A1, P.A3): 1.0, (P.A2, P.A3): -0.5}.items():
        chan = AnalogIn(ads, p, n)
        assert chan.voltage == pytest.approx(expect, abs=lsb)
        assert chan.value >> (16 - cls.BITS) == ideal_code(cls, expect, 2.048)


@pytest.mark.parametrize("cls", WITH_COMPARATOR)
def test_codes_clip_at_full_scale(rigs, cls):
    """SBAS444E 7.5.4: "The output clips at these codes [7FFFh / 8000h] for signals that exceed full-scale"."""
    from adafruit_ads1x15 import AnalogIn, ads1x15

    r = rigs(cls, volts=(3.0, 0.1, 0.0, 3.3), noise=False)
    ads = _ads_driver(cls)(r.i2c, gain=16)  # +-0.256 V
    top = 0x7FFF if cls.BITS == 16 else 0x7FF0
    assert AnalogIn(ads, ads1x15.Pin.A0).value == top
    assert AnalogIn(ads, ads1x15.Pin.A2, ads1x15.Pin.A3).value == -32768
    assert AnalogIn(ads, ads1x15.Pin.A1).value == ideal_code(cls, 0.1, 0.256) << (16 - cls.BITS)  # in range


@pytest.mark.parametrize("cls", WITH_COMPARATOR)
@pytest.mark.parametrize("osc_error", [0.0, 0.08])
def test_single_shot_read_time_at_each_data_rate(rigs, cls, osc_error):
    """A driver read in single-shot mode = config write (starts the conversion) + OS polls until the
    conversion ends (25 us wake-up + 1/DR, SBAS444E 7.4.2.1 / 7.3.6) + the conversion-register read."""
    from adafruit_ads1x15 import AnalogIn, ads1x15

    r = rigs(cls, volts=(1.0, 0, 0, 0), osc_error=osc_error)
    ads = _ads_driver(cls)(r.i2c)
    t_write, _ = _timing_of(r, lambda: ads._write_register(2, 0x8000))  # one 3-byte write transaction
    t_read, _ = _timing_of(r, lambda: ads._read_register(1))  # one pointer + 2-byte read transaction
    chan = AnalogIn(ads, ads1x15.Pin.A0)
    for dr in ads.rates:
        ads.data_rate = dr
        t_conv = WAKEUP_NS + int(round(1e9 / dr * (1 + osc_error)))
        elapsed, code = _timing_of(r, lambda: chan.value)
        polls = -(-t_conv // t_read)  # the first poll that completes after the conversion ended sees OS=1
        assert elapsed == t_write + polls * t_read + t_read, dr
        assert t_conv <= elapsed - t_write - t_read < t_conv + t_read
        assert abs((code >> (16 - cls.BITS)) - ideal_code(cls, 1.0, 4.096)) <= 2


def test_continuous_mode_via_driver(rigs):
    """The way that works with adafruit_ads1x15 3.0.5: select the channel with a single-shot read, switch to
    continuous, then read the conversion register (get_last_result writes the pointer first)."""
    from adafruit_ads1x15 import ADS1115, AnalogIn, ads1x15
    from adafruit_ads1x15.ads1x15 import Mode

    r = rigs(ADS1115Emulator, volts=(0.5, 1.5, 2.5, 3.0), noise=False)
    ads = ADS1115(r.i2c, gain=1, data_rate=860)
    a1 = AnalogIn(ads, ads1x15.Pin.A1)
    assert a1.value == 12000  # 1.5 V / 125 uV
    ads.mode = Mode.CONTINUOUS
    n0 = r.emu.conversions
    time.sleep(1.0)
    # back to back: 860 conversions in a second, minus the 25 us wake-up
    assert r.emu.conversions - n0 == 859
    assert ads.get_last_result() == 12000
    assert a1.value == 12000  # the driver's fast path (plain read, pointer already at 00h)
    r.volts[1] = 2.0
    assert a1.value == 12000  # no new conversion yet
    time.sleep(0.003)  # > 2 conversion periods (1.16 ms each)
    assert a1.value == 16000
    assert r.read(1) >> 15 == 0  # OS: always converting


def test_driver_continuous_mode_quirks_of_adafruit_ads1x15_3_0_5(rigs):
    """adafruit_ads1x15 3.0.5 in continuous mode (follows from the datasheet's pointer semantics, 7.5.3):
    (1) after ``ads.mode = Mode.CONTINUOUS`` the pointer is left at the config register, so the fast path of
    the pin read last returns the CONFIG register until the pointer is rewritten; (2) ``_write_config`` in
    continuous mode re-reads the chip's MUX and ignores the pin, so another channel is never selected."""
    from adafruit_ads1x15 import ADS1115, AnalogIn, ads1x15
    from adafruit_ads1x15.ads1x15 import Mode

    r = rigs(ADS1115Emulator, volts=(0.5, 1.5, 2.5, 3.0), noise=False)
    ads = ADS1115(r.i2c, gain=1, data_rate=860)
    a1, a2 = AnalogIn(ads, ads1x15.Pin.A1), AnalogIn(ads, ads1x15.Pin.A2)
    assert a1.value == 12000
    ads.mode = Mode.CONTINUOUS
    time.sleep(0.01)
    assert a1.value & 0xFFFF == r.read(1)  # (1): config register, not a conversion
    assert a2.value == 12000  # (2): asked for A2 (2.5 V), got A1 (the MUX the chip holds)
    assert (r.read(1) >> 12) & 7 == 5  # MUX still AIN1-GND


# ====================================================================================== comparator and ALERT/RDY


def _continuous_ads(r, cls, pin_a0=True, **kw):
    """Driver object in continuous mode on AIN0 (channel selected by one single-shot read first)."""
    from adafruit_ads1x15 import AnalogIn, ads1x15
    from adafruit_ads1x15.ads1x15 import Mode

    ads = _ads_driver(cls)(r.i2c, **kw)
    AnalogIn(ads, ads1x15.Pin.A0).value
    ads.mode = Mode.CONTINUOUS
    ads.get_last_result()  # pointer back to the conversion register
    return ads


def test_alert_pin_released_when_comparator_disabled(rigs):
    """COMP_QUE = 11b (reset): comparator off, ALERT/RDY high-impedance -> the pull-up reads high."""
    import board
    import digitalio

    r = rigs(ADS1115Emulator, volts=(3.0, 0, 0, 0), alert_pin="IO34")
    _continuous_ads(r, ADS1115Emulator, gain=1, comparator_high_threshold=100, comparator_low_threshold=0)
    pin = digitalio.DigitalInOut(board.IO34)
    time.sleep(0.05)
    assert pin.value is True
    pin.deinit()


@pytest.mark.parametrize("cls", WITH_COMPARATOR)
def test_traditional_comparator_drives_alert_pin(rigs, cls):
    """SBAS444E 7.3.7: traditional mode asserts (active low) above Hi_thresh and deasserts only below
    Lo_thresh (hysteresis)."""
    import board
    import digitalio

    r = rigs(cls, volts=(1.5, 0, 0, 0), noise=False, alert_pin="IO34")
    lo, hi = 8000, 16000  # 1.0 V and 2.0 V at +-4.096 V (16-bit counts; the 12-bit driver takes the same units)
    _continuous_ads(r, cls, gain=1, comparator_queue_length=1, comparator_low_threshold=lo,
                    comparator_high_threshold=hi)
    pin = digitalio.DigitalInOut(board.IO34)
    steps = [(1.5, True), (2.5, False), (1.5, False), (0.5, True), (1.5, True), (2.2, False)]
    for v, level in steps:
        r.volts[0] = v
        time.sleep(0.03)
        assert pin.value is level, v
    pin.deinit()


def test_window_latching_polarity_and_queue(rigs):
    import board
    import digitalio
    from adafruit_ads1x15.ads1x15 import Comp_Latch, Comp_Mode, Comp_Polarity

    r = rigs(ADS1115Emulator, volts=(1.5, 0, 0, 0), noise=False, alert_pin="IO34")
    ads = _continuous_ads(r, ADS1115Emulator, gain=1, data_rate=128, comparator_queue_length=1,
                          comparator_low_threshold=8000, comparator_high_threshold=16000,
                          comparator_mode=Comp_Mode.WINDOW)
    pin = digitalio.DigitalInOut(board.IO34)

    def level_after(v, wait=0.03):
        r.volts[0] = v
        time.sleep(wait)
        return pin.value

    # window, non-latching, active low: asserted outside [lo, hi]
    assert [level_after(v) for v in (1.5, 2.5, 1.5, 0.5, 1.5)] == [True, False, True, False, True]
    # active high
    ads.comparator_polarity = Comp_Polarity.ACTIVE_HIGH
    assert [level_after(v) for v in (1.5, 0.5, 1.5)] == [False, True, False]
    ads.comparator_polarity = Comp_Polarity.ACTIVE_LOW
    # latching: stays asserted after the input returns, until the conversion register is read (7.3.9)
    ads.comparator_latch = Comp_Latch.LATCHING
    assert level_after(1.5) is True
    assert level_after(2.5) is False
    assert level_after(1.5) is False  # latched
    ads.get_last_result()  # reading conversion data clears the latch
    assert pin.value is True
    assert level_after(1.5) is True
    assert level_after(2.5) is False
    ads.get_last_result(True)
    assert level_after(2.5, wait=0.0) is True  # cleared...
    assert level_after(2.5) is False  # ...and reasserted by the next conversion beyond the window
    ads.get_last_result(True)
    ads.comparator_latch = Comp_Latch.NONLATCHING
    assert level_after(1.5) is True
    # queue: 4 successive conversions beyond the window before asserting (7.3.7, COMP_QUE = 10b)
    ads.comparator_queue_length = 4
    t_conv = r.emu.conversion_time_ns()
    r.volts[0] = 2.5
    ts = r.clock.now_ns
    r.run_to(ts + int(3.5 * t_conv) - 100_000)
    assert pin.value is True
    r.run_to(ts + int(4.5 * t_conv) + 100_000)
    assert pin.value is False
    # COMP_QUE = 11b disables the comparator: pin released
    ads.comparator_queue_length = 0
    assert pin.value is True
    pin.deinit()


@pytest.mark.parametrize("cls,dr", [(ADS1115Emulator, 860), (ADS1015Emulator, 3300), (ADS1115Emulator, 8)])
@pytest.mark.parametrize("osc_error", [0.0, 0.05])
def test_conversion_ready_pulses_counted_with_countio(rigs, cls, dr, osc_error):
    """SBAS444E 7.3.8: Hi_thresh MSB = 1 and Lo_thresh MSB = 0 turn ALERT/RDY into a conversion-ready pin;
    in continuous mode it pulses (~8 us, active low with COMP_POL = 0) at the end of every conversion."""
    import board
    import countio

    r = rigs(cls, volts=(1.0, 0, 0, 0), alert_pin="IO34", osc_error=osc_error)
    _continuous_ads(r, cls, data_rate=dr, comparator_queue_length=1, comparator_low_threshold=0,
                    comparator_high_threshold=-32768)
    counter = countio.Counter(board.IO34, edge=countio.Edge.FALL)
    n0 = r.emu.conversions
    time.sleep(1.0)
    pulses = counter.count
    assert pulses == r.emu.conversions - n0
    expect = dr / (1 + osc_error)
    assert abs(pulses - expect) <= 1.0
    counter.deinit()
    both = countio.Counter(board.IO34, edge=countio.Edge.RISE_AND_FALL)
    time.sleep(0.1)
    assert abs(both.count - 2 * round(0.1 * expect)) <= 2  # a pulse = one fall + one rise
    both.deinit()


def test_conversion_ready_pulse_width(rigs):
    """The RDY pulse lasts ~8 us (SBAS444E Figure 7-8); read the pin level inside and after a pulse."""
    r = rigs(ADS1115Emulator, volts=(1.0, 0, 0, 0), alert_pin="IO34")
    r.write(2, 0x0000)
    r.write(3, 0x8000)
    r.write(1, config_word(mux=4, mode_single=0, dr=7, os_bit=0, comp=0b00000))
    start = r.clock.now_ns + WAKEUP_NS
    t_conv = r.emu.conversion_time_ns()
    wire = r.board.pin("IO34")
    r.run_to(start + 3 * t_conv - 1)
    assert wire.source() is True
    r.run_to(start + 3 * t_conv)
    assert wire.source() is False  # asserted (active low) at the end of the conversion
    r.run_to(start + 3 * t_conv + RDY_PULSE_NS - 1)
    assert wire.source() is False
    r.run_to(start + 3 * t_conv + RDY_PULSE_NS)
    assert wire.source() is True


@pytest.mark.parametrize("cls", WITH_COMPARATOR)
def test_conversion_ready_in_single_shot_follows_os(rigs, cls):
    """SBAS444E 7.3.8 / 8.1.4: in single-shot mode the RDY pin "outputs the OS bit": deasserted (high, active
    low) while converting, asserted (low) when the conversion is done."""
    import board
    import digitalio
    from adafruit_ads1x15 import AnalogIn, ads1x15

    r = rigs(cls, volts=(1.0, 0, 0, 0), alert_pin="IO34")
    ads = _ads_driver(cls)(r.i2c, comparator_queue_length=1, comparator_low_threshold=0,
                           comparator_high_threshold=-32768)
    pin = digitalio.DigitalInOut(board.IO34)
    assert pin.value is False  # power-down, not converting: OS = 1 -> asserted
    AnalogIn(ads, ads1x15.Pin.A0).value
    assert pin.value is False
    ads._write_config(4)  # start a conversion (what a read does first), without waiting for it
    assert pin.value is True  # converting
    time.sleep(0.01)
    assert pin.value is False
    pin.deinit()


# ====================================================================================== noise


def _collect_continuous_codes(r, n):
    t_conv = r.emu.conversion_time_ns()
    codes = []
    for _ in range(n):
        r.run_to(r.clock.now_ns + t_conv)  # + the read's own bus time: every read sees a new conversion
        codes.append(s16(r.read(0)))
    return codes


def test_noise_matches_datasheet_table(rigs):
    """SBAS444E 6.1: Table 6-1 (860 SPS, +-0.256 V: 7.81 uVRMS (35.83 uVPP)); Table 6-2 gives 16 effective bits
    (RMS noise <= 1 LSB) at every setting and 13.8 noise-free bits (p-p ~4.6 LSB) at 860 SPS / +-0.256 V."""
    v = 0.1003
    r = rigs(ADS1115Emulator, volts=(v, 0, 0, 0), seed=11)
    r.write(1, config_word(mux=4, pga=5, mode_single=0, dr=7, os_bit=0))
    codes = _collect_continuous_codes(r, 400)
    lsb = 0.256 / 32768
    ideal = v / lsb
    rms = math.sqrt(statistics.fmean((c - ideal) ** 2 for c in codes))
    assert 0.5 < rms <= 1.0  # <= 1 LSB RMS (16 effective bits), but clearly noisy
    assert max(codes) - min(codes) <= math.ceil(35.83e-6 / lsb) + 1
    assert abs(statistics.fmean(codes) - ideal) < 0.2  # no bias

    quiet = rigs(ADS1115Emulator, volts=(1.2345, 0, 0, 0), seed=11)
    quiet.write(1, config_word(mux=4, pga=2, mode_single=0, dr=0, os_bit=0))  # 8 SPS, +-2.048 V: 1 LSB p-p
    codes = _collect_continuous_codes(quiet, 40)
    assert max(codes) - min(codes) <= 1


def test_noise_is_seeded_and_can_be_disabled(rigs):
    def run(**kw):
        r = rigs(ADS1115Emulator, volts=(0.1003, 0, 0, 0), **kw)
        r.write(1, config_word(mux=4, pga=5, mode_single=0, dr=7, os_bit=0))
        return _collect_continuous_codes(r, 50)

    assert run(seed=5) == run(seed=5)
    assert run(seed=5) != run(seed=6)
    assert len(set(run(noise=False))) == 1
    assert len(set(run(seed=1))) > 1


@pytest.mark.parametrize("cls", (ADS1015Emulator, TLA2024Emulator))
def test_12bit_parts_are_quantization_limited(rigs, cls):
    r = rigs(cls, volts=(1.0004, 0, 0, 0), seed=2)
    r.write(1, config_word(mux=4, pga=2, mode_single=0, dr=6, os_bit=0))
    codes = _collect_continuous_codes(r, 50)
    assert set(codes) == {ideal_code(cls, 1.0004, 2.048) << 4}


# ====================================================================================== TLA2024 via driver


def test_tla2024_continuous_voltage(rigs):
    """adafruit_tla202x defaults: continuous, AIN0-GND, 3300 SPS, +-6.144 V (3 mV LSB); results left-justified."""
    from adafruit_tla202x import TLA2024
    from adafruit_tla202x.analog_in import AnalogIn

    r = rigs(TLA2024Emulator, volts=(1.234, 0.6, 2.5, 0.0))
    tla = TLA2024(r.i2c)
    assert r.read(1) & 0x7FFF == 0x40C3  # continuous, AIN0, +-6.144 V, 3300 SPS, reserved 00011b kept
    time.sleep(0.002)
    assert tla.voltage == pytest.approx(1.234, abs=0.003)
    raw = r.read(0)
    assert raw & 0xF == 0 and raw >> 4 == ideal_code(TLA2024Emulator, 1.234, 6.144)
    # channel switch in continuous mode: the ongoing conversion finishes on the old channel first (7.4.2.2),
    # then one full conversion on the new one. At 3300 SPS the driver's own register reads (mode check, data
    # read: 2 x 272.5 us at 400 kHz) outlast that, so the value is fresh ...
    assert AnalogIn(tla, 2).voltage == pytest.approx(2.5, abs=0.003)
    # ... at 128 SPS (7.8 ms) the first value after a switch is the old channel's
    tla.data_rate = 0
    time.sleep(0.02)
    assert AnalogIn(tla, 1).voltage == pytest.approx(2.5, abs=0.003)  # stale: AIN2
    time.sleep(0.02)
    assert tla.voltage == pytest.approx(0.6, abs=0.003)


def test_driver_tla2024_one_shot_read_returns_previous_conversion(rigs):
    """adafruit_tla202x ``read(channel)``: ``self._os = True; while self._os: pass`` waits WHILE OS==1 (but
    OS=1 means "not converting", SBAS846) and then reads the conversion register while the conversion it
    started is still running. On this bus (400 kHz) at 128 SPS it therefore returns the PREVIOUS conversion's
    result: after the input changes, the first read is stale, the next one shows the change."""
    from adafruit_tla202x import TLA2024, DataRate, Mode

    r = rigs(TLA2024Emulator, volts=(1.0, 0, 0, 0), noise=False)
    tla = TLA2024(r.i2c)
    tla.data_rate = DataRate.RATE_128SPS
    tla.range = 2  # +-2.048 V, 1 mV LSB
    time.sleep(0.02)  # (the conversion running during a config write completes with the old settings)
    code = lambda v: ideal_code(TLA2024Emulator, v, 2.048)  # noqa: E731
    tla.read(0)
    time.sleep(0.02)
    assert tla.read(0) == code(1.0)
    time.sleep(0.02)
    r.volts[0] = 1.5
    assert tla.read(0) == code(1.0)  # stale: the conversion this call started is still running
    assert tla.mode == Mode.ONE_SHOT and tla.voltage == pytest.approx(1.0, abs=0.001)  # the cached one-shot
    time.sleep(0.02)
    assert tla.read(0) == code(1.5)  # the conversion started by the previous call


def test_driver_tla2024_one_shot_at_3300sps_is_fresh_on_400khz(rigs):
    """Same driver code at 3300 SPS: the bus transactions outlast a conversion, so the value is fresh -- the
    bug depends on data rate and bus speed."""
    from adafruit_tla202x import TLA2024

    r = rigs(TLA2024Emulator, volts=(1.0, 0, 0, 0), noise=False)
    tla = TLA2024(r.i2c)
    tla.read(0)
    r.volts[0] = 2.0
    assert tla.read(0) == ideal_code(TLA2024Emulator, 2.0, 6.144)


def test_driver_tla2024_one_shot_loop_never_ends_on_slow_bus(rigs):
    """At 100 kHz and 3300 SPS every OS poll lands after the conversion ended (OS=1), so
    ``while self._os: pass`` spins forever, as it would on the device. Bounded here by the clock's end."""
    from adafruit_tla202x import TLA2024

    r = rigs(TLA2024Emulator, volts=(1.0, 0, 0, 0), frequency=100000)
    tla = TLA2024(r.i2c)
    r.clock.end_ns = r.clock.now_ns + 200_000_000
    with pytest.raises(SimulationEnd):
        tla.read(0)
    r.clock.end_ns = None


def test_tla2024_has_no_alert_pin():
    board = SimBoard(PINS)
    with pytest.raises(ValueError):
        TLA2024Emulator(board, [lambda: 0.0] * 4, alert_pin="IO34")


# ====================================================================================== faults


@pytest.mark.parametrize("cls", ALL)
def test_absent_device_nacks_and_driver_raises(rigs, cls):
    from adafruit_tla202x import TLA2024

    r = rigs(cls)
    r.emu.present = False
    driver = TLA2024 if cls is TLA2024Emulator else _ads_driver(cls)
    with pytest.raises(ValueError, match="No I2C device at address"):
        driver(r.i2c)
    with pytest.raises(OSError):
        r.read(1)
    r.emu.present = True
    driver(r.i2c)


# ====================================================================================== cost


def test_per_transaction_cost_is_small(rigs):
    """The emulator side of one bus transaction stays in the low microseconds (host time)."""
    r = rigs(ADS1115Emulator, volts=(1.0, 0, 0, 0))
    emu = r.emu
    r.write(1, config_word(mux=4, mode_single=0, dr=7, os_bit=0))
    emu.i2c_write(b"\x00")
    n = 20000
    t0 = _host_time.perf_counter()
    for _ in range(n):
        emu.i2c_read(2)
        emu.i2c_write(b"\x01\xc5\x83")
    per_call = (_host_time.perf_counter() - t0) / (2 * n)
    assert per_call < 20e-6

