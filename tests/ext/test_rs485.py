"""The RS485 extension (extensions/rs485.py + lib/fugu/modbus.py) as a Modbus master on the emulated half-duplex line
sees it: requests encoded and answers decoded with pymodbus, live values compared with the firmware's own STAT lines
and the plant, settings written and read back, refused writes (exception 03, nothing changed), a bad CRC (silence),
the standard's other exceptions, broadcast, an address change, the direction pin's timing and the answer latency,
docs/MODBUS.md held to the firmware's tables, and a hypothesis fuzz of the request handling over the real settings."""

import os
import re

import pytest
from hypothesis import given, settings as hsettings, strategies as st
from pymodbus.framer import FramerRTU
from pymodbus.pdu import DecodePDU, ExceptionResponse
from pymodbus.pdu.bit_message import ReadCoilsRequest
from pymodbus.pdu.register_message import (ReadHoldingRegistersRequest, ReadInputRegistersRequest,
                                           WriteMultipleRegistersRequest, WriteSingleRegisterRequest)

from sim.install import PROJECT_ROOT
from sim.runner import SimRun, parse_kv
from sim.scenario import load_scenario

DURATION_S = 15
ONLY_RS485 = {"board.modules.%s" % m: (m == "rs485") for m in ("oled", "sd", "can", "rs485", "ble")}
FRAMER = FramerRTU(DecodePDU(False))
CHAR_NS = 10 * 1e9 / 19200
T35_MS = 3.5 * CHAR_NS / 1e6


def fw():
    from extensions import rs485

    return rs485


def frame(pdu):
    return FRAMER.buildFrame(pdu)


def rd_in(address, count, dev=1):
    return frame(ReadInputRegistersRequest(address=address, count=count, dev_id=dev))


def rd_hold(address, count, dev=1):
    return frame(ReadHoldingRegistersRequest(address=address, count=count, dev_id=dev))


def wr1(address, value, dev=1):
    return frame(WriteSingleRegisterRequest(address=address, registers=[value & 0xFFFF], dev_id=dev))


def wrn(address, values, dev=1):
    return frame(WriteMultipleRegistersRequest(address=address, registers=[v & 0xFFFF for v in values], dev_id=dev))


def bad_crc(f):
    return f[:-1] + bytes([f[-1] ^ 0x5A])


def u32(hi, lo):
    return (hi << 16) | lo


def i32(hi, lo):
    v = u32(hi, lo)
    return v - (1 << 32) if v >= 1 << 31 else v


def s16(v):
    return v - 0x10000 if v >= 0x8000 else v


# holding addresses (docs/MODBUS.md)
CELLS, SCAN_S, DERATE, SHUTDOWN, SILENT, ADDRESS, CAL_I_OUT, BOOST_V = 1, 18, 14, 15, 17, 20, 28, 30

# (t_s, name, request): the master's requests during the run; the demo's 5 s poll goes on in between
REQUESTS = [
    (9.30, "live", rd_in(0, 16)),
    (9.40, "live2", rd_in(16, 16)),
    (9.50, "ident", rd_in(32, 2)),
    (9.60, "stage0", rd_in(100, 15)),
    (9.70, "days", rd_in(1000, 2)),
    (9.75, "day0_pv", rd_in(1010, 2)),
    (9.80, "day0_peak", rd_in(1070, 2)),
    (9.85, "day_vmin", rd_in(1190, 2)),
    (9.90, "stage1", rd_in(120, 1)),
    (10.0, "hold_a", rd_hold(0, 16)),
    (10.1, "hold_b", rd_hold(16, 16)),
    (10.2, "hold_c", rd_hold(32, 1)),
    (10.3, "write_scan", wr1(SCAN_S, 900)),
    (10.4, "read_scan", rd_hold(SCAN_S, 1)),
    (10.5, "write_cells_99", wr1(CELLS, 99)),
    (10.6, "read_cells", rd_hold(CELLS, 1)),
    (10.7, "write_cells_bad_crc", bad_crc(wr1(CELLS, 8))),
    (10.8, "read_cells2", rd_hold(CELLS, 1)),
    (10.9, "write_derate_rule", wrn(DERATE, [90, 80])),
    (11.0, "read_derate", rd_hold(DERATE, 2)),
    (11.1, "write_derate_pair", wrn(DERATE, [95, 100])),
    (11.2, "read_derate2", rd_hold(DERATE, 2)),
    (11.3, "write_boost_v", wrn(BOOST_V, [0, 60000])),
    (11.4, "read_boost_v", rd_hold(BOOST_V, 2)),
    (11.5, "write_half_pair", wr1(BOOST_V + 1, 1000)),
    (11.6, "write_cal", wrn(CAL_I_OUT, [-1, -1234])),
    (11.65, "read_cal", rd_hold(CAL_I_OUT, 2)),
    (11.7, "read_unmapped_input", rd_in(40, 1)),
    (11.8, "read_unmapped_holding", rd_hold(33, 1)),
    (11.9, "read_coils", frame(ReadCoilsRequest(address=0, count=1, dev_id=1))),
    (12.0, "read_17", rd_in(0, 17)),
    (12.1, "broadcast_silent", wr1(SILENT, 1, dev=0)),
    (12.3, "read_silent", rd_hold(SILENT, 1)),
    (12.4, "other_slave", rd_in(0, 2, dev=2)),
    (12.5, "write_choice_9", wrn(0, [9, 8])),
    (12.6, "read_choice", rd_hold(0, 2)),
    (12.7, "write_address", wr1(ADDRESS, 5)),
    (12.8, "read_new_address", rd_hold(ADDRESS, 1, dev=5)),
    (12.9, "read_old_address", rd_hold(ADDRESS, 1, dev=1)),
    (13.0, "restore_address", wr1(ADDRESS, 1, dev=5)),
    (13.1, "read_restored", rd_hold(ADDRESS, 1, dev=1)),
]


class RecordingRun(SimRun):
    """SimRun that keeps every STAT line with its simulated time (the runner keeps only the last)."""

    def __init__(self, *a, **kw):
        self.stats = []
        super().__init__(*a, **kw)

    def on_console_line(self, line):
        if line.startswith("STAT "):
            self.stats.append((self.sim.board.clock.now_ns, parse_kv(line)))
        super().on_console_line(line)

    def stat_before(self, t_ns):
        last = None
        for t, kv in self.stats:
            if t > t_ns:
                break
            last = kv
        return last


class Result:
    def __init__(self, run, handle, summary, out):
        self.run = run
        self.handle = handle
        self.summary = summary
        self.out = out
        self.ex = {}

    def pdu(self, name):
        ex = self.ex[name]
        assert ex.response is not None, "%s: no answer" % name
        pdu = ex.pdu()
        assert pdu is not None, "%s: answer does not decode: %s" % (name, ex.response.hex())
        return pdu

    def regs(self, name):
        pdu = self.pdu(name)
        assert not isinstance(pdu, ExceptionResponse), "%s: exception %s" % (name, pdu.exception_code)
        return list(pdu.registers)

    def exception(self, name):
        pdu = self.pdu(name)
        assert isinstance(pdu, ExceptionResponse), "%s: not an exception: %s" % (name, pdu)
        return pdu.exception_code


@pytest.fixture(scope="module")
def r(tmp_path_factory):
    out = tmp_path_factory.mktemp("rs485")
    sc = load_scenario(os.path.join(PROJECT_ROOT, "scenarios", "demo.toml"),
                       dict(ONLY_RS485, **{"scenario.duration_s": DURATION_S}))
    run = RecordingRun(sc, out_dir=str(out), echo=False)
    (handle,) = run.modules
    assert handle.name == "rs485"
    res = Result(run, handle, None, out)
    for t, name, req in REQUESTS:
        res.ex[name] = handle.request(req, t, note=name)
    res.summary = run.run()
    return res


# -- live values ----------------------------------------------------------------------------------------------
def test_live_values_are_the_firmware_stat_line(r):
    m = fw()
    ex = r.ex["live"]
    stat = r.run.stat_before(ex.t_response_start_ns)
    assert stat is not None and stat["state"] == "TRACK", stat
    v = r.regs("live")
    assert v[0] == m.STATES.index(stat["state"])
    assert v[1] == m.STAGE_NAMES.index(stat["stage"])
    assert v[2] == 0  # no fault
    assert abs(s16(v[3]) - stat["temp_c"] * 10) <= 1
    assert u32(v[4], v[5]) == stat["vin_mv"]
    assert i32(v[6], v[7]) == stat["iin_ma"]
    assert u32(v[10], v[11]) == stat["vout_mv"]
    assert i32(v[12], v[13]) == stat["iout_ma"]
    p_pv_mw = i32(v[8], v[9])
    assert p_pv_mw == pytest.approx(stat["p_w"] * 1000, rel=0.03)
    assert i32(v[14], v[15]) == pytest.approx(stat["e_bat_wh"] / stat["e_wh"] * p_pv_mw, rel=0.05)
    # and the plant: PV power over the second before the answer
    rows = [row for row in r.run.rows if ex.t_sent_ns / 1e9 - 1.0 <= row[0] <= ex.t_sent_ns / 1e9]
    assert rows and p_pv_mw / 1000 == pytest.approx(rows[-1][5], rel=0.03)


def test_energy_counters_and_identification(r):
    ex = r.ex["live2"]
    stat = r.run.stat_before(ex.t_response_start_ns)
    v = r.regs("live2")
    today_mwh = i32(v[0], v[1])
    assert today_mwh == pytest.approx(stat["e_wh"] * 1000, rel=0.02, abs=3)  # booted today: history = meter
    assert u32(v[2], v[3]) == today_mwh // 1000  # lifetime in Wh (empty history before the run)
    assert u32(v[4], v[5]) >= i32(*r.regs("live")[8:10]) * 0.9  # today's peak
    assert u32(v[6], v[7]) > stat["vout_mv"]  # the charger's target (bulk: above the battery)
    assert 9 <= u32(v[10], v[11]) <= 11  # uptime (s)
    assert v[12] == stat["derate"] and v[13] == stat["fan"]
    assert r.regs("ident") == [1, fw().MAP_VERSION]


def test_power_stage_block(r):
    ex = r.ex["stage0"]
    stat = r.run.stat_before(ex.t_response_start_ns)
    v = r.regs("stage0")
    assert v[0] == fw().STATES.index(stat["state"])
    assert v[1] == 0
    assert u32(v[2], v[3]) == stat["vin_mv"]
    assert i32(v[4], v[5]) == stat["iin_ma"]
    assert u32(v[8], v[9]) == stat["vout_mv"]
    assert abs(v[12] - stat["duty"] * 1000) <= 1
    assert v[14] == stat["scans"]
    assert r.exception("stage1") == 2  # fugu_v1 has one power stage


def test_daily_statistics(r):
    days, day_number = r.regs("days")
    assert (days, day_number) == (1, 1)
    today = i32(*r.regs("day0_pv"))
    stat = r.run.stat_before(r.ex["day0_pv"].t_response_start_ns)
    assert today == pytest.approx(stat["e_wh"] * 1000, rel=0.02, abs=3)
    assert u32(*r.regs("day0_peak")) > 400000  # ~500 W at noon
    v_min, yesterday = r.regs("day_vmin")
    assert 20000 < v_min <= stat["vout_mv"] and yesterday == 0


# -- settings -------------------------------------------------------------------------------------------------
def test_holding_registers_read_the_settings(r):
    from fugu.settings import defaults

    d = defaults()
    a = r.regs("hold_a")
    b = r.regs("hold_b")
    assert a[0] == 0  # lifepo4
    assert a[CELLS] == d["battery_cells"] and a[3] == d["i_charge_max_ma"]
    assert s16(a[9]) == d["temp_comp_uv_per_c_cell"]
    assert u32(a[11], a[12]) == d["v_in_max_mv"]
    assert a[DERATE] == d["t_derate_start_c"] and a[SHUTDOWN] == d["t_shutdown_c"]
    assert b[SCAN_S - 16] == d["scan_interval_s"] and b[ADDRESS - 16] == 1
    assert b[21 - 16] == 1  # can_bitrate 250000 = choice 1
    assert r.regs("hold_c") == [d["boost_i_max_ma"]]


def test_a_written_setting_reads_back(r):
    pdu = r.pdu("write_scan")
    assert not isinstance(pdu, ExceptionResponse) and pdu.address == SCAN_S and pdu.registers == [900]
    assert r.regs("read_scan") == [900]


def test_an_out_of_range_write_is_refused_and_changes_nothing(r):
    assert r.exception("write_cells_99") == 3
    assert r.regs("read_cells") == [0]
    assert any("Modbus write refused" in line and "battery_cells" in line for line in r.run.fw_lines)


def test_a_bad_crc_gets_no_answer_and_changes_nothing(r):
    ex = r.ex["write_cells_bad_crc"]
    assert ex.t_sent_ns is not None and ex.response is None
    assert r.regs("read_cells2") == [0]


def test_write_multiple_is_all_or_nothing(r):
    assert r.exception("write_derate_rule") == 3  # derate 90 above shutdown 80: neither is applied
    assert r.regs("read_derate") == [70, 85]
    assert r.pdu("write_derate_pair").count == 2  # 95 alone is above 85: applied together it is fine
    assert r.regs("read_derate2") == [95, 100]
    assert r.exception("write_choice_9") == 3  # battery_chem has 6 choices; cells=8 must not go in alone
    assert r.regs("read_choice") == [0, 0]


def test_32_bit_settings(r):
    assert r.pdu("write_boost_v").count == 2
    assert u32(*r.regs("read_boost_v")) == 60000
    assert r.exception("write_half_pair") == 2
    assert i32(*r.regs("read_cal")) == -1234


def test_the_standard_exceptions(r):
    assert r.exception("read_unmapped_input") == 2
    assert r.exception("read_unmapped_holding") == 2
    assert r.exception("read_coils") == 1
    assert r.exception("read_17") == 3


def test_broadcast_and_other_addresses(r):
    assert r.ex["broadcast_silent"].response is None
    assert r.regs("read_silent") == [1]
    assert r.ex["other_slave"].response is None
    assert r.pdu("write_address").registers == [5]  # answered from the old address
    assert r.regs("read_new_address") == [5]
    assert r.ex["read_old_address"].response is None
    assert r.ex["restore_address"].pdu().dev_id == 5
    assert r.regs("read_restored") == [1]


# -- the line ---------------------------------------------------------------------------------------------------
def test_answers_respect_the_line_timing(r):
    line = r.handle.line
    s = line.summary()
    assert s["mcu_uart"] == [19200, 8, None, 1]
    assert s["mcu_bytes_lost"] == 0 and s["collisions"] == 0 and s["framing_errors"] == 0
    answered = [e for e in r.handle.exchanges if e.response is not None]
    assert len(answered) >= 30
    rises = [t for t, level in line.de_edges if level]
    for e in answered:
        # DE rises after the request and its 3.5-character silence, and the answer follows at once
        rise = max(t for t in rises if t <= e.t_response_start_ns)
        assert rise >= e.t_request_end_ns + T35_MS * 1e6 - 1
        assert e.t_response_start_ns - rise < 100000
        assert e.turnaround_ms >= T35_MS
        # one control step (or a few, round robin with other extensions) while switching; the 10 Hz idle loop else
        assert e.turnaround_ms < (40 if e.t_sent_ns > 8.5e9 else 150)
    # DE drops right after the last stop bit (well inside one character), once per answer
    assert len(line.de_tail_ns) == len(answered)
    assert max(line.de_tail_ns) < 50000
    assert not line.de_edges[-1][1]


def test_the_extension_kept_its_budget_and_reported_its_start(r):
    lines = r.run.fw_lines
    assert any("ext rs485: started (Modbus RTU address 1, 19200 baud 8N1)" in l for l in lines)
    assert not [l for l in lines if "code=EXT" in l]


def test_summary_and_modbus_log(r):
    s = r.summary["modules"]["rs485"]
    assert s["requests"] >= len(REQUESTS) and s["answered"] >= 30
    assert s["turnaround_ms"]["max"] < 150
    assert s["unanswered"] == 3  # the bad CRC, the other slave, the old address after the change
    with open(os.path.join(str(r.out), "modbus.log")) as f:
        text = f.read()
    assert "01 04 00 00 00 10 f1 c6" in text  # the demo's poll of input registers 0-15
    assert "exception 03 ILLEGAL DATA VALUE" in text and "exception 02 ILLEGAL DATA ADDRESS" in text
    assert "v_bat_mv=" in text and "not a valid frame" in text


def test_a_transceiver_that_echoes_the_answer_does_not_make_the_firmware_answer_itself(tmp_path):
    """Modules with /RE grounded (or automatic direction) feed the answer back into the MCU's receiver: parsed as a
    frame for this address it would be answered (an exception 03), and that answer again, for ever."""
    sc = load_scenario(os.path.join(PROJECT_ROOT, "scenarios", "demo.toml"),
                       dict(ONLY_RS485, **{"scenario.duration_s": 7}))
    run = SimRun(sc, echo=False)
    (handle,) = run.modules
    handle.stop_polling()
    handle.line.receiver_always_on = True
    asked = [handle.request(rd_in(0, 4), 5.2), handle.request(rd_hold(DERATE, 2), 5.5),
             handle.request(wr1(SCAN_S, 900), 5.8), handle.request(rd_hold(SCAN_S, 1), 6.1)]
    run.run()
    assert all(e.response is not None and not e.response[1] & 0x80 for e in asked)
    assert asked[1].pdu().registers == [70, 85] and asked[3].pdu().registers == [900]
    assert len([t for t, level in handle.line.de_edges if level]) == len(asked)  # one answer each, nothing else
    assert handle.unsolicited == []


# -- the line emulator on its own ---------------------------------------------------------------------------------
class LineRig:
    """The busio/digitalio stand-ins on a bare simulated board with the line on IO25/IO26, DE on IO4."""

    def __init__(self, line_baud=19200, uart_baud=19200):
        from sim.devices.rs485 import HostPort, RS485Line
        from sim.simboard import SimBoard

        self.board = SimBoard(["IO%d" % i for i in range(40)]).activate()
        self.clock = self.board.clock
        self.line = RS485Line(self.board, "IO25", "IO26", "IO4", baudrate=line_baud)
        self.port = HostPort(self.line)
        import board
        import busio
        import digitalio

        self.uart = busio.UART(board.IO25, board.IO26, baudrate=uart_baud, timeout=0)
        self.de = digitalio.DigitalInOut(board.IO4)
        self.de.switch_to_output(value=False)

    def wait(self, s):
        self.clock.advance(s * 1e9)
        self.clock.sync()

    def close(self):
        self.board.deactivate()


@pytest.fixture
def rig():
    r = LineRig()
    yield r
    r.close()


def test_line_bytes_take_their_time_and_need_de(rig):
    data = bytes(range(10))
    rig.uart.write(data)  # DE low: the transceiver's driver is off
    rig.wait(0.01)
    assert rig.port.frames == [] and rig.line.mcu_bytes_lost == 10
    rig.de.value = True
    t0 = rig.clock.now_ns
    rig.uart.write(data)
    assert rig.clock.now_ns - t0 >= 10 * CHAR_NS  # write() returns when the last stop bit is out, as on the ESP32
    rig.de.value = False
    rig.wait(0.01)
    (first, last, got), = rig.port.frames
    assert got == data
    assert last - first == pytest.approx(10 * CHAR_NS, abs=2)
    assert rig.line.de_tail_ns[-1] < 20000


def test_line_de_falling_early_cuts_the_answer(rig):
    rig.de.value = True
    t0 = rig.clock.now_ns
    rig.line.on_mcu_write(b"\x01\x02\x03\x04", t0)  # as a port whose write() returns at once would
    rig.clock.advance(2.5 * CHAR_NS)
    rig.de.value = False
    rig.wait(0.01)
    assert rig.port.frames[0][2] == b"\x01\x02" and rig.line.mcu_bytes_lost == 2


def test_line_host_bytes_reach_the_uart_only_while_de_is_low(rig):
    end = rig.port.send(b"\x11\x22\x33", rig.clock.now_ns)
    rig.wait(0.01)
    assert rig.uart.read(10) == b"\x11\x22\x33" and end > 0
    rig.de.value = True
    rig.port.send(b"\x44\x55", rig.clock.now_ns)
    rig.wait(0.01)
    assert rig.uart.read(10) is None and rig.line.collisions == 2


def test_line_echo_and_a_wrong_baud_rate():
    r = LineRig()
    try:
        r.line.receiver_always_on = True
        r.de.value = True
        r.uart.write(b"\xAA\xBB")
        r.de.value = False
        r.wait(0.01)
        assert r.uart.read(10) == b"\xAA\xBB"  # the module echoes what the MCU sent
    finally:
        r.close()
    r = LineRig(line_baud=9600, uart_baud=19200)
    try:
        r.de.value = True
        r.uart.write(b"\x01\x02")
        r.wait(0.005)  # the line's characters are twice as long as the UART's
        r.de.value = False
        r.port.send(b"\x03", r.clock.now_ns)
        r.wait(0.01)
        assert r.port.frames == [] and r.uart.read(10) is None and r.line.framing_errors == 3
    finally:
        r.close()


# -- the documented map ----------------------------------------------------------------------------------------
def doc_rows(heading):
    """The (address, name, type) rows of the first table after ``heading`` in docs/MODBUS.md."""
    with open(os.path.join(PROJECT_ROOT, "docs", "MODBUS.md")) as f:
        text = f.read()
    part = text[text.index(heading):]
    rows = []
    started = False
    for line in part.splitlines()[1:]:
        if line.startswith("|"):
            started = True
            cells = [c.strip() for c in line.strip("|").split("|")]
            if re.match(r"^\d", cells[0]):
                rows.append(cells)
        elif started:
            break
    return rows


def table_of(entries):
    from extensions.rs485 import width

    out = []
    for addr, name, kind in entries:
        w = width(kind)
        out.append(["%d" % addr if w == 1 else "%d-%d" % (addr, addr + 1), name, kind])
    return out


def test_the_documented_map_is_the_firmware_map():
    m = fw()
    assert [row[:3] for row in doc_rows("### System")] == table_of(m.SYSTEM_INPUTS)
    assert [row[:3] for row in doc_rows("### Per power stage")] == table_of(m.CHANNEL_INPUTS)
    days = doc_rows("### Daily statistics")
    assert [row[0] for row in days] == ["%d" % m.DAYS_BASE, "%d" % (m.DAYS_BASE + 1), "%d + 2d" % m.DAY_PV_MWH,
                                        "%d + 2d" % m.DAY_PEAK_MW, "%d + 2d" % m.DAY_BAT_IN_MWH,
                                        "%d + d" % m.DAY_V_MIN_MV, "%d + d" % m.DAY_V_MAX_MV]
    holding = doc_rows("## Holding registers")
    assert [row[:3] for row in holding] == table_of(m.HOLDING)
    from fugu.settings import SCHEMA

    by_key = {e[0]: e for e in SCHEMA}
    for row in holding:
        key, kind, unit, allowed = row[1], row[2], row[3], row[4]
        _, skind, default, spec, sunit = by_key[key]
        assert unit == sunit, key
        if kind == "choice":
            assert allowed == ", ".join("%d = %s" % (i, c) for i, c in enumerate(spec)), key
        elif kind == "bool":
            assert allowed == "0 = off, 1 = on"
        else:
            assert allowed == "%d..%d" % spec, key
            lo, hi = {"u16": (0, 0xFFFF), "i16": (-0x8000, 0x7FFF), "u32": (0, 0xFFFFFFFF),
                      "i32": (-(1 << 31), (1 << 31) - 1)}[kind]
            assert lo <= spec[0] and spec[1] <= hi, "%s does not fit %s" % (key, kind)
    covered = {e[1] for e in m.HOLDING}
    expected = {e[0] for e in SCHEMA if e[1] in ("int", "bool", "choice")} - {"ble_pin"}
    assert covered == expected
    assert m.BAUD_RATE == 19200 and "**19200 baud, 8 data bits, no parity, 1 stop bit**" in open(
        os.path.join(PROJECT_ROOT, "docs", "MODBUS.md")).read()


# -- without the sim run: probe and fuzz ---------------------------------------------------------------------------
def make_ctx(cfg=None):
    from fugu.extensions import ExtContext
    from fugu.settings import Settings
    from fugu.telemetry import Telemetry

    logs = []
    tel = Telemetry(1, "test")
    ctx = ExtContext(cfg or {}, {"board": None}, Settings(None, log=logs.append), tel, log=logs.append)
    return ctx, logs


def test_no_uart_pins_means_not_present():
    ctx, _ = make_ctx({"breakout": {"sck": "IO14"}})
    assert fw().EXTENSION(ctx).probe() is False


SERVER_ADDRESS = 7


def handle_frame(server, data):
    req = bytearray(300)
    req[:len(data)] = data
    resp = bytearray(64)
    n = server.handle(req, len(data), resp)
    return bytes(resp[:n])


def settings_server():
    from fugu import modbus

    m = fw()
    ctx, logs = make_ctx()
    tel = ctx.telemetry
    tel.v_bat_mv = 26500
    tel.channels[0].v_in_mv = 57000
    tel.temp_c = None
    return modbus.RtuServer(m.RegisterMap(ctx), address=SERVER_ADDRESS, max_read=m.MAX_READ_REGS), ctx


def sealed(raw):
    from fugu import modbus

    buf = bytearray(raw) + b"\0\0"
    modbus.seal(buf, len(raw))
    return bytes(buf)


structured = st.builds(
    lambda addr, fc, start, values, count: sealed(
        bytes([addr, fc, start >> 8, start & 0xFF])
        + (bytes([count >> 8, count & 0xFF]) if fc in (3, 4) else b"")
        + (bytes([values[0] >> 8, values[0] & 0xFF]) if fc == 6 else b"")
        + (bytes([0, len(values), 2 * len(values)]) + b"".join(bytes([v >> 8, v & 0xFF]) for v in values)
           if fc == 16 else b"")),
    st.sampled_from([SERVER_ADDRESS, SERVER_ADDRESS, SERVER_ADDRESS, 0, 1, 247]),
    st.sampled_from([6, 6, 16, 16, 16, 3, 4, 1, 0x2B, 0x83]),
    st.one_of(st.integers(0, 34), st.integers(0, 34), st.integers(95, 140), st.integers(995, 1255),
              st.integers(0, 0xFFFF)),
    st.lists(st.one_of(st.integers(0, 0xFFFF), st.integers(0, 10), st.integers(20, 120),
                       st.sampled_from([70, 85, 95, 100, 600, 3400, 30000, 0xFFFF])), min_size=1, max_size=8),
    st.integers(0, 20),
)


def valid_write(index, frac, dev, multiple):
    """A write of one setting with a value inside its range (it may still break a rule across settings)."""
    from fugu.settings import SCHEMA

    m = fw()
    addr, key, kind = m.HOLDING[index]
    spec = [e for e in SCHEMA if e[0] == key][0][3]
    if kind == "choice":
        v = min(int(frac * len(spec)), len(spec) - 1)
    elif kind == "bool":
        v = 1 if frac >= 0.5 else 0
    else:
        v = spec[0] + int(frac * (spec[1] - spec[0]))
    if m.width(kind) == 2:
        return wrn(addr, [(v >> 16) & 0xFFFF, v & 0xFFFF], dev=dev)
    return wrn(addr, [v], dev=dev) if multiple else wr1(addr, v, dev=dev)


valid_writes = st.builds(valid_write, st.integers(0, len(fw().HOLDING) - 1), st.floats(0, 1),
                         st.sampled_from([SERVER_ADDRESS, 0]), st.booleans())
corrupt = st.tuples(st.integers(0, 300), st.integers(1, 255))


def corrupted(f, where):
    i, x = where
    i %= len(f)
    return f[:i] + bytes([f[i] ^ x]) + f[i + 1:]


@hsettings(max_examples=1500, deadline=None)
@given(st.one_of(st.binary(max_size=270), structured, structured.map(bad_crc), valid_writes,
                 st.builds(corrupted, valid_writes, corrupt), st.builds(corrupted, structured, corrupt)))
def test_fuzz_requests_never_raise_and_change_settings_only_by_a_valid_write(data):
    from fugu import modbus

    server, ctx = settings_server()
    before = dict(ctx.settings.items())
    out = handle_frame(server, data)
    after = dict(ctx.settings.items())
    valid = len(data) >= 4 and modbus.crc_ok(data, len(data))
    if out:
        assert valid and data[0] == SERVER_ADDRESS and modbus.crc_ok(out, len(out)) and out[0] == SERVER_ADDRESS
        assert FRAMER.handleFrame(out, SERVER_ADDRESS, 0)[1] is not None  # pymodbus decodes every answer
    if after != before:
        assert valid and data[0] in (0, SERVER_ADDRESS) and data[1] in (6, 16)
        assert not out or not out[1] & 0x80  # an exception answer means nothing changed
    if out and out[1] & 0x80:
        assert after == before
