"""Maximum power point tracker: a global scan plus drift-compensated perturb-and-observe on averaged power.

Pure logic: power samples in (integer mW, one per control step, taken at the duty the stage actually ran),
duty requests out, in "fine" duty units (1/16 of a PWM count, so small corrections are not lost to rounding).

Why this shape:
- Averaging: one sample is dominated by sensor noise near the MPP, where a small perturbation changes power by
  a fraction of a percent; each decision compares means over windows of several samples.
- Drift compensation (dP-P&O): after a perturbation the tracker measures window A, then window B at the same duty.
  B - A is the change the sky made, not the tracker; it is extrapolated back and removed from A - B_prev, so an
  irradiance ramp does not drag the operating point the wrong way.
- Adaptive step: the step grows while power keeps rising in one direction and halves on every reversal, so it
  crosses the range in a fraction of a second and then sits within a count or two of the peak.
- Global scan: a sweep from open circuit towards the battery voltage finds the highest of several peaks (partial
  shade), at start, periodically, and when power falls suddenly.
"""

from micropython import const

SCAN = const(1)
_TRACK = const(2)
FINE = const(16)  # fine duty units per PWM count


class Tracker:
    def __init__(self, n_settle=1, n_avg=5, step_min=FINE, step_max=48 * FINE, scan_points=48):
        self.n_settle = n_settle
        self.n_avg = n_avg
        self.step_min = step_min
        self.step_max = step_max
        self.scan_points = scan_points
        self.mode = _TRACK
        self.duty = 0
        self.step = 4 * FINE
        self.dir = 1
        self._phase = 0
        self._sum_a = 0
        self._sum_b = 0
        self._b_prev = 0
        self._has_prev = False  # _b_prev holds the last cycle's window (a sum near zero power can be negative)
        self._p_mean = 0
        self._noise = 0
        self._reversed = False
        self.scan_done = False  # set when a scan ends (the caller reports it and clears the flag)
        # scan state
        self._scan_d = 0
        self._scan_step = 0
        self._scan_best_p = -1
        self._scan_best_d = 0
        self._scan_hi = 0
        self._scan_settle = 0
        self.scans = 0
        self.last_scan_best_mw = 0
        self.last_scan_v_mv = 0
        self._scan_best_v = 0
        self.v_oc_mv = 0
        self.v_open_mv = 0  # the panel voltage at the scan's open-circuit end (its present V_oc, ~), last scan

    # -- commands ----------------------------------------------------------------------------------------
    def begin(self, duty):
        """Track from duty (after soft start)."""
        self.duty = duty
        self.mode = _TRACK
        self.step = 4 * FINE
        self.dir = 1
        self._restart_cycle()

    def start_scan(self, d_lo, d_hi, v_oc_mv=0):
        """Sweep duty from d_lo (panel near open circuit) up to d_hi (panel voltage near the battery's)."""
        if d_hi <= d_lo:
            return False
        self.mode = SCAN
        self.scans += 1
        self._scan_d = d_lo
        self._scan_hi = d_hi
        s = (d_hi - d_lo) // self.scan_points
        self._scan_step = s if s > FINE else FINE
        self._scan_best_p = -1
        self._scan_best_d = d_lo
        self._scan_settle = self.n_settle + 1
        if v_oc_mv:
            self.v_oc_mv = v_oc_mv
        self.duty = d_lo
        return True

    def sync(self, duty):
        """The stage ran at another duty (a limit or protection held it): follow it, restart the cycle, and aim
        towards more power (up in duty) for when the limit lets go."""
        if self.mode == SCAN:
            self.mode = _TRACK
        self.duty = duty
        self.dir = 1
        self.step = self.step_min
        self._restart_cycle()

    def ramping(self):
        """The stage is still slewing towards self.duty (downward moves are rate-limited): samples taken on the
        way are not at the requested duty, so hold the scan point / restart the averaging cycle."""
        if self.mode == SCAN:
            self._scan_settle = self.n_settle
        else:
            self._phase = 0
            self._sum_a = 0
            self._sum_b = 0

    def _restart_cycle(self):
        self._phase = 0
        self._sum_a = 0
        self._sum_b = 0
        self._has_prev = False

    # -- one control step ------------------------------------------------------------------------------------
    def update(self, p_mw, v_mv, d_lo, d_hi):
        """Feed the power measured at self.duty; returns the next duty request (fine units, within d_lo..d_hi)."""
        if self.mode == SCAN:
            return self._scan(p_mw, v_mv, d_lo, d_hi)
        n = self.n_avg
        ph = self._phase
        ns = self.n_settle
        if ph < ns:
            pass
        elif ph < ns + n:
            self._sum_a += p_mw
        else:
            self._sum_b += p_mw
        ph += 1
        if ph < ns + 2 * n:
            self._phase = ph
            return self._clamp(self.duty, d_lo, d_hi)
        a = self._sum_a
        b = self._sum_b
        self._p_mean = b // n
        # noise of a window sum, from how much two windows at the same duty differ (an EMA of |B - A|)
        db = b - a if b > a else a - b
        self._noise += (db - self._noise) >> 3
        # the step is relative to the duty (a fraction of the panel voltage): too small a step changes power by
        # less than the noise near the peak and the tracker would stall off it; ~0.8 % costs < 0.05 % at the peak
        d_now = self.duty
        step_min = d_now >> 7
        if step_min < self.step_min:
            step_min = self.step_min
        step_max = d_now >> 4
        if step_max < 4 * step_min:
            step_max = 4 * step_min
        if self._has_prev:
            dp = a - self._b_prev
            if db > 2 * self._noise:  # the sky is changing: remove the drift measured between A and B
                dp -= ((b - a) * (ns + n)) // n
            dead = 2 * self._noise + (self._p_mean * n) // 4000 + n
            if dp > dead:
                # grow only on a second gain in a row: the gain right after a reversal is just the way back
                if not self._reversed and self.step < step_max:
                    self.step += self.step >> 1
                self._reversed = False
            else:
                self.dir = -self.dir
                self.step >>= 1
                self._reversed = True
            if self.step < step_min:
                self.step = step_min
            elif self.step > step_max:
                self.step = step_max
        self._b_prev = b
        self._has_prev = True
        self._phase = 0
        self._sum_a = 0
        self._sum_b = 0
        d = self.duty + self.dir * self.step
        d2 = self._clamp(d, d_lo, d_hi)
        if d2 != d:  # hit a bound: turn round
            self.dir = -self.dir
        self.duty = d2
        return d2

    def _clamp(self, d, lo, hi):
        if d < lo:
            d = lo
        if d > hi:
            d = hi
        self.duty = d
        return d

    def _scan(self, p_mw, v_mv, d_lo, d_hi):
        """One point per n_settle + 1 steps: the samples right after a duty change are discarded."""
        if self.duty < d_lo:  # the bounds moved since the scan began (the floor follows V_out): stay within them
            self.duty = d_lo
        if self._scan_settle > 0:
            self._scan_settle -= 1
            return self.duty
        if self._scan_best_p < 0:
            self.v_open_mv = v_mv  # first point: the floor, where (almost) no current flows
        if p_mw > self._scan_best_p:
            self._scan_best_p = p_mw
            self._scan_best_d = self.duty
            self._scan_best_v = v_mv
        d = self.duty + self._scan_step
        hi = self._scan_hi if self._scan_hi < d_hi else d_hi
        # stop early once power has clearly fallen below the best: past the last peak towards short circuit
        # (only once the best is well above the noise at the open-circuit end)
        if d > hi or (self._scan_best_p > 2000 and p_mw * 4 < self._scan_best_p and v_mv < self._scan_best_v):
            self.last_scan_best_mw = self._scan_best_p
            self.last_scan_v_mv = self._scan_best_v
            self.scan_done = True
            self.begin(self._scan_best_d)  # within the scan's range, which was valid when it was measured
            self.step = self.step_min * 2
            return self.duty
        self.duty = d
        self._scan_settle = self.n_settle
        return d
