"""User settings: a schema (units, ranges, defaults, help), validation with clear refusals, and persistence in
microcontroller.nvm (two slots with a checksum, lib/fugu/nvstore.py), loaded at boot.

Stored format: text lines "key=value\\n". Every stored value goes back through the same coercion and validation as
text typed over BLE, Modbus or the web, so a value a newer or older firmware wrote that is now out of range is
caught the same way, one bad line costs one key (not the whole record), unknown keys are simply skipped, and the
record is readable in a hex dump. The 29 keys take ~560 bytes at their defaults (~700 at most) of the 1011 a slot
holds.

Wi-Fi and other secrets never go to nvm: they live in settings.toml and are read with env() (os.getenv), as
CircuitPython itself does for CIRCUITPY_WIFI_SSID / CIRCUITPY_WIFI_PASSWORD.

Saving is a flash write that blocks for tens of milliseconds (the ESP32 port rewrites the whole 8 KiB NVS blob):
never call save() from the control step; the controller puts the converter in a safe state first or saves while
idle.
"""

from fugu.nvstore import SlotStore

SETTINGS_BASE = 64
SETTINGS_SLOT_SIZE = 1024
SETTINGS_MAGIC = b"FS"
SETTINGS_FORMAT_VERSION = 1

CHEMISTRIES = ("lifepo4", "li_nmc", "lead_flooded", "lead_agm", "lead_gel", "custom")
_NAME_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789_,"

# (key, kind, default, spec, unit, help). kind: "int" (spec = (lo, hi)), "bool" (spec None), "choice" (spec = the
# choices, all str or all int), "str" (spec = (max length, allowed characters)).
SCHEMA = (  # type: tuple
    ("battery_chem", "choice", "lifepo4", CHEMISTRIES, "",
     "battery chemistry: sets the charge voltages per cell (custom uses the custom_* settings)"),
    ("battery_cells", "int", 0, (0, 24), "cells",
     "cells in series; 0 = auto-detect a 12/24/48 V bank from the battery voltage at start"),
    ("battery_capacity_ah", "int", 100, (1, 20000), "Ah",
     "nominal capacity: scales the tail current and the absorption time"),
    ("i_charge_max_ma", "int", 30000, (0, 35000), "mA",
     "maximum charge current into the battery (the board rating also limits it)"),
    ("custom_v_absorb_cell_mv", "int", 3550, (1000, 4300), "mV/cell",
     "custom profile: absorption (constant-voltage) voltage per cell"),
    ("custom_v_float_cell_mv", "int", 3400, (1000, 4300), "mV/cell",
     "custom profile: float voltage per cell (not above absorption)"),
    ("custom_v_rebulk_cell_mv", "int", 3300, (1000, 4300), "mV/cell",
     "custom profile: below this voltage per cell a new bulk charge starts (below float)"),
    ("custom_tail_ma_per_ah", "int", 20, (0, 500), "mA/Ah",
     "custom profile: absorption ends when the current falls below this per Ah of capacity (0 = on time only)"),
    ("equalize_enable", "bool", False, None, "",
     "periodic equalization charge for flooded lead-acid; never applied to lithium"),
    ("temp_comp_uv_per_c_cell", "int", -3000, (-10000, 0), "uV/C/cell",
     "lead-acid only: charge voltage change per degree C away from 25 C, per cell (lithium ignores it)"),
    ("mode", "choice", "buck", ("buck", "boost"), "",
     "power stage direction: buck (PV above battery) or boost (battery side stepped up to a higher voltage)"),
    ("v_in_max_mv", "int", 80000, (10000, 100000), "mV",
     "input over-voltage limit (clamped at run time to the board rating)"),
    ("p_max_w", "int", 1000, (10, 5000), "W",
     "maximum converter power (clamped at run time to the board rating)"),
    ("t_derate_start_c", "int", 70, (40, 100), "C",
     "heatsink temperature where power derating starts (below t_shutdown_c)"),
    ("t_shutdown_c", "int", 85, (50, 110), "C",
     "heatsink temperature that stops the converter"),
    ("fan_on_c", "int", 45, (20, 90), "C",
     "heatsink temperature that switches the fan on"),
    ("silent_mode", "bool", False, None, "",
     "reduce the current instead of running the fan"),
    ("scan_interval_s", "int", 600, (0, 7200), "s",
     "period of the global MPPT scan that finds the global peak under partial shade; 0 = no periodic scan"),
    ("extensions_disabled", "str", "", (64, _NAME_CHARS), "",
     "comma-separated names of extensions not to start, e.g. oled,can"),
    ("ble_pin", "int", 0, (0, 999999), "",
     "BLE pairing PIN; 0 = a random PIN is generated at each boot and shown on the console/display"),
    ("log_interval_s", "int", 10, (1, 3600), "s",
     "period of the telemetry/log lines"),
    ("modbus_address", "int", 1, (1, 247), "",
     "Modbus RTU slave address (RS485 extension)"),
    ("can_bitrate", "choice", 250000, (125000, 250000, 500000, 1000000), "bit/s",
     "CAN bus bit rate (CAN extension)"),
    ("cal_v_in_ppm", "int", 0, (-50000, 50000), "ppm",
     "gain correction of the PV voltage reading (calibrate against a meter: (meter/reading - 1) * 1e6)"),
    ("cal_v_out_ppm", "int", 0, (-50000, 50000), "ppm",
     "gain correction of the battery voltage reading"),
    ("cal_i_in_ppm", "int", 0, (-50000, 50000), "ppm",
     "gain correction of the PV current reading"),
    ("cal_i_out_ppm", "int", 0, (-50000, 50000), "ppm",
     "gain correction of the output current reading (boards with an output current sensor)"),
    ("boost_v_target_mv", "int", 48000, (5000, 80000), "mV",
     "boost mode: voltage to hold on the high-voltage (PV-terminal) side"),
    ("boost_i_max_ma", "int", 10000, (0, 30000), "mA",
     "boost mode: maximum current drawn from the battery side"),
)

_BY_KEY = {}  # type: dict
for _entry in SCHEMA:
    _BY_KEY[_entry[0]] = _entry
KEYS = tuple(e[0] for e in SCHEMA)


def _rule_derate(v):
    if v["t_derate_start_c"] >= v["t_shutdown_c"]:
        return "t_derate_start_c (%d C) must be below t_shutdown_c (%d C)" % (v["t_derate_start_c"],
                                                                             v["t_shutdown_c"])
    return None


def _rule_float(v):
    if v["custom_v_float_cell_mv"] > v["custom_v_absorb_cell_mv"]:
        return "custom_v_float_cell_mv (%d mV/cell) must not be above custom_v_absorb_cell_mv (%d mV/cell)" % (
            v["custom_v_float_cell_mv"], v["custom_v_absorb_cell_mv"])
    return None


def _rule_rebulk(v):
    if v["custom_v_rebulk_cell_mv"] >= v["custom_v_float_cell_mv"]:
        return "custom_v_rebulk_cell_mv (%d mV/cell) must be below custom_v_float_cell_mv (%d mV/cell)" % (
            v["custom_v_rebulk_cell_mv"], v["custom_v_float_cell_mv"])
    return None


# Rules across keys, checked on the values as they would be after a change: (keys involved, check -> message/None)
CROSS_RULES = (
    (("t_derate_start_c", "t_shutdown_c"), _rule_derate),
    (("custom_v_float_cell_mv", "custom_v_absorb_cell_mv"), _rule_float),
    (("custom_v_rebulk_cell_mv", "custom_v_float_cell_mv"), _rule_rebulk),
)


class SettingsError(ValueError):
    """A refused setting: names the key, the value, what is allowed and the unit."""

    def __init__(self, message, key=None, value=None):
        super().__init__(message)
        self.key = key
        self.value = value


def env(name, default=None):
    """A settings.toml value (CircuitPython: os.getenv, e.g. CIRCUITPY_WIFI_SSID); `default` when missing or when
    the port has no os.getenv (MicroPython). Secrets stay in settings.toml, never in nvm."""
    try:
        from os import getenv
    except ImportError:
        return default
    value = getenv(name)
    return default if value is None else value


def allowed(key):
    """What `key` accepts, as text: '0..24 cells', 'one of buck, boost', 'on/off', ..."""
    _, kind, _, spec, unit, _ = _BY_KEY[key]
    if kind == "int":
        text = "%d..%d" % spec
        return text + " " + unit if unit else text
    if kind == "bool":
        return "on/off (true/false, 1/0, yes/no)"
    if kind == "choice":
        text = "one of " + ", ".join([str(c) for c in spec])
        return text + " " + unit if unit else text
    return "up to %d characters of a-z 0-9 _ ," % spec[0]


def _refuse(key, value, why=None):
    text = "%s=%r refused: " % (key, value)
    if why:
        text += why + "; "
    return SettingsError(text + "allowed " + allowed(key), key, value)


def _to_int(key, value):
    if isinstance(value, bool):
        raise _refuse(key, value, "not a number")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        f = value
    elif isinstance(value, str):
        s = value.strip()
        try:
            return int(s)
        except ValueError:
            pass
        try:
            f = float(s)
        except ValueError:
            raise _refuse(key, value, "not a number")
    else:
        raise _refuse(key, value, "not a number")
    try:
        i = int(f)
    except (ValueError, OverflowError):
        raise _refuse(key, value, "not a number")
    if i != f:
        raise _refuse(key, value, "not a whole number")
    return i


_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def coerce(key, value):
    """The validated value of `key` from `value` (typed or text); raises SettingsError."""
    entry = _BY_KEY.get(key)
    if entry is None:
        raise SettingsError("unknown setting %r" % (key,), key, value)
    kind = entry[1]
    spec = entry[3]
    if kind == "int":
        v = _to_int(key, value)
        if not spec[0] <= v <= spec[1]:
            raise _refuse(key, value)
        return v
    if kind == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return value == 1
        if isinstance(value, str):
            s = value.strip().lower()
            if s in _TRUE:
                return True
            if s in _FALSE:
                return False
        raise _refuse(key, value)
    if kind == "choice":
        if isinstance(spec[0], int):
            v = _to_int(key, value)
        elif isinstance(value, str):
            v = value.strip().lower()
        else:
            raise _refuse(key, value)
        if v not in spec:
            raise _refuse(key, value)
        return v
    # str
    if not isinstance(value, str):
        raise _refuse(key, value, "not text")
    v = value.replace(" ", "").lower()
    if len(v) > spec[0]:
        raise _refuse(key, value, "too long")
    for c in v:
        if c not in spec[1]:
            raise _refuse(key, value, "character %r not allowed" % (c,))
    return v


def check_rules(values):
    """The first cross-key rule `values` break, as (keys, message), or None."""
    for keys, rule in CROSS_RULES:
        msg = rule(values)
        if msg is not None:
            return keys, msg
    return None


def defaults():
    d = {}
    for e in SCHEMA:
        d[e[0]] = e[2]
    return d


def encode(values):
    """The stored text of `values`, in schema order."""
    parts = []
    for e in SCHEMA:
        v = values[e[0]]
        if e[1] == "bool":
            v = 1 if v else 0
        parts.append("%s=%s\n" % (e[0], v))
    return "".join(parts).encode()


class Settings:
    """The current settings, loaded from nvm at construction (defaults on a blank or corrupt chip, said via log).

    Every change bumps `.generation`, so the controller re-applies derived limits only when it changed; `.dirty`
    says there are unsaved changes; `.source` says where the loaded values came from."""

    def __init__(self, nvm, log=print):
        self.log = log
        self.generation = 0
        self.dirty = False
        self._store = None if nvm is None else SlotStore(nvm, SETTINGS_BASE, SETTINGS_SLOT_SIZE, SETTINGS_MAGIC,
                                                           SETTINGS_FORMAT_VERSION)
        self._values = defaults()
        self.source = "defaults"
        self.load()

    # -- persistence ---------------------------------------------------------------------------------------
    def load(self):
        """Read nvm again: stored values over defaults; reports blank/corrupt records and refused stored values."""
        values = defaults()
        if self._store is None:
            self.source = "defaults (no nvm)"
            self.log("settings: no nvm on this port, using defaults")
            self._apply_all(values)
            return
        payload, info = self._store.read()
        if payload is None:
            self.source = "defaults (%s)" % info
            self.log("settings: none loaded from nvm (%s), using defaults" % info)
            self._apply_all(values)
            return
        try:
            text = payload.decode()
        except UnicodeError:
            self.source = "defaults (stored record not text)"
            self.log("settings: stored record is not text (%s), using defaults" % info)
            self._apply_all(values)
            return
        seen = {}
        for line in text.split("\n"):
            if not line:
                continue
            eq = line.find("=")
            if eq <= 0:
                self.log("settings: skipped stored line %r" % line)
                continue
            key = line[:eq]
            if key not in _BY_KEY:
                self.log("settings: ignored stored key %s (not known to this firmware)" % key)
                continue
            seen[key] = True
            try:
                values[key] = coerce(key, line[eq + 1:])
            except SettingsError as e:
                self.log("settings: stored %s, using default %r" % (e, _BY_KEY[key][2]))
        missing = [k for k in KEYS if k not in seen]
        if missing:
            self.log("settings: not stored, at defaults: %s" % ", ".join(missing))
        broken = check_rules(values)
        while broken is not None:
            keys, msg = broken
            self.log("settings: stored %s; %s back to defaults" % (msg, ", ".join(keys)))
            for k in keys:
                values[k] = _BY_KEY[k][2]
            broken = check_rules(values)
        self.source = "nvm (%s)" % info
        self.log("settings: loaded from nvm (%s)" % info)
        self._apply_all(values)

    def _apply_all(self, values):
        self._values = values
        self.generation += 1
        self.dirty = False

    def save(self):
        """Persist to nvm (two slots; a cut write keeps the previous record). Blocks for a flash write (tens of
        ms): not from the control step. Returns the bytes written (0 without nvm)."""
        if self._store is None:
            self.log("settings: no nvm, not saved")
            return 0
        n = self._store.write(encode(self._values))
        self.dirty = False
        return n

    # -- reading -------------------------------------------------------------------------------------------
    def get(self, key):
        try:
            return self._values[key]
        except KeyError:
            raise KeyError("unknown setting %r" % (key,))

    def __getitem__(self, key):
        return self.get(key)

    def __contains__(self, key):
        return key in _BY_KEY

    def keys(self):
        return list(KEYS)

    def items(self):
        """[(key, value)] in schema order."""
        return [(k, self._values[k]) for k in KEYS]

    def describe(self, key):
        """One line of help: key, kind, allowed range with unit, default, current value, what it does."""
        entry = _BY_KEY.get(key)
        if entry is None:
            raise KeyError("unknown setting %r" % (key,))
        return "%s = %r (%s %s, default %r): %s" % (key, self._values[key], entry[1], allowed(key), entry[2],
                                                    entry[5])

    # -- changing ------------------------------------------------------------------------------------------
    def set(self, key, value):
        """Validate and apply one value (typed or text); returns the value as stored. Raises SettingsError."""
        v = coerce(key, value)
        if self._values[key] == v:
            return v
        candidate = dict(self._values)
        candidate[key] = v
        broken = check_rules(candidate)
        if broken is not None:
            raise SettingsError("%s=%r refused: %s" % (key, value, broken[1]), key, value)
        self._values[key] = v
        self.generation += 1
        self.dirty = True
        return v

    def update(self, mapping):
        """Apply several values all-or-nothing: every value and the cross-key rules are checked on the result
        before anything changes. Returns the list of keys that changed. Raises the first SettingsError."""
        candidate = dict(self._values)
        for key in mapping:
            candidate[key] = coerce(key, mapping[key])
        broken = check_rules(candidate)
        if broken is not None:
            keys = broken[0]
            key = keys[0] if keys[0] in mapping else keys[1]
            raise SettingsError("%s refused: %s" % (", ".join(["%s=%r" % (k, mapping[k]) for k in keys
                                                                    if k in mapping]), broken[1]),
                                key, mapping.get(key))
        changed = [k for k in KEYS if candidate[k] != self._values[k]]
        if changed:
            self._values = candidate
            self.generation += 1
            self.dirty = True
        return changed

    def reset_defaults(self):
        """All values back to defaults (not saved until save())."""
        d = defaults()
        if d != self._values:
            self._values = d
            self.generation += 1
            self.dirty = True
        self.source = "defaults (reset)"
