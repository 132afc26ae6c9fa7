"""Reading the stored history (lib/fugu/history.py) at boot: History._load() imports this module and drops it again
afterwards, History.decode() imports it when asked; a running controller does not keep it in RAM.
"""

import struct

from fugu.history import _DAY, _HEAD, _LIFE, _TODAY, HISTORY_FORMAT_VERSION, MAX_DAYS


def decode(h, payload):
    """Load a stored history (raises ValueError when it is not one)."""
    # sizes as locals (history.py has them as constants): module-level names would stay interned in RAM
    head_size = struct.calcsize(_HEAD)
    life_size = struct.calcsize(_LIFE)
    today_size = struct.calcsize(_TODAY)
    day_size = struct.calcsize(_DAY)
    if len(payload) < head_size + life_size + today_size:
        raise ValueError("too short")
    n, n_stages, flags, day_number, dark_ms = struct.unpack_from(_HEAD, payload, 0)
    n_stages_now = len(h._stage_s)
    if n_stages != n_stages_now or n > MAX_DAYS - 1:
        raise ValueError("unexpected layout (%d stages, %d days)" % (n_stages, n))
    if len(payload) != head_size + life_size + today_size + n * day_size:
        raise ValueError("length %d does not match %d days" % (len(payload), n))
    pos = head_size
    life = struct.unpack_from(_LIFE, payload, pos)
    pos += life_size
    today = struct.unpack_from(_TODAY, payload, pos)
    pos += today_size
    closed = []
    for _ in range(n):
        d = struct.unpack_from(_DAY, payload, pos)
        closed.append((d[0], d[1], d[2], d[3], tuple(d[4:10]), d[10], d[11]))
        pos += day_size
    h.energy.restore(today[0:12])
    h._peak_pv_mw = today[12]
    for i in range(n_stages_now):
        h._stage_s[i] = today[13 + i]
        h._stage_ms[i] = today[19 + i] % 1000
    h._v_min_mv = today[25]
    h._v_max_mv = today[26]
    h._sun_seen = bool(flags & 1)
    h.day_number = day_number
    h._dark_ms = dark_ms
    h._life_pv_mwh = life[0] * 1000 + life[1]
    h._life_bat_in_mwh = life[2] * 1000 + life[3]
    h._life_bat_out_mwh = life[4] * 1000 + life[5]
    h._closed = closed


def load(h):
    """History._load(): the stored record, or empty, said via h.log."""
    if h._store is None:
        h.source = "empty (no nvm)"
        h.log("history: no nvm on this port, not kept")
        return
    payload, info = h._store.read()
    if payload is None:
        h.source = "empty (%s)" % info
        h.log("history: none stored (%s), starting empty" % info)
        return
    if h._store.read_version != HISTORY_FORMAT_VERSION:
        h.source = "empty (stored format v%d)" % h._store.read_version
        h.log("history: stored format v%d is not v%d, starting empty" % (h._store.read_version,
                                                                      HISTORY_FORMAT_VERSION))
        return
    try:
        decode(h, payload)
    except (ValueError, getattr(struct, "error", ValueError)) as e:  # MicroPython: ValueError; CPython: struct.error
        h._clear()
        h.source = "empty (stored record unreadable: %s)" % e
        h.log("history: stored record unreadable (%s), starting empty" % e)
        return
    h.dirty = False
    h.source = "nvm (%s)" % info
    h.log("history: loaded day %d and %d earlier days, lifetime PV %d Wh, battery in %d Wh (%s)" % (
        h.day_number, len(h._closed), h.lifetime_pv_mwh // 1000, h.lifetime_bat_in_mwh // 1000, info))
