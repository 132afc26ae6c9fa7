"""The CAN frame map and the setting request protocol, as pure functions on the telemetry snapshot and on bytes.

docs/fugu_can.dbc is the same map for host tools (cantools, SavvyCAN, ...); docs/CAN.md explains it. Kept apart from
the bus code so the host can check every frame against the DBC and fuzz the request parser without a bus.

All frames use 11-bit identifiers and little-endian (Intel) integers; the scaling is an integer division of the
firmware's own units (mV, mA, mW, mWh), values outside a field's range saturate at its limits.
"""

from struct import pack_into, unpack_from

from fugu.settings import SCHEMA

# -- identifiers ------------------------------------------------------------------------------------------------
BASE_ID = 0x500
ID_STATUS = 0x500  # state, charger stage, binding limit, active fault, heatsink temperature, derating, fan, alive
ID_PV = 0x501  # PV voltage (channel 0), current and power (all channels)
ID_BATTERY = 0x502  # battery voltage, current and power
ID_CHARGER = 0x503  # charge target voltage, current limit, duty (channel 0), faults since boot
ID_ENERGY = 0x504  # PV energy today, lifetime
ID_INFO = 0x505  # uptime, today's peak power, last fault and its channel
ID_CH_BASE = 0x510  # boards with several power stages: 0x510 + 2k input, 0x511 + 2k state of stage k
MAX_CHANNELS = 2  # stages the DBC describes
ID_REQUEST = 0x5F0  # host -> FUGU: read or write one setting
ID_RESPONSE = 0x5F1  # FUGU -> host: the answer
TELEMETRY_PERIOD_MS = 1000  # every telemetry frame once per snapshot (the controller refreshes it once a second)

FRAME_DLC = 8
REQUEST_DLC = 6  # op u8, setting index u8, value s32
RESPONSE_DLC = 8  # op u8, setting index u8, status u8, reserved u8, value s32

# -- the request protocol ---------------------------------------------------------------------------------------
OP_READ = 1
OP_WRITE = 2

ST_OK = 0
ST_UNKNOWN_SETTING = 1  # index beyond the settings this firmware has
ST_REFUSED = 2  # out of range / against a rule: nothing changed
ST_MALFORMED = 3  # wrong length, unknown op, remote frame: nothing changed
ST_NOT_NUMERIC = 4  # a text setting (extensions_disabled): use the BLE or Modbus interface
ST_DENIED = 5  # a secret (ble_pin): never over CAN
STATUS_NAMES = ("ok", "unknown_setting", "refused", "malformed", "not_numeric", "denied")

PRIVATE_KEYS = ("ble_pin",)

# -- enumerations (the DBC's VAL_ tables) -------------------------------------------------------------------------
CODE_UNKNOWN = 255  # a name this map does not know (a newer firmware)
STATES = ("IDLE", "START", "SCAN", "TRACK", "LIMIT", "FAULT")
CHARGE_STAGES = ("off", "bulk", "absorb", "float", "storage", "equalize")
LIMITS = ("-", "v_out", "i_out", "i_in", "power")  # 0 = no limit binds
FAULTS = ("-", "PV_OV", "BAT_OV", "BAT_ABSENT", "OC_IN", "OC_OUT", "REVERSE", "PV_SHORT", "PV_LOST", "SENSOR",
          "NTC_OPEN", "NTC_SHORT", "OVER_TEMP", "FAN_FAIL", "EXT")  # 0 = none
TEMP_OFFSET_C = 40  # heatsink_temp raw = degC + 40 ...
TEMP_NOT_AVAILABLE = 255  # ... and 255 when the NTC failed
CHANNEL_CONTROLLER = 255  # last_fault_channel for a fault of the whole controller (temperature)


def code(names, name):
    """Index of ``name`` in ``names`` (None and "" are entry 0, "none"); CODE_UNKNOWN if absent."""
    if name is None or name == "":
        return 0
    for i in range(len(names)):
        if names[i] == name:
            return i
    return CODE_UNKNOWN


def _sat(v, lo, hi):
    v = int(v)
    if v < lo:
        return lo
    if v > hi:
        return hi
    return v


def _div(v, d):
    """v / d rounded to the nearest integer, halves away from zero (the same for negative currents)."""
    v = int(v)
    if v >= 0:
        return (v + d // 2) // d
    return -((-v + d // 2) // d)


def _u8(v):
    return _sat(v, 0, 0xFF)


def _u16(v):
    return _sat(v, 0, 0xFFFF)


def _s16(v):
    return _sat(v, -0x8000, 0x7FFF)


def _u32(v):
    return _sat(v, 0, 0xFFFFFFFF)


def _s32(v):
    return _sat(v, -0x80000000, 0x7FFFFFFF)


# -- telemetry encoders: encoder(tel, k, buf) fills the 8-byte buf from the snapshot (k: the stage index) ------
def encode_status(tel, k, buf):
    temp = tel.temp_c
    if temp is None or temp != temp:  # failed NTC (None), or NaN
        t_raw = TEMP_NOT_AVAILABLE
    else:
        t_raw = _sat(_div(int(temp * 10), 10) + TEMP_OFFSET_C, 0, 254)
    pack_into("<BBBBBBBB", buf, 0, code(STATES, tel.state), code(CHARGE_STAGES, tel.charge_stage),
              code(LIMITS, tel.channels[0].limit), code(FAULTS, tel.fault_active()), t_raw, _u8(tel.derate_pct),
              1 if tel.fan else 0, tel.seq & 0xFF)


def encode_pv(tel, k, buf):
    i_ma = 0
    for c in tel.channels:
        i_ma += c.i_in_ma
    pack_into("<Hhi", buf, 0, _u16(_div(tel.channels[0].v_in_mv, 10)), _s16(_div(i_ma, 10)), _s32(tel.p_pv_mw))


def encode_battery(tel, k, buf):
    pack_into("<Hhi", buf, 0, _u16(_div(tel.v_bat_mv, 10)), _s16(_div(tel.i_bat_ma, 10)), _s32(tel.p_bat_mw))


def encode_charger(tel, k, buf):
    pack_into("<HHHH", buf, 0, _u16(_div(tel.v_target_mv, 10)), _u16(_div(tel.i_limit_ma, 10)),
              _u16(tel.channels[0].duty_permille), _u16(tel.fault_count))


def encode_energy(tel, k, buf):
    pack_into("<II", buf, 0, _u32(tel.today_pv_mwh), _u32(tel.lifetime_pv_mwh // 1000))


def encode_info(tel, k, buf):
    ch = tel.last_fault_ch
    pack_into("<IHBB", buf, 0, _u32(tel.uptime_s), _u16(_div(tel.today_peak_mw, 100)), code(FAULTS, tel.last_fault),
              CHANNEL_CONTROLLER if ch < 0 else _u8(ch))


def encode_channel_input(tel, k, buf):
    c = tel.channels[k]
    pack_into("<Hhi", buf, 0, _u16(_div(c.v_in_mv, 10)), _s16(_div(c.i_in_ma, 10)), _s32(c.p_in_mw))


def encode_channel_state(tel, k, buf):
    c = tel.channels[k]
    pack_into("<BBBBHH", buf, 0, code(STATES, c.state), code(LIMITS, c.limit), code(FAULTS, c.fault), 0,
              _u16(c.duty_permille), _u16(_div(c.v_out_mv, 10)))


def telemetry_frames(n_channels):
    """[(can_id, encoder, stage index)] sent at every snapshot: the controller frames, then per stage on boards with
    more than one (up to MAX_CHANNELS)."""
    frames = [(ID_STATUS, encode_status, 0), (ID_PV, encode_pv, 0), (ID_BATTERY, encode_battery, 0),
              (ID_CHARGER, encode_charger, 0), (ID_ENERGY, encode_energy, 0), (ID_INFO, encode_info, 0)]
    if n_channels > 1:
        for k in range(min(n_channels, MAX_CHANNELS)):
            frames.append((ID_CH_BASE + 2 * k, encode_channel_input, k))
            frames.append((ID_CH_BASE + 2 * k + 1, encode_channel_state, k))
    return frames


# -- setting requests -------------------------------------------------------------------------------------------
def setting_as_int(index, value):
    """A setting's value as the int32 the protocol carries: numbers as they are, on/off as 1/0, a named choice as
    its position in the schema's list."""
    kind = SCHEMA[index][1]
    spec = SCHEMA[index][3]
    if kind == "bool":
        return 1 if value else 0
    if kind == "choice" and isinstance(spec[0], str):
        for i in range(len(spec)):
            if spec[i] == value:
                return i
        return -1
    return _s32(value)


def execute(op, index, value, get_setting, request_setting):
    """Carry out a well-formed request. Returns (status, the value stored now as int32). A write goes through
    ``request_setting`` (the validated API), so a refused value changes nothing."""
    if index >= len(SCHEMA):
        return ST_UNKNOWN_SETTING, 0
    key, kind, _, spec = SCHEMA[index][:4]
    if key in PRIVATE_KEYS:
        return ST_DENIED, 0
    if kind == "str":
        return ST_NOT_NUMERIC, 0
    status = ST_OK
    if op == OP_WRITE:
        if kind == "choice" and isinstance(spec[0], str):
            arg = spec[value] if 0 <= value < len(spec) else None
        else:
            arg = value
        if arg is None:
            status = ST_REFUSED
        else:
            ok, _ = request_setting(key, arg)
            if not ok:
                status = ST_REFUSED
    return status, setting_as_int(index, get_setting(key))


def answer(can_id, data, extended, rtr, get_setting, request_setting, out):
    """Handle one received frame. Frames that are not requests (another id, an extended id) are ignored: returns
    None. A request gets its response written into ``out`` (8 bytes) and its status returned; a malformed one
    (wrong length, unknown op, remote frame) changes nothing."""
    if extended or can_id != ID_REQUEST:
        return None
    n = len(data)
    op = data[0] if n > 0 else 0
    index = data[1] if n > 1 else 0
    if rtr or n != REQUEST_DLC or (op != OP_READ and op != OP_WRITE):
        status = ST_MALFORMED
        value = 0
    else:
        status, value = execute(op, index, unpack_from("<i", data, 2)[0], get_setting, request_setting)
    pack_into("<BBBBi", out, 0, op & 0xFF, index & 0xFF, status, 0, value)
    return status
