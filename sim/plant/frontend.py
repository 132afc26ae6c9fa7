"""Analog front-ends between the power stage and the ADC pins: dividers, the ACS712 hall sensor, a shunt amplifier.

The sensors' signal bandwidth is far above what the ADC resolves, so the plant's averaged current is what they
see; their wideband NOISE however is filtered by whoever samples it: a delta-sigma ADC (ADS1x15) averages over its
conversion (noise bandwidth ~ data rate / 2), a SAR ADC (the ESP32's) takes it whole. The sampling device says so
with ``observer_bw(hz)`` around its read, and the noise is scaled by sqrt(observer / sensor bandwidth).

FUGU facts (firmware V1.1 calibration constants): ACS712-30A at 5 V, 66 mV/A, mounted reversed
(firmware: I = -(v - midpoint) / 0.066); its output goes through a 3.3 k / 10 k divider (firmware multiplies the ADC
voltage by 1.33); input divider ratio 40.2156 (reproduced by 200 k / 5.1 k), output divider 24.5 (47 k / 2 k).
"""

import random

# ACS712ELCTR-30A-T datasheet (Allegro): 66 mV/A typ (63..69) at Vcc = 5 V, ratiometric (zero-current output
# Vcc/2, sensitivity ~ Vcc/5). Noise: 7 mV peak-to-peak typ at C_F = 47 nF (2 kHz bandwidth); p-p taken as 6 sigma
# -> ~1.2 mV rms. (The x05B/x20A rows, 21/11 mV p-p, were checked; the x30A value follows their gain ratio.)
# With the 80 kHz (1 nF) filter the noise is several times larger; the ADS1115's own filter averages most of it.
ACS712_30A_SENSITIVITY_V_PER_A = 0.066
ACS712_30A_NOISE_RMS_V = 0.007 / 6.0
ACS712_R_PRIMARY_OHM = 1.2e-3  # conductor resistance, for the plant's wiring loss

FUGU_ACS712_DIVIDER_OHM = (3.3e3, 10e3)  # (r_top, r_bottom)
FUGU_VIN_DIVIDER_OHM = (200e3, 5.1e3)  # ratio 40.216 (firmware: 40.2156)
FUGU_VOUT_DIVIDER_OHM = (47e3, 2e3)  # ratio 24.5 (firmware: 24.5)


_OBSERVER_BW_HZ = [None]  # noise bandwidth of the device sampling right now (None: instantaneous sample)


def observer_bw(hz):
    """Set the noise bandwidth of the sampling device (None = an instantaneous sample); returns the old value."""
    old = _OBSERVER_BW_HZ[0]
    _OBSERVER_BW_HZ[0] = hz
    return old


def _noise_scale(bw_hz):
    obs = _OBSERVER_BW_HZ[0]
    if obs is None or obs >= bw_hz:
        return 1.0
    return (obs / bw_hz) ** 0.5


def _make_rng(rng):
    if rng is None:
        return random.Random(0)  # deterministic unless the caller supplies its own generator
    if isinstance(rng, int) and not isinstance(rng, bool):
        return random.Random(rng)
    return rng


class Divider:
    """Resistive divider; actual resistor values drawn uniformly within +-tolerance_pct by a seeded Random.

    ``rng``: a random.Random, an int seed, or None (= Random(0), so runs are reproducible by default).
    """

    def __init__(self, r_top_ohm: float, r_bottom_ohm: float, tolerance_pct: float = 0.0, rng=None):
        if not (r_top_ohm >= 0.0 and r_bottom_ohm > 0.0):
            raise ValueError("divider needs r_top_ohm >= 0 and r_bottom_ohm > 0")
        if not 0.0 <= tolerance_pct < 100.0:
            raise ValueError(f"tolerance_pct must be within 0..100, got {tolerance_pct!r}")
        self.r_top_nominal_ohm = float(r_top_ohm)
        self.r_bottom_nominal_ohm = float(r_bottom_ohm)
        self.tolerance_pct = float(tolerance_pct)
        if tolerance_pct > 0.0:
            rng = _make_rng(rng)
            tol = tolerance_pct / 100.0
            self.r_top_ohm = r_top_ohm * (1.0 + rng.uniform(-tol, tol))
            self.r_bottom_ohm = r_bottom_ohm * (1.0 + rng.uniform(-tol, tol))
        else:
            self.r_top_ohm = float(r_top_ohm)
            self.r_bottom_ohm = float(r_bottom_ohm)
        self.ratio = self.r_bottom_ohm / (self.r_top_ohm + self.r_bottom_ohm)
        self.nominal_ratio = self.r_bottom_nominal_ohm / (self.r_top_nominal_ohm + self.r_bottom_nominal_ohm)
        self.r_out_ohm = self.r_top_ohm * self.r_bottom_ohm / (self.r_top_ohm + self.r_bottom_ohm)  # source impedance

    def v_out(self, v_in: float) -> float:
        return v_in * self.ratio

    def __repr__(self):
        return f"Divider({self.r_top_ohm:.6g}, {self.r_bottom_ohm:.6g}, ratio={self.ratio:.6g})"


class ACS712:
    """Hall current sensor: v = vcc/2 + direction * sens * (vcc/5) * I + offset + noise, clipped to 0..vcc,
    then an optional output divider. direction=-1 is FUGU's reversed mounting (v = 2.5 - 0.066 * I at 5 V)."""

    def __init__(self, sensitivity_v_per_a: float = ACS712_30A_SENSITIVITY_V_PER_A, vcc_v: float = 5.0,
                 direction: int = -1, offset_error_v: float = 0.0, noise_rms_v: float = 0.0,
                 divider: Divider | None = None, rng=None):
        if direction not in (1, -1):
            raise ValueError(f"direction must be +1 or -1, got {direction!r}")
        if not (sensitivity_v_per_a > 0.0 and vcc_v > 0.0 and noise_rms_v >= 0.0):
            raise ValueError("ACS712 needs sensitivity_v_per_a > 0, vcc_v > 0, noise_rms_v >= 0")
        self.sensitivity_v_per_a = float(sensitivity_v_per_a)
        self.vcc_v = float(vcc_v)
        self.direction = direction
        self.offset_error_v = float(offset_error_v)
        self.noise_rms_v = float(noise_rms_v)
        self.divider = divider
        self.bw_hz = 80e3  # with FUGU's 1 nF filter capacitor
        self._rng = _make_rng(rng) if noise_rms_v > 0.0 else rng

    def sensor_v(self, i_a: float) -> float:
        """Voltage at the ACS712 VIOUT pin (before the divider)."""
        vcc = self.vcc_v
        v = 0.5 * vcc + self.direction * self.sensitivity_v_per_a * (vcc / 5.0) * i_a + self.offset_error_v
        if self.noise_rms_v > 0.0:
            v += self._rng.gauss(0.0, self.noise_rms_v * _noise_scale(self.bw_hz))
        return 0.0 if v < 0.0 else (vcc if v > vcc else v)

    def v_out(self, i_a: float) -> float:
        """Voltage at the ADC pin."""
        v = self.sensor_v(i_a)
        return v * self.divider.ratio if self.divider is not None else v


class ShuntAmp:
    """Shunt + current-sense amplifier (INA240/INA181 style): v = v_ref + gain*r_shunt*i + offset + noise,
    clipped to 0..v_supply (rail-to-rail output)."""

    def __init__(self, r_shunt_ohm: float = 0.001, gain: float = 50.0, v_ref_v: float = 1.65, v_supply_v: float = 3.3,
                 offset_v: float = 0.0, noise_rms_v: float = 0.0, rng=None):
        if not (r_shunt_ohm > 0.0 and gain > 0.0 and v_supply_v > 0.0 and noise_rms_v >= 0.0):
            raise ValueError("ShuntAmp needs r_shunt_ohm > 0, gain > 0, v_supply_v > 0, noise_rms_v >= 0")
        self.r_shunt_ohm = float(r_shunt_ohm)
        self.gain = float(gain)
        self.v_ref_v = float(v_ref_v)
        self.v_supply_v = float(v_supply_v)
        self.offset_v = float(offset_v)
        self.noise_rms_v = float(noise_rms_v)
        self._k = self.gain * self.r_shunt_ohm
        self.bw_hz = 100e3  # INA240-class amplifiers: ~400 kHz; output RC filters usually bring it to ~100 kHz
        self._rng = _make_rng(rng) if noise_rms_v > 0.0 else rng

    def v_out(self, i_a: float) -> float:
        v = self.v_ref_v + self._k * i_a + self.offset_v
        if self.noise_rms_v > 0.0:
            v += self._rng.gauss(0.0, self.noise_rms_v * _noise_scale(self.bw_hz))
        vs = self.v_supply_v
        return 0.0 if v < 0.0 else (vs if v > vs else v)

