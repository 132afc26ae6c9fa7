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

RAM: the checks and the reading of the stored record are in fugu/settings_check.py and the help texts in
fugu/settings_help.py, both loaded only when needed (a running controller needs neither until a user asks).
"""

from micropython import const

from fugu.nvstore import SlotStore

SETTINGS_BASE = const(64)
SETTINGS_SLOT_SIZE = const(1024)
SETTINGS_MAGIC = b"FS"
_SETTINGS_FORMAT_VERSION = const(1)

CHEMISTRIES = ("lifepo4", "li_nmc", "lead_flooded", "lead_agm", "lead_gel", "custom")
_NAME_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789_,"

# (key, kind, default, spec, unit). kind: "int" (spec = (lo, hi)), "bool" (spec None), "choice" (spec = the choices,
# all str or all int), "str" (spec = (max length, allowed characters)). What each key does (the help line) is in
# fugu/settings_help.py: ~3 KB of text the controller does not keep in RAM (help_text() loads it when asked).
# The kinds are names, not literals, on purpose: a tuple of nothing but constants becomes one constant object in
# the .mpy, with every string in it (each "int", each unit) a heap object of its own; built at import, the entries
# share the interned strings (~1 KB less heap).
_INT = "int"
_BOOL = "bool"
_CHOICE = "choice"
_STR = "str"
SCHEMA = (  # type: tuple
    ("battery_chem", _CHOICE, "lifepo4", CHEMISTRIES, ""),
    ("battery_cells", _INT, 0, (0, 24), "cells"),
    ("battery_capacity_ah", _INT, 100, (1, 20000), "Ah"),
    ("i_charge_max_ma", _INT, 30000, (0, 35000), "mA"),
    ("custom_v_absorb_cell_mv", _INT, 3550, (1000, 4300), "mV/cell"),
    ("custom_v_float_cell_mv", _INT, 3400, (1000, 4300), "mV/cell"),
    ("custom_v_rebulk_cell_mv", _INT, 3300, (1000, 4300), "mV/cell"),
    ("custom_tail_ma_per_ah", _INT, 20, (0, 500), "mA/Ah"),
    ("equalize_enable", _BOOL, False, None, ""),
    ("temp_comp_uv_per_c_cell", _INT, -3000, (-10000, 0), "uV/C/cell"),
    ("mode", _CHOICE, "buck", ("buck", "boost"), ""),
    ("v_in_max_mv", _INT, 80000, (10000, 100000), "mV"),
    ("p_max_w", _INT, 1000, (10, 5000), "W"),
    ("t_derate_start_c", _INT, 70, (40, 100), "C"),
    ("t_shutdown_c", _INT, 85, (50, 110), "C"),
    ("fan_on_c", _INT, 45, (20, 90), "C"),
    ("silent_mode", _BOOL, False, None, ""),
    ("scan_interval_s", _INT, 600, (0, 7200), "s"),
    ("extensions_disabled", _STR, "", (64, _NAME_CHARS), ""),
    ("ble_pin", _INT, 0, (0, 999999), ""),
    ("log_interval_s", _INT, 10, (1, 3600), "s"),
    ("modbus_address", _INT, 1, (1, 247), ""),
    ("can_bitrate", _CHOICE, 250000, (125000, 250000, 500000, 1000000), "bit/s"),
    ("cal_v_in_ppm", _INT, 0, (-50000, 50000), "ppm"),
    ("cal_v_out_ppm", _INT, 0, (-50000, 50000), "ppm"),
    ("cal_i_in_ppm", _INT, 0, (-50000, 50000), "ppm"),
    ("cal_i_out_ppm", _INT, 0, (-50000, 50000), "ppm"),
    ("boost_v_target_mv", _INT, 48000, (5000, 80000), "mV"),
    ("boost_i_max_ma", _INT, 10000, (0, 30000), "mA"),
)

KEYS = tuple(e[0] for e in SCHEMA)


def _entry(key):
    """The SCHEMA entry of `key`, or None. A search, not a dict: keys are looked up at boot and when a user changes
    a setting, never in the control loop."""
    for e in SCHEMA:
        if e[0] == key:
            return e
    return None


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
    """What `key` accepts, as text: '0..24 cells', 'one of buck, boost', 'on/off', ...
    (The checks are in fugu/settings_check.py: loaded on first use, they need no RAM while nothing changes.)"""
    from fugu.settings_check import allowed as text

    return text(key)


def coerce(key, value):
    """The validated value of `key` from `value` (typed or text); raises SettingsError."""
    from fugu.settings_check import coerce as checked

    return checked(key, value)


def check_rules(values):
    """The first cross-key rule `values` break, as (keys, message), or None."""
    from fugu.settings_check import check_rules as first_broken

    return first_broken(values)


def help_text(key):
    """What `key` does, one line. The texts are imported for this answer and dropped again (see SCHEMA)."""
    from fugu import forget
    from fugu.settings_help import HELP

    text = HELP[key]
    forget("fugu.settings_help")
    return text


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
                                                           _SETTINGS_FORMAT_VERSION)
        self._values = defaults()
        self.source = "defaults"
        self.load()

    # -- persistence ---------------------------------------------------------------------------------------
    def load(self):
        """Read nvm again: stored values over defaults; reports blank/corrupt records and refused stored values.
        (The parsing is in fugu/settings_check.py, dropped again afterwards: boot-time code.)"""
        from fugu import forget
        from fugu.settings_check import read_record

        try:
            values, self.source = read_record(self._store, self.log)
        finally:
            forget("fugu.settings_check")
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
        return key in KEYS

    def keys(self):
        return list(KEYS)

    def items(self):
        """[(key, value)] in schema order."""
        return [(k, self._values[k]) for k in KEYS]

    def describe(self, key):
        """One line of help: key, kind, allowed range with unit, default, current value, what it does."""
        entry = _entry(key)
        if entry is None:
            raise KeyError("unknown setting %r" % (key,))
        return "%s = %r (%s %s, default %r): %s" % (key, self._values[key], entry[1], allowed(key), entry[2],
                                                    help_text(key))

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
