"""Sensor layer: ADC backends (ADS1115/ADS1015/TLA2024 over I2C, or the MCU's analogio) and the scaling of each
channel (divider, hall sensor, shunt amplifier) to integer mV and mA.

Why our own read path: the Adafruit drivers' per-sample path polls the OS bit over I2C (~40 transactions per read
at 860 SPS) and adafruit_ads1x15 3.0.5's continuous mode never changes channel. The TLA2024 is set up by its
Adafruit driver (dropped after setup); the ADS1x15 by the same register writes adafruit_ads1x15's constructor
makes (see _ADS1x15Backend). Here each sample is two I2C transactions from preallocated buffers: write the config with
OS=1 (start), wait for the ALERT/RDY pin (conversion-ready mode) or, without it, poll the OS bit, read the result.
Everything per sample is integer arithmetic, so a control step allocates nothing.
"""

import sys
import time

from micropython import const

try:
    from supervisor import ticks_ms
except ImportError:  # MicroPython without supervisor: close enough for timeouts
    def ticks_ms():  # type: () -> int
        return time.monotonic_ns() // 1000000

try:
    from microcontroller import delay_us
except ImportError:  # MicroPython: no busy-wait for the sub-millisecond rest; the RDY poll covers it
    def delay_us(delay):  # type: (int) -> None
        pass

_TICKS_MASK = const((1 << 29) - 1)

# ADS1x15 / TLA202x registers (pointer values) and config register fields
_REG_CONFIG = const(0x01)
_REG_LO_THRESH = const(0x02)
_REG_HI_THRESH = const(0x03)
_OS = const(0x8000)
_MUX_SINGLE = const(0x4000)  # 100b: AIN0..3 against GND, plus channel << 12
_MODE_SINGLE = const(0x0100)
_QUE_DISABLE = const(0x0003)
_QUE_ONE = const(0x0000)  # with Hi/Lo thresholds set for conversion-ready: ALERT/RDY = OS
_PGA = {6.144: 0, 4.096: 1, 2.048: 2, 1.024: 3, 0.512: 4, 0.256: 5}
_DR_ADS1115 = (8, 16, 32, 64, 128, 250, 475, 860)
_DR_ADS1015 = (128, 250, 490, 920, 1600, 2400, 3300)


def forget_driver(package):
    """Drop a driver package's modules once it has configured the chip: the fast path below needs only its
    I2CDevice, and the driver's code can then be collected (its names stay interned)."""
    for name in list(sys.modules):
        if name == package or name.startswith(package + "."):
            del sys.modules[name]


class SensorError(OSError):
    """A reading that must not be used as a number (bus error, no conversion, stuck or out of range)."""


def ticks_diff(a, b):
    """a - b in ms for supervisor.ticks_ms values (29-bit wrap)."""
    d = (a - b) & _TICKS_MASK
    if d >= 1 << 28:
        d -= 1 << 29
    return d


class _AdsBase:
    """Common fast path of the ADS1x15 family and the TLA2024 (same registers, 12 or 16 bits)."""

    counts_full = 32767  # conversion code at +full scale
    shift = 0

    def __init__(self, i2c_device, pga_v, dr_code, conv_us, rdy=None):
        self._dev = i2c_device
        self._pga_v = pga_v
        self._cfg_base = _OS | _MODE_SINGLE | (_PGA[pga_v] << 9) | (dr_code << 5)
        self._cfg_base |= _QUE_ONE if rdy is not None else _QUE_DISABLE
        self._rdy = rdy
        self._wbuf = bytearray(3)
        self._wbuf[0] = 0x01
        self._ptr_conv = bytearray(1)  # pointer 0x00: conversion register
        self._ptr_cfg = bytearray(b"\x01")
        self._rbuf = bytearray(2)
        self.conv_us = conv_us
        # time.sleep has millisecond granularity on CircuitPython: sleep the whole ms of a conversion, poll the rest
        self._sleep_s = (conv_us // 1000) / 1000
        # ... then (with a RDY pin) busy-wait most of the rest in one call and poll the pin for what is left. How long
        # the busy-wait may be is learnt: the conversion starts somewhere inside the start() transaction, and the
        # chip's clock is +-10 %; shortened when the pin was already low, lengthened while it needs many polls
        self._rest_us = (conv_us % 1000) // 2
        self.timeout_ms = 2 + (3 * conv_us) // 1000
        self.uv_per_count = pga_v * 1e6 / (self.counts_full + 1)
        self.transactions = 0

    def start(self, ch):
        cfg = self._cfg_base | (_MUX_SINGLE + (ch << 12))
        w = self._wbuf
        w[1] = cfg >> 8
        w[2] = cfg & 0xFF
        with self._dev as dev:
            dev.write(w)
        self.transactions += 1

    def wait(self):
        """Until the conversion is done: the RDY pin (no bus traffic) or the OS bit (1 = idle)."""
        t0 = ticks_ms()
        rdy = self._rdy
        if self._sleep_s:
            time.sleep(self._sleep_s)  # let the CPU (USB, BLE, Wi-Fi tasks) have the whole milliseconds
        if rdy is not None:
            rest = self._rest_us
            if rest:
                delay_us(rest)
            n = 0
            while rdy.value:  # active low: high while converting
                n += 1
                if ticks_diff(ticks_ms(), t0) > self.timeout_ms:
                    raise SensorError("ADC: no conversion-ready signal")
            if n == 0:
                self._rest_us = rest - 8 if rest > 8 else 0
            elif n > 2 and rest < self.conv_us % 1000:
                self._rest_us = rest + 2
            return
        b = self._rbuf
        while True:
            with self._dev as dev:
                dev.write_then_readinto(self._ptr_cfg, b)
            self.transactions += 1
            if b[0] & 0x80:
                return
            if ticks_diff(ticks_ms(), t0) > self.timeout_ms:
                raise SensorError("ADC: conversion never finished")

    def result(self):
        b = self._rbuf
        with self._dev as dev:
            dev.write_then_readinto(self._ptr_conv, b)
        self.transactions += 1
        v = (b[0] << 8) | b[1]
        if v & 0x8000:
            v -= 0x10000
        return v >> self.shift

    def read(self, ch):
        self.start(ch)
        self.wait()
        return self.result()


class _ADS1x15Backend(_AdsBase):
    """ADS1115/ADS1015. Set up with the register writes the Adafruit driver's constructor makes (adafruit_ads1x15
    3.0.5, the same I2C transactions in the same order): Lo_thresh, Hi_thresh, then the config register with the
    mux bits read back. With a RDY pin that is conversion-ready mode: Hi_thresh MSB 1, Lo_thresh MSB 0, comparator
    queue one (datasheet 9.3.8); without, the thresholds' reset values and the comparator off. Written here rather
    than by the driver: its code could be dropped after setup, but the ~100 names it brings stay interned in RAM."""

    rates = _DR_ADS1115  # type: tuple
    default_rate = 860

    def __init__(self, i2c, address=0x48, pga_v=2.048, rdy=None, data_rate=None):
        from adafruit_bus_device.i2c_device import I2CDevice

        data_rate = data_rate or self.default_rate
        _AdsBase.__init__(self, I2CDevice(i2c, address), pga_v, self.rates.index(data_rate),  # I2CDevice probes:
                          1000000 // data_rate + 10, rdy)  # ValueError when no chip answers at the address
        dev = self._dev
        w = bytearray(3)
        for reg, value in ((_REG_LO_THRESH, 0x0000 if rdy is not None else 0x8000),
                           (_REG_HI_THRESH, 0x8000 if rdy is not None else 0x7FFF)):
            w[0] = reg
            w[1] = value >> 8
            w[2] = value & 0xFF
            with dev as d:
                d.write(w)
        b = self._rbuf
        with dev as d:
            d.write_then_readinto(self._ptr_cfg, b)
        cfg = (((b[0] << 8) | b[1]) & 0x7000) | (self._cfg_base & ~_OS)  # no conversion started yet
        w[0] = _REG_CONFIG
        w[1] = cfg >> 8
        w[2] = cfg & 0xFF
        with dev as d:
            d.write(w)


class ADS1115Backend(_ADS1x15Backend):
    kind = "ADS1115"


class ADS1015Backend(_ADS1x15Backend):
    kind = "ADS1015"
    counts_full = 2047
    shift = 4
    rates = _DR_ADS1015
    default_rate = 3300


class Scale:
    """quantity = ((raw - zero) * m + half) >> s, integers only; m < 2**15 keeps every product a small int."""

    def __init__(self, per_count, zero=0):
        self.set(per_count, zero)

    def set(self, per_count, zero=None):
        self.per_count = per_count
        if zero is not None:
            self.zero = int(zero)
        s = 0
        a = abs(per_count)
        if a > 0:
            while a * (1 << (s + 1)) < 32767 and s < 24:
                s += 1
        self.m = int(per_count * (1 << s) + (0.5 if per_count >= 0 else -0.5))
        self.s = s
        self.half = (1 << (s - 1)) if s > 0 else 0

    def __call__(self, raw):
        return ((raw - self.zero) * self.m + self.half) >> self.s


def channel_scale(sense, uv_per_count, cal_ppm=0):
    """Scale from ADC counts to mV (dividers) or mA (hall sensor, shunt amplifier) for one sense entry of a board
    config; cal_ppm is the unit's gain calibration (settings). Returns (Scale, is_current)."""
    kind = sense["kind"]
    g = 1.0 + cal_ppm * 1e-6
    cal = sense.get("cal", {})
    g *= cal.get("gain", 1.0)
    v_count = uv_per_count * 1e-6  # pin volts per count
    if kind == "divider":
        ratio = (sense["r_top_ohm"] + sense["r_bottom_ohm"]) / sense["r_bottom_ohm"]
        zero = -cal.get("offset_mv", 0) / (v_count * 1000 * ratio * g) if cal.get("offset_mv") else 0
        return Scale(v_count * 1000 * ratio * g, zero), False
    if kind == "acs712":
        div = 1.0
        if sense.get("r_top_ohm"):
            div = sense["r_bottom_ohm"] / (sense["r_top_ohm"] + sense["r_bottom_ohm"])
        vcc = sense.get("vcc_v", 5.0)
        sens = sense["v_per_a"] * vcc / 5.0 * sense.get("direction", 1)  # ratiometric
        zero = 0.5 * vcc * div / v_count
        return Scale(v_count / div / sens * 1000 * g, zero), True
    if kind == "shunt":
        sens = sense["r_shunt_ohm"] * sense["gain"] * sense.get("direction", 1)
        zero = sense.get("v_ref_v", 1.65) / v_count
        return Scale(v_count / sens * 1000 * g, zero), True
    raise ValueError("sense kind %r" % kind)
