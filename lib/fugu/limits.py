"""Limit regulators: output voltage, output current, input current and power, the lowest wins.

Each regulator is an integrator in velocity form: it proposes a duty change from its own error, scaled by an
estimate of how strongly duty moves its quantity (so the loop gain stays below one: no oscillation), and the
smallest proposal wins. Far from every limit all proposals are large and positive, so the tracker has the duty;
near one the proposals cap the tracker's moves and pull the duty back when the limit is exceeded. Integers only.

Plant gains per PWM count (fine units are 1/16 count): output current moves by about V_in / (top * R_loop), input
current by V_out / (top * R_loop), with R_loop the battery's resistance plus the stage's (conservative minimum).
"""

from micropython import const

_R_LOOP_MIN_MOHM = const(25)  # smallest plausible battery + wiring + MOSFET resistance: the highest plant gain
_V_GAIN_DIV = const(4)  # output-voltage loop: fine units per mV of error (1/4 fine per mV)
_V_BAND_MV = const(300)  # a limit only caps the duty within this band (voltage) or the last 10 % (currents, power):
# further away the tracker moves freely, so a limit never slows a scan or a large tracking step
_STEP_DOWN_MAX = const(64 * 16)  # fastest pull-back per step, fine units


def _current_step(err_ma, v_mv, top):
    """Fine-unit duty change that moves a current by about half its error (gain 0.5 of the worst-case plant)."""
    if v_mv < 1000:
        v_mv = 1000
    # err_ma * 16 * top * R / v / 1000 / 2 ; keep the product below 2**30: err <= 40000, top <= 16383
    return (err_ma * 8 * _R_LOOP_MIN_MOHM // 1000) * top // v_mv


class Limits:
    """The set points; the controller writes them when the charger or settings change (None = no limit)."""

    def __init__(self, top):
        self.top = top
        self.v_out_mv = 0
        self.i_out_ma = 0
        self.i_in_ma = 0
        self.p_in_mw = 0
        self.binding = ""  # the limit with the smallest allowance in the last step

    def step(self, v_in_mv, i_in_ma, v_out_mv, i_out_ma):
        """Largest duty change (fine units) every limit allows this step; positive and large when none is near."""
        top = self.top
        best = 1 << 20
        name = ""
        if self.v_out_mv and v_out_mv > self.v_out_mv - _V_BAND_MV:
            d = (self.v_out_mv - v_out_mv) // _V_GAIN_DIV
            if d < best:
                best = d
                name = "v_out"
        if self.i_out_ma and i_out_ma * 10 > self.i_out_ma * 9:
            d = _current_step(self.i_out_ma - i_out_ma, v_in_mv, top)
            if d < best:
                best = d
                name = "i_out"
        if self.i_in_ma and i_in_ma * 10 > self.i_in_ma * 9:
            d = _current_step(self.i_in_ma - i_in_ma, v_out_mv, top)
            if d < best:
                best = d
                name = "i_in"
        if self.p_in_mw and v_in_mv > 1000:
            i_eq = (self.p_in_mw // (v_in_mv // 100)) * 10  # mW / V -> mA  (p <= 5 kW keeps this small)
            if i_in_ma * 10 > i_eq * 9:
                d = _current_step(i_eq - i_in_ma, v_out_mv, top)
                if d < best:
                    best = d
                    name = "power"
        if best < -_STEP_DOWN_MAX:
            best = -_STEP_DOWN_MAX
        self.binding = name
        return best
