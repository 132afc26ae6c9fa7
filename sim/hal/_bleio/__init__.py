"""Stand-in for CircuitPython's ``_bleio`` (native NimBLE on the ESP32/ESP32-S3) on the simulated board: enough for the
unmodified ``adafruit_ble`` to run a peripheral: the adapter (address, name, advertising with the exact
advertisement and scan-response bytes, connections), local services and characteristics, CharacteristicBuffer (what
UARTService reads), notifications to subscribed centrals. The centrals and the air are in ``_bleio._air``.

Signatures follow circuitpython-stubs (tests/ext/test_ble.py compares them). ``adapter`` is the board's radio when a
BLE module is plugged in the scenario ([board.modules] ble = true, sim/breakout/ble.py), else None (a build without
BLE). Behaviour follows ports/espressif/common-hal/_bleio: "Already advertising." when started twice, advertising
stops when a central connects, more than 31 bytes is an extended advertisement (no scan response then), reads
block up to the buffer's timeout (in simulated time), a full receive buffer drops the excess bytes.
"""

from sim.simboard import active_or_none

from _bleio import _air

ConnectionError = ConnectionError  # noqa: A001  (CircuitPython's _bleio exports the builtin)


class BluetoothError(Exception):
    """Catchall exception for Bluetooth related errors."""


class RoleError(BluetoothError):
    """A resource used in the wrong role (e.g. a CCCD set on a local characteristic)."""


class SecurityError(BluetoothError):
    """A security related error."""


def _radio():
    return _air.radio_of(active_or_none())


def _radio_or_raise():
    r = _radio()
    if r is None:
        raise RuntimeError("No adapter available")
    return r


def __getattr__(name):
    if name == "adapter":
        r = _radio()
        return None if r is None else r.adapter()
    raise AttributeError("module '_bleio' has no attribute '%s'" % name)


def set_adapter(adapter):
    raise NotImplementedError("Read-only")  # native BLE: the adapter is a singleton


def _buffer(value, what="buffer"):
    try:
        return bytes(memoryview(value))
    except TypeError:
        raise TypeError("%s must be a buffer (bytes, bytearray), not %s" % (what, type(value).__name__)) from None


class UUID:
    """A 16-bit (SIG) or 128-bit (vendor) UUID; 128-bit values are kept little-endian as the stack has them."""

    def __init__(self, value):
        if isinstance(value, bool):
            raise TypeError("UUID value is not str, int or byte buffer")
        if isinstance(value, int):
            if not 0 <= value <= 0xFFFF:
                raise ValueError("UUID integer value must be 0-0xffff")
            self._size = 16
            self._v16 = value
            self._v128 = None
            return
        if isinstance(value, str):
            parts = value.split("-")
            if [len(p) for p in parts] != [8, 4, 4, 4, 12]:
                raise ValueError("UUID string not 'xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx'")
            try:
                raw = bytes.fromhex("".join(parts))
            except ValueError:
                raise ValueError("UUID string not 'xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx'") from None
            b = raw[::-1]
        else:
            try:
                b = bytes(memoryview(value))
            except TypeError:
                raise ValueError("UUID value is not str, int or byte buffer") from None
            if len(b) != 16:
                raise ValueError("Byte buffer must be 16 bytes.")
        self._size = 128
        self._v128 = b
        self._v16 = b[12] | b[13] << 8

    @property
    def uuid16(self):
        return self._v16

    @property
    def uuid128(self):
        if self._v128 is None:
            raise AttributeError("not a 128-bit UUID")
        return self._v128

    @property
    def size(self):
        return self._size

    def pack_into(self, buffer, offset=0):
        n = self._size // 8
        if offset < 0 or offset + n > len(buffer):
            raise ValueError("Buffer + offset too small %d %d %d" % (len(buffer), offset, n))
        if self._size == 16:
            buffer[offset] = self._v16 & 0xFF
            buffer[offset + 1] = self._v16 >> 8
        else:
            buffer[offset:offset + 16] = self._v128

    def __eq__(self, other):
        if not isinstance(other, UUID) or other._size != self._size:
            return False
        return other._v16 == self._v16 if self._size == 16 else other._v128 == self._v128

    def __hash__(self):
        return hash(self._v16 if self._size == 16 else self._v128)

    def __repr__(self):
        if self._size == 16:
            return "UUID(0x%04x)" % self._v16
        h = self._v128[::-1].hex()
        return "UUID('%s-%s-%s-%s-%s')" % (h[:8], h[8:12], h[12:16], h[16:20], h[20:])


class Address:
    """A device address; ``address_bytes`` least significant byte first, printed most significant first."""

    PUBLIC = 0
    RANDOM_STATIC = 1
    RANDOM_PRIVATE_RESOLVABLE = 2
    RANDOM_PRIVATE_NON_RESOLVABLE = 3

    def __init__(self, address, address_type):
        b = _buffer(address, "address")
        if len(b) != 6:
            raise ValueError("Address must be 6 bytes long")
        if address_type not in (0, 1, 2, 3):
            raise ValueError("Address type out of range")
        self._bytes = b
        self._type = address_type

    @property
    def address_bytes(self):
        return self._bytes

    @property
    def type(self):
        return self._type

    def __eq__(self, other):
        return isinstance(other, Address) and other._bytes == self._bytes and other._type == self._type

    def __hash__(self):
        return hash((self._bytes, self._type))

    def __repr__(self):
        return "<Address %s>" % ":".join("%02x" % b for b in reversed(self._bytes))


class Attribute:
    """Security modes (values as in CircuitPython's shared-module/_bleio/Attribute.h)."""

    NO_ACCESS = 0x00
    OPEN = 0x11
    ENCRYPT_NO_MITM = 0x21
    ENCRYPT_WITH_MITM = 0x31
    LESC_ENCRYPT_WITH_MITM = 0x41
    SIGNED_NO_MITM = 0x12
    SIGNED_WITH_MITM = 0x22

    def __init__(self):
        raise TypeError("cannot create '_bleio.Attribute' instances")


_SECURITY_MODES = (0x00, 0x11, 0x21, 0x31, 0x41, 0x12, 0x22)


def _check_security(mode):
    if mode not in _SECURITY_MODES:
        raise ValueError("Invalid security_mode")


class Service:
    """A local (server) service. Added to the radio's GATT table when made on a board with a radio."""

    def __init__(self, uuid, *, secondary=False):
        if not isinstance(uuid, UUID):
            raise TypeError("Expected a UUID")
        self._uuid = uuid
        self._secondary = bool(secondary)
        self._characteristics = []
        self._radio = _radio()
        if self._radio is not None:
            self._radio.services.append(self)

    def deinit(self):
        r = self._radio
        if r is not None and self in r.services:
            r.services.remove(self)
        self._radio = None

    @property
    def characteristics(self):
        return tuple(self._characteristics)

    @property
    def remote(self):
        return False

    @property
    def secondary(self):
        return self._secondary

    @property
    def uuid(self):
        return self._uuid

    def __repr__(self):
        return "Service(%r)" % (self._uuid,)


class Characteristic:
    """A local characteristic: setting ``value`` notifies subscribed centrals; a central's write lands in the value and
    in every CharacteristicBuffer / PacketBuffer watching it."""

    BROADCAST = 0x01
    READ = 0x02
    WRITE_NO_RESPONSE = 0x04
    WRITE = 0x08
    NOTIFY = 0x10
    INDICATE = 0x20

    def __init__(self):
        raise TypeError("There is no regular constructor: use Characteristic.add_to_service()")

    @classmethod
    def add_to_service(cls, service, uuid, *, properties=0, read_perm=Attribute.OPEN, write_perm=Attribute.OPEN,
                       max_length=20, fixed_length=False, initial_value=None, user_description=None):
        if not isinstance(service, Service):
            raise TypeError("Expected a Service")
        if not isinstance(uuid, UUID):
            raise TypeError("Expected a UUID")
        if properties & ~0x3F:
            raise ValueError("Invalid properties")
        _check_security(read_perm)
        _check_security(write_perm)
        if not 0 <= max_length <= 512:
            raise ValueError("max_length must be 0-512")
        if initial_value is None:
            value = bytes(max_length) if fixed_length and max_length > 0 else b""
        else:
            value = _buffer(initial_value, "initial_value")
        if len(value) > max_length or (fixed_length and len(value) != max_length):
            raise ValueError("initial_value length is wrong")
        self = cls.__new__(cls)
        self._service = service
        self._uuid = uuid
        self._properties = properties
        self._read_perm = read_perm
        self._write_perm = write_perm
        self._max_length = max_length
        self._fixed_length = bool(fixed_length)
        self._value = value
        self._descriptors = []
        self._watchers = []  # CharacteristicBuffer / PacketBuffer objects
        self._user_description = user_description
        service._characteristics.append(self)
        return self

    def deinit(self):
        self._watchers = []

    @property
    def properties(self):
        return self._properties

    @property
    def uuid(self):
        return self._uuid

    @property
    def value(self):
        return bytearray(self._value)

    @value.setter
    def value(self, value):
        b = _buffer(value, "value")
        if self._fixed_length and len(b) != self._max_length:
            raise ValueError("Value length != required fixed length")
        if len(b) > self._max_length:
            raise ValueError("Value length > max_length")
        self._value = b
        r = self._service._radio
        if r is not None:
            r.cost("notify")
            if self._properties & (self.NOTIFY | self.INDICATE):
                r.notify(self, b)

    @property
    def max_length(self):
        return self._max_length

    @property
    def descriptors(self):
        return tuple(self._descriptors)

    @property
    def service(self):
        return self._service

    def set_cccd(self, *, notify=False, indicate=False):
        raise RoleError("Can't set CCCD on local Characteristic")

    def _remote_write(self, data):
        """A central wrote ``data`` (one ATT packet)."""
        if len(data) > self._max_length:
            data = data[:self._max_length]
        self._value = bytes(data)
        for w in self._watchers:
            w._extend(data)

    def __repr__(self):
        return "Characteristic(%r)" % (self._uuid,)


def _check_deinit(obj):
    if obj._characteristic is None:
        raise ValueError("Object has been deinitialized and can no longer be used. Create a new object.")


class CharacteristicBuffer:
    """A FIFO of what centrals write to a characteristic (a ring buffer of ``buffer_size`` bytes: the excess of a
    write that does not fit is dropped, as py/ringbuf.c does). Reads wait up to ``timeout`` seconds of simulated time
    for the bytes asked for."""

    def __init__(self, characteristic, *, timeout=1.0, buffer_size=64):
        if not isinstance(characteristic, Characteristic):
            raise ValueError("Expected a Characteristic")
        if timeout < 0:
            raise ValueError("timeout must be >= 0.0")
        if buffer_size < 1:
            raise ValueError("buffer_size must be >= 1")
        self._characteristic = characteristic
        self._timeout_ns = int(timeout * 1e9)
        self._size = int(buffer_size)
        self._fifo = bytearray()
        characteristic._watchers.append(self)

    def _extend(self, data):
        room = self._size - len(self._fifo)
        if len(data) > room:
            r = self._characteristic._service._radio
            if r is not None:
                r.bytes_dropped += len(data) - room
            data = data[:room]
        self._fifo += data

    def _wait_for(self, n):
        """Wait (simulated time, running the board's events) until n bytes are buffered or the timeout passes."""
        r = self._characteristic._service._radio
        if r is None or len(self._fifo) >= n:
            return
        clock = r.clock
        t_end = clock.now_ns + self._timeout_ns
        while len(self._fifo) < n and clock.now_ns < t_end:
            clock.advance(min(1000000, t_end - clock.now_ns))
            clock.run_events()

    def _take(self, n):
        out = bytes(self._fifo[:n])
        del self._fifo[:n]
        r = self._characteristic._service._radio
        if r is not None:
            r.cost("read", len(out))
        return out

    def read(self, nbytes=None):
        _check_deinit(self)
        if nbytes is None:
            # everything that arrives until a timeout passes without new bytes
            while True:
                before = len(self._fifo)
                self._wait_for(before + 1)
                if len(self._fifo) == before:
                    break
            return self._take(len(self._fifo))
        if nbytes <= 0:
            return b""
        self._wait_for(nbytes)
        return self._take(nbytes)

    def readinto(self, buf, nbytes=None):
        _check_deinit(self)
        n = len(buf) if nbytes is None else min(nbytes, len(buf))
        if n <= 0:
            return 0
        self._wait_for(n)
        data = self._take(n)
        buf[:len(data)] = data
        return len(data)

    def readline(self):
        _check_deinit(self)
        out = bytearray()
        while True:
            self._wait_for(1)
            if not self._fifo:
                break
            b = self._take(1)
            out += b
            if b == b"\n":
                break
        return bytes(out)

    @property
    def in_waiting(self):
        _check_deinit(self)
        r = self._characteristic._service._radio
        if r is not None:
            r.cost("poll")
        return len(self._fifo)

    def reset_input_buffer(self):
        _check_deinit(self)
        self._fifo = bytearray()

    def deinit(self):
        c = self._characteristic
        if c is not None:
            if self in c._watchers:
                c._watchers.remove(self)
            self._characteristic = None


class PacketBuffer:
    """Packet-aware FIFO of a characteristic: each central write is one packet; write() sends one notification."""

    def __init__(self, characteristic, *, buffer_size, max_packet_size=None):
        if not isinstance(characteristic, Characteristic):
            raise ValueError("Expected a Characteristic")
        if buffer_size < 1:
            raise ValueError("buffer_size must be >= 1")
        self._characteristic = characteristic
        self._packets = []
        self._buffer_size = int(buffer_size)
        self._max = int(max_packet_size) if max_packet_size is not None else characteristic.max_length
        characteristic._watchers.append(self)

    def _extend(self, data):
        if len(self._packets) < self._buffer_size:
            self._packets.append(bytes(data[:self._max]))

    def readinto(self, buf):
        _check_deinit(self)
        if not self._packets:
            return 0
        p = self._packets[0]
        if len(p) > len(buf):
            raise ValueError("Packet too long for buffer: %d > %d" % (len(p), len(buf)))
        self._packets.pop(0)
        buf[:len(p)] = p
        return len(p)

    def write(self, data, *, header=None):
        _check_deinit(self)
        payload = (_buffer(header, "header") if header else b"") + _buffer(data, "data")
        if len(payload) > self.outgoing_packet_length:
            raise ValueError("Total data to write is larger than %d" % self.outgoing_packet_length)
        self._characteristic.value = payload
        return len(payload)

    def deinit(self):
        c = self._characteristic
        if c is not None:
            if self in c._watchers:
                c._watchers.remove(self)
            self._characteristic = None

    @property
    def incoming_packet_length(self):
        return self._max

    @property
    def outgoing_packet_length(self):
        r = self._characteristic._service._radio if self._characteristic is not None else None
        mtus = [link.mtu - 3 for link in r.links] if r is not None and r.links else [_air.ATT_MTU_DEFAULT - 3]
        return min([self._max] + mtus)


class Descriptor:
    def __init__(self):
        raise TypeError("There is no regular constructor: use Descriptor.add_to_characteristic()")

    @classmethod
    def add_to_characteristic(cls, characteristic, uuid, *, read_perm=Attribute.OPEN, write_perm=Attribute.OPEN,
                              max_length=20, fixed_length=False, initial_value=b""):
        if not isinstance(characteristic, Characteristic):
            raise TypeError("Expected a Characteristic")
        if not isinstance(uuid, UUID):
            raise TypeError("Expected a UUID")
        _check_security(read_perm)
        _check_security(write_perm)
        value = _buffer(initial_value, "initial_value")
        if not 0 <= max_length <= 512 or len(value) > max_length or (fixed_length and len(value) != max_length):
            raise ValueError("initial_value length is wrong")
        self = cls.__new__(cls)
        self._uuid = uuid
        self._characteristic = characteristic
        self._value = value
        characteristic._descriptors.append(self)
        return self

    @property
    def uuid(self):
        return self._uuid

    @property
    def characteristic(self):
        return self._characteristic

    @property
    def value(self):
        return bytearray(self._value)

    @value.setter
    def value(self, value):
        self._value = _buffer(value, "value")


class Connection:
    """The peripheral's view of a link to a central."""

    def __init__(self):
        raise TypeError("Connections cannot be made directly: a central connects, or use Adapter.connect()")

    @classmethod
    def _of(cls, link):
        self = cls.__new__(cls)
        self._link = link
        return self

    def disconnect(self):
        self._link.close("peripheral disconnected")

    def pair(self, *, bond=True):
        raise NotImplementedError("pairing is not simulated")

    def discover_remote_services(self, service_uuids_whitelist=None):
        if not self._link.connected:
            raise ConnectionError("Connection has been disconnected and can no longer be used. Create a new "
                                  "connection.")
        return ()  # the simulated central offers no GATT services

    @property
    def connected(self):
        return self._link.connected

    @property
    def paired(self):
        return False

    @property
    def connection_interval(self):
        return self._link.interval_ms

    @connection_interval.setter
    def connection_interval(self, value):
        if 7.5 <= value <= 4000.0:
            self._link.interval_ms = float(value)

    @property
    def max_packet_length(self):
        return self._link.mtu - 3


class ScanEntry:
    def __init__(self):
        raise TypeError("Cannot be instantiated directly. Use _bleio.Adapter.start_scan.")

    def matches(self, prefixes, *, match_all=True):
        return _matches(self._data, _buffer(prefixes, "prefixes"), match_all)

    @property
    def address(self):
        return self._address

    @property
    def advertisement_bytes(self):
        return self._data

    @property
    def rssi(self):
        return self._rssi

    @property
    def connectable(self):
        return self._connectable

    @property
    def scan_response(self):
        return self._scan_response


def _ad_structures(data):
    """The AD structures of advertising data, each as bytes from its type byte on."""
    out = []
    i = 0
    while i < len(data):
        n = data[i]
        if n == 0 or i + 1 + n > len(data):
            break
        out.append(data[i + 1:i + 1 + n])
        i += 1 + n
    return out


def _matches(data, prefixes, match_all):
    if not prefixes:
        return True
    structs = _ad_structures(data)
    i = 0
    while i < len(prefixes):
        n = prefixes[i]
        prefix = prefixes[i + 1:i + 1 + n]
        i += 1 + n
        hit = any(s.startswith(prefix) for s in structs)
        if hit and not match_all:
            return True
        if not hit and match_all:
            return False
    return match_all


class ScanResults:
    """Nothing else advertises on the simulated air: iterating waits out the scan's timeout, then ends."""

    def __init__(self):
        raise TypeError("Cannot be instantiated directly. Use _bleio.Adapter.start_scan.")

    def __iter__(self):
        return self

    def __next__(self):
        if not self._done:
            self._done = True
            if self._timeout_s:
                r = _radio_or_raise()
                r.clock.advance(self._timeout_s * 1e9)
            else:
                raise NotImplementedError("a scan without a timeout never ends on the simulated air")
        raise StopIteration


class Adapter:
    """The board's BLE controller (``_bleio.adapter``). Only the native singleton exists; constructing one (an HCI
    co-processor) raises NotImplementedError, as on boards with native BLE."""

    def __init__(self, *, uart, rts, cts):
        raise NotImplementedError("native BLE: use _bleio.adapter")

    @classmethod
    def _native(cls, radio):
        self = cls.__new__(cls)
        self._radio = radio
        self._scan = None
        return self

    @property
    def enabled(self):
        return self._radio.enabled

    @enabled.setter
    def enabled(self, value):
        self._radio.set_enabled(value)

    @property
    def address(self):
        return Address(self._radio.address_bytes, Address.RANDOM_STATIC)

    @property
    def name(self):
        return self._radio.name

    @name.setter
    def name(self, value):
        if not isinstance(value, str):
            raise TypeError("name must be a str")
        self._radio.name = value

    def start_advertising(self, data, *, scan_response=None, connectable=True, anonymous=False, timeout=0,
                          interval=0.1, tx_power=0, directed_to=None):
        r = self._radio
        if not r.enabled:
            raise BluetoothError("Adapter not enabled")
        data = _buffer(data, "data")
        scan = b"" if scan_response is None else _buffer(scan_response, "scan_response")
        if not 0.02 <= interval <= 10.24:
            raise ValueError("interval must be in range 0.02-10.24")
        if r.adv is not None:
            raise BluetoothError("Already advertising.")
        if len(data) > 251 or len(scan) > 251:
            raise ValueError("Data too large for advertisement packet")
        if len(data) > _air.LEGACY_ADV_MAX and scan:
            raise BluetoothError("Extended advertisements with scan response not supported.")
        if data and directed_to is not None:
            raise BluetoothError("Data not supported with directed advertising")
        if anonymous:
            raise NotImplementedError()
        r.cost("adv_start")
        r.start_advertising(data, scan, connectable, interval)

    def stop_advertising(self):
        self._radio.cost("adv_stop")
        self._radio.stop_advertising()

    def start_scan(self, prefixes=b"", *, buffer_size=512, extended=False, timeout=None, interval=0.1, window=0.1,
                   minimum_rssi=-80, active=True):
        if self._scan is not None and not self._scan._done:
            raise BluetoothError("Scan already in progress. Stop with stop_scan.")
        if window > interval:
            raise ValueError("window must be <= interval")
        res = ScanResults.__new__(ScanResults)
        res._done = False
        res._timeout_s = timeout or 0
        self._scan = res
        return res

    def stop_scan(self):
        if self._scan is not None:
            self._scan._done = True
            self._scan = None

    @property
    def advertising(self):
        self._radio.cost("poll")
        return self._radio.adv is not None

    @property
    def connected(self):
        self._radio.cost("poll")
        return bool(self._radio.links)

    @property
    def connections(self):
        out = []
        for link in self._radio.links:
            if link.connection is None:
                link.connection = Connection._of(link)
            out.append(link.connection)
        return tuple(out)

    def connect(self, address, *, timeout):
        # only the firmware's own peripheral is on the simulated air: a connection as central never completes
        self._radio.clock.advance(float(timeout) * 1e9)
        raise BluetoothError("Failed to connect: timeout")

    def erase_bonding(self):
        pass
