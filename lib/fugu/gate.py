"""Gate driver: the PWM into the IR2104, its shutdown (enable) pin and the backflow MOSFET.

Duty limits come from the physics of the bootstrapped high side, not from constants:
- the maximum duty leaves a low-side window per period long enough to top the bootstrap capacitor up so its
  steady-state voltage stays above the level that fully enhances the high-side MOSFET (plus the dead time);
- the first high-side pulse only comes after a precharge: for high predicted duties the first periods run at a
  lower switching frequency so a single low-side window charges the capacitor (no under-driven pulses);
- soft start begins at the predicted duty V_bat / V_pv (no current step), with the backflow MOSFET off: its body
  diode passes forward current only, so nothing can flow back into the panel while the operating point is found;
  it turns on once forward current is seen (and off as soon as it is not).
Duties are integers in PWM counts of the hardware resolution (FUGU: 39 kHz on the ESP32's LEDC = 11 bits).
"""

import math

from micropython import const

# IR2104 and typical high-side MOSFET figures used when the board config does not give them
V_F_BOOT_V = 0.7  # bootstrap diode
Q_G_HS_C = 80e-9  # high-side gate charge per turn-on
I_QBS_A = 50e-6  # IR2104 high-side quiescent current
V_HS_FULL_V = 7.0  # gate drive for a fully enhanced high-side MOSFET
V_HS_MARGIN_V = 1.5  # keep the steady-state bootstrap voltage this far above it
T_IN_MIN_S = 100e-9  # IR2104 ignores shorter input pulses
_LEDC_CLOCK_HZ = const(80000000)


def ledc_bits(f_hz):
    """Duty resolution the ESP32 LEDC gives at f_hz (80 MHz APB clock, up to 14 bits)."""
    b = 0
    while b < 14 and (_LEDC_CLOCK_HZ / f_hz) >= (1 << (b + 1)):
        b += 1
    return b


def bootstrap_limits(ps, f_hz):
    """(d_max, t_low_min_s) from the power-stage parameters: the smallest low-side on-time per period that keeps
    the bootstrap capacitor's steady state V* = Vchg - a*dv/(1-a) above V_HS_FULL_V + margin, a = exp(-t/RC)."""
    c = ps.get("c_boot_f", 1e-6)
    r = ps.get("r_boot_ohm", 10.0)
    v_chg = ps.get("v_cc_v", 12.0) - ps.get("v_f_boot_v", V_F_BOOT_V)
    period = 1.0 / f_hz
    dv = ps.get("q_g_hs_c", Q_G_HS_C) / c + ps.get("i_qbs_a", I_QBS_A) * period / c
    need = v_chg - (V_HS_FULL_V + V_HS_MARGIN_V)
    if need <= 0:
        raise ValueError("power stage: Vcc too low for the high-side gate")
    a_max = need / (need + dv)  # a*dv/(1-a) <= need
    t_low = -r * c * math.log(a_max)
    t_low = max(t_low, T_IN_MIN_S)
    t_dead = ps.get("t_dead_s", 520e-9)
    d_max = 1.0 - (t_low + t_dead) * f_hz
    return d_max, t_low


def precharge_window_s(ps):
    """Low-side time that charges an empty bootstrap capacitor to V_HS_FULL_V + margin in one window."""
    c = ps.get("c_boot_f", 1e-6)
    r = ps.get("r_boot_ohm", 10.0)
    v_chg = ps.get("v_cc_v", 12.0) - ps.get("v_f_boot_v", V_F_BOOT_V)
    target = V_HS_FULL_V + V_HS_MARGIN_V
    return -r * c * math.log(1.0 - target / v_chg) + ps.get("t_dead_s", 520e-9)


class GateDriver:
    """One power stage's gate pins. Dependencies are passed in (pwmio/digitalio modules and pin objects)."""

    def __init__(self, pwmio_mod, digitalio_mod, pwm_pin, enable_pin, backflow_pin, ps):
        self.f_pwm_hz = int(ps["f_pwm_hz"])
        self.ps = ps
        self.bits = ledc_bits(self.f_pwm_hz)
        self.top = (1 << self.bits) - 1  # counts at 100 %
        self._shift = 16 - self.bits
        d_max, self.t_low_min_s = bootstrap_limits(ps, self.f_pwm_hz)
        self.d_max = int(d_max * self.top)
        self.t_pre_s = precharge_window_s(ps)
        self._pwm = pwmio_mod.PWMOut(pwm_pin, frequency=self.f_pwm_hz, duty_cycle=0, variable_frequency=True)
        self._en = digitalio_mod.DigitalInOut(enable_pin)
        self._en.switch_to_output(value=False)
        self._bf = digitalio_mod.DigitalInOut(backflow_pin)
        self._bf.switch_to_output(value=False)
        self.enabled = False
        self.backflow = False
        self.duty = 0
        self._f_now = self.f_pwm_hz

    def counts(self, ratio_num, ratio_den):
        """Duty counts for a ratio given as two integers (e.g. V_out/V_in in mV), rounded up."""
        if ratio_den <= 0:
            return self.top
        return (ratio_num * self.top + ratio_den - 1) // ratio_den

    def set_duty(self, d):
        if d > self.d_max:
            d = self.d_max
        elif d < 0:
            d = 0
        if d != self.duty:
            self.duty = d
            self._pwm.duty_cycle = d << self._shift

    def start(self, d_start):
        """Bootstrap precharge, then switching at d_start (the predicted duty). If the low-side window at d_start
        is too short to charge the empty bootstrap capacitor in one period, the first periods run at a lower
        frequency (same duty, so no current step); restore_frequency() goes back to f_pwm_hz."""
        if d_start > self.d_max:
            d_start = self.d_max
        if d_start < 1:
            d_start = 1
        self.set_duty(d_start)
        low_frac = 1.0 - d_start / (self.top + 1)
        f = self.f_pwm_hz
        if low_frac * (1.0 / f) < self.t_pre_s:
            f = int(low_frac / self.t_pre_s)
            if f < 1000:
                f = 1000
        if f != self._f_now:
            self._pwm.frequency = f
            self._f_now = f
            self._pwm.duty_cycle = self.duty << self._shift
        self._en.value = True
        self.enabled = True

    def restore_frequency(self):
        if self._f_now != self.f_pwm_hz:
            self._pwm.frequency = self.f_pwm_hz
            self._f_now = self.f_pwm_hz
            self._pwm.duty_cycle = self.duty << self._shift

    def set_backflow(self, on):
        if on != self.backflow:
            self._bf.value = on
            self.backflow = on

    def stop(self):
        """Safe state: driver disabled first (both MOSFETs off), then the backflow MOSFET."""
        self._en.value = False
        self.enabled = False
        self._bf.value = False
        self.backflow = False
        if self.duty:
            self.duty = 0
            self._pwm.duty_cycle = 0
