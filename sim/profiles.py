"""Time profiles for scenarios: breakpoint lists and the fast interpolators that evaluate them.

Every profile a scenario describes (irradiance, ambient temperature, partial shade, load schedule) becomes a list
of breakpoints when the scenario is loaded; during the run only the interpolators below are called, pure Python,
with the current segment cached, so the plant can ask for the irradiance every few milliseconds of simulated time.

Generators:

* ``en50530_sequence(seq, slopes=None)``: the dynamic MPPT test sequences of EN 50530 (Annex B, dynamic MPPT
  efficiency): sequence 1 ramps between 10 % and 50 % of STC irradiance (100 <-> 500 W/m2) at 0.5 ... 50 W/m2/s,
  sequence 2 between 30 % and 100 % (300 <-> 1000 W/m2) at 10 ... 100 W/m2/s. Each slope is repeated n times as
  one cycle: ramp up, 10 s dwell at the high level, ramp down, 10 s dwell at the low level; the whole sequence
  starts with a stabilisation period at the low level (300 s). See ``EN50530_SEQUENCES`` for the table and where
  the numbers come from.
* ``clear_sky_points``: pvlib Ineichen clear sky (Linke turbidity from pvlib's climatology) transposed to the
  plane of array with the isotropic sky model.
* ``broken_clouds_points``: a clear-sky list with seeded cloud shadows: 10-80 % attenuation, cloud lengths 5-300 s
  (log-uniform), edges of 0.5-2 s, gaps drawn so the shaded fraction of time is about ``cloud_cover``.

pvlib and pandas are imported inside the functions that need them: importing this module stays cheap, and it never
pulls host libraries in after ``sim.install`` has swapped ``time``.
"""

import math
import random
import warnings
from bisect import bisect_right

# ---------------------------------------------------------------------------------------------------------------
# EN 50530 dynamic MPPT test sequences
# ---------------------------------------------------------------------------------------------------------------
#
# EN 50530:2010 + A1:2013, Annex B (test conditions for the dynamic MPPT efficiency); the same sequences are in
# IEC 62891:2020 Annex B. Per slope the standard lists the number of repetitions n of one cycle
# (ramp up, dwell 10 s at the high level, ramp down, dwell 10 s at the low level), which gives the duration of
# that slope's block: n * (2 * (G_high - G_low) / slope + 2 * 10 s). Before the first ramp the tracker is left to
# stabilise at the low level (300 s). The table has not been checked against the text of the standard itself
# (it is not public); see the report of the session that wrote this module and scenarios/README.md.
EN50530_DWELL_S = 10.0
EN50530_START_S = 300.0
EN50530_SEQUENCES = {
    1: {
        "name": "EN 50530 dynamic test sequence 1: 10 % <-> 50 % (100 <-> 500 W/m2)",
        "low_w_m2": 100.0,
        "high_w_m2": 500.0,
        # (slope W/m2/s, repetitions)
        "slopes": ((0.5, 2), (1.0, 2), (2.0, 3), (3.0, 4), (5.0, 6), (7.0, 8),
                   (10.0, 10), (14.0, 10), (20.0, 10), (30.0, 10), (50.0, 10)),
    },
    2: {
        "name": "EN 50530 dynamic test sequence 2: 30 % <-> 100 % (300 <-> 1000 W/m2)",
        "low_w_m2": 300.0,
        "high_w_m2": 1000.0,
        "slopes": ((10.0, 10), (14.0, 10), (20.0, 10), (30.0, 10), (50.0, 10), (100.0, 10)),
    },
}


def en50530_slopes(seq):
    """The slopes (W/m2/s) of sequence 1 or 2, in the standard's order."""
    return [s for s, _ in _en50530_table(seq)["slopes"]]


def en50530_repetitions(seq, slope):
    """How many cycles the standard runs at this slope."""
    for s, n in _en50530_table(seq)["slopes"]:
        if s == float(slope):
            return n
    raise ValueError("%g W/m2/s is not a slope of EN 50530 sequence %d (slopes: %s)"
                     % (slope, seq, ", ".join("%g" % s for s in en50530_slopes(seq))))


def en50530_block_duration_s(seq, slope, dwell_s=EN50530_DWELL_S):
    """Duration of one slope's block: n cycles of ramp up, dwell, ramp down, dwell."""
    tab = _en50530_table(seq)
    ramp = (tab["high_w_m2"] - tab["low_w_m2"]) / float(slope)
    return en50530_repetitions(seq, slope) * (2.0 * ramp + 2.0 * dwell_s)


def en50530_duration_s(seq, slopes=None, start_s=EN50530_START_S, dwell_s=EN50530_DWELL_S):
    """Total duration of the sequence (stabilisation period included): what a scenario running it needs."""
    return start_s + sum(en50530_block_duration_s(seq, s, dwell_s) for s in _en50530_pick(seq, slopes))


def en50530_sequence(seq, slopes=None, start_s=EN50530_START_S, dwell_s=EN50530_DWELL_S):
    """(t_s, w_m2) breakpoints of EN 50530 dynamic test sequence ``seq`` (1 or 2), piecewise linear.

    ``slopes`` runs a subset (each must be one of the standard's slopes; they run in the standard's order).
    The irradiance holds the low level for ``start_s`` seconds, then each slope block follows the previous one
    directly (the low-level dwell of a block's last cycle separates it from the next block). The last breakpoint's
    time is the sequence's duration (``en50530_duration_s``)."""
    tab = _en50530_table(seq)
    lo, hi = tab["low_w_m2"], tab["high_w_m2"]
    pts = [(0.0, lo)]
    t = float(start_s)
    if t > 0.0:
        pts.append((t, lo))
    for slope in _en50530_pick(seq, slopes):
        ramp = (hi - lo) / slope
        for _ in range(en50530_repetitions(seq, slope)):
            t += ramp
            pts.append((t, hi))
            t += dwell_s
            pts.append((t, hi))
            t += ramp
            pts.append((t, lo))
            t += dwell_s
            pts.append((t, lo))
    return pts


def _en50530_table(seq):
    try:
        return EN50530_SEQUENCES[int(seq)]
    except (KeyError, TypeError, ValueError):
        raise ValueError("EN 50530 has dynamic test sequences 1 and 2, not %r" % (seq,)) from None


def _en50530_pick(seq, slopes):
    allowed = en50530_slopes(seq)
    if slopes is None:
        return allowed
    wanted = []
    for s in slopes:
        s = float(s)
        if s not in allowed:
            raise ValueError("%g W/m2/s is not a slope of EN 50530 sequence %d (slopes: %s)"
                             % (s, seq, ", ".join("%g" % a for a in allowed)))
        if s in wanted:
            raise ValueError("slope %g W/m2/s is listed twice" % s)
        wanted.append(s)
    return [s for s in allowed if s in wanted]


# ---------------------------------------------------------------------------------------------------------------
# Clear sky and clouds
# ---------------------------------------------------------------------------------------------------------------

def clear_sky_points(latitude, longitude, tilt_deg, azimuth_deg, start_epoch_s, duration_s, step_s=60,
                     peak=None, albedo=0.25, altitude_m=0.0):
    """Plane-of-array clear-sky irradiance every ``step_s`` seconds from ``start_epoch_s`` (UTC) for
    ``duration_s`` seconds (the last point is exactly at ``duration_s``): pvlib Ineichen clear sky with the Linke
    turbidity climatology, isotropic transposition. ``peak`` (W/m2), if given, scales the curve so its maximum is
    that value. Returns [(t_s, w_m2), ...] with t_s relative to the start."""
    import pandas as pd
    import pvlib

    if duration_s <= 0 or step_s <= 0:
        raise ValueError("duration_s and step_s must be > 0")
    n = int(math.ceil(duration_s / float(step_s) - 1e-9))
    offsets = [k * float(step_s) for k in range(n)] + [float(duration_s)]
    times = pd.DatetimeIndex(pd.to_datetime([start_epoch_s + o for o in offsets], unit="s", utc=True))
    loc = pvlib.location.Location(latitude, longitude, tz="UTC", altitude=altitude_m)
    with warnings.catch_warnings():
        # pvlib 0.16 still calls DatetimeIndex.dayofyear, deprecated in pandas 3; harmless here
        warnings.filterwarnings("ignore", message=".*dayofyear is deprecated.*")
        cs = loc.get_clearsky(times, model="ineichen")
        sp = loc.get_solarposition(times)
        poa = pvlib.irradiance.get_total_irradiance(
            tilt_deg, azimuth_deg, sp["apparent_zenith"], sp["azimuth"], cs["dni"], cs["ghi"], cs["dhi"],
            albedo=albedo, model="isotropic")["poa_global"]
    values = [0.0 if not math.isfinite(v) or v < 0.0 else float(v) for v in poa.to_numpy()]
    if peak is not None:
        top = max(values)
        if top > 0.0:
            k = float(peak) / top
            values = [v * k for v in values]
    return [(o, round(v, 3)) for o, v in zip(offsets, values)]


CLOUD_MIN_LEN_S = 5.0
CLOUD_MAX_LEN_S = 300.0
CLOUD_MIN_ATTENUATION = 0.10
CLOUD_MAX_ATTENUATION = 0.80
CLOUD_MIN_EDGE_S = 0.5
CLOUD_MAX_EDGE_S = 2.0


def broken_clouds_points(clear_points, cloud_cover, seed):
    """``clear_points`` with seeded cloud shadows. Each cloud attenuates by 10-80 % (uniform), lasts 5-300 s
    (log-uniform) and has edges of 0.5-2 s; the gaps between clouds are exponential with a mean chosen so that
    about ``cloud_cover`` (0..1) of the time is shaded. Same inputs and seed, same list."""
    if not 0.0 <= cloud_cover <= 1.0:
        raise ValueError("cloud_cover must be within 0..1")
    pts = [(float(t), float(w)) for t, w in clear_points]
    if cloud_cover <= 0.0 or len(pts) < 2:
        return pts
    rng = random.Random(int(seed) * 7919 + 104729)
    t0, t_end = pts[0][0], pts[-1][0]
    lo, hi = math.log(CLOUD_MIN_LEN_S), math.log(CLOUD_MAX_LEN_S)
    mean_len = (CLOUD_MAX_LEN_S - CLOUD_MIN_LEN_S) / (hi - lo)  # mean of the log-uniform length
    mean_gap = mean_len * (1.0 - cloud_cover) / cloud_cover

    def gap():
        return rng.expovariate(1.0 / mean_gap) if mean_gap > 0.0 else 0.0

    factor = [(t0, 1.0)]
    t = t0 + gap()
    while t < t_end:
        length = math.exp(rng.uniform(lo, hi))
        f = 1.0 - rng.uniform(CLOUD_MIN_ATTENUATION, CLOUD_MAX_ATTENUATION)
        edge_in = rng.uniform(CLOUD_MIN_EDGE_S, CLOUD_MAX_EDGE_S)
        edge_out = rng.uniform(CLOUD_MIN_EDGE_S, CLOUD_MAX_EDGE_S)
        length = max(length, edge_in + edge_out + 1.0)
        for tt, ff in ((t, 1.0), (t + edge_in, f), (t + length - edge_out, f), (t + length, 1.0)):
            tt = round(tt, 3)
            if tt > factor[-1][0]:
                factor.append((tt, ff))
        t += length + gap()
    clear = PiecewiseLinear(pts)
    shadow = PiecewiseLinear(factor)
    times = sorted({p[0] for p in pts} | {p[0] for p in factor if t0 <= p[0] <= t_end})
    return [(tt, round(clear(tt) * shadow(tt), 3)) for tt in times]


# ---------------------------------------------------------------------------------------------------------------
# Interpolators
# ---------------------------------------------------------------------------------------------------------------

class PiecewiseLinear:
    """f(t) through breakpoints [(t, v), ...] (t non-decreasing; two points at the same t make a step, and at
    that instant the later value holds). Clamped outside the breakpoints. The current segment is cached and the
    next one tried first, so a caller walking forward in time pays a comparison or two per call."""

    __slots__ = ("ts", "vs", "_i", "_lo", "_hi", "_tb", "_v0", "_k")

    def __init__(self, points):
        if not points:
            raise ValueError("a profile needs at least one point")
        self.ts = [float(p[0]) for p in points]
        self.vs = [float(p[1]) for p in points]
        for a, b in zip(self.ts, self.ts[1:]):
            if b < a:
                raise ValueError("profile times must not decrease")
        self._i = -2
        self._lo = self._hi = math.nan  # nothing cached: every comparison with nan is False
        self._tb = self._v0 = self._k = 0.0

    def __call__(self, t):
        if self._lo <= t < self._hi and t != self._tb:
            return self._v0 + (t - self._tb) * self._k
        return self._seek(t)

    def _seek(self, t):
        ts = self.ts
        n = len(ts)
        i = self._i + 1
        if not (0 <= i < n - 1 and ts[i] <= t < ts[i + 1]):
            i = bisect_right(ts, t) - 1
        if i < 0:
            self._i, self._lo, self._hi, self._tb, self._v0, self._k = -1, -math.inf, ts[0], 0.0, self.vs[0], 0.0
        elif i >= n - 1:
            self._i, self._lo, self._hi, self._tb, self._v0, self._k = n - 1, ts[-1], math.inf, 0.0, self.vs[-1], 0.0
        else:
            t0, t1 = ts[i], ts[i + 1]
            v0 = self.vs[i]
            self._i, self._lo, self._hi, self._tb, self._v0 = i, t0, t1, t0, v0
            self._k = (self.vs[i + 1] - v0) / (t1 - t0)
        if t == self._tb:  # (breakpoints a subnormal apart give k = inf, and 0 * inf = nan)
            return self._v0
        return self._v0 + (t - self._tb) * self._k


class PiecewiseLinearVec:
    """Like PiecewiseLinear for vectors: breakpoints [(t, (v0, v1, ...)), ...]; returns a tuple. On a flat
    segment the same tuple object is returned every call."""

    __slots__ = ("ts", "vecs", "_i", "_t0", "_t1", "_v0", "_k", "_flat")

    def __init__(self, points):
        if not points:
            raise ValueError("a profile needs at least one point")
        self.ts = [float(p[0]) for p in points]
        self.vecs = [tuple(float(x) for x in p[1]) for p in points]
        if len({len(v) for v in self.vecs}) != 1:
            raise ValueError("all vectors must have the same length")
        for a, b in zip(self.ts, self.ts[1:]):
            if b < a:
                raise ValueError("profile times must not decrease")
        self._i = -2
        self._t0 = self._t1 = math.nan
        self._v0 = self._k = self._flat = None

    def __call__(self, t):
        if not (self._t0 <= t < self._t1):
            self._seek(t)
        if self._flat is not None:
            return self._flat
        dt = t - self._t0
        return tuple(a + dt * k for a, k in zip(self._v0, self._k))

    def _seek(self, t):
        ts = self.ts
        n = len(ts)
        i = self._i + 1
        if not (0 <= i < n - 1 and ts[i] <= t < ts[i + 1]):
            i = bisect_right(ts, t) - 1
        if i < 0:
            self._i, self._t0, self._t1, self._flat = -1, -math.inf, ts[0], self.vecs[0]
        elif i >= n - 1:
            self._i, self._t0, self._t1, self._flat = n - 1, ts[-1], math.inf, self.vecs[-1]
        else:
            t0, t1 = ts[i], ts[i + 1]
            a, b = self.vecs[i], self.vecs[i + 1]
            self._i, self._t0, self._t1 = i, t0, t1
            if a == b:
                self._flat = a
            else:
                self._flat = None
                self._v0 = a
                self._k = tuple((y - x) / (t1 - t0) for x, y in zip(a, b))


class PiecewiseConstant:
    """f(t) = the value of the last breakpoint at or before t; ``before`` ahead of the first breakpoint."""

    __slots__ = ("ts", "vs", "before", "_t0", "_t1", "_v")

    def __init__(self, points, before=0.0):
        self.ts = [float(p[0]) for p in points]
        self.vs = [float(p[1]) for p in points]
        self.before = float(before)
        self._t0 = self._t1 = math.nan
        self._v = self.before

    def __call__(self, t):
        if self._t0 <= t < self._t1:
            return self._v
        ts = self.ts
        i = bisect_right(ts, t) - 1
        self._t0 = ts[i] if i >= 0 else -math.inf
        self._t1 = ts[i + 1] if i + 1 < len(ts) else math.inf
        self._v = self.vs[i] if i >= 0 else self.before
        return self._v
