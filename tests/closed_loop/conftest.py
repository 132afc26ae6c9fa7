"""Closed-loop tests: the unmodified code.py and control core on the simulated board, scenarios from scenarios/
with overrides. Helpers return the summary, the per-second rows as dicts, and the firmware's console lines."""

import os

import pytest

from sim.runner import SimRun
from sim.scenario import load_scenario

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class Result:
    def __init__(self, run, summary):
        self.run = run
        self.summary = summary
        self.rows = [dict(zip(run.csv_header, r)) for r in run.rows]
        self.lines = run.fw_lines
        self.faults = [f["code"] for f in summary["faults"]]

    def window(self, t0, t1=None):
        return [r for r in self.rows if r["t_s"] >= t0 and (t1 is None or r["t_s"] <= t1)]

    def tracking(self, t0, t1=None):
        w = self.window(t0, t1)
        return sum(r["pv_w"] for r in w) / sum(r["mpp_w"] for r in w)

    def fault_times(self, code):
        return [f["t"] for f in self.summary["faults"] if f["code"] == code]


@pytest.fixture
def simulate():
    def _run(name, **overrides):
        ov = {k.replace("__", "."): v for k, v in overrides.items()}
        sc = load_scenario(os.path.join(ROOT, "scenarios", name + ".toml"), ov)
        run = SimRun(sc, echo=False, status_every_s=0)
        r = Result(run, run.run())
        # the gate driver's promise, checked in every closed-loop run (faults and protections included)
        assert r.summary["bootstrap_violations"] == 0, (name, r.summary["bootstrap_violations"])
        return r

    return _run
