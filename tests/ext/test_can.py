"""The CAN extension (extensions/can.py + canmap.py) on both its controllers: the REAL adafruit_mcp2515 driver on the
emulated MCP2515 (fugu_v1), and the ESP32-S3's TWAI controller through canio (fugu_s3, whose breakout has a
transceiver on can_tx/can_rx; sim/hal/canio.py, sim/devices/twai.py). What a PC on the bus sees, decoded with
cantools and docs/fugu_can.dbc (the documented frame map), compared with the firmware's own STAT lines and the
plant's truth; setting requests through the bus; a bus nobody acknowledges; a bus-off; a board without the module;
and a hypothesis fuzz of the request parser."""

import os
import struct

import pytest
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from sim.install import PROJECT_ROOT
from sim.runner import SimRun, parse_kv
from sim.scenario import load_scenario

import cantools  # noqa: E402  (after sim.install: host libraries keep the real clock)

DBC = os.path.join(PROJECT_ROOT, "docs", "fugu_can.dbc")
DB = cantools.database.load_file(DBC)
DURATION_S = 26
ONLY_CAN = {"board.modules.%s" % m: (m == "can") for m in ("oled", "sd", "can", "rs485", "ble")}
TELEMETRY = ("FUGU_Status", "FUGU_PV", "FUGU_Battery", "FUGU_Charger", "FUGU_Energy", "FUGU_Info")
BOARDS = {"fugu_v1": "mcp2515", "fugu_s3": "twai"}  # board config -> the controller the firmware uses on it
STARTED = {"mcp2515": "ext can: started (MCP2515, 250 kbit/s", "twai": "ext can: started (native canio, 250 kbit/s)"}


def _canmap():
    from extensions import canmap

    return canmap


def request(op, setting, value=0):
    msg = DB.get_message_by_name("FUGU_Request")
    return msg.frame_id, msg.encode({"op": op, "setting": setting, "value": value})


class RecordingRun(SimRun):
    """SimRun that keeps every STAT line with its simulated time (the runner keeps only the last)."""

    def __init__(self, *a, **kw):
        self.stats = []
        super().__init__(*a, **kw)

    def on_console_line(self, line):
        if line.startswith("STAT "):
            self.stats.append((self.sim.board.clock.now_ns / 1e9, parse_kv(line)))
        super().on_console_line(line)


def scenario(board="fugu_v1", **overrides):
    ov = dict(ONLY_CAN)
    ov["scenario.duration_s"] = DURATION_S
    ov["board.config"] = board
    ov.update(overrides)
    return load_scenario(os.path.join(PROJECT_ROOT, "scenarios", "demo.toml"), ov)


# the requests a PC sends during the run: (t_s, can_id, data, what the answer must be)
REQUESTS = [
    (12.0, *request("write", "i_charge_max_ma", 32000), ("write", "i_charge_max_ma", "ok", 32000)),
    (12.5, *request("read", "i_charge_max_ma"), ("read", "i_charge_max_ma", "ok", 32000)),
    (13.0, *request("write", "i_charge_max_ma", 99999), ("write", "i_charge_max_ma", "refused", 32000)),
    (13.5, *request("read", "i_charge_max_ma"), ("read", "i_charge_max_ma", "ok", 32000)),
    (14.0, 0x5F0, b"\x02\x03\x00", ("write", "i_charge_max_ma", "malformed", 0)),  # too short: nothing changes
    (14.5, 0x5F0, b"\x07\x03\x10\x27\x00\x00", (7, "i_charge_max_ma", "malformed", 0)),  # unknown op
    (15.0, *request("write", "t_derate_start_c", 90), ("write", "t_derate_start_c", "refused", 70)),  # >= shutdown
    (15.5, *request("read", "ble_pin"), ("read", "ble_pin", "denied", 0)),
    (16.0, *request("read", "battery_chem"), ("read", "battery_chem", "ok", 0)),  # lifepo4 = position 0
    (16.5, 0x5F0, bytes([1, 200, 0, 0, 0, 0]), ("read", 200, "unknown_setting", 0)),
]


@pytest.fixture(scope="module", params=list(BOARDS))
def can_run(request, tmp_path_factory):
    out = tmp_path_factory.mktemp("can")
    run = RecordingRun(scenario(request.param), out_dir=str(out), echo=False)
    (handle,) = run.modules
    assert handle.name == "can" and handle.source == BOARDS[request.param]
    for t, can_id, data, _ in REQUESTS:
        handle.send(can_id, data, at_s=t)
    handle.send(0x5F0, b"", rtr=True, at_s=17.0)  # a remote frame on the request id: malformed
    handle.send(0x5F0, bytes([1, 3, 0, 0, 0, 0]), extended=True, at_s=17.5)  # an extended id: not ours, ignored
    # an extended id whose top 11 bits are 0x5F0: the TWAI's standard filter lets it through (the port does not
    # check the frame type): the extension must ignore it all the same
    handle.send((0x5F0 << 18) | 0x1234, bytes([2, 3, 0, 0, 0, 0]), extended=True, at_s=18.0)
    summary = run.run()
    return run, summary, handle, out


def firmware_frames(handle):
    return handle.firmware_frames()


def test_every_frame_the_firmware_sends_decodes_with_the_dbc(can_run):
    run, summary, handle, out = can_run
    frames = firmware_frames(handle)
    assert len(frames) >= 6 * (DURATION_S - 3)
    for f in frames:
        msg = DB.get_message_by_frame_id(f.id)
        assert not f.extended and len(f.data) == msg.length
        msg.decode(f.data)
    # the files a user opens: candump log (read back with python-can), decoded text, the summary's counts
    import can as python_can

    logged = list(python_can.CanutilsLogReader(str(out / "can.log")))
    assert len(logged) == len(handle.frames())
    assert [(m.arbitration_id, bytes(m.data)) for m in logged[:6]] == [(f.id, f.data) for f in handle.frames()[:6]]
    decoded = (out / "can_decoded.txt").read_text()
    assert any(line.startswith(STARTED[handle.source]) for line in run.fw_lines)
    assert summary["modules"]["can"]["controller"] == handle.source
    assert "FUGU_PV pv_voltage=" in decoded and "FUGU_Response op=write setting=i_charge_max_ma status=ok" in decoded
    counts = summary["modules"]["can"]["by_id"]
    assert counts["0x501"] == sum(1 for f in frames if f.id == 0x501)
    assert not any("code=EXT" in line for line in run.fw_lines)


def test_decoded_power_and_voltage_agree_with_stat_lines_and_the_plant(can_run):
    run, summary, handle, out = can_run
    rows = {round(r[0]): dict(zip(SimRun.CSV_HEADER, r)) for r in run.rows}
    checked = 0
    for t, name, sig in handle.decoded(source=handle.source):
        if t < 11.0 or name not in ("FUGU_PV", "FUGU_Battery"):
            continue
        stat = [s for ts, s in run.stats if ts <= t][-1]  # the snapshot was taken with this STAT line
        truth = rows[round(t)]
        if name == "FUGU_PV":
            p = sig["pv_power"]
            assert p == pytest.approx(stat["p_w"], rel=0.02, abs=2.0)
            assert p == pytest.approx(truth["pv_w"], rel=0.02, abs=2.0)
        else:
            v = sig["battery_voltage"]
            assert v == pytest.approx(stat["vout_mv"] / 1000.0, abs=0.011)  # the same reading, 10 mV steps
            assert v == pytest.approx(truth["bat_v"], rel=0.01)
        checked += 1
    assert checked >= 2 * (DURATION_S - 12)


def test_telemetry_frames_come_at_the_documented_rate_in_simulated_time(can_run):
    run, summary, handle, out = can_run
    frames = firmware_frames(handle)
    for name in TELEMETRY:
        msg = DB.get_message_by_name(name)
        assert msg.cycle_time == 1000
        times = [f.t_ns / 1e9 for f in frames if f.id == msg.frame_id]
        gaps = [b - a for a, b in zip(times, times[1:])]
        assert len(times) >= DURATION_S - 3, name
        assert sum(gaps) / len(gaps) == pytest.approx(msg.cycle_time / 1000.0, rel=0.02), name
        # the host makes one extension call per control step: while the converter is off the loop runs at 10 Hz and
        # a snapshot's frames take a few hundred ms to go out; while it switches (~130 Hz) they follow within 0.1 s
        assert 0.7 < min(gaps) and max(gaps) < 1.3, (name, min(gaps), max(gaps))
        # (a response to a request takes the place of a telemetry frame, which then follows at the next tick, 50 ms
        # later)
        running = [b - a for a, b in zip(times, times[1:]) if a > 9.0]
        assert 0.93 < min(running) and max(running) < 1.07, (name, min(running), max(running))
        steady = [b - a for a, b in zip(times, times[1:]) if a > 9.0 and not 11.5 < b < 19.0]  # no requests
        assert 0.99 < min(steady) and max(steady) < 1.01, (name, min(steady), max(steady))


def test_settings_are_read_and_written_through_request_frames(can_run):
    run, summary, handle, out = can_run
    responses = [(t, sig) for t, name, sig in handle.decoded(source=handle.source) if name == "FUGU_Response"]
    # + the remote frame's answer; the extended frame gets none
    expected = [r[3] for r in REQUESTS] + [(0, "battery_chem", "malformed", 0)]
    got = [(str(s["op"]), str(s["setting"]), str(s["status"]), s["value"]) for _, s in responses]
    assert got == [tuple(str(x) for x in e[:3]) + (e[3],) for e in expected]
    # each answer within 200 ms of its request
    for (t_req, *_), (t_resp, _) in zip(REQUESTS, responses):
        assert 0 < t_resp - t_req < 0.2
    # the written limit reaches the charger: the FUGU_Charger frames show it
    limits = [(t, sig["current_limit"]) for t, name, sig in handle.decoded(source=handle.source)
              if name == "FUGU_Charger"]
    assert all(v == pytest.approx(30.0) for t, v in limits if 9.0 < t < 12.0)  # charging (bulk) from ~8 s
    assert all(v == pytest.approx(32.0) for t, v in limits if t > 13.5)


@pytest.fixture(scope="module")
def plain_run(can_run):
    run = RecordingRun(scenario(can_run[0].scenario.board["config"], **{"board.modules.can": False}), echo=False)
    return run, run.run()


def test_without_the_module_the_extension_is_not_found_and_tracking_is_unaffected(can_run, plain_run):
    """The MCP2515 board: no module, no extension. The S3 board has its transceiver: without a bus on it nobody
    acknowledges, the extension says so once and drops its frames."""
    run, summary = plain_run
    if can_run[2].source == "mcp2515":
        assert "ext can: not found" in run.fw_lines
    else:
        assert STARTED["twai"] in run.fw_lines
        assert [line for line in run.fw_lines if "frames are not going out" in line] == [
            "ext can: frames are not going out (no other node acknowledges: an empty bus or a wrong bit rate; or "
            "bus-off); dropping them until the bus works"]
        assert not any("code=EXT" in line for line in run.fw_lines)
    assert summary["modules"] == {}
    with_can = can_run[1]
    eff = [_tracking(r, 10.0) for r in (run, can_run[0])]
    assert eff[0] > 0.99
    assert eff[1] == pytest.approx(eff[0], abs=0.002)
    assert with_can["control_rate_hz"] == pytest.approx(summary["control_rate_hz"], rel=0.05)


def _tracking(run, t0):
    rows = [dict(zip(SimRun.CSV_HEADER, r)) for r in run.rows if r[0] >= t0]
    return sum(r["pv_w"] for r in rows) / sum(r["mpp_w"] for r in rows)


# ---------------------------------------------------------------------------------------------------------------
# the extension on a bench: a simulated board with the emulated MCP2515, the real driver, the real ExtContext
class Bench:
    """``native``: the breakout names TWAI pins with a transceiver on this bus (canio), instead of the MCP2515."""

    PINS = {"sck": "IO14", "mosi": "IO13", "miso": "IO39", "can_cs": "IO15", "can_int": "IO36"}
    NATIVE_PINS = {"can_tx": "IO42", "can_rx": "IO48"}

    def __init__(self, plugged=True, ack=True, native=False, bus_bitrate=250000):
        from sim.devices.mcp2515 import CANBus, MCP2515Emulator
        from sim.simboard import SimBoard

        self.board = SimBoard(["IO%d" % i for i in range(49)]).activate()
        self.bus = CANBus(self.board.clock, bitrate=bus_bitrate, ack=ack)
        if native:
            self.board.twai_buses = {("IO42", "IO48"): self.bus}
        elif plugged:
            self.chip = MCP2515Emulator(self.board, self.bus, int_pin="IO36").attach(
                ("IO14", "IO13", "IO39"), "IO15")
        import board
        import busio
        import digitalio

        from fugu.extensions import ExtContext
        from fugu.settings import Settings
        from fugu.telemetry import Telemetry

        self.log = []
        self.max_call_ms = 0.0
        self.settings = Settings(None, log=lambda *a: None)
        self.tel = Telemetry(2, "bench")
        cfg = {"name": "bench", "pins": {}, "breakout": self.NATIVE_PINS if native else self.PINS}
        self.ctx = ExtContext(cfg, {"board": board, "busio": busio, "digitalio": digitalio}, self.settings,
                              self.tel, log=self.log.append)

    def extension(self):
        import importlib

        return importlib.import_module("extensions.can").EXTENSION(self.ctx)

    def snapshot(self):
        t = self.tel
        t.seq += 1
        t.state = t.channels[0].state = "TRACK"
        t.channels[0].v_in_mv, t.channels[0].i_in_ma, t.channels[0].p_in_mw = 57000, 8900, 507300
        t.channels[1].v_in_mv, t.channels[1].i_in_ma, t.channels[1].p_in_mw = 38000, -120, -4560
        t.v_bat_mv, t.i_bat_ma, t.p_pv_mw = 26400, 18700, 502740

    def elapse(self, ext, seconds, step_s=0.05):
        """Run the extension as the host does: observe each new snapshot (once a second), tick every 50 ms."""
        clock = self.board.clock
        n = int(seconds / step_s)
        for i in range(n):
            if i % int(1.0 / step_s) == 0:
                self.snapshot()
                self._timed(ext.observe, self.tel)
            clock.advance(int(step_s * 1e9))
            clock.run_events()
            self._timed(ext.tick, 0)

    def _timed(self, fn, arg):
        t0 = self.board.clock.now_ns
        fn(arg)
        self.max_call_ms = max(self.max_call_ms, (self.board.clock.now_ns - t0) / 1e6)

    def close(self):
        self.board.deactivate()


@pytest.fixture
def bench():
    b = Bench()
    yield b
    b.close()


def test_probe_finds_the_chip_and_starts_within_budget(bench):
    ext = bench.extension()
    assert ext.probe() is True
    ext.start()
    assert "MCP2515, 250 kbit/s" in ext.status()
    bench.snapshot()
    ext.observe(bench.tel)
    bench.elapse(ext, 3.0)
    assert bench.max_call_ms < ext.budget_ms  # the longest call: a tick sending three frames
    ids = sorted({f.id for f in bench.bus.frames})
    assert ids == [0x500, 0x501, 0x502, 0x503, 0x504, 0x505, 0x510, 0x511, 0x512, 0x513]  # two stages
    last = {f.id: f for f in bench.bus.frames}
    ch1 = DB.decode_message(0x512, last[0x512].data)
    assert ch1 == pytest.approx({"ch1_voltage": 38.0, "ch1_current": -0.12, "ch1_power": -4.56})
    ext.stop()


def test_probe_without_a_module_says_absent_and_releases_the_chip_select():
    b = Bench(plugged=False)
    try:
        ext = b.extension()
        assert ext.probe() is False
        assert b.board.pin("IO15").owner is None  # the CS pin is free again
    finally:
        b.close()


def test_a_bus_nobody_acknowledges_drops_frames_without_blocking_or_raising():
    b = Bench(ack=False)
    try:
        ext = b.extension()
        assert ext.probe()
        ext.start()
        b.elapse(ext, 3.0)
        assert b.max_call_ms < ext.budget_ms / 4  # a full TX buffer costs one status read, never a wait
        assert b.bus.frames == []
        # the three TX buffers hold frames nobody takes; the other 7 of the first snapshot and all 10 of the second
        # are dropped (the third's are counted at the next snapshot)
        assert ext.sent == 3 and ext.dropped == 7 + 10
        assert any("frames are not going out" in line for line in b.log)
        assert b.ctx.notices.get("can") == "CAN: no ACK"
        b.bus.ack = True  # another node joins
        b.elapse(ext, 2.0)
        assert {f.id for f in b.bus.frames} >= {0x500, 0x501, 0x502}
        assert any("bus works again" in line for line in b.log)
        assert "can" not in b.ctx.notices
    finally:
        b.close()


def test_native_a_bus_nobody_acknowledges_never_blocks_and_frames_resume_when_a_node_joins():
    """canio.send() never raises: the extension reads the state first. Nobody acknowledges: the TWAI retries its
    frame, TEC climbs to error passive (128) in ~10 ms and stays there; the queued frames go when a node joins."""
    b = Bench(ack=False, native=True)
    try:
        ext = b.extension()
        assert ext.probe() and ext.backend == "canio"
        ext.start()
        assert ext.status() == "native canio, 250 kbit/s"
        b.elapse(ext, 3.0)
        assert b.max_call_ms < 1.0  # a state read per call, never a wait
        assert b.bus.frames == []
        import canio

        assert ext.can.transmit_error_count == 128 and ext.can.state == canio.BusState.ERROR_PASSIVE
        assert ext.sent == 3 and ext.dropped == 7 + 10  # as the MCP2515: the first call's frames are taken
        assert [line for line in b.log if "frames are not going out" in line] and b.ctx.notices["can"] == "CAN: no ACK"
        b.bus.ack = True  # another node joins
        b.elapse(ext, 2.0)
        assert {f.id for f in b.bus.frames} >= {0x500, 0x501, 0x502, 0x510}
        assert any("bus works again" in line for line in b.log) and "can" not in b.ctx.notices
    finally:
        b.close()


@pytest.mark.parametrize("with_canio", [True, False])
def test_transceiver_pins_mean_canio_unless_the_build_lacks_it(with_canio):
    from sim.breakout import without_core_modules

    b = Bench()  # an MCP2515 on the SPI pins, and the breakout names TWAI pins too
    try:
        b.ctx.breakout = dict(b.PINS, **b.NATIVE_PINS)
        if not with_canio:
            without_core_modules(b.board, "canio")
        ext = b.extension()
        assert ext.probe() and ext.backend == ("canio" if with_canio else "mcp2515")
    finally:
        b.close()


def test_native_a_request_is_answered_through_canio():
    b = Bench(native=True)
    try:
        ext = b.extension()
        assert ext.probe()
        ext.start()
        can_id, data = request("write", "i_charge_max_ma", 20000)
        b.bus.send(can_id, data, at_ns=b.board.clock.now_ns + 100_000_000)
        b.elapse(ext, 1.0)
        (resp,) = [f for f in b.bus.frames if f.id == 0x5F1]
        got = DB.decode_message(0x5F1, resp.data)
        assert (str(got["op"]), str(got["status"]), got["value"]) == ("write", "ok", 20000)
        assert b.settings.get("i_charge_max_ma") == 20000
        assert b.max_call_ms < ext.budget_ms
    finally:
        b.close()


def test_native_after_a_bus_off_the_frames_resume_once_the_bus_is_right():
    """A PC adapter at the wrong bit rate makes every frame a bit error: bus-off after 32 tries. On this port a
    bus-off TWAI stays off (auto_restart would recover it into ESP-IDF's STOPPED state, where canio sends nothing
    and reads ERROR_ACTIVE): the extension makes its CAN object anew, and frames go once the adapter is right."""
    b = Bench(native=True, bus_bitrate=500000)
    try:
        ext = b.extension()
        assert ext.probe()
        ext.start()
        b.elapse(ext, 2.0)
        assert b.bus.frames == [] and ext._bus_failing()
        assert b.ctx.notices["can"] == "CAN: no ACK"
        b.bus.bitrate = 250000  # the user sets the adapter right
        b.elapse(ext, 8.0)
        assert {f.id for f in b.bus.frames} >= {0x500, 0x505} and "can" not in b.ctx.notices
        assert b.max_call_ms < ext.budget_ms
    finally:
        b.close()


# ---------------------------------------------------------------------------------------------------------------
# the frame map against the DBC, without a bus
def test_the_dbc_and_the_firmware_agree_on_the_tables():
    from fugu.charger import STAGE_NAMES
    from fugu.settings import KEYS
    from fugu import protection, thermal

    cm = _canmap()
    for name in ("FUGU_Request", "FUGU_Response"):
        choices = DB.get_message_by_name(name).get_signal_by_name("setting").choices
        assert [str(choices[i]) for i in range(len(KEYS))] == list(KEYS)
    assert cm.CHARGE_STAGES == STAGE_NAMES
    codes = [v for k, v in vars(protection).items() if k.isupper() and isinstance(v, str) and v == k]
    codes += [thermal.NTC_OPEN, thermal.NTC_SHORT, thermal.OVER_TEMP, thermal.FAN_FAIL]
    assert set(codes) <= set(cm.FAULTS)
    fault = DB.get_message_by_name("FUGU_Status").get_signal_by_name("fault").choices
    assert [str(fault[i]) for i in range(1, len(cm.FAULTS))] == list(cm.FAULTS[1:])
    status = DB.get_message_by_name("FUGU_Response").get_signal_by_name("status").choices
    assert [str(status[i]) for i in range(len(cm.STATUS_NAMES))] == list(cm.STATUS_NAMES)
    assert DB.get_message_by_name("FUGU_Request").length == cm.REQUEST_DLC
    # docs/CAN.md's index table is the same
    import re

    doc = open(os.path.join(PROJECT_ROOT, "docs", "CAN.md")).read()
    table = [(int(i), k) for i, k in re.findall(r"^\| (\d+) \| `(\w+)` \|", doc, re.M)]
    assert table == list(enumerate(KEYS))
    ids = {m.frame_id for m in DB.messages}
    assert ids == {cid for cid, _, _ in cm.telemetry_frames(cm.MAX_CHANNELS)} | {cm.ID_REQUEST, cm.ID_RESPONSE}


def test_scaling_and_saturation_match_the_dbc():
    from fugu.telemetry import Telemetry

    cm = _canmap()
    t = Telemetry(1)
    t.seq = 300
    t.state, t.charge_stage, t.channels[0].limit = "LIMIT", "absorb", "i_out"
    t.channels[0].fault, t.temp_c, t.derate_pct, t.fan = "OC_IN", 71.6, 80, True
    t.channels[0].v_in_mv, t.channels[0].i_in_ma = 99995, -400000  # saturates at -327.68 A
    t.p_pv_mw = 3000000000  # saturates at int32
    t.v_bat_mv, t.i_bat_ma, t.p_bat_mw = 28405, -1234, -34567
    t.today_pv_mwh, t.lifetime_pv_mwh, t.uptime_s, t.today_peak_mw = 1234567, 98765432, 86400, 512345
    t.last_fault, t.last_fault_ch = "OVER_TEMP", -1
    got = {}
    for can_id, enc, k in cm.telemetry_frames(1):
        buf = bytearray(8)
        enc(t, k, buf)
        got.update(DB.decode_message(can_id, bytes(buf), decode_choices=False))
    assert got["state"] == 4 and got["charge_stage"] == 2 and got["limit"] == 2 and got["fault"] == 4
    assert got["heatsink_temp"] == 72 and got["derate"] == 80 and got["fan"] == 1 and got["alive"] == 300 % 256
    assert got["pv_voltage"] == pytest.approx(100.0) and got["pv_current"] == pytest.approx(-327.68)
    assert got["pv_power"] == pytest.approx(2147483.647)
    assert (got["battery_voltage"], got["battery_current"], got["battery_power"]) == pytest.approx(
        (28.41, -1.23, -34.567))
    assert got["pv_energy_today"] == pytest.approx(1234.567) and got["pv_energy_lifetime"] == pytest.approx(98.765)
    assert got["uptime"] == 86400 and got["peak_power_today"] == pytest.approx(512.3)
    assert got["last_fault"] == 12 and got["last_fault_channel"] == 255
    t.temp_c = None
    buf = bytearray(8)
    cm.encode_status(t, 0, buf)
    assert str(DB.decode_message(0x500, bytes(buf))["heatsink_temp"]) == "not_available"


# ---------------------------------------------------------------------------------------------------------------
# the request parser: fuzzed with the real Settings and the real ExtContext.request_setting
def _ctx():
    from fugu.extensions import ExtContext
    from fugu.settings import Settings

    s = Settings(None, log=lambda *a: None)
    return s, ExtContext({}, {"board": None}, s, None)


def _check(can_id, data, extended, rtr):
    from fugu.settings import KEYS, SCHEMA

    cm = _canmap()
    s, ctx = _ctx()
    before = {k: s.get(k) for k in KEYS}
    out = bytearray(8)
    status = cm.answer(can_id, data, extended, rtr, ctx.setting, ctx.request_setting, out)
    after = {k: s.get(k) for k in KEYS}
    changed = [k for k in KEYS if before[k] != after[k]]
    if status is None:
        assert extended or can_id != cm.ID_REQUEST
        assert out == bytearray(8) and not changed
        return
    resp = DB.decode_message(cm.ID_RESPONSE, bytes(out), decode_choices=False)
    assert resp["status"] == status
    valid_write = (len(data) == 6 and not rtr and data[0] == cm.OP_WRITE and data[1] < len(SCHEMA))
    if changed:
        assert valid_write and status == cm.ST_OK and changed == [KEYS[data[1]]]
        assert resp["value"] == cm.setting_as_int(data[1], after[KEYS[data[1]]])
    if status != cm.ST_OK:
        assert not changed
    if len(data) != 6 or rtr or data[0] not in (1, 2):
        assert status == cm.ST_MALFORMED
    return s, status, resp


@hsettings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(can_id=st.one_of(st.just(0x5F0), st.integers(0, 0x1FFFFFFF)), data=st.binary(max_size=16),
       extended=st.booleans(), rtr=st.booleans())
def test_fuzz_any_frame_never_raises_and_changes_nothing_unless_valid(can_id, data, extended, rtr):
    _check(can_id, data, extended, rtr)


@hsettings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(op=st.sampled_from([0, 1, 2, 3, 255]), index=st.integers(0, 40),
       value=st.one_of(st.integers(-2 ** 31, 2 ** 31 - 1), st.integers(-5, 100), st.integers(0, 120000),
                       st.sampled_from([125000, 250000, 500000, 1000000])))
def test_fuzz_well_formed_requests_do_what_settings_set_would(op, index, value):
    from fugu.settings import KEYS, SCHEMA, Settings, SettingsError

    cm = _canmap()
    res = _check(0x5F0, struct.pack("<BBi", op, index, value), False, False)
    s, status, resp = res
    if op not in (1, 2):
        return
    if index >= len(KEYS):
        assert status == cm.ST_UNKNOWN_SETTING
        return
    key, kind, _, spec = SCHEMA[index][:4]
    if key in cm.PRIVATE_KEYS or kind == "str":
        assert status in (cm.ST_DENIED, cm.ST_NOT_NUMERIC)
        return
    if op == 2:  # the same write through Settings.set directly: accepted exactly when the CAN write was
        arg = value
        if kind == "choice" and isinstance(spec[0], str):
            arg = spec[value] if 0 <= value < len(spec) else "not-a-choice"
        try:
            Settings(None, log=lambda *a: None).set(key, arg)
            accepted = True
        except SettingsError:
            accepted = False
        assert (status == cm.ST_OK) == accepted
    assert resp["value"] == cm.setting_as_int(index, s.get(key))
