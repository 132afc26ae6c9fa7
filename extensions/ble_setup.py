"""BLE setup: the Nordic UART service (adafruit_ble) carrying the line protocol of lib/fugu/lineproto.py, so a phone
with a BLE terminal app (nRF Toolbox UART, Serial Bluetooth Terminal, Bluefruit Connect) reads the status and reads
or changes settings after entering the PIN.

The PIN is the ``ble_pin`` setting, or a random 6-digit number at every boot when it is 0; it is printed on the
console and put in ``ctx.notices["ble_pin"]`` for the display. The device advertises the UART service UUID (flags +
128-bit UUID = 21 bytes) and puts its name "FUGU-xxxx" (the last two bytes of the BLE address) in the scan response:
the name does not fit next to the UUID in the 31 bytes of a legacy advertisement, and a longer one would become an
extended advertisement that most phones do not see.

Each tick does a little: reads what is waiting (never a blocking read: UARTService.read() waits up to 1 s for
missing bytes), answers at most one command, and writes at most OUT_BYTES_PER_TICK of the answers (adafruit_ble
cuts them into 20-byte notifications); after a disconnect the session locks again and advertising restarts.
"""

from fugu.extensions import Extension
from fugu.lineproto import LineProtocol

NAME_PREFIX = "FUGU-"
IN_BYTES_PER_TICK = 128
OUT_BYTES_PER_TICK = 240  # 12 notifications of 20 bytes
OUT_HIGH_WATER = 480  # no new command is answered while this much of the answers is still to be sent


def random_pin():
    """A 6-digit PIN from the hardware RNG (os.urandom), else the random module."""
    try:
        from os import urandom

        b = urandom(4)
        n = b[0] | b[1] << 8 | b[2] << 16 | (b[3] & 0x3F) << 24
    except Exception:  # no os.urandom on this port
        import random

        n = random.getrandbits(30)
    return 100000 + n % 900000


class BleSetup(Extension):
    name = "ble_setup"
    period_ms = 50
    budget_ms = 20

    def __init__(self, ctx):
        super().__init__(ctx)
        # radio, uart, proto, _adv, _scan: made in start() (adafruit_ble is imported only once a radio was found)
        self.started = False
        self.device_name = ""
        self.pin_source = ""
        self.sessions = 0
        self._in = b""
        self._out = b""
        self._connected = False
        self._adv_failed = False

    def probe(self):
        """The board's CircuitPython has native BLE: `_bleio` imports and has an adapter."""
        try:
            import _bleio
        except ImportError:
            return False
        try:
            adapter = _bleio.adapter
            return adapter is not None and isinstance(adapter, _bleio.Adapter)
        except Exception:
            return False

    def start(self):
        from adafruit_ble import BLERadio
        from adafruit_ble.advertising import Advertisement
        from adafruit_ble.advertising.standard import ProvideServicesAdvertisement
        from adafruit_ble.services.nordic import UARTService

        from fugu.settings import KEYS

        ctx = self.ctx
        pin = ctx.setting("ble_pin")
        if pin:
            self.pin_source = "from the ble_pin setting"
        else:
            pin = random_pin()
            self.pin_source = "random, new at every boot; set ble_pin to keep one"
        radio = BLERadio()
        ab = radio.address_bytes
        self.device_name = "%s%02X%02X" % (NAME_PREFIX, ab[1], ab[0])
        radio.name = self.device_name
        self.radio = radio
        self.uart = UARTService()
        self._adv = ProvideServicesAdvertisement(self.uart)
        scan = Advertisement()
        scan.complete_name = self.device_name
        self._scan = bytes(scan)  # the scan response: just the name (11 bytes for FUGU-xxxx)
        self.proto = LineProtocol(pin, ctx.request_setting, ctx.setting, ctx.telemetry, KEYS,
                                  ctx.settings.describe)
        ctx.notices["ble_pin"] = "%06d" % pin
        ctx.notices["ble_name"] = self.device_name
        ctx.notices["ble"] = "advertising"
        ctx.log("ble: %s, PIN %06d (%s)" % (self.device_name, pin, self.pin_source))
        self.started = True
        self._advertise()

    def _advertise(self):
        radio = self.radio
        if radio.advertising:
            return
        try:
            radio.start_advertising(self._adv, scan_response=self._scan)
            self._adv_failed = False
        except Exception as e:  # the stack refused (busy ...): say it once, try again next tick
            if not self._adv_failed:
                self.ctx.log("ble: advertising failed (%s: %s), retrying" % (type(e).__name__, e))
            self._adv_failed = True

    def tick(self, now_ms):
        if not self.radio.connected:
            if self._connected:
                self._connected = False
                self.proto.end_session()
                self._in = b""
                self._out = b""
                self.uart.reset_input_buffer()
                self.ctx.notices["ble"] = "advertising"
            self._advertise()
            return
        if not self._connected:
            self._connected = True
            self.sessions += 1
            self.ctx.notices["ble"] = "connected"
        uart = self.uart
        proto = self.proto
        if self._in:  # what the protocol could not take yet (a burst of lines): before reading more
            self._in = self._in[proto.push(self._in):]
        else:
            n = uart.in_waiting
            if n:
                data = uart.read(n if n < IN_BYTES_PER_TICK else IN_BYTES_PER_TICK)
                if data:
                    self._in = data[proto.push(data):]
        if len(self._out) < OUT_HIGH_WATER and proto.pending():
            answer = proto.step(now_ms)
            if answer:
                self._out += answer.encode()
        if self._out:
            uart.write(self._out[:OUT_BYTES_PER_TICK])
            self._out = self._out[OUT_BYTES_PER_TICK:]

    def stop(self):
        if not self.started:
            return
        radio = self.radio
        try:
            if radio.advertising:
                radio.stop_advertising()
            for c in radio.connections:
                if c is not None:
                    c.disconnect()
        except Exception as e:
            self.ctx.log("ble: stop: %s" % (e,))

    def status(self):
        if not self.started:
            return ""
        return "%s, advertisement %d + scan response %d bytes" % (self.device_name, len(bytes(self._adv)),
                                                                  len(self._scan))


EXTENSION = BleSetup
