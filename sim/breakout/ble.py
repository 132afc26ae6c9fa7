"""The BLE module on the simulated board: the ESP32's radio (``board.ble_radio``, what ``_bleio.adapter`` talks to;
without this module plugged the firmware finds no adapter) and a phone running a BLE terminal app on the air.

``attach()`` returns a handle with ``central`` (a UartTerminal: connect(), write_line(text), read_lines(),
disconnect(), and the transcript) and ``session(t0_s, lines)`` to script one. Unless ``handle.demo`` is set False
before the run, a short session is scheduled near the end of the run: connect, a wrong PIN, the right PIN (read off
the console, as a user would), status, an out-of-range and a valid change of ``ble_pin`` (no effect before the
next boot, and in the last 40 s the controller does not pause the converter to save it), get it back, disconnect.
``write(out_dir)`` writes ``ble_session.txt`` (the advertising bytes decoded and the transcript).
"""

import os
import re
import sys
import zlib

NUS_RX = "6E400002-B5A3-F393-E0A9-E50E24DCCA9E"  # the central writes here
NUS_TX = "6E400003-B5A3-F393-E0A9-E50E24DCCA9E"  # the peripheral notifies here
DEMO_LEAD_S = 40.0  # the demo session starts this long before the end of the run (the controller saves a changed
#                     setting at the latest 60 s after the change, pausing the converter: not within the run)
DEMO_GAP_S = 1.0
CONNECT_RETRY_S = 0.5
_PIN_RE = re.compile(r"\bPIN (\d{6})\b")

AD_TYPES = {0x01: "flags", 0x02: "incomplete 16-bit UUIDs", 0x03: "complete 16-bit UUIDs",
            0x06: "incomplete 128-bit UUIDs", 0x07: "complete 128-bit UUIDs", 0x08: "short name",
            0x09: "complete name", 0x0A: "tx power", 0x19: "appearance", 0xFF: "manufacturer data"}


def _our_bleio():
    """The simulator's _bleio, even if a desktop one (adafruit-blinka-bleio, central-only on bleak) was imported
    first: that one, and adafruit_ble bound to it, are dropped from sys.modules."""
    from sim.install import HAL_DIR

    mod = sys.modules.get("_bleio")
    if mod is not None and not (getattr(mod, "__file__", "") or "").startswith(HAL_DIR):
        for name in list(sys.modules):
            if name == "_bleio" or name.startswith(("_bleio.", "adafruit_ble")):
                del sys.modules[name]
    import _bleio
    from _bleio import _air

    return _bleio, _air


def ad_structures(data):
    """[(type, bytes)] of advertising data (length, type, payload ...), as a scanner decodes it."""
    out = []
    i = 0
    while i < len(data):
        n = data[i]
        if n == 0 or i + 1 + n > len(data):
            raise ValueError("malformed AD structure at byte %d of %s" % (i, bytes(data).hex()))
        out.append((data[i + 1], bytes(data[i + 2:i + 1 + n])))
        i += 1 + n
    return out


def describe_ad(data):
    parts = []
    for t, payload in ad_structures(data):
        kind = AD_TYPES.get(t, "type 0x%02x" % t)
        if t in (0x08, 0x09):
            text = repr(payload.decode("utf-8", "replace"))
        elif t in (0x06, 0x07):
            h = payload[::-1].hex()
            text = "%s-%s-%s-%s-%s" % (h[:8], h[8:12], h[12:16], h[16:20], h[20:32])
        else:
            text = payload.hex()
        parts.append("%s: %s" % (kind, text))
    return "; ".join(parts)


class UartTerminal:
    """A phone with a BLE terminal app: connects, turns on notifications of the UART TX characteristic, sends lines
    (ending in ``eol``) in MTU-sized writes, collects the lines it receives. ``transcript`` holds (t_s, "> " sent or
    "< " received or "# " event, text)."""

    def __init__(self, radio, air, bleio, mtu=23, eol="\r\n"):
        self.radio = radio
        self.eol = eol
        self._rx_uuid = bleio.UUID(NUS_RX)
        self._tx_uuid = bleio.UUID(NUS_TX)
        self.link = air.Central(radio, mtu=mtu)
        self.link.on_notification = self._on_notify
        self.link.on_disconnected = self._on_disconnect
        self.transcript = []
        self.sent = []
        self._rx = bytearray()
        self._lines = []

    def _t(self):
        return self.radio.clock.now_ns / 1e9

    def note(self, text):
        self.transcript.append((self._t(), "# ", text))

    @property
    def connected(self):
        return self.link.connected

    def scan(self):
        return self.link.scan()

    def connect(self):
        """Connect and subscribe to the UART's TX. False when the device is not advertising (or has no UART)."""
        if not self.link.connect():
            return False
        if not self.link.subscribe(self._tx_uuid):
            self.note("connected, but the device has no Nordic UART service")
            self.link.disconnect()
            return False
        self.note("connected to %s" % self.radio.name)
        return True

    def disconnect(self):
        self.link.disconnect()

    def write_line(self, text):
        self.sent.append(text)
        self.transcript.append((self._t(), "> ", text))
        return self.link.write(self._rx_uuid, (text + self.eol).encode("utf-8", "surrogateescape"))

    def write_bytes(self, data):
        self.transcript.append((self._t(), "> ", repr(bytes(data))))
        return self.link.write(self._rx_uuid, bytes(data))

    def read_lines(self):
        """The complete lines received since the last call (without their "\\n")."""
        out = self._lines
        self._lines = []
        return out

    def _on_notify(self, characteristic, data, t_ns):
        if characteristic.uuid != self._tx_uuid:
            return
        self._rx += data
        while b"\n" in self._rx:
            line, _, rest = bytes(self._rx).partition(b"\n")
            self._rx = bytearray(rest)
            text = line.decode("utf-8", "replace")
            self._lines.append(text)
            self.transcript.append((t_ns / 1e9, "< ", text))

    def _on_disconnect(self, reason):
        self.note("disconnected (%s)" % reason)


class BleModule:
    name = "ble"

    def __init__(self, sim, address_bytes):
        bleio, air = _our_bleio()
        self.sim = sim
        self.board = sim.board
        self.clock = sim.board.clock
        self.radio = air.Radio(sim.board, address_bytes)
        self.board.ble_radio = self.radio
        self.central = UartTerminal(self.radio, air, bleio)
        self.demo = True
        self.pin_seen = None
        # a reset or the end of code.py resets user BLE (advertising, links, GATT table), as the supervisor does
        release = self.board.release_all_pins

        def release_all_pins():
            release()
            self.radio.reset()

        self.board.release_all_pins = release_all_pins

    # -- scripting ---------------------------------------------------------------------------------------------
    def at(self, t_s, fn):
        """Run fn() at simulated time t_s (during the run)."""
        self.clock.schedule(int(t_s * 1e9), lambda _t: fn())

    def console_pin(self):
        """The PIN as the user reads it off the serial console (the firmware's captured lines), else None."""
        run = getattr(sys.stdout, "run", None)
        for line in reversed(getattr(run, "fw_lines", None) or ()):
            m = _PIN_RE.search(line)
            if m:
                return m.group(1)
        return None

    def session(self, t0_s, lines, gap_s=DEMO_GAP_S, disconnect=True, on_done=None):
        """From t0_s: connect (retrying every 0.5 s until the device advertises), then one line every gap_s. In a
        line, "{pin}" is the PIN read off the console and "{wrong_pin}" a different one."""
        state = {"k": 0}

        def connect():
            if self.central.connect():
                self.at(self.clock.now_ns / 1e9 + gap_s, send)
            else:
                self.at(self.clock.now_ns / 1e9 + CONNECT_RETRY_S, connect)

        def send():
            k = state["k"]
            if k < len(lines):
                state["k"] = k + 1
                line = lines[k]
                if "{pin}" in line or "{wrong_pin}" in line:
                    pin = self.console_pin()
                    if pin is None:
                        self.central.note("no PIN on the console")
                        pin = "000000"
                    self.pin_seen = pin
                    line = line.replace("{pin}", pin).replace("{wrong_pin}", "%06d" % ((int(pin) + 1) % 1000000))
                self.central.write_line(line)
                self.at(self.clock.now_ns / 1e9 + gap_s, send)
                return
            if disconnect:
                self.central.disconnect()
            if on_done is not None:
                on_done()

        self.at(t0_s, connect)

    def _demo(self):
        if not self.demo:
            return
        self.session(self.clock.now_ns / 1e9, ["pin {wrong_pin}", "pin {pin}", "status", "set ble_pin 1234567",
                                               "set ble_pin 246810", "get ble_pin"])

    def schedule_demo(self):
        end = self.clock.end_ns
        t0 = 3.0 if end is None else max(3.0, end / 1e9 - DEMO_LEAD_S)
        self.at(t0, self._demo)

    # -- results -----------------------------------------------------------------------------------------------
    def summary(self):
        r = self.radio
        adv = r.adv_log[-1] if r.adv_log else None
        received = [text for _, d, text in self.central.transcript if d == "< "]
        return {
            "name": adv["name"] if adv else r.name,
            "address": ":".join("%02x" % b for b in reversed(r.address_bytes)),
            "advertisement_bytes": len(adv["data"]) if adv else None,
            "scan_response_bytes": len(adv["scan_response"]) if adv else None,
            "advertising_starts": len(r.adv_log),
            "connections": r.connections_total,
            "commands": [line.split()[0].lower() for line in self.central.sent if line.split()],
            "responses_ok": sum(1 for t in received if t.startswith("OK")),
            "responses_err": sum(1 for t in received if t.startswith("ERR")),
            "notifications": r.notifications,
        }

    def session_text(self):
        r = self.radio
        out = ["BLE session on the simulated board (sim/breakout/ble.py)", ""]
        if r.adv_log:
            adv = r.adv_log[-1]
            out.append("advertising as %s (address %s), interval %.0f ms, %s" % (
                adv["name"], ":".join("%02x" % b for b in reversed(r.address_bytes)), adv["interval"] * 1000,
                "connectable" if adv["connectable"] else "not connectable"))
            for label, data in (("advertisement", adv["data"]), ("scan response", adv["scan_response"])):
                out.append("  %-13s %2d bytes  %s" % (label, len(data), data.hex()))
                out.append("  %-13s           %s" % ("", describe_ad(data)))
        else:
            out.append("never advertised (the firmware found no adapter, or ble_setup did not start)")
        out.append("")
        for t, d, text in self.central.transcript:
            out.append("%9.3f s  %s%s" % (t, d, text))
        return "\n".join(out) + "\n"

    def write(self, out_dir):
        with open(os.path.join(out_dir, "ble_session.txt"), "w") as f:
            f.write(self.session_text())


def attach(sim, pins, work_dir, address_bytes=None):
    """Plug the radio; the address (random static: top two bits set) is derived from the board id, so a run is
    reproducible. Schedules the demo session (see the module docstring)."""
    if address_bytes is None:
        h = zlib.crc32(("ble:" + sim.board.board_id).encode())
        address_bytes = bytes([h & 0xFF, h >> 8 & 0xFF, h >> 16 & 0xFF, h >> 24 & 0xFF, 0x3A, 0xC8 | 0x30])
    handle = BleModule(sim, address_bytes)
    handle.schedule_demo()
    return handle
