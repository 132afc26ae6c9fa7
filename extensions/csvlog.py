"""The SD log's file names, header and rows, as text (no I/O): the sd_log extension writes them, tools/plot_day.py and
a spreadsheet read them.

One file per day in /fugu on the card: ``YYYYMMDD.csv`` when the clock is set (year >= 2024), else ``DAYnnnn.csv``
with the controller's solar day number (fugu.history). Units are in the column names; values come exact from the
firmware's integers (mV -> V with 3 decimals, no float rounding). A two-channel board adds per-channel columns
(``pv1_v``, ``pv2_w`` ...) where a one-channel board has ``pv_v``, ``pv_a``, ``duty_pct``, ``state``.
"""

LOG_DIR = "/fugu"
CLOCK_SET_YEAR = 2024  # an RTC reading before this is the unset clock (CircuitPython starts at 2000-01-01)
MAX_ALT_NAMES = 8  # 20260621.csv, 20260621b.csv ... when a day's file has other columns (another board)

COMMON_COLUMNS = ("time", "t_s", "state", "stage", "pv_w", "bat_v", "bat_a", "bat_w", "v_target_v", "temp_c",
                  "fan", "derate_pct", "limit", "e_pv_wh", "today_pv_wh", "faults")


def channel_columns(n_channels):
    """Per-channel columns: unnumbered on a one-channel board (pv_v), numbered from 1 on a multi-channel one."""
    if n_channels <= 1:
        return ("pv_v", "pv_a", "duty_pct")
    cols = []
    for k in range(1, n_channels + 1):
        cols.append("pv%d_v" % k)
        cols.append("pv%d_a" % k)
        cols.append("pv%d_w" % k)
        cols.append("duty%d_pct" % k)
        cols.append("state%d" % k)
    return tuple(cols)


def columns(n_channels):
    return COMMON_COLUMNS[:4] + channel_columns(n_channels) + COMMON_COLUMNS[4:]


def header(n_channels):
    return ",".join(columns(n_channels)) + "\n"


def milli(v):
    """An integer in thousandths (mV, mA, mW, mWh) as a decimal with 3 places, exactly: 12345 -> '12.345'."""
    v = int(v)
    if v < 0:
        return "-" + milli(-v)
    return "%d.%03d" % (v // 1000, v % 1000)


def tenths(v):
    """An integer in tenths (per mille -> percent): 456 -> '45.6'."""
    v = int(v)
    if v < 0:
        return "-" + tenths(-v)
    return "%d.%d" % (v // 10, v % 10)


def iso_time(tm):
    """A time tuple (time.localtime()) as '2026-06-21 11:10:05' (pandas and spreadsheets parse it)."""
    return "%04d-%02d-%02d %02d:%02d:%02d" % (tm[0], tm[1], tm[2], tm[3], tm[4], tm[5])


def clock_is_set(tm):
    return tm[0] >= CLOCK_SET_YEAR


def day_file_name(tm, day_number):
    """The day's file: by date when the clock is set, else by the controller's day number."""
    if clock_is_set(tm):
        return "%04d%02d%02d.csv" % (tm[0], tm[1], tm[2])
    return "DAY%04d.csv" % (int(day_number) % 10000)


def alt_name(name, k):
    """The k-th name for a day (k = 0: the name itself; then 20260621b.csv, 20260621c.csv ...)."""
    if k == 0:
        return name
    return name[:-4] + chr(ord("a") + k) + ".csv"


def _digits(s):
    if not s:
        return False
    for c in s:
        if c < "0" or c > "9":
            return False
    return True


def _base_key(stem):
    up = stem.upper()
    if len(up) == 7 and up.startswith("DAY") and _digits(up[3:]):
        return (0, int(up[3:]))
    if len(stem) == 8 and _digits(stem):
        return (1, int(stem))
    return None


def log_key(name):
    """Sort key of a log file name (older first), or None when the name is not one of ours. Undated DAYnnnn files
    sort before dated ones: they come from before the clock was set."""
    if name[-4:].lower() != ".csv":
        return None
    stem = name[:-4]
    k = _base_key(stem)
    if k is not None:
        return k + ("",)
    if len(stem) > 1 and "b" <= stem[-1] <= "z":
        k = _base_key(stem[:-1])
        if k is not None:
            return k + (stem[-1],)
    return None


def oldest_first(names, keep=None):
    """Our log files among ``names`` (a directory listing), oldest first, without ``keep`` (the file in use)."""
    keyed = []
    for n in names:
        if n == keep:
            continue
        k = log_key(n)
        if k is not None:
            keyed.append((k, n))
    keyed.sort()
    return [n for _, n in keyed]


def _temp(t):
    if t is None:
        return ""
    return "%.1f" % t


def faults_text(tel):
    """The active fault codes of all channels ('PV_LOST+BAT_OV'), or '' when there is none."""
    out = ""
    for c in tel.channels:
        if c.fault is not None:
            code = str(c.fault)
            if code not in out.split("+"):
                out = code if not out else out + "+" + code
    return out


def row(tel, tm):
    """One CSV line (newline included) from the telemetry snapshot and the time tuple of the row."""
    chans = tel.channels
    parts = [iso_time(tm), str(tel.uptime_s), tel.state, tel.charge_stage]
    if len(chans) <= 1:
        c = chans[0]
        parts.append(milli(c.v_in_mv))
        parts.append(milli(c.i_in_ma))
        parts.append(tenths(c.duty_permille))
    else:
        for c in chans:
            parts.append(milli(c.v_in_mv))
            parts.append(milli(c.i_in_ma))
            parts.append(milli(c.p_in_mw))
            parts.append(tenths(c.duty_permille))
            parts.append(c.state)
    parts.append(milli(tel.p_pv_mw))
    parts.append(milli(tel.v_bat_mv))
    parts.append(milli(tel.i_bat_ma))
    parts.append(milli(tel.p_bat_mw))
    parts.append(milli(tel.v_target_mv))
    parts.append(_temp(tel.temp_c))
    parts.append("1" if tel.fan else "0")
    parts.append(str(tel.derate_pct))
    parts.append(str(chans[0].limit))
    parts.append(milli(tel.e_pv_mwh))
    parts.append(milli(tel.today_pv_mwh))
    parts.append(faults_text(tel))
    return ",".join(parts) + "\n"
