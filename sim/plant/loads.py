"""DC loads on the battery/output node: i(v) and di/dv for the plant's Newton solver.

Constant-current and constant-power loads are electronic loads (or DC-DC converters); real ones stop regulating
below their compliance / undervoltage-lockout voltage, and a Newton solver must not see P/v blow up at v -> 0. So
both fade out smoothly and odd-symmetrically (a small resistor near 0 V, never a source):

    constant_current:  i = I * tanh(v / fade_v)                   (>= 99.5 % of I above 3 * fade_v)
    constant_power:    i = P * v / sqrt(v^4 + fade_v^4)            (P/v within 0.04 % above 6 * fade_v,
                                                                 P*v/fade_v^2 near 0, peak P/(sqrt(2)*fade_v))

A DC-DC converter also has an under-voltage lockout: ``uvlo_v`` (constant current or power) turns the load off when
its voltage falls below that, and on again above 1.1 x uvlo_v (the power stage keeps that state: stage_kernel
.uvlo_update; current_and_slope here is the load while it runs). Without it the load keeps drawing its power down to
a few volts, which no real converter does.
"""

import math

from sim.plant.stage_kernel import LOAD_CODES, load_cs

LOAD_KINDS = ("off", "resistive", "constant_current", "constant_power")
LOAD_PORTS = ("battery", "pv")


class DCLoad:
    """kind "off" | "resistive" (value = ohm) | "constant_current" (A) | "constant_power" (W).

    ``fade_v``: voltage scale of the low-voltage fade-out (default 1 V for constant current, 2 V for constant
    power). ``port``: "battery" (the output node) or "pv" (the PV terminals: a boost-mode load). Callable:
    ``load(v)`` == ``load.current_and_slope(v)``. ``kind``/``value`` may be changed at run time. ``uvlo_v``: the
    under-voltage lockout (V, None: none; constant current or power only).
    """

    def __init__(self, kind: str, value: float = 0.0, fade_v: float | None = None, port: str = "battery",
                 uvlo_v: float | None = None):
        if kind not in LOAD_KINDS:
            raise ValueError(f"unknown load kind {kind!r}; expected one of {LOAD_KINDS}")
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0.0):
            raise ValueError(f"load value must be a finite number >= 0, got {value!r}")
        if kind == "resistive" and value <= 0.0:
            raise ValueError("a resistive load needs value > 0 ohm (use kind='off' for an open circuit)")
        if fade_v is not None and not fade_v > 0.0:
            raise ValueError(f"fade_v must be > 0 V, got {fade_v!r}")
        if port not in LOAD_PORTS:
            raise ValueError(f"unknown load port {port!r}; expected one of {LOAD_PORTS}")
        if uvlo_v is not None:
            if kind not in ("constant_current", "constant_power"):
                raise ValueError(f"uvlo_v is for constant_current and constant_power loads, not {kind!r}")
            if not (isinstance(uvlo_v, (int, float)) and math.isfinite(uvlo_v) and uvlo_v > 0.0):
                raise ValueError(f"uvlo_v must be a finite number > 0 V, got {uvlo_v!r}")
            uvlo_v = float(uvlo_v)
        self.uvlo_v = uvlo_v
        self.kind = kind
        self.value = float(value)
        self.port = port  # where the plant hangs it: "battery" node or "pv" terminals (boost mode)
        self.fade_v = fade_v if fade_v is not None else (2.0 if kind == "constant_power" else 1.0)

    def current_and_slope(self, v: float) -> tuple[float, float]:
        """(current drawn at terminal voltage v in A, di/dv in A/V): the formulas above, in stage_kernel.load_cs
        (the power stage evaluates them there)."""
        return load_cs(float(LOAD_CODES[self.kind]), self.value, self.fade_v, float(v))

    __call__ = current_and_slope

    def __repr__(self):
        return f"DCLoad({self.kind!r}, {self.value})"
