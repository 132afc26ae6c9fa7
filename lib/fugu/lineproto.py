"""A line protocol a person types in a BLE terminal app (nRF Toolbox UART, Serial Bluetooth Terminal) or, later, on
the USB serial console: read the status and the statistics, read and change settings, protected by a PIN.

Pure: no I/O and no clock. The transport pushes the bytes it received and writes back what ``step()``/``feed()``
return; ``now_ms`` (supervisor.ticks_ms) comes from the caller. Settings change only through ``request_setting(key,
value) -> (ok, stored value or reason)`` (the validated API of lib/fugu/extensions.py), so this module cannot store
anything the settings schema refuses.

Commands (one per line; CR, LF or CRLF ends a line; the command word is case-insensitive):

    pin NNNNNN       unlock this session (the PIN is on the console and the display)
    status           one line: state, PV W and V, battery V and A, charge stage, temperature, today's yield
    get KEY          one setting
    set KEY VALUE    change a setting (validated; the controller applies it within a second, BOOT_KEYS at
                     the next boot; saved to flash automatically)
    list             every setting with its value
    help [KEY]       the commands, or what KEY accepts (works while locked; the value is hidden then)
    stats            energy per day from the history, today first
    save             nothing to do: the controller saves changed settings by itself (answers how)
    lock             lock the session again

Every response starts with "OK" or "ERR <reason>" and every line ends with "\\n". A response of several lines
(list, stats, help) is "OK <command> <n>" followed by exactly n lines. Everything except pin and help needs an
unlocked session. PIN_TRIES wrong PINs in a row lock the PIN out for LOCKOUT_MS, doubling with every further round
(up to LOCKOUT_MAX_MS); a correct PIN is refused during a lock-out too, and ending the session (disconnect) does not
reset the count. Lines longer than MAX_LINE_BYTES, bytes outside printable ASCII, and unknown commands get an ERR
and change nothing; nothing a peer sends raises.
"""

MAX_LINE_BYTES = 120  # the longest useful line: "set extensions_disabled " + 64 characters
MAX_QUEUED_LINES = 4  # complete lines waiting to be answered; push() takes no more bytes until answered
PIN_TRIES = 3
LOCKOUT_MS = 30000
LOCKOUT_MAX_MS = 480000
_TICKS_PERIOD = 1 << 29  # supervisor.ticks_ms wraps at 2**29

# settings read only at boot (the extensions found, this PIN): a change applies after the next reset
BOOT_KEYS = ("ble_pin", "extensions_disabled")
_NEEDS_UNLOCK = ("status", "get", "set", "list", "stats", "save")
_TOO_LONG = 1  # queue marker: a line longer than MAX_LINE_BYTES (its bytes are dropped)

HELP_LINES = (
    "pin NNNNNN      unlock with the PIN shown on the console/display",
    "status          state, PV W/V, battery V/A, charge stage, temperature, today's yield",
    "get KEY         one setting",
    "set KEY VALUE   change a setting (checked; applied within 1 s; saved automatically)",
    "list            every setting with its value",
    "help [KEY]      these commands, or what KEY means and accepts",
    "stats           energy per day, today first",
    "save            nothing to do: changes are saved automatically",
    "lock            lock this session again",
)

SAVE_NOTE = ("OK nothing to do: the controller writes changed settings to flash by itself once no other change came "
             "for a few seconds (if the converter is running, within a minute, pausing it briefly)")


def _ticks_diff(a, b):
    d = (a - b) & (_TICKS_PERIOD - 1)
    if d >= _TICKS_PERIOD >> 1:
        d -= _TICKS_PERIOD
    return d


def _fixed(milli, digits):
    """An integer in milli-units as text with `digits` decimals (1 or 2), rounded, without floats."""
    neg = milli < 0
    if neg:
        milli = -milli
    if digits == 1:
        v = (milli + 50) // 100
        text = "%d.%01d" % (v // 10, v % 10)
    else:
        v = (milli + 5) // 10
        text = "%d.%02d" % (v // 100, v % 100)
    return "-" + text if neg else text


def format_value(value):
    """A setting's value as the protocol shows it (and accepts it back): on/off for booleans."""
    if value is True:
        return "on"
    if value is False:
        return "off"
    return "%s" % (value,)


def decode_line(raw):
    """(text, None) for a line of printable ASCII (tabs become spaces), else (None, reason)."""
    for b in raw:
        if b == 9:
            continue
        if b < 32 or b > 126:
            return None, "text only: printable ASCII characters (got byte 0x%02x)" % b
    return bytes(raw).decode().replace("\t", " "), None


class LineProtocol:
    """One peer's session. ``push()`` the received bytes; ``step(now_ms)`` answers the next complete line (or returns
    None); ``feed()`` does both for everything pushed. ``end_session()`` on disconnect: locks again and drops
    unanswered input (the PIN back-off survives it)."""

    def __init__(self, pin, request_setting, get_setting, telemetry=None, keys=(), describe=None,
                 max_line_bytes=MAX_LINE_BYTES, boot_keys=BOOT_KEYS):
        self.pin = int(pin)
        self.request_setting = request_setting
        self.get_setting = get_setting
        self.telemetry = telemetry
        self.keys = tuple(keys)
        self.describe = describe
        self.boot_keys = boot_keys
        self.max_line_bytes = max_line_bytes
        self.unlocked = False
        self.fails = 0  # wrong PINs since the last correct one
        self._lock_until = None  # ticks_ms when a PIN lock-out ends, or None
        self._buf = bytearray()
        self._overlong = False
        self._queue = []
        self.last_line = None  # the text of the line step() answered last (None: not text / too long)
        self.commands = 0
        self.errors = 0

    # -- input ----------------------------------------------------------------------------------------------------
    def push(self, data):
        """Take received bytes (any chunking) until MAX_QUEUED_LINES complete lines wait to be answered. Returns how
        many bytes were taken: give the rest again once step() has answered (the transport holds it, so a burst of
        lines is answered in order, none dropped)."""
        buf = self._buf
        n = len(data)
        i = 0
        while i < n:
            if len(self._queue) >= MAX_QUEUED_LINES:
                return i
            b = data[i]
            i += 1
            if b == 10 or b == 13:
                if self._overlong:
                    self._queue.append(_TOO_LONG)
                elif buf:
                    self._queue.append(bytes(buf))
                    buf = self._buf = bytearray()
                self._overlong = False
            elif self._overlong:
                continue
            elif len(buf) < self.max_line_bytes:
                buf.append(b)
            else:
                self._overlong = True
                buf = self._buf = bytearray()
        return n

    def pending(self):
        """Lines waiting to be answered."""
        return len(self._queue)

    def end_session(self):
        self.unlocked = False
        self._buf = bytearray()
        self._overlong = False
        self._queue = []

    # -- output ---------------------------------------------------------------------------------------------------
    def step(self, now_ms):
        """The response (text ending in "\\n") to the next queued line, or None when there is none."""
        if not self._queue:
            return None
        item = self._queue.pop(0)
        self.commands += 1
        if item == _TOO_LONG:
            self.last_line = None
            return self._err("line too long (max %d bytes)" % self.max_line_bytes)
        text, why = decode_line(item)
        self.last_line = text
        if text is None:
            return self._err(why)
        text = text.strip()
        if not text:
            return None
        try:
            return self._command(text, now_ms)
        except Exception as e:  # a getter or the telemetry failing must not end the session
            return self._err("internal: %s" % (e,))

    def feed(self, data, now_ms):
        """push() + every response, concatenated ("" when no line was complete)."""
        out = []
        while True:
            k = self.push(data)
            data = data[k:]
            while self._queue:
                r = self.step(now_ms)
                if r:
                    out.append(r)
            if not data:
                return "".join(out)

    def serve(self, stream_in, stream_out, now_ms, max_bytes=256):
        """Read what is waiting on a stream (``in_waiting`` when it has one, else ``read(max_bytes)``), answer every
        complete line on ``stream_out.write``. Returns the number of bytes read."""
        n = getattr(stream_in, "in_waiting", None)
        if n is None:
            data = stream_in.read(max_bytes)
        elif n:
            data = stream_in.read(min(n, max_bytes))
        else:
            data = None
        if not data:
            return 0
        text = self.feed(data, now_ms)
        if text:
            stream_out.write(text.encode())
        return len(data)

    # -- commands -------------------------------------------------------------------------------------------------
    def _ok(self, text):
        return "OK " + text + "\n" if text else "OK\n"

    def _err(self, reason):
        self.errors += 1
        return "ERR " + reason + "\n"

    def _block(self, name, lines):
        return "OK %s %d\n" % (name, len(lines)) + "".join([line + "\n" for line in lines])

    def _command(self, text, now_ms):
        parts = text.split(None, 2)
        cmd = parts[0].lower()
        if cmd == "pin":
            return self._pin(parts, now_ms)
        if cmd == "help":
            return self._help(parts)
        if cmd == "lock":
            self.unlocked = False
            return self._ok("locked")
        if cmd not in _NEEDS_UNLOCK:
            return self._err("unknown command '%s'; send help" % parts[0][:16])
        if not self.unlocked:
            return self._err("locked: unlock first with pin and the 6-digit PIN")
        if cmd == "status":
            return self._status()
        if cmd == "get":
            if len(parts) != 2:
                return self._err("usage: get KEY")
            return self._get(parts[1].lower())
        if cmd == "set":
            if len(parts) != 3:
                return self._err("usage: set KEY VALUE")
            return self._set(parts[1].lower(), parts[2].strip())
        if cmd == "list":
            return self._list()
        if cmd == "stats":
            return self._stats()
        return SAVE_NOTE + "\n"  # save

    def _pin(self, parts, now_ms):
        if self._lock_until is not None:
            left = _ticks_diff(self._lock_until, now_ms)
            if left > 0:
                return self._err("pin: too many wrong PINs, try again in %d s" % ((left + 999) // 1000))
            self._lock_until = None
        given = parts[1] if len(parts) == 2 else ""
        if 0 < len(given) <= 6 and given.isdigit() and int(given) == self.pin:
            self.fails = 0
            self.unlocked = True
            return self._ok("unlocked")
        self.unlocked = False
        self.fails += 1
        if self.fails % PIN_TRIES == 0:
            rounds = self.fails // PIN_TRIES - 1
            ms = LOCKOUT_MS << (rounds if rounds < 8 else 8)
            if ms > LOCKOUT_MAX_MS:
                ms = LOCKOUT_MAX_MS
            self._lock_until = (now_ms + ms) & (_TICKS_PERIOD - 1)
            return self._err("pin: wrong PIN; locked for %d s" % (ms // 1000))
        return self._err("pin: wrong PIN (%d more tries before a lock-out)" % (PIN_TRIES - self.fails % PIN_TRIES))

    def _help(self, parts):
        if len(parts) == 1:
            return self._block("help", HELP_LINES)
        key = parts[1].lower()
        if len(parts) > 2 or key not in self.keys:
            return self._err("unknown setting '%s'; send list (after pin) for the keys" % parts[1][:32])
        if self.describe is None:
            return self._err("no help for settings here")
        text = self.describe(key)
        if not self.unlocked:
            text = _hide_value(text, key)
        return self._ok(text)

    def _get(self, key):
        try:
            value = self.get_setting(key)
        except KeyError:
            return self._err("unknown setting '%s'; send list for the keys" % key[:32])
        return self._ok("%s=%s" % (key, format_value(value)))

    def _set(self, key, value):
        if key not in self.keys:
            return self._err("unknown setting '%s'; send list for the keys" % key[:32])
        ok, result = self.request_setting(key, value)
        if not ok:
            return self._err("%s" % (result,))
        when = "at the next boot" if key in self.boot_keys else "within 1 s"
        return self._ok("%s=%s (applies %s, saved automatically)" % (key, format_value(result), when))

    def _list(self):
        lines = []
        for key in self.keys:
            lines.append("%s=%s" % (key, format_value(self.get_setting(key))))
        return self._block("list", lines)

    def _status(self):
        t = self.telemetry
        if t is None or t.seq == 0:
            return self._err("no telemetry yet (starting)")
        ch = t.channels[0] if t.channels else None
        text = "state=%s pv_w=%s pv_v=%s bat_v=%s bat_a=%s stage=%s temp_c=%s today_wh=%s" % (
            t.state, _fixed(t.p_pv_mw, 1), _fixed(ch.v_in_mv if ch is not None else 0, 2), _fixed(t.v_bat_mv, 2),
            _fixed(t.i_bat_ma, 2), t.charge_stage, "n/a" if t.temp_c is None else "%.1f" % t.temp_c,
            _fixed(t.today_pv_mwh, 2))
        fault = t.fault_active()
        if fault is not None:
            text += " fault=%s" % fault
        return self._ok(text)

    def _stats(self):
        t = self.telemetry
        h = None if t is None else t.history
        if h is None:
            return self._err("no history on this controller")
        lines = []
        for d in h.days():
            lines.append("day=%d pv_wh=%s bat_in_wh=%s bat_out_wh=%s peak_w=%s v_min=%s v_max=%s" % (
                d["day"], _fixed(d["pv_mwh"], 2), _fixed(d["bat_in_mwh"], 2), _fixed(d["bat_out_mwh"], 2),
                _fixed(d["peak_pv_mw"], 1), "n/a" if d["v_min_mv"] is None else _fixed(d["v_min_mv"], 2),
                "n/a" if d["v_max_mv"] is None else _fixed(d["v_max_mv"], 2)))
        return self._block("stats", lines)


def _hide_value(text, key):
    """settings.describe() text ("key = value (kind ...): help") without the current value, for a locked session."""
    head = key + " = "
    if text.startswith(head):
        i = text.find(" (", len(head))
        if i > 0:
            return head + "(unlock to see)" + text[i:]
    return key + ": unlock to see the details"
