"""Checking setting values (the schema is in lib/fugu/settings.py): a value typed or sent as text coerced to its kind
and range, what a key allows as text, the rules across keys, and reading the stored record at boot.

A module of its own because a running controller needs it only when a user changes a setting: Settings.load()
drops it again after boot, and the first change loads it (settings.coerce() & co. import it).
"""

from fugu.settings import KEYS, SettingsError, _entry, defaults


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


def allowed(key):
    """What `key` accepts, as text: '0..24 cells', 'one of buck, boost', 'on/off', ..."""
    _, kind, _, spec, unit = _entry(key)
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


def coerce(key, value):
    """The validated value of `key` from `value` (typed or text); raises SettingsError."""
    entry = _entry(key)
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
            if s in ("1", "true", "yes", "on"):
                return True
            if s in ("0", "false", "no", "off"):
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
    # bad[0]: the first character not allowed (strip, not a loop over the characters: MicroPython interns every
    # one-character string it makes, for good)
    bad = v.strip(spec[1])
    if bad:
        raise _refuse(key, value, "character %r not allowed" % (bad[0],))
    return v


def check_rules(values):
    """The first cross-key rule `values` break, as (keys, message), or None."""
    for keys, rule in CROSS_RULES:
        msg = rule(values)
        if msg is not None:
            return keys, msg
    return None


def read_record(store, log):
    """(values, source) from the stored record in `store` (a SlotStore, or None without nvm) over the defaults;
    says via `log` what it found, skipped or refused (Settings.load)."""
    values = defaults()
    if store is None:
        log("settings: no nvm on this port, using defaults")
        return values, "defaults (no nvm)"
    payload, info = store.read()
    if payload is None:
        log("settings: none loaded from nvm (%s), using defaults" % info)
        return values, "defaults (%s)" % info
    try:
        text = payload.decode()
    except UnicodeError:
        log("settings: stored record is not text (%s), using defaults" % info)
        return values, "defaults (stored record not text)"
    seen = {}
    for line in text.split("\n"):
        if not line:
            continue
        eq = line.find("=")
        if eq <= 0:
            log("settings: skipped stored line %r" % line)
            continue
        key = line[:eq]
        entry = _entry(key)
        if entry is None:
            log("settings: ignored stored key %s (not known to this firmware)" % key)
            continue
        seen[key] = True
        try:
            values[key] = coerce(key, line[eq + 1:])
        except SettingsError as e:
            log("settings: stored %s, using default %r" % (e, entry[2]))
    missing = [k for k in KEYS if k not in seen]
    if missing:
        log("settings: not stored, at defaults: %s" % ", ".join(missing))
    broken = check_rules(values)
    while broken is not None:
        keys, msg = broken
        log("settings: stored %s; %s back to defaults" % (msg, ", ".join(keys)))
        for k in keys:
            values[k] = _entry(k)[2]
        broken = check_rules(values)
    log("settings: loaded from nvm (%s)" % info)
    return values, "nvm (%s)" % info
