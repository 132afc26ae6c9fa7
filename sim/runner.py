"""Run the unmodified ``code.py`` on a simulated board for a scenario, and report what happened.

The firmware runs in this process, on the CircuitPython stand-ins, until the scenario's time is up. Resets (the
watchdog, microcontroller.reset()) restart code.py with fresh firmware modules while the physics carries on. The
firmware's console output is captured: lines ``STAT key=value ...`` and ``FAULT code=... t_ms=...`` are the
firmware's machine-readable telemetry (documented in the README); the rest is passed through.
"""

import csv
import io
import json
import os
import runpy
import sys
import time as _wall

from sim.install import PROJECT_ROOT, install

_FIRMWARE_DIRS = tuple(os.path.join(PROJECT_ROOT, d) for d in ("lib", "boardconfigs", "extensions"))


class Console(io.TextIOBase):
    """The serial console: parses telemetry lines, passes other text through (or keeps it quiet)."""

    def __init__(self, sim_run, echo):
        self.run = sim_run
        self.echo = echo
        self._buf = ""
        self.lines = []

    def write(self, s):
        self._buf += s
        while "\n" in self._buf:
            line, self._buf = self._buf.split("\n", 1)
            self.run.on_console_line(line)
        return len(s)

    def flush(self):
        pass


def parse_kv(line):
    """'STAT a=1 b=2.5 c=TRACK' -> {'a': 1, 'b': 2.5, 'c': 'TRACK'}."""
    out = {}
    for tok in line.split()[1:]:
        k, sep, v = tok.partition("=")
        if not sep:
            continue
        for conv in (int, float):
            try:
                out[k] = conv(v)
                break
            except ValueError:
                pass
        else:
            out[k] = v
    return out


def calibration_ppm(sim):
    """Gain error (ppm) of each sense channel of a simulated board, from its drawn divider values: what a user
    finds comparing the firmware's readings with a meter."""
    out = {}
    sense = sim.channels[0]["sense"]  # one calibration in the settings serves every stage: channel 0's
    for name, fe in sim.frontends.items():
        nominal = sense[name]
        kind = nominal["kind"]
        if kind == "divider":
            ratio_nom = nominal["r_bottom_ohm"] / (nominal["r_top_ohm"] + nominal["r_bottom_ohm"])
            out[name] = (ratio_nom / fe.ratio - 1.0) * 1e6
        elif kind == "acs712" and fe.divider is not None:
            ratio_nom = nominal["r_bottom_ohm"] / (nominal["r_top_ohm"] + nominal["r_bottom_ohm"])
            out[name] = (ratio_nom / fe.divider.ratio - 1.0) * 1e6
    return out


def provision_nvm(sim, scenario):
    """What a user (or the factory) stored on the chip before a run: the scenario's settings, and unless the
    scenario says board.calibrated = false, a gain calibration of each sense channel as a user makes it against
    a reference meter (the drawn resistor tolerances corrected, leaving a +-0.1 % meter error)."""
    import random

    from fugu.settings import Settings

    values = dict(scenario.settings)
    if scenario.board.get("calibrated", True):
        rng = random.Random(scenario.seed + 7)
        for name, ppm in calibration_ppm(sim).items():
            values.setdefault("cal_%s_ppm" % name, int(round(ppm + rng.uniform(-1000.0, 1000.0))))
    if values:
        st = Settings(sim.board.nvm, log=lambda *_: None)
        st.update(values)
        st.save()


class SimRun:
    def __init__(self, scenario, out_dir=None, realtime=False, echo=True, status_every_s=None, code_path=None):
        install()
        self.scenario = scenario
        self.out_dir = out_dir
        self.realtime = realtime
        self.echo = echo
        self.status_every_s = status_every_s if status_every_s is not None else scenario.status_every_s
        self.code_path = code_path or os.path.join(PROJECT_ROOT, "code.py")
        self.fw_stat = {}
        self.fw_faults = []
        self.fw_lines = []
        self.resets = []
        self.rows = []
        self._feed_hist = {}
        self._last_feed_ns = None
        self._build()
        self.csv_header = self.CSV_HEADER + self._channel_columns()

    # -- construction ----------------------------------------------------------------------------------------
    def _build(self):
        from sim.builders import build_sim

        self.sim = build_sim(self.scenario)
        self._provision_nvm()
        b = self.sim.board
        b.watchdog.on_feed = self._on_feed
        b.epoch_offset_s = self.scenario.start_epoch_s
        clock = b.clock
        clock.schedule(0, self._record)
        if self.status_every_s:
            clock.schedule(int(self.status_every_s * 1e9), self._status)
        from sim.faults import schedule_faults

        schedule_faults(self.sim, self.scenario.faults, self)
        from sim.breakout import attach_modules

        if self.out_dir:
            self.work_dir = self.out_dir
        else:
            import tempfile

            self._tmp = tempfile.TemporaryDirectory(prefix="fugu-sim-")
            self.work_dir = self._tmp.name
        os.makedirs(self.work_dir, exist_ok=True)
        self.modules = attach_modules(self.sim, self.scenario.board.get("modules", {}), self.work_dir)
        if self.realtime:
            self._wall0 = _wall.monotonic()
            b.guards.append(self._pace)

    def _provision_nvm(self):
        provision_nvm(self.sim, self.scenario)

    def _pace(self, now_ns):
        ahead = now_ns / 1e9 - (_wall.monotonic() - self._wall0)
        if ahead > 0.02:
            _wall.sleep(ahead)

    def _on_feed(self, now_ns):
        last = self._last_feed_ns
        self._last_feed_ns = now_ns
        if last is not None:
            bucket = (now_ns - last) // 100000  # 0.1 ms bins
            self._feed_hist[bucket] = self._feed_hist.get(bucket, 0) + 1

    def on_console_line(self, line):
        if line.startswith("STAT "):
            self.fw_stat = parse_kv(line)
            return
        if line.startswith("FAULT "):
            kv = parse_kv(line)
            self.fw_faults.append({"t": round(self.sim.board.clock.now_ns / 1e9, 3), "code": kv.get("code", "?")})
        self.fw_lines.append(line)
        if self.echo:
            sys.__stdout__.write("  [fw %8.2fs] %s\n" % (self.sim.board.clock.now_ns / 1e9, line))

    # -- periodic events -----------------------------------------------------------------------------------
    def _record(self, t_ns):
        p = self.sim.plant
        p.sync()
        st = p.stage
        bat = p.battery
        self.rows.append((
            round(t_ns / 1e9, 3), round(p.g_w_m2, 2), round(p.t_cell_c, 2), round(st.v_pv, 3), round(st.i_pv, 3),
            round(st.v_pv * st.i_pv, 2), round(p.p_mpp_ch[0], 2), round(st.vo - st.i_bat * st.p.r_out_wiring_ohm, 3),
            round(st.i_bat, 3), round(st.duty, 4), int(st.enabled), self.fw_stat.get("state", ""),
            round(self.sim.heatsink.temp_c, 2), round(bat.soc, 4) if bat is not None else "",
        ) + self._channel_values(p))
        self.sim.board.clock.schedule(t_ns + 1000000000, self._record)

    def _channel_columns(self):
        """Further columns on a board with several power stages: pv_v/pv_a/pv_w/mpp_w/duty/driver_on are then
        channel 1's, each further channel k has its own set (pv2_v ... driver2_on), and pv_total_w / mpp_total_w
        add them up (a tracking figure per channel is pv<k>_w / mpp<k>_w)."""
        n = self.sim.plant.n_channels
        if n == 1:
            return ()
        cols = []
        for k in range(2, n + 1):
            cols += ["pv%d_v" % k, "pv%d_a" % k, "pv%d_w" % k, "mpp%d_w" % k, "duty%d" % k, "driver%d_on" % k]
        return tuple(cols) + ("pv_total_w", "mpp_total_w")

    def _channel_values(self, p):
        if p.n_channels == 1:
            return ()
        out = []
        for k in range(1, p.n_channels):
            stk = p.stages[k]
            out += [round(stk.v_pv, 3), round(stk.i_pv, 3), round(stk.v_pv * stk.i_pv, 2), round(p.p_mpp_ch[k], 2),
                    round(stk.duty, 4), int(stk.enabled)]
        return tuple(out) + (round(sum(p.p_pv_ch()), 2), round(p.p_mpp_w, 2))

    def _status(self, t_ns):
        p = self.sim.plant
        st = p.stage
        fw = self.fw_stat
        if self.echo:
            sys.__stdout__.write(
                "t=%7.0fs G=%6.1f W/m2 Pmpp=%7.1f W Ppv=%7.1f W Vpv=%5.1f V Vbat=%5.2f V Ibat=%6.2f A duty=%.3f "
                "state=%s E_fw=%.2f Wh\n" % (t_ns / 1e9, p.g_w_m2, p.p_mpp_w, st.v_pv * st.i_pv, st.v_pv, st.vo,
                                            st.i_bat, st.duty, fw.get("state", "-"), fw.get("e_wh", 0.0)))
            sys.__stdout__.flush()
        self.sim.board.clock.schedule(t_ns + int(self.status_every_s * 1e9), self._status)

    # -- running -------------------------------------------------------------------------------------------
    def _purge_firmware_modules(self):
        for name, mod in list(sys.modules.items()):
            f = getattr(mod, "__file__", None) or ""
            if f.startswith(_FIRMWARE_DIRS):
                del sys.modules[name]

    def run(self):
        from sim.clock import SimReset, SimulationEnd

        b = self.sim.board
        b.activate()
        wall0 = _wall.perf_counter()
        console = Console(self, self.echo)
        # the firmware modules the host had before the run come back after it: a reset purges them (the next boot
        # imports fresh ones), and host code holding the old ones (tests of the pure logic) must not then meet
        # classes from a second copy (an exception class that is not the one it catches)
        before = {k: m for k, m in sys.modules.items() if (getattr(m, "__file__", None) or "").startswith(
            _FIRMWARE_DIRS)}
        old_stdout = sys.stdout
        try:
            while True:
                sys.stdout = console
                try:
                    runpy.run_path(self.code_path, run_name="__main__")
                    # code.py returned: the supervisor resets the pins and waits (converter off)
                    self._idle_until_end(b)
                except SimReset as r:
                    self.resets.append({"t": round(b.clock.now_ns / 1e9, 3), "reason": r.reason})
                    self._reset_mcu(b, r.reason)
                    continue
                except SimulationEnd:
                    break
                except Exception as e:  # an uncaught firmware error: traceback on the console, pins reset
                    import traceback

                    sys.stdout = old_stdout
                    tb = traceback.format_exc()
                    self.fw_lines.append(tb)
                    self.fw_faults.append({"t": round(b.clock.now_ns / 1e9, 3), "code": "CRASH " + repr(e)})
                    if self.echo:
                        sys.__stdout__.write(tb)
                    try:
                        self._idle_until_end(b)
                    except SimReset as r:
                        self.resets.append({"t": round(b.clock.now_ns / 1e9, 3), "reason": r.reason})
                        self._reset_mcu(b, r.reason)
                        continue
                    except SimulationEnd:
                        break
        finally:
            sys.stdout = old_stdout
            b.deactivate()
            if self.resets:
                self._purge_firmware_modules()
                sys.modules.update(before)
        self.wall_s = _wall.perf_counter() - wall0
        summary = self.summary()
        if self.out_dir:
            self.write_outputs(summary)
        return summary

    # what microcontroller.cpu.reset_reason says after each kind of reset (CircuitPython's ResetReason names)
    # (a reload restarts code.py without a reset: the reason stays what it was)
    RESET_REASONS = (("watchdog", "WATCHDOG"), ("microcontroller.reset", "SOFTWARE"), ("power cut", "POWER_ON"),
                     ("injected", "RESET_PIN"))

    def _reset_mcu(self, b, reason=""):
        if "supervisor.reload" not in reason:
            b.reset_reason = next((rr for key, rr in self.RESET_REASONS if key in reason), "UNKNOWN")
        b.release_all_pins()
        b.watchdog.stop()
        self._purge_firmware_modules()
        b.clock.advance(300 * 1000000)  # boot time of CircuitPython before code.py runs again

    def _idle_until_end(self, b):
        b.release_all_pins()
        if b.watchdog.mode != "RESET":
            b.watchdog.stop()
        while True:
            b.clock.advance(1000000000)
            b.clock.sync()

    def control_rate_hz(self):
        total = sum(self._feed_hist.values())
        if not total:
            return 0.0
        acc = 0
        for bucket in sorted(self._feed_hist):
            acc += self._feed_hist[bucket]
            if acc * 2 >= total:
                return 1.0 / ((bucket + 0.5) * 1e-4)
        return 0.0

    def summary(self):
        p = self.sim.plant
        p.sync()
        st = p.stage
        e_in, acc, rel = p.energy_balance()
        avail = p.e_available_j / 3600.0
        harv = p.e_pv_j / 3600.0
        return {
            "scenario": self.scenario.name,
            "sim_seconds": round(self.sim.board.clock.now_ns / 1e9, 3),
            "wall_seconds": round(self.wall_s, 3),
            "speed_x_realtime": round(self.sim.board.clock.now_ns / 1e9 / max(self.wall_s, 1e-9), 2),
            "pv_energy_available_wh": round(avail, 4),
            "pv_energy_harvested_wh": round(harv, 4),
            "tracking_efficiency": round(harv / avail, 5) if avail > 0 else None,
            "battery_energy_in_wh": round(p.e_bat_in_j / 3600.0, 4),
            "load_energy_wh": round(p.e_load_j / 3600.0, 4),
            "aux_energy_wh": round(p.e_aux_j / 3600.0, 4),
            "loss_energy_wh": {k: round(v / 3600.0, 4) for k, v in p.e_loss_j.items()},
            "energy_balance_error": rel,
            "firmware_energy_wh": self.fw_stat.get("e_wh"),
            "max_battery_v": round(p.max_v_bat, 3),
            "max_output_v": round(p.max_v_out, 3),
            "max_pv_v": round(p.max_v_pv, 3),
            "max_inductor_a": round(p.il_peak_a, 3),
            "bootstrap_violations": p.bootstrap_violations,
            "control_rate_hz": round(self.control_rate_hz(), 2),
            "control_steps": self.sim.board.watchdog.feeds,
            "plant_steps": p.steps,
            "faults": self.fw_faults,
            "resets": self.resets,
            "final_soc": round(p.battery.soc, 4) if p.battery is not None else None,
            "channels": [{"pv_energy_available_wh": round(a / 3600.0, 4), "pv_energy_harvested_wh": round(h / 3600.0, 4),
                          "tracking_efficiency": round(h / a, 5) if a > 0 else None}
                         for h, a in zip(p.e_pv_ch, p.e_available_ch)],
            "modules": {h.name: h.summary() for h in self.modules},
        }

    CSV_HEADER = ("t_s", "irradiance_w_m2", "t_cell_c", "pv_v", "pv_a", "pv_w", "mpp_w", "bat_v", "bat_a", "duty",
                  "driver_on", "fw_state", "heatsink_c", "soc")

    def write_outputs(self, summary):
        os.makedirs(self.out_dir, exist_ok=True)
        with open(os.path.join(self.out_dir, "run.csv"), "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(self.csv_header)
            w.writerows(self.rows)
        with open(os.path.join(self.out_dir, "summary.json"), "w") as f:
            json.dump(summary, f, indent=2)
        with open(os.path.join(self.out_dir, "console.txt"), "w") as f:
            f.write("\n".join(self.fw_lines) + "\n")
        for h in self.modules:
            h.write(self.out_dir)
