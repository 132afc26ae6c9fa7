"""Heatsink (lumped thermal RC), cooling fan and the NTC thermistor that the firmware reads.

Default heatsink values are for a FUGU-class 1 kW buck: all MOSFETs/inductor/diodes lumped on one aluminium
extrusion. C = 150 J/K (~170 g of aluminium at 0.9 J/(g K)); R = 2.5 K/W in still air, 0.8 K/W with the fan at full
speed. So with ~2.5 % loss: 500 W -> 12.5 W -> +31 K (56 C at 25 C ambient) without fan; 1 kW -> 25 W -> +63 K
(88 C, at FUGU's 90 C shutdown) without fan but +20 K (45 C) with the fan: full power needs the fan. Time constants:
375 s still air, 120 s fan.
"""

import math

T0_K = 273.15


class Heatsink:
    """C dT/dt = P - (T - T_amb) / R(airflow).

    Convective conductance interpolates between still air and full fan as G = G_nat + (G_fan - G_nat) * a**0.8
    (forced convection h ~ air velocity^0.8 in the turbulent regime; a = airflow fraction 0..1).
    """

    def __init__(self, c_th_j_per_k: float = 150.0, r_th_natural_k_per_w: float = 2.5,
                 r_th_fan_k_per_w: float = 0.8, t_amb_c: float = 25.0):
        if not c_th_j_per_k > 0.0:
            raise ValueError(f"c_th_j_per_k must be > 0, got {c_th_j_per_k!r}")
        if not (r_th_natural_k_per_w > 0.0 and r_th_fan_k_per_w > 0.0):
            raise ValueError("thermal resistances must be > 0 K/W")
        if r_th_fan_k_per_w > r_th_natural_k_per_w:
            raise ValueError("r_th_fan_k_per_w must not exceed r_th_natural_k_per_w (a fan cannot insulate)")
        self.c_th_j_per_k = float(c_th_j_per_k)
        self.r_th_natural_k_per_w = float(r_th_natural_k_per_w)
        self.r_th_fan_k_per_w = float(r_th_fan_k_per_w)
        self.t_amb_c = float(t_amb_c)
        self.temp_c = float(t_amb_c)
        self._key = None
        self._decay = 1.0
        self._r = self.r_th_natural_k_per_w

    def r_th_k_per_w(self, fan_airflow: float) -> float:
        """Heatsink-to-ambient thermal resistance at airflow fraction 0..1."""
        a = 0.0 if fan_airflow <= 0.0 else (1.0 if fan_airflow >= 1.0 else fan_airflow)
        g_nat = 1.0 / self.r_th_natural_k_per_w
        g = g_nat + (1.0 / self.r_th_fan_k_per_w - g_nat) * (a ** 0.8)
        return 1.0 / g

    def steady_state_c(self, p_loss_w: float, fan_airflow: float = 0.0) -> float:
        return self.t_amb_c + p_loss_w * self.r_th_k_per_w(fan_airflow)

    def step(self, p_loss_w: float, fan_airflow: float, dt_s: float) -> None:
        """Exact exponential update for P and airflow held over dt: stable for any dt."""
        if dt_s <= 0.0:
            return
        key = (fan_airflow, dt_s)
        if key != self._key:  # the fan and dt rarely change between calls: cache R and exp()
            self._key = key
            self._r = self.r_th_k_per_w(fan_airflow)
            self._decay = math.exp(-dt_s / (self._r * self.c_th_j_per_k))
        t_ss = self.t_amb_c + p_loss_w * self._r
        self.temp_c = t_ss + (self.temp_c - t_ss) * self._decay


class Fan:
    """Airflow = command (0..1, PWM duty or on/off) if healthy, 0 if ``failed``; tachometer pulse rate for countio.

    ``min_duty``: below it a real fan stalls (airflow and tach 0); default 0 (the FUGU fan is switched on/off).
    """

    def __init__(self, rpm_max: float = 3000.0, pulses_per_rev: int = 2, min_duty: float = 0.0):
        if not rpm_max > 0.0:
            raise ValueError(f"rpm_max must be > 0, got {rpm_max!r}")
        if not (isinstance(pulses_per_rev, int) and pulses_per_rev >= 1):
            raise ValueError(f"pulses_per_rev must be an integer >= 1, got {pulses_per_rev!r}")
        if not 0.0 <= min_duty < 1.0:
            raise ValueError(f"min_duty must be within 0..1, got {min_duty!r}")
        self.rpm_max = float(rpm_max)
        self.pulses_per_rev = pulses_per_rev
        self.min_duty = float(min_duty)
        self.failed = False

    def airflow(self, command) -> float:
        """Airflow fraction 0..1 for a command (bool or 0..1)."""
        if self.failed:
            return 0.0
        c = float(command)
        if c <= 0.0 or c < self.min_duty:
            return 0.0
        return 1.0 if c >= 1.0 else c

    def rpm(self, command) -> float:
        return self.rpm_max * self.airflow(command)

    def tach_hz(self, command) -> float:
        """Tachometer pulse frequency (Hz) = rpm / 60 * pulses_per_rev; 0 when stopped or failed."""
        return self.rpm(command) / 60.0 * self.pulses_per_rev


# Steinhart-Hart coefficients the FUGU firmware uses for its 10 k NTC (2_Read_Sensors.ino):
# 1/T = A + B ln R + C ln^3 R.  These give 10.0 kOhm at ~24.7 C.
FUGU_NTC_STEINHART_HART = (1.009249522e-03, 2.378405444e-04, 2.019202697e-07)
# FUGU computes R_ntc = R_fixed * (4095 / adc - 1): the NTC sits between 3.3 V and the pin, the 10 k to ground.
FUGU_NTC_TO_GROUND = False


class NTC:
    """NTC thermistor: beta model R = R25 * exp(B * (1/T - 1/298.15)), or Steinhart-Hart if coefficients given."""

    def __init__(self, r25_ohm: float = 10000.0, beta_k: float = 3950.0,
                 steinhart_hart: tuple[float, float, float] | None = None):
        if not (r25_ohm > 0.0 and beta_k > 0.0):
            raise ValueError("r25_ohm and beta_k must be > 0")
        if steinhart_hart is not None:
            a, b, c = steinhart_hart
            if not (b > 0.0 and c >= 0.0):
                raise ValueError("Steinhart-Hart coefficients need B > 0 and C >= 0")
        self.r25_ohm = float(r25_ohm)
        self.beta_k = float(beta_k)
        self.steinhart_hart = steinhart_hart

    def resistance_ohm(self, temp_c: float) -> float:
        t_k = temp_c + T0_K
        if t_k <= 0.0:
            raise ValueError(f"temperature below absolute zero: {temp_c} C")
        if self.steinhart_hart is None:
            return self.r25_ohm * math.exp(self.beta_k * (1.0 / t_k - 1.0 / (25.0 + T0_K)))
        a, b, c = self.steinhart_hart
        if c == 0.0:
            return math.exp((1.0 / t_k - a) / b)
        # c y^3 + b y + (a - 1/T) = 0, y = ln R: one real root (Cardano, b, c > 0)
        p = b / c
        q = (a - 1.0 / t_k) / c
        disc = math.sqrt((q / 2.0) ** 2 + (p / 3.0) ** 3)
        y = math.copysign(abs(-q / 2.0 + disc) ** (1.0 / 3.0), -q / 2.0 + disc) + \
            math.copysign(abs(-q / 2.0 - disc) ** (1.0 / 3.0), -q / 2.0 - disc)
        return math.exp(y)

    def temperature_c(self, r_ohm: float) -> float:
        """Inverse of ``resistance_ohm`` (what a firmware computes from the resistance)."""
        if not r_ohm > 0.0:
            raise ValueError(f"resistance must be > 0, got {r_ohm}")
        ln_r = math.log(r_ohm)
        if self.steinhart_hart is None:
            return 1.0 / (1.0 / (25.0 + T0_K) + (ln_r - math.log(self.r25_ohm)) / self.beta_k) - T0_K
        a, b, c = self.steinhart_hart
        return 1.0 / (a + b * ln_r + c * ln_r ** 3) - T0_K


NTC_FAULTS = (None, "open", "short")


def ntc_divider_v(temp_c: float, ntc: NTC, r_fixed_ohm: float = 10000.0, v_ref_v: float = 3.3,
                  ntc_to_ground: bool = True, fault: str | None = None) -> float:
    """Pin voltage of an NTC / fixed-resistor divider across v_ref.

    ntc_to_ground=True: v_ref - R_fixed - pin - NTC - GND (pin falls when hot); False: NTC on top (FUGU).
    fault "open": the NTC branch is open, so the pin is pulled to the fixed resistor's rail (v_ref if the NTC was
    to ground, 0 V if it was on top); "short": the pin sits on the NTC's other rail (0 V / v_ref).
    """
    if fault not in NTC_FAULTS:
        raise ValueError(f"unknown NTC fault {fault!r}; expected one of {NTC_FAULTS}")
    if fault == "open":
        return v_ref_v if ntc_to_ground else 0.0
    if fault == "short":
        return 0.0 if ntc_to_ground else v_ref_v
    r = ntc.resistance_ohm(temp_c)
    if ntc_to_ground:
        return v_ref_v * r / (r + r_fixed_ohm)
    return v_ref_v * r_fixed_ohm / (r + r_fixed_ohm)
