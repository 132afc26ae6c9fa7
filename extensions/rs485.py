"""RS485 extension: a Modbus RTU server (slave) on the breakout's UART and an RS485 transceiver (MAX485 style, DE and
/RE tied to one direction pin). Live values, the 30-day statistics and the settings, in the register map of
docs/MODBUS.md (the tables below are that map; a test holds the document to them).

Presence: RS485 has no identity to ask for, so the module counts as plugged when the board config names the
breakout's uart_tx, uart_rx and rs485_de pins and the UART can be built on them. Disable it with the setting
extensions_disabled=rs485.

Timing: the UART is read without waiting (timeout=0) every POLL_MS into a preallocated buffer (lib/fugu/modbus.py
cuts frames). The direction pin goes high just before the answer and low as soon as its last bit is out:
CircuitPython's busio.UART.write on the ESP32 returns only then (uart_wait_tx_done), and on a port whose write
returns earlier the wait for len * CHAR_NS covers it. That wait is charged to this extension's call, so reads
answer at most MAX_READ_REGS registers (a 37-byte answer: 19.3 ms at 19200 baud), which bounds how long a Modbus
answer holds the control loop.
"""

import time

from fugu import modbus
from fugu.charger import STAGE_NAMES
from fugu.extensions import Extension
from fugu.history import MAX_DAYS
from fugu.sensors import ticks_diff, ticks_ms

try:
    from typing import Any  # noqa: F401 (type comments only; no typing on the device)
except ImportError:
    pass
from fugu.settings import SCHEMA, SettingsError, coerce

BAUD_RATE = 19200  # 8N1 (no parity, one stop bit: what most RS485 masters and USB adapters use by default)
CHAR_BITS = 10  # start + 8 data + stop
CHAR_NS = CHAR_BITS * 1000000000 // BAUD_RATE
T35_NS = 35 * CHAR_BITS * 100000000 // BAUD_RATE  # the standard's 3.5-character silence before an answer
SILENCE_MS = (45 * CHAR_BITS * 100 + BAUD_RATE - 1) // BAUD_RATE  # 3.5 characters + one still on the wire
POLL_MS = 20
BUDGET_MS = 30  # the longest answer: 1.8 ms of silence, 19.3 ms on the wire, the Python work around it
MAX_READ_REGS = 16  # registers per read; more get exception 03 (see the module docstring)
RX_BUFFER_BYTES = 512  # the UART's receive buffer: > 2 frames, so a slow control step loses nothing
MAP_VERSION = 1  # input register 33: bumps when an address or a meaning changes

# input register codes for text the telemetry carries
STATES = ("IDLE", "START", "SCAN", "TRACK", "LIMIT", "FAULT")
FAULTS = ("PV_OV", "BAT_OV", "BAT_ABSENT", "OC_IN", "OC_OUT", "REVERSE", "PV_SHORT", "PV_LOST", "SENSOR",
          "NTC_OPEN", "NTC_SHORT", "OVER_TEMP", "FAN_FAIL")  # code = index + 1; 0 = none
LIMITS = ("-", "v_out", "i_out", "i_in", "power")
CODE_OTHER = 255  # a name this map does not list (a newer firmware's)
TEMP_NONE = -32768  # temperature register without a reading

# Input registers (function 04). (address, field, kind): field is a Telemetry attribute or one of the names
# _system_value() computes; kind says how it becomes registers (32-bit kinds: high word first).
SYSTEM_INPUTS = (
    (0, "state", "state"),
    (1, "charge_stage", "stage"),
    (2, "fault_active", "fault"),
    (3, "temp_c", "temp10"),
    (4, "pv_v_mv", "u32"),
    (6, "pv_i_ma", "i32"),
    (8, "p_pv_mw", "i32"),
    (10, "v_bat_mv", "u32"),
    (12, "i_bat_ma", "i32"),
    (14, "p_bat_mw", "i32"),
    (16, "today_pv_mwh", "i32"),
    (18, "lifetime_pv_mwh", "wh32"),
    (20, "today_peak_mw", "u32"),
    (22, "v_target_mv", "u32"),
    (24, "i_limit_ma", "u32"),
    (26, "uptime_s", "u32"),
    (28, "derate_pct", "u16"),
    (29, "fan", "bool"),
    (30, "fault_count", "u16"),
    (31, "last_fault", "fault"),
    (32, "channels", "u16"),
    (33, "map_version", "u16"),
)
SYSTEM_END = 34
CHANNEL_BASE = 100  # channel k's block starts at CHANNEL_BASE + k * CHANNEL_STRIDE
CHANNEL_STRIDE = 20
CHANNEL_INPUTS = (  # (offset in the block, ChannelTelemetry attribute, kind)
    (0, "state", "state"),
    (1, "fault", "fault"),
    (2, "v_in_mv", "u32"),
    (4, "i_in_ma", "i32"),
    (6, "p_in_mw", "i32"),
    (8, "v_out_mv", "u32"),
    (10, "i_out_ma", "i32"),
    (12, "duty_permille", "u16"),
    (13, "limit", "limit"),
    (14, "scans", "u16"),
)
CHANNEL_END = 15
# the 30-day statistics, day d = 0 (today) .. 29; days not yet recorded read 0
DAYS_BASE = 1000  # 1000: days recorded, 1001: today's day number
DAY_PV_MWH = 1010  # + 2d: PV energy (i32, mWh)
DAY_PEAK_MW = 1070  # + 2d: peak PV power (u32, mW)
DAY_BAT_IN_MWH = 1130  # + 2d: energy into the battery (u32, mWh)
DAY_V_MIN_MV = 1190  # + d: lowest battery voltage (u16, mV; 0 = no reading)
DAY_V_MAX_MV = 1220  # + d: highest battery voltage (u16, mV)
DAYS_END = 1250

# Holding registers (functions 03, 06, 16): one setting each, at a fixed address; 32-bit settings take two
# addresses (high word first) and are written together with function 16. Choices are their index in the setting's
# list. Not here: extensions_disabled (text) and ble_pin (a secret: never readable over an unauthenticated bus).
HOLDING = (
    (0, "battery_chem", "choice"),
    (1, "battery_cells", "u16"),
    (2, "battery_capacity_ah", "u16"),
    (3, "i_charge_max_ma", "u16"),
    (4, "custom_v_absorb_cell_mv", "u16"),
    (5, "custom_v_float_cell_mv", "u16"),
    (6, "custom_v_rebulk_cell_mv", "u16"),
    (7, "custom_tail_ma_per_ah", "u16"),
    (8, "equalize_enable", "bool"),
    (9, "temp_comp_uv_per_c_cell", "i16"),
    (10, "mode", "choice"),
    (11, "v_in_max_mv", "u32"),
    (13, "p_max_w", "u16"),
    (14, "t_derate_start_c", "u16"),
    (15, "t_shutdown_c", "u16"),
    (16, "fan_on_c", "u16"),
    (17, "silent_mode", "bool"),
    (18, "scan_interval_s", "u16"),
    (19, "log_interval_s", "u16"),
    (20, "modbus_address", "u16"),
    (21, "can_bitrate", "choice"),
    (22, "cal_v_in_ppm", "i32"),
    (24, "cal_v_out_ppm", "i32"),
    (26, "cal_i_in_ppm", "i32"),
    (28, "cal_i_out_ppm", "i32"),
    (30, "boost_v_target_mv", "u32"),
    (32, "boost_i_max_ma", "u16"),
)


def width(kind):
    """Registers a kind takes."""
    return 2 if kind == "u32" or kind == "i32" or kind == "wh32" else 1


def _code(names, value):
    """A name's register code: its index in ``names`` (+1 for faults: 0 means none)."""
    for i in range(len(names)):
        if names[i] == value:
            return i
    return -1


def _clamp(v, lo, hi):
    return lo if v < lo else (hi if v > hi else v)


def encode(kind, value, word):
    """Register ``word`` (0: the only or high word, 1: the low word) of ``value`` as ``kind``."""
    if kind == "u32" or kind == "wh32":
        if kind == "wh32":
            value = value // 1000
        v = _clamp(value, 0, 0xFFFFFFFF)
        return (v >> 16) & 0xFFFF if word == 0 else v & 0xFFFF
    if kind == "i32":
        v = _clamp(value, -0x80000000, 0x7FFFFFFF)
        return (v >> 16) & 0xFFFF if word == 0 else v & 0xFFFF
    if kind == "u16":
        return _clamp(value, 0, 0xFFFF)
    if kind == "i16":
        return _clamp(value, -0x8000, 0x7FFF) & 0xFFFF
    if kind == "bool":
        return 1 if value else 0
    if kind == "temp10":
        if value is None:
            return TEMP_NONE & 0xFFFF
        t = int(value * 10 + (0.5 if value >= 0 else -0.5))
        return _clamp(t, -0x7FFF, 0x7FFF) & 0xFFFF
    if kind == "fault":
        if value is None:
            return 0
        c = _code(FAULTS, value)
        return CODE_OTHER if c < 0 else c + 1
    names = STATES if kind == "state" else (STAGE_NAMES if kind == "stage" else LIMITS)
    c = _code(names, value)
    return CODE_OTHER if c < 0 else c


def _index(table):
    """{address: (entry, word)} for a table of (address, field, kind)."""
    out = {}
    for e in table:
        for w in range(width(e[2])):
            out[e[0] + w] = (e, w)
    return out


class RegisterMap:
    """The register map over the telemetry snapshot and the settings (the object modbus.RtuServer calls)."""

    def __init__(self, ctx):
        self.ctx = ctx
        self._system = _index(SYSTEM_INPUTS)
        self._channel = _index(CHANNEL_INPUTS)
        self._holding = _index(HOLDING)
        self._choices = {}
        for entry in SCHEMA:
            if entry[1] == "choice":
                self._choices[entry[0]] = entry[3]
        self._days = []
        self._days_seq = -1
        self.writes = 0  # settings changed over Modbus
        self.refused = 0

    # -- reading --------------------------------------------------------------------------------------------
    def read(self, fc, start, count, out, pos):
        read_one = self._holding_word if fc == modbus.FC_READ_HOLDING else self._input_word
        for i in range(count):
            v = read_one(start + i)
            if v < 0:
                return modbus.EX_ILLEGAL_ADDRESS
            modbus.put_u16(out, pos + 2 * i, v)
        return 0

    def _system_value(self, tel, field):
        if field == "pv_v_mv":
            return tel.channels[0].v_in_mv
        if field == "pv_i_ma":
            return tel.channels[0].i_in_ma
        if field == "fault_active":
            return tel.fault_active()
        if field == "channels":
            return len(tel.channels)
        if field == "map_version":
            return MAP_VERSION
        return getattr(tel, field)

    def _input_word(self, a):
        """Input register ``a`` (0..0xFFFF), or -1 outside the map."""
        tel = self.ctx.telemetry
        if a < SYSTEM_END:
            hit = self._system.get(a)
            if hit is None:
                return -1
            e = hit[0]
            return encode(e[2], self._system_value(tel, e[1]), hit[1])
        if CHANNEL_BASE <= a < CHANNEL_BASE + CHANNEL_STRIDE * len(tel.channels):
            k = (a - CHANNEL_BASE) // CHANNEL_STRIDE
            hit = self._channel.get(a - CHANNEL_BASE - k * CHANNEL_STRIDE)
            if hit is None:
                return -1
            e = hit[0]
            return encode(e[2], getattr(tel.channels[k], e[1]), hit[1])
        if DAYS_BASE <= a < DAYS_END:
            return self._day_word(tel, a)
        return -1

    def _history_days(self, tel):
        """history.days() once per telemetry snapshot (it builds 30 dicts: not for every register)."""
        if self._days_seq != tel.seq:
            self._days = tel.history.days() if tel.history is not None else []
            self._days_seq = tel.seq
        return self._days

    def _day_word(self, tel, a):
        days = self._history_days(tel)
        if a == DAYS_BASE:
            return len(days)
        if a == DAYS_BASE + 1:
            return encode("u16", days[0]["day"], 0) if days else 0
        if DAY_PV_MWH <= a < DAY_V_MIN_MV:
            k = a - DAY_PV_MWH
            field_no = k // (2 * MAX_DAYS)
            k -= field_no * 2 * MAX_DAYS
            d = k // 2
            if d >= len(days):
                return 0
            if field_no == 0:
                return encode("i32", days[d]["pv_mwh"], k & 1)
            return encode("u32", days[d]["peak_pv_mw" if field_no == 1 else "bat_in_mwh"], k & 1)
        if DAY_V_MIN_MV <= a < DAYS_END:
            k = a - DAY_V_MIN_MV
            d = k % MAX_DAYS
            if d >= len(days):
                return 0
            v = days[d]["v_min_mv" if k < MAX_DAYS else "v_max_mv"]
            return 0 if v is None else encode("u16", v, 0)
        return -1

    def _holding_word(self, a):
        hit = self._holding.get(a)
        if hit is None:
            return -1
        key = hit[0][1]
        kind = hit[0][2]
        v = self.ctx.setting(key)
        if kind == "choice":
            return _code(self._choices[key], v) & 0xFFFF
        return encode(kind, v, hit[1])

    # -- writing --------------------------------------------------------------------------------------------
    def write(self, start, count, data, pos):
        """Settings from holding registers, all or nothing: every value is checked first, then applied through
        the validated settings API; a refusal on the way (a rule across settings) undoes what was applied."""
        end = start + count
        first = self._holding.get(start)
        last = self._holding.get(end - 1)
        if first is None or last is None or first[1] != 0 or last[1] != width(last[0][2]) - 1:
            return modbus.EX_ILLEGAL_ADDRESS  # outside the map, or half of a 32-bit setting
        values = []
        a = start
        while a < end:
            hit = self._holding.get(a)
            if hit is None:
                return modbus.EX_ILLEGAL_ADDRESS
            key = hit[0][1]
            kind = hit[0][2]
            p = pos + 2 * (a - start)
            w = modbus.get_u16(data, p)
            if kind == "u32" or kind == "i32":
                w = (w << 16) | modbus.get_u16(data, p + 2)
                if kind == "i32" and w >= 0x80000000:
                    w -= 0x100000000
            elif kind == "i16" and w >= 0x8000:
                w -= 0x10000
            elif kind == "choice":
                choices = self._choices[key]
                if w >= len(choices):
                    return self._refuse("%s: choice %d of %d" % (key, w, len(choices)))
                w = choices[w]
            try:
                w = coerce(key, w)
            except SettingsError as e:
                return self._refuse(str(e))
            values.append((key, w))
            a += width(kind)
        return self._apply(values)

    def _apply(self, values):
        ctx = self.ctx
        applied = []  # (key, previous value)
        todo = values
        why = ""
        while todo:
            refused = []
            for key, v in todo:
                old = ctx.setting(key)
                ok, why_or_v = ctx.request_setting(key, v)
                if ok:
                    if why_or_v != old:
                        applied.append((key, old))
                else:
                    refused.append((key, v))
                    why = why_or_v
            if not refused:
                self.writes += len(applied)
                return 0
            if len(refused) == len(todo):
                break  # no progress: refused whatever the order
            todo = refused  # a rule across settings may pass once the others are in
        for i in range(len(applied) - 1, -1, -1):
            ctx.request_setting(applied[i][0], applied[i][1])
        return self._refuse(why)

    def _refuse(self, why):
        self.refused += 1
        self.ctx.log("rs485: Modbus write refused, nothing changed: %s" % why)
        return modbus.EX_ILLEGAL_VALUE


class RS485Modbus(Extension):
    name = "rs485"
    period_ms = POLL_MS
    budget_ms = BUDGET_MS

    def __init__(self, ctx):
        super().__init__(ctx)
        self.registers = RegisterMap(ctx)
        self.server = modbus.RtuServer(self.registers, max_read=MAX_READ_REGS)
        self.rx = modbus.RtuReceiver()
        self._tx = bytearray(5 + 2 * MAX_READ_REGS)
        self._txv = memoryview(self._tx)
        self._uart = None  # type: Any  # busio.UART once probed
        self._de = None  # type: Any  # digitalio.DigitalInOut of the direction pin
        self._t_rx_ms = 0
        self._t_rx_ns = 0

    def probe(self):
        ctx = self.ctx
        tx = ctx.pin("uart_tx")
        rx = ctx.pin("uart_rx")
        de = ctx.pin("rs485_de")
        if tx is None or rx is None or de is None:
            return False
        self._de = ctx.mods["digitalio"].DigitalInOut(de)
        try:
            self._de.switch_to_output(value=False)  # receive until there is something to say
            self._uart = ctx.mods["busio"].UART(tx, rx, baudrate=BAUD_RATE, bits=8, parity=None, stop=1, timeout=0,
                                                receiver_buffer_size=RX_BUFFER_BYTES)
        except Exception:
            self.stop()
            raise
        return True

    def start(self):
        self.server.address = self.ctx.setting("modbus_address")
        self._uart.reset_input_buffer()
        self.ctx.notices["modbus"] = "Modbus %d" % self.server.address

    def status(self):
        return "Modbus RTU address %d, %d baud 8N1" % (self.server.address, BAUD_RATE)

    def stop(self):
        if self._de is not None:
            try:
                self._de.value = False
                self._de.deinit()
            except Exception:
                pass
            self._de = None
        if self._uart is not None:
            try:
                self._uart.deinit()
            except Exception:
                pass
            self._uart = None

    def observe(self, tel):
        """Nothing to copy (requests read the snapshot when they come), but the host spends a call on it: poll the
        line too (at night the loop runs at 10 Hz and the extensions take turns, one call per step)."""
        self.tick(ticks_ms())

    def tick(self, now_ms):
        uart = self._uart
        rx = self.rx
        if uart.in_waiting:
            if rx.overflow or rx.free() == 0:
                uart.reset_input_buffer()  # no frame is this long: drop it all until the line is quiet
                rx.drop_until_silence()
            else:
                got = uart.readinto(rx.view[rx.n:])
                if got:
                    rx.n += got
            self._t_rx_ms = now_ms
            self._t_rx_ns = time.monotonic_ns()
            silent = False
        elif rx.n or rx.overflow:
            silent = ticks_diff(now_ms, self._t_rx_ms) >= SILENCE_MS
        else:
            return
        server = self.server
        server.address = self.ctx.setting("modbus_address")  # a change (even over Modbus) applies to the next frame
        while True:
            length = rx.next_frame(server.address, silent)
            if not length:
                return
            n = server.handle(rx.buf, length, self._tx)
            rx.consume(length)
            if n:
                self._send(n)

    def _send(self, n):
        """The answer on the line: the standard's 3.5-character silence after the request, DE high, the bytes, DE
        low as soon as the last stop bit is out, then forget any echo of it."""
        ready = self._t_rx_ns + T35_NS
        while time.monotonic_ns() < ready:
            pass
        self._de.value = True
        t0 = time.monotonic_ns()
        self._uart.write(self._txv[:n])
        done = t0 + n * CHAR_NS
        while time.monotonic_ns() < done:  # only on ports whose write returns before the bytes are out
            pass
        self._de.value = False
        # a transceiver whose receiver stays on (/RE grounded, auto-direction modules) has echoed the answer:
        # left in the buffer it would read as a frame for this address (and could be answered, for ever)
        self._uart.reset_input_buffer()


EXTENSION = RS485Modbus
