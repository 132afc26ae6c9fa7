"""The BLE/serial line protocol (lib/fugu/lineproto.py) over in-memory streams, with the real settings and the
validated settings API of the extension context: the PIN and its back-off, every command, bad input, and hypothesis
fuzzing (random bytes and command-like lines, locked and unlocked): nothing raises, every answer is a well-formed
OK/ERR response, and no setting changes without a valid `set` in an unlocked session."""

import io
import re

import pytest
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from fugu import lineproto as lp
from fugu.extensions import ExtContext
from fugu.history import History
from fugu.settings import KEYS, Settings
from fugu.telemetry import Telemetry

PIN = 424242


def telemetry():
    t = Telemetry(1, "fugu_v1", "test")
    t.seq = 7
    t.state = "TRACK"
    t.p_pv_mw = 506149
    t.channels[0].v_in_mv = 64213
    t.v_bat_mv = 26846
    t.i_bat_ma = 18204
    t.charge_stage = "bulk"
    t.temp_c = 38.46
    t.today_pv_mwh = 12345
    h = History(None, log=lambda *a: None)
    h.tick(1000, 500000, 480000, 26800, 1, True)
    t.history = h
    return t


class Rig:
    """A protocol wired as the BLE extension wires it, with a BytesIO pair as the transport."""

    def __init__(self, pin=PIN, tel=None):
        self.settings = Settings(None, log=lambda *a: None)
        self.tel = tel if tel is not None else telemetry()
        ctx = ExtContext({}, {"board": None}, self.settings, self.tel, log=lambda *a: None)
        self.proto = lp.LineProtocol(pin, ctx.request_setting, ctx.setting, self.tel, KEYS, self.settings.describe)
        self.now = 1000

    def say(self, text, eol="\n"):
        """Send text over an in-memory stream; return the response lines."""
        rx = io.BytesIO((text + eol).encode() if isinstance(text, str) else text)
        tx = io.BytesIO()
        while self.proto.serve(rx, tx, self.now):
            pass
        return tx.getvalue().decode().splitlines()

    def unlock(self):
        assert self.say("pin %06d" % PIN) == ["OK unlocked"]


def test_commands_need_the_pin_except_help_and_pin():
    r = Rig()
    for cmd in ("status", "get i_charge_max_ma", "set i_charge_max_ma 1000", "list", "stats", "save"):
        out = r.say(cmd)
        assert len(out) == 1 and out[0].startswith("ERR locked"), (cmd, out)
    assert r.settings.get("i_charge_max_ma") == 30000
    help_lines = r.say("help")
    assert help_lines[0] == "OK help %d" % len(lp.HELP_LINES) and len(help_lines) == len(lp.HELP_LINES) + 1
    r.unlock()
    assert r.say("get i_charge_max_ma") == ["OK i_charge_max_ma=30000"]
    assert r.say("lock") == ["OK locked"]
    assert r.say("get i_charge_max_ma")[0].startswith("ERR locked")


def test_wrong_pins_back_off_and_a_disconnect_does_not_reset_the_count():
    r = Rig()
    assert r.say("pin 000001") == ["ERR pin: wrong PIN (2 more tries before a lock-out)"]
    r.proto.end_session()  # reconnecting does not give fresh tries
    assert r.say("pin 1") == ["ERR pin: wrong PIN (1 more tries before a lock-out)"]
    assert r.say("pin abc") == ["ERR pin: wrong PIN; locked for 30 s"]
    r.now += 10000
    assert r.say("pin %d" % PIN) == ["ERR pin: too many wrong PINs, try again in 20 s"]  # even the right one
    assert r.say("status")[0].startswith("ERR locked")
    r.now += 20000
    r.unlock()
    assert r.proto.fails == 0
    # a second round of three doubles the lock-out; it ends across the ticks_ms wrap
    r.say("lock")
    r.now = (1 << 29) - 5000
    for _ in range(2):
        r.say("pin 9")
    assert r.say("pin 9") == ["ERR pin: wrong PIN; locked for 30 s"]
    r.now = (r.now + 29000) % (1 << 29)
    assert r.say("pin %d" % PIN)[0].startswith("ERR pin: too many")
    r.now = (r.now + 1000) % (1 << 29)
    for _ in range(2):
        r.say("pin 9")
    assert r.say("pin 9") == ["ERR pin: wrong PIN; locked for 60 s"]


def test_get_set_list_and_the_errors_a_user_sees():
    r = Rig()
    r.unlock()
    assert r.say("set i_charge_max_ma 99999") == ["ERR i_charge_max_ma='99999' refused: allowed 0..35000 mA"]
    assert r.say("set i_charge_max_ma twenty") == [
        "ERR i_charge_max_ma='twenty' refused: not a number; allowed 0..35000 mA"]
    assert r.say("set no_such_key 1") == ["ERR unknown setting 'no_such_key'; send list for the keys"]
    assert r.say("set t_derate_start_c 95")[0].startswith("ERR t_derate_start_c='95' refused: t_derate_start_c (95 C)"
                                                          " must be below t_shutdown_c (85 C)")
    assert r.say("set i_charge_max_ma") == ["ERR usage: set KEY VALUE"]
    assert r.say("get") == ["ERR usage: get KEY"]
    assert r.settings.dirty is False and r.settings.get("i_charge_max_ma") == 30000
    assert r.say("SET I_Charge_Max_mA   12000 ") == [
        "OK i_charge_max_ma=12000 (applies within 1 s, saved automatically)"]
    assert r.settings.get("i_charge_max_ma") == 12000 and r.settings.dirty
    assert r.say("set silent_mode yes") == ["OK silent_mode=on (applies within 1 s, saved automatically)"]
    assert r.say("get silent_mode") == ["OK silent_mode=on"]
    assert r.say("set extensions_disabled oled, can")[0] == (
        "OK extensions_disabled=oled,can (applies at the next boot, saved automatically)")
    out = r.say("list")
    assert out[0] == "OK list %d" % len(KEYS) and len(out) == len(KEYS) + 1
    listed = dict(line.split("=", 1) for line in out[1:])
    assert list(listed) == list(KEYS)
    assert listed["i_charge_max_ma"] == "12000" and listed["battery_chem"] == "lifepo4"
    assert r.say("save")[0].startswith("OK nothing to do")
    assert r.say("frobnicate") == ["ERR unknown command 'frobnicate'; send help"]


def test_status_is_one_line_from_the_telemetry_and_stats_one_line_per_day():
    r = Rig()
    r.unlock()
    assert r.say("status") == ["OK state=TRACK pv_w=506.1 pv_v=64.21 bat_v=26.85 bat_a=18.20 stage=bulk "
                               "temp_c=38.5 today_wh=12.35"]
    r.tel.channels[0].fault = "PV_OV"
    r.tel.temp_c = None
    r.tel.i_bat_ma = -35
    assert r.say("status")[0].endswith("bat_a=-0.04 stage=bulk temp_c=n/a today_wh=12.35 fault=PV_OV")
    out = r.say("stats")
    assert out[0] == "OK stats 1"
    assert out[1] == "day=1 pv_wh=0.14 bat_in_wh=0.13 bat_out_wh=0.00 peak_w=500.0 v_min=26.80 v_max=26.80"
    starting = Rig(tel=Telemetry(1))
    starting.unlock()
    assert starting.say("status") == ["ERR no telemetry yet (starting)"]
    assert starting.say("stats") == ["ERR no history on this controller"]


def test_help_for_a_key_hides_its_value_until_unlocked():
    r = Rig()
    r.settings.set("ble_pin", 135790)
    locked = r.say("help ble_pin")
    assert len(locked) == 1 and locked[0].startswith("OK ble_pin = (unlock to see) (int 0..999999")
    assert "135790" not in locked[0]
    assert r.say("help nonsense")[0].startswith("ERR unknown setting 'nonsense'")
    r.unlock()
    assert r.say("help ble_pin") == ["OK " + r.settings.describe("ble_pin")]


def test_line_endings_chunks_and_bad_bytes():
    r = Rig()
    proto = r.proto
    # CR, LF and CRLF all end a line; a line may arrive in pieces
    text = proto.feed(b"pi", r.now) + proto.feed(b"n %d\r" % PIN, r.now) + proto.feed(b"\nget mode\r\n", r.now)
    assert text == "OK unlocked\nOK mode=buck\n"
    assert proto.feed(b"get mode", r.now) == ""  # not complete yet
    assert proto.feed(b"\n", r.now) == "OK mode=buck\n"
    # too long: rejected as a whole, the next line is fine
    long_line = b"set extensions_disabled " + b"a" * 200 + b"\nget mode\n"
    assert proto.feed(long_line, r.now) == "ERR line too long (max %d bytes)\nOK mode=buck\n" % lp.MAX_LINE_BYTES
    # not text
    assert proto.feed(b"get \xff\xfe mode\n", r.now) == "ERR text only: printable ASCII characters (got byte 0xff)\n"
    assert proto.feed(b"set mode \xc3\xa9\n", r.now).startswith("ERR text only")
    assert proto.feed(b"\x00\x01\n", r.now).startswith("ERR text only")
    assert proto.feed(b"\tget\tmode\t\n", r.now) == "OK mode=buck\n"
    assert proto.feed(b"   \n\n\r\n", r.now) == ""
    # a burst of more lines than the queue holds: push() takes what fits, the rest comes again; all answered in order
    burst = b"".join(b"get %s\n" % k.encode() for k in KEYS[:lp.MAX_QUEUED_LINES + 3])
    taken = proto.push(burst)
    assert proto.pending() == lp.MAX_QUEUED_LINES and 0 < taken < len(burst)
    assert proto.push(burst[taken:]) == 0  # nothing more until some are answered
    answers = [proto.step(r.now) for _ in range(lp.MAX_QUEUED_LINES)]
    answers.append(proto.feed(burst[taken:], r.now))
    assert "".join(answers).splitlines() == ["OK %s=%s" % (k, lp.format_value(r.settings.get(k)))
                                             for k in KEYS[:lp.MAX_QUEUED_LINES + 3]]
    assert r.settings.dirty is False


def test_a_failing_getter_is_an_error_answer_not_an_exception():
    def broken(key):
        raise RuntimeError("bus gone")

    proto = lp.LineProtocol(PIN, lambda k, v: (False, "no"), broken, None, KEYS)
    assert proto.feed(b"pin %d\nlist\nget mode\n" % PIN, 0) == (
        "OK unlocked\nERR internal: bus gone\nERR internal: bus gone\n")
    assert proto.feed(b"help mode\n", 0) == "ERR no help for settings here\n"


# -- fuzzing ----------------------------------------------------------------------------------------------------
_SET_RE = re.compile(r"^\s*set\s+(\S+)\s+\S", re.IGNORECASE)
_WORDS = ["pin", "PIN", "status", "get", "set", "SET", "list", "help", "stats", "save", "lock", "", "x"]
_VALUES = ["0", "1", "-1", "99999", "30000", "1e3", "2.5", "on", "off", "lifepo4", "boost", "oled,can", "nan",
           "%06d" % PIN, "%d" % PIN, "000000", "\t", "''", "999999999999999999999"]
_token = st.one_of(st.sampled_from(_WORDS), st.sampled_from(list(KEYS) + ["nokey", "I_CHARGE_MAX_MA"]),
                   st.sampled_from(_VALUES), st.text(alphabet=st.characters(max_codepoint=0x2FF), max_size=8))
_line = st.lists(_token, min_size=0, max_size=4).map(" ".join)
_chunk = st.one_of(
    st.binary(max_size=160),
    _line.map(lambda s: s.encode("utf-8") + b"\n"),
    st.tuples(_line, st.sampled_from([b"\n", b"\r", b"\r\n", b""])).map(lambda t: t[0].encode("utf-8") + t[1]),
)


def _check_answer(answer):
    assert answer.endswith("\n"), answer
    lines = answer[:-1].split("\n")
    assert lines[0].startswith(("OK", "ERR ")), answer
    m = re.match(r"^OK (help|list|stats) (\d+)$", lines[0])
    assert len(lines) == (1 + int(m.group(2)) if m else 1), answer


def _drive(r, chunks, gaps_ms):
    """Feed the chunks; check every answer and that settings change only on an OK to a `set` while unlocked."""
    proto = r.proto
    for data, gap in zip(chunks, gaps_ms):
        r.now = (r.now + gap) % (1 << 29)
        while True:
            data = data[proto.push(data):]
            while proto.pending():
                _step_checked(r)
            if not data:
                break


def _step_checked(r):
    proto = r.proto
    before = r.settings.items()
    was_unlocked = proto.unlocked
    answer = proto.step(r.now)
    after = r.settings.items()
    if answer is not None:
        _check_answer(answer)
    line = proto.last_line or ""
    cmd = line.split()[0].lower() if line.split() else ""
    if not was_unlocked and cmd in ("status", "get", "set", "list", "stats", "save"):
        assert answer.startswith("ERR locked"), (line, answer)
    changed = [a[0] for a, b in zip(before, after) if a != b]
    if changed:
        m = _SET_RE.match(line)
        assert was_unlocked and m and answer.startswith("OK "), (line, answer, changed)
        assert changed == [m.group(1).lower()], (line, changed)


@hsettings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_chunk, max_size=12), st.lists(st.integers(0, 40000), min_size=12, max_size=12))
def test_fuzz_locked_session_never_changes_a_setting(chunks, gaps):
    r = Rig(pin=PIN + 1)  # the fuzzer's PIN candidates are all wrong here
    start = r.settings.items()
    _drive(r, chunks, gaps)
    assert r.settings.items() == start and not r.settings.dirty
    assert not r.proto.unlocked


@hsettings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_chunk, max_size=12), st.lists(st.integers(0, 40000), min_size=12, max_size=12))
def test_fuzz_unlocked_session_changes_only_what_a_valid_set_asked(chunks, gaps):
    r = Rig()
    r.unlock()
    _drive(r, chunks, gaps)
    # whatever happened, what is stored passes the schema again (nothing invalid got in)
    for key, value in r.settings.items():
        Settings(None, log=lambda *a: None).set(key, value)


@hsettings(max_examples=200, deadline=None)
@given(st.binary(max_size=600), st.integers(1, 64))
def test_fuzz_raw_bytes_in_any_chunking(data, size):
    r = Rig()
    out = io.BytesIO()
    for k in range(0, len(data), size):
        text = r.proto.feed(data[k:k + size], r.now)
        out.write(text.encode())
    text = out.getvalue().decode()
    if text:
        for answer in re.findall(r"(?:OK|ERR)[^\n]*\n(?:(?!OK|ERR)[^\n]*\n)*", text):
            _check_answer(answer)
    assert r.settings.dirty is False


@pytest.mark.parametrize("milli,digits,text", [(0, 1, "0.0"), (506149, 1, "506.1"), (506150, 1, "506.2"),
                                               (-35, 2, "-0.04"), (26846, 2, "26.85"), (999995, 2, "1000.00")])
def test_fixed_point_text(milli, digits, text):
    assert lp._fixed(milli, digits) == text


# -- the same session in a real MicroPython (the device's interpreter) --------------------------------------------
SESSION_SRC = '''
from fugu.lineproto import LineProtocol
from fugu.settings import KEYS, Settings
from fugu.telemetry import Telemetry

st = Settings(None, log=lambda *a: None)


def request(key, value):
    try:
        return True, st.set(key, value)
    except KeyError as e:
        return False, "unknown setting %r" % (key,)
    except ValueError as e:
        return False, str(e)


tel = Telemetry(1)
tel.seq = 1
tel.state = "TRACK"
tel.p_pv_mw = 506149
tel.channels[0].v_in_mv = 64213
tel.v_bat_mv = 26846
tel.i_bat_ma = -35
tel.temp_c = 38.46
p = LineProtocol(424242, request, st.get, tel, KEYS, st.describe)
INPUT = [b"help\\r\\n", b"status\\n", b"pin 1\\n", b"pin 424242\\r", b"\\nstatus\\n", b"set i_charge_max_ma 99999\\n",
         b"set i_charge_max_ma 1200", b"0\\nget i_charge_max_ma\\n", b"set silent_mode YES\\n", b"\\xff\\xfe\\n",
         b"x" * 200 + b"\\n", b"help ble_pin\\n", b"lock\\nhelp ble_pin\\nlist\\n", b"pin 9\\npin 9\\npin 9\\n"]
OUT = [p.feed(chunk, 1000 * k) for k, chunk in enumerate(INPUT)]
'''


def test_the_protocol_runs_the_same_in_micropython():
    pytest.importorskip("wasmtime")
    from devicecheck.harness import check_imports

    ns = {}
    exec(compile(SESSION_SRC, "session", "exec"), ns)
    expected = ns["OUT"]
    assert "OK unlocked\n" in expected and "ERR pin: wrong PIN; locked for 30 s\n" in expected[-1]
    check = "\nEXPECTED = %r\nfor k in range(len(OUT)):\n    assert OUT[k] == EXPECTED[k], (k, OUT[k])\n"
    src = SESSION_SRC + check % (expected,)
    reports = check_imports(modules=["lineproto_session"], compile_files=(), extra_files={
        "lib/lineproto_session.py": src})
    assert ("ok", "lineproto_session", "") in reports, reports
