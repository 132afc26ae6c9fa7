"""The simulated BLE radio of one SimBoard and the air around it (host side of the ``_bleio`` stand-in).

``Radio`` is the board's BLE controller: the local GATT table the firmware builds with ``_bleio.Service`` /
``Characteristic``, what it advertises (the exact advertisement and scan-response bytes, each start logged), and the
links to centrals. ``Central`` is a phone on the air: it scans (a legacy scanner does not see an extended
advertisement, i.e. one over 31 bytes), connects to a connectable advertisement (which stops advertising, as NimBLE
does), writes characteristics in ATT packets of MTU-3 bytes delivered at the next connection event, subscribes to
notifications and records them (a notification is cut to MTU-3 bytes, as the stack does).

Plug a radio with ``Radio(board, ...)`` and ``board.ble_radio = radio``; ``_bleio.adapter`` is None on a board without
one, as on a CircuitPython build without BLE.
"""

# What calls cost the firmware on the device (simulated microseconds). Estimates for CircuitPython's NimBLE glue on an
# ESP32-S3, not measurements: a property read is a C call; a notification copies into an mbuf and queues it for the
# host task; starting to advertise configures the controller.
COST_US = {
    "poll": 15.0,  # in_waiting, connected, advertising
    "read": 40.0,  # plus per byte:
    "read_byte": 0.5,
    "notify": 120.0,  # one characteristic value write (a notification to each subscriber)
    "adv_start": 2000.0,
    "adv_stop": 500.0,
}

ATT_MTU_DEFAULT = 23  # BLE 4.0 default: 20 bytes of payload per packet
LEGACY_ADV_MAX = 31


def radio_of(board):
    return None if board is None else getattr(board, "ble_radio", None)


class Link:
    """One connection: the central, the negotiated MTU, the connection interval, what the central subscribed to."""

    def __init__(self, radio, central, mtu, interval_ms):
        self.radio = radio
        self.central = central
        self.mtu = mtu
        self.interval_ms = interval_ms
        self.connected = True
        self.subscribed = []  # local Characteristic objects with notifications on
        self.connection = None  # the peripheral's _bleio.Connection, made on first use
        self.t_connect_ns = radio.clock.now_ns

    def close(self, reason):
        if not self.connected:
            return
        self.connected = False
        self.radio.links.remove(self)
        self.radio.log.append((self.radio.clock.now_ns, "disconnect", reason))
        self.central.on_disconnect(reason)


class Radio:
    def __init__(self, board, address_bytes, name=None):
        if len(address_bytes) != 6:
            raise ValueError("a BLE address has 6 bytes")
        self.board = board
        self.clock = board.clock
        self.address_bytes = bytes(address_bytes)  # little-endian (least significant byte first), as _bleio has it
        self.enabled = True
        # CircuitPython's default GAP name: CIRCUITPY + the last 3 bytes of the MAC in hex
        ab = self.address_bytes
        self.default_name = name or "CIRCUITPY%02x%02x%02x" % (ab[2], ab[1], ab[0])
        self.name = self.default_name
        self.services = []  # the local GATT table, in the order the firmware added services
        self.adv = None  # while advertising: dict data, scan_response, connectable, interval, extended, t_ns
        self.adv_log = []  # every start_advertising, same dicts
        self.links = []
        self.log = []  # (t_ns, event, detail): advertise, stop, connect, disconnect, reset
        self.connections_total = 0
        self.notifications = 0
        self.notifications_cut = 0
        self.bytes_written_by_centrals = 0
        self.bytes_dropped = 0  # central writes that did not fit a full receive buffer
        self._adapter = None

    # -- the firmware side -------------------------------------------------------------------------------------
    def cost(self, kind, n=0):
        us = COST_US[kind]
        if kind == "read":
            us += COST_US["read_byte"] * n
        self.clock.advance(us * 1000)

    def adapter(self):
        if self._adapter is None:
            import _bleio

            self._adapter = _bleio.Adapter._native(self)
        return self._adapter

    def start_advertising(self, data, scan_response, connectable, interval):
        self.adv = {"data": bytes(data), "scan_response": bytes(scan_response), "connectable": bool(connectable),
                    "interval": float(interval), "extended": len(data) > LEGACY_ADV_MAX,
                    "t_ns": self.clock.now_ns, "name": self.name}
        self.adv_log.append(self.adv)
        self.log.append((self.clock.now_ns, "advertise", len(data)))

    def stop_advertising(self, why="stop"):
        if self.adv is not None:
            self.adv = None
            self.log.append((self.clock.now_ns, "stop advertising", why))

    def notify(self, characteristic, data):
        """A local characteristic's value was set: a notification to every link subscribed to it."""
        for link in list(self.links):
            if characteristic in link.subscribed:
                room = link.mtu - 3
                payload = bytes(data[:room])
                if len(data) > room:
                    self.notifications_cut += 1
                self.notifications += 1
                link.central.on_notify(characteristic, payload, self.clock.now_ns)

    def reset(self):
        """What a soft reload or reset does to user BLE: advertising stops, links drop, the GATT table is cleared."""
        self.stop_advertising("reset")
        for link in list(self.links):
            link.close("peripheral reset")
        self.services = []
        self.name = self.default_name
        self.log.append((self.clock.now_ns, "reset", ""))

    def set_enabled(self, on):
        if not on:
            self.stop_advertising("adapter disabled")
            for link in list(self.links):
                link.close("adapter disabled")
        self.enabled = bool(on)

    # -- lookups for centrals ----------------------------------------------------------------------------------
    def find_characteristic(self, uuid):
        """The local characteristic with this UUID in the most recently added service that has one."""
        for service in reversed(self.services):
            for c in service.characteristics:
                if c.uuid == uuid:
                    return c
        return None


class Central:
    """A phone. ``on_notification(characteristic, data, t_ns)`` and ``on_disconnected(reason)`` are optional
    callbacks; every notification is also kept in ``received`` as (t_ns, uuid, bytes)."""

    def __init__(self, radio, mtu=ATT_MTU_DEFAULT, interval_ms=30.0, extended_scan=False):
        self.radio = radio
        self.mtu = int(mtu)
        self.interval_ms = float(interval_ms)
        self.extended_scan = extended_scan
        self.link = None
        self.received = []
        self.on_notification = None
        self.on_disconnected = None

    @property
    def connected(self):
        return self.link is not None and self.link.connected

    def scan(self):
        """What this central hears: the advertisement dict (see Radio.adv) or None."""
        adv = self.radio.adv
        if adv is None or not self.radio.enabled:
            return None
        if adv["extended"] and not self.extended_scan:
            return None  # a legacy scanner (most phone apps) never sees an extended advertisement
        return adv

    def connect(self):
        """Connect to what is advertised (connectable). True on success; False when there is nothing to connect to."""
        if self.connected:
            return True
        adv = self.scan()
        if adv is None or not adv["connectable"]:
            return False
        r = self.radio
        r.stop_advertising("central connected")
        self.link = Link(r, self, self.mtu, self.interval_ms)
        r.links.append(self.link)
        r.connections_total += 1
        r.log.append((r.clock.now_ns, "connect", "mtu %d" % self.mtu))
        return True

    def disconnect(self):
        if self.connected:
            self.link.close("central disconnected")

    def subscribe(self, uuid):
        """Turn notifications on (write the CCCD). Returns False when the peripheral has no such characteristic."""
        c = self.radio.find_characteristic(uuid)
        if c is None or not self.connected:
            return False
        if c not in self.link.subscribed:
            self.link.subscribed.append(c)
        return True

    def write(self, uuid, data):
        """Write without response, in packets of MTU-3 bytes, each delivered at the next connection event.
        Returns the number of packets (0: not connected or no such characteristic)."""
        c = self.radio.find_characteristic(uuid)
        if c is None or not self.connected:
            return 0
        link = self.link
        clock = self.radio.clock
        room = link.mtu - 3
        t = clock.now_ns + int(link.interval_ms * 1e6)
        n = 0
        for k in range(0, len(data), room):
            chunk = bytes(data[k:k + room])

            def deliver(_t, chunk=chunk):
                if link.connected:
                    self.radio.bytes_written_by_centrals += len(chunk)
                    c._remote_write(chunk)

            clock.schedule(t, deliver)
            n += 1
        return n

    # -- from the radio ----------------------------------------------------------------------------------------
    def on_notify(self, characteristic, data, t_ns):
        self.received.append((t_ns, characteristic.uuid, data))
        if self.on_notification is not None:
            self.on_notification(characteristic, data, t_ns)

    def on_disconnect(self, reason):
        if self.on_disconnected is not None:
            self.on_disconnected(reason)
