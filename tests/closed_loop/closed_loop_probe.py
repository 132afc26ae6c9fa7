"""Fine-grained observation of a closed-loop run, for response times and overshoots.

The runner's CSV has one row per simulated second; a protection acts within milliseconds. This probe listens to the
plant's integration sub-steps (true physical values, microsecond resolution) inside time windows the test names,
and to the watchdog feeds (one per firmware control step), so a test can say "the driver was off N control steps
after the current crossed the threshold" and "the current peaked at X". It only observes: nothing the firmware
sees changes.
"""

import os

from sim.runner import SimRun, parse_kv
from sim.scenario import load_scenario

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class Sample:
    __slots__ = ("t", "v_in", "v_pv", "i_pv", "v_out", "i_out", "i_bat", "enabled", "duty", "backflow")

    def __init__(self, t, st):
        self.t = t
        self.v_in = st.vc
        self.v_pv = st.v_pv
        self.i_pv = st.i_pv
        self.v_out = st.vo
        self.i_out = st.i_out
        self.i_bat = st.i_bat
        self.enabled = st.enabled
        self.duty = st.duty
        self.backflow = st.backflow_on


class Probe:
    """Sub-step samples of one channel's power stage within ``windows`` [(t0_s, t1_s), ...], and every control
    step's time (watchdog feed)."""

    def __init__(self, run, windows=(), channel=0):
        sim = run.sim
        self.stage = sim.stages[channel]
        self.windows = [(float(a), float(b)) for a, b in windows]
        self.samples = []
        self.feeds_s = []
        wd = sim.board.watchdog
        prev = wd.on_feed

        def on_feed(now_ns):
            if prev is not None:
                prev(now_ns)
            self.feeds_s.append(now_ns * 1e-9)

        wd.on_feed = on_feed
        sim.plant.on_substep = self._substep

    def _substep(self, plant):
        t = plant.t_ns * 1e-9
        for a, b in self.windows:
            if a <= t <= b:
                self.samples.append(Sample(t, self.stage))
                return

    # -- queries ---------------------------------------------------------------------------------------------
    def between(self, t0, t1):
        return [s for s in self.samples if t0 <= s.t <= t1]

    def first(self, cond, t0=0.0, t1=float("inf")):
        """The first sample at or after t0 (up to t1) where cond(sample) holds, or None."""
        for s in self.samples:
            if t0 <= s.t <= t1 and cond(s):
                return s
        return None

    def steps_between(self, t0, t1):
        """Control steps (watchdog feeds) in (t0, t1]: a response of n steps took n feeds to come."""
        return sum(1 for t in self.feeds_s if t0 < t <= t1)

    def step_period_ms(self, t0, t1):
        n = self.steps_between(t0, t1)
        return (t1 - t0) * 1000.0 / n if n else float("inf")


class EnergySnapshots:
    """setup= helper: the plant's per-channel energy books (PV harvested, available at the true MPP) at given
    simulated times, so a test can compute each channel's tracking efficiency over a window."""

    def __init__(self, times_s):
        self.times_s = list(times_s)
        self.at = {}  # t_s -> (e_pv_ch J list, e_available_ch J list)

    def __call__(self, sim):
        plant = sim.plant
        for t in self.times_s:
            def snap(t_ns, t=t):
                self.at[t] = (plant.e_pv_ch, plant.e_available_ch)

            sim.board.clock.schedule(int(t * 1e9), snap)

    def tracking(self, t0, t1, channel):
        pv0, av0 = self.at[t0]
        pv1, av1 = self.at[t1]
        return (pv1[channel] - pv0[channel]) / (av1[channel] - av0[channel])


class Probed:
    """A scenario run with a probe: .run (SimRun), .summary, .rows (dicts per simulated second), .probe, .faults
    (codes), .fault_times(code), .lines (the firmware's console lines other than STAT), .stats / .stats_ch (every
    STAT / STAT<n> line as (t_s, dict)). setup(sim) may change the simulated hardware before the run starts."""

    def __init__(self, name, windows=(), channel=0, setup=None, **overrides):
        ov = {k.replace("__", "."): v for k, v in overrides.items()}
        path = name if name.endswith(".toml") else os.path.join(ROOT, "scenarios", name + ".toml")
        sc = load_scenario(path, ov)
        self.run = SimRun(sc, echo=False, status_every_s=0)
        if setup is not None:
            setup(self.run.sim)  # physical parameters a scenario file has no key for (e.g. a short's resistance)
        self.probe = Probe(self.run, windows, channel)
        self.stats = []  # (t_s, {key: value}) of every STAT line (the runner keeps only the last)
        self.stats_ch = {}  # channel -> [(t_s, {...})] of the STAT<n> lines of further channels
        orig = self.run.on_console_line
        clock = self.run.sim.board.clock

        def on_line(line):
            if line.startswith("STAT"):
                head = line.split(" ", 1)[0]
                entry = (clock.now_ns * 1e-9, parse_kv(line))
                if head == "STAT":
                    self.stats.append(entry)
                elif head[4:].isdigit():
                    self.stats_ch.setdefault(int(head[4:]), []).append(entry)
            orig(line)

        self.run.on_console_line = on_line
        self.summary = self.run.run()
        self.rows = [dict(zip(self.run.csv_header, r)) for r in self.run.rows]
        self.lines = self.run.fw_lines
        self.faults = [f["code"] for f in self.summary["faults"]]
        # the gate driver's promise, checked in every closed-loop run (faults and protections included)
        assert self.summary["bootstrap_violations"] == 0, (name, self.summary["bootstrap_violations"])

    def fault_times(self, code):
        return [f["t"] for f in self.summary["faults"] if f["code"] == code]

    def window(self, t0, t1=None):
        return [r for r in self.rows if r["t_s"] >= t0 and (t1 is None or r["t_s"] <= t1)]

    def fw_lines(self, prefix):
        return [ln for ln in self.lines if ln.startswith(prefix)]
