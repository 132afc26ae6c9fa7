"""CAN extension: telemetry frames once a second and a setting read/write request, on an MCP2515 module on the
breakout's SPI bus (adafruit_mcp2515) or the ESP32-S3's own TWAI controller (canio). The frame map is
extensions/canmap.py = docs/fugu_can.dbc (docs/CAN.md).

The MCP2515 driver mirrors the canio API (send, listen, Message, Match), so both take the same code path. Sending
never waits: the MCP2515 has three TX buffers; when nobody acknowledges (an empty bus, a wrong bit rate) or the
controller is bus-off they stay full, the driver raises RuntimeError, and the frame is counted as dropped. canio's
send() drops silently instead (the ESP32 port ignores a full queue), so its state is read first. A bus-off TWAI
stays off on the ESP32 port, and its auto_restart only recovers it into ESP-IDF's stopped state, where send() does
nothing while the state reads ERROR_ACTIVE (tests/sim/test_canio.py): the CAN object is made anew instead, at most
every BUS_OFF_REOPEN_MS.
"""

import time

from fugu.extensions import Extension
from fugu.sensors import ticks_diff

from extensions import canmap

try:
    from supervisor import ticks_ms
except ImportError:
    from fugu.sensors import ticks_ms

CANSTAT, CANCTRL = 0x0E, 0x0F
CMD_RESET, CMD_READ = 0xC0, 0x03
CANCTRL_RESET = 0x87  # REQOP = configuration, CLKEN, CLKPRE = /8 (datasheet register 10-1)
MODE_MASK, MODE_CONFIG = 0xE0, 0x80
RESET_WAIT_S = 0.005  # oscillator start-up after RESET (the driver waits 10 ms)
SPI_HZ = 4000000  # the MCP2515 takes 10 MHz; the driver's default of 100 kHz costs ~2 ms per frame
CRYSTAL_HZ = 16000000  # the common modules; a board config may say breakout["can_osc_hz"] (8 MHz modules exist)
TX_PER_CALL = 3  # the MCP2515's TX buffers: never more per call, so a call never finds them busy on a working bus
RX_PER_TICK = 4
RESPONSE_QUEUE = 4
LISTEN_TIMEOUT_S = 0.01  # receive() is called only when in_waiting() says a frame is there, so it never waits;
# with 0 the driver's Listener gives up before it looks (its timer has expired once monotonic() moved at all)
BUS_OFF_REOPEN_MS = 5000  # canio: a bus-off controller is made anew this often (it costs 32 error frames a time)
REQUEST_MASKS = (0x7FF, 0x7FE)  # two distinct masks: with one, the driver leaves RXM1 open (= every frame) and
# prints a line; 0x7FE adds only our own response id (and ids 0/1 via the unused filters), which answer() ignores


def mcp2515_answers(dev):
    """An MCP2515 is on ``dev`` (adafruit_bus_device SPIDevice): after RESET, CANSTAT reads configuration mode and
    CANCTRL its reset value. No module leaves MISO high (0xFF), which fails both."""
    buf = bytearray(4)
    buf[0] = CMD_RESET
    with dev as spi:
        spi.write(buf, end=1)
    time.sleep(RESET_WAIT_S)
    buf[0] = CMD_READ
    buf[1] = CANSTAT
    buf[2] = 0
    buf[3] = 0
    with dev as spi:
        spi.write_readinto(buf, buf)  # CANSTAT, then CANCTRL (sequential read)
    return (buf[2] & MODE_MASK) == MODE_CONFIG and buf[3] == CANCTRL_RESET


class CanExtension(Extension):
    name = "can"
    period_ms = 50  # send what is queued (<= 3 frames), answer requests
    budget_ms = 20

    def __init__(self, ctx):
        super().__init__(ctx)
        self.backend = None  # "mcp2515" or "canio"
        self.bitrate = 0
        self.can = None
        self.listener = None
        self._cs = None
        self._int = None
        self._failing_states = ()  # type: tuple  # BusState values where frames do not go out (no ACK; bus-off)
        self._bus_off = None  # canio.BusState.BUS_OFF
        self._reopen_at = None  # ticks_ms of the next allowed re-making of a bus-off canio.CAN
        self._check_before_send = False
        self._slots = []  # per telemetry frame: [can_id, encoder, stage, payload, message]
        self._cursor = 0  # the slot to send next (round robin: when calls are scarce every frame still gets out)
        self._pending = 0  # frames of the current snapshot not yet sent
        self._responses = []  # encoded responses waiting for a TX buffer
        self._response_msg = None
        self._rx_more = False
        self._blocked = False
        self.sent = 0
        self.dropped = 0
        self.requests = 0
        self.malformed = 0
        self._dropped_at_block = 0

    # -- lifecycle ----------------------------------------------------------------------------------------------
    def probe(self):
        ctx = self.ctx
        if ctx.breakout.get("can_tx") and ctx.breakout.get("can_rx"):
            try:
                import canio  # noqa: F401  (the ESP32-S3's TWAI controller; a transceiver has no identity to check)

                self.backend = "canio"
                return True
            except ImportError:
                pass
        cs_pin = ctx.pin("can_cs")
        if cs_pin is None:
            return False
        spi = ctx.spi()
        if spi is None:
            return False
        from adafruit_bus_device.spi_device import SPIDevice

        cs = ctx.mods["digitalio"].DigitalInOut(cs_pin)
        try:
            found = mcp2515_answers(SPIDevice(spi, cs, baudrate=SPI_HZ))
        except Exception:
            cs.deinit()
            raise
        if not found:
            cs.deinit()
            return False
        try:
            import adafruit_mcp2515  # noqa: F401
        except ImportError:
            cs.deinit()
            raise ImportError("an MCP2515 answers but adafruit_mcp2515 is missing: "
                              "circup install adafruit-circuitpython-mcp2515")
        self._cs = cs
        self.backend = "mcp2515"
        return True

    def start(self):
        ctx = self.ctx
        self.bitrate = ctx.setting("can_bitrate")
        if self.backend == "canio":
            import canio

            self._open_canio()
            self._failing_states = (canio.BusState.ERROR_PASSIVE, canio.BusState.BUS_OFF)
            self._bus_off = canio.BusState.BUS_OFF
            self._check_before_send = True  # its send() drops silently when the TX queue is full
            self._make_messages(canio.Message)
        else:
            import adafruit_mcp2515
            from adafruit_mcp2515.canio import BusState, Match, Message

            osc = ctx.breakout.get("can_osc_hz", CRYSTAL_HZ)
            try:
                self.can = adafruit_mcp2515.MCP2515(ctx.spi(), self._cs, baudrate=self.bitrate, crystal_freq=osc)
            except KeyError:
                raise ValueError("can_bitrate %d bit/s is not possible with a %d MHz MCP2515 crystal"
                                 % (self.bitrate, osc // 1000000))
            dev = getattr(self.can, "_bus_device_obj", None)
            if dev is not None and hasattr(dev, "baudrate"):
                dev.baudrate = SPI_HZ
            self.listener = self.can.listen(matches=[Match(canmap.ID_REQUEST, mask=m) for m in REQUEST_MASKS],
                                            timeout=LISTEN_TIMEOUT_S)
            self._make_messages(Message)
            self._failing_states = (BusState.ERROR_PASSIVE, BusState.BUS_OFF)
            int_pin = ctx.pin("can_int")
            if int_pin is not None:
                self._int = ctx.mods["digitalio"].DigitalInOut(int_pin)  # input by default; active low

    def _open_canio(self):
        """The TWAI controller (no auto_restart: see the module's docstring) and its listener for requests."""
        import canio

        ctx = self.ctx
        self.can = canio.CAN(ctx.pin("can_tx"), ctx.pin("can_rx"), baudrate=self.bitrate)
        self.listener = self.can.listen(matches=[canio.Match(canmap.ID_REQUEST)], timeout=LISTEN_TIMEOUT_S)

    def _reopen_if_bus_off(self):
        now = ticks_ms()
        if self._reopen_at is not None and ticks_diff(now, self._reopen_at) < 0:
            return
        can = self.can
        try:
            if can is not None and can.state != self._bus_off:
                return
        except Exception:
            pass  # a CAN object that fails: made anew as well
        self._reopen_at = now + BUS_OFF_REOPEN_MS
        for obj in (self.listener, can):
            if obj is not None:
                try:
                    obj.deinit()
                except Exception:
                    pass
        self.listener = self.can = None
        self._open_canio()

    def _make_messages(self, message_cls):
        """One reusable Message per telemetry frame and one for responses (the backend's Message class)."""
        self._slots = []
        for can_id, encoder, k in canmap.telemetry_frames(len(self.ctx.telemetry.channels)):
            payload = bytearray(canmap.FRAME_DLC)
            self._slots.append([can_id, encoder, k, payload, message_cls(can_id, bytes(canmap.FRAME_DLC))])
        self._response_msg = message_cls(canmap.ID_RESPONSE, bytes(canmap.RESPONSE_DLC))

    def stop(self):
        for obj in (self.listener, self.can, self._int, self._cs):
            if obj is not None:
                try:
                    obj.deinit()
                except Exception:
                    pass
        self.listener = None
        self.can = None
        self._int = None
        self._cs = None

    def status(self):
        if self.backend == "canio":
            return "native canio, %d kbit/s" % (self.bitrate // 1000)
        return "MCP2515, %d kbit/s, %d MHz crystal, %d frames/s, requests on 0x%03X" % (
            self.bitrate // 1000, self.ctx.breakout.get("can_osc_hz", CRYSTAL_HZ) // 1000000, len(self._slots),
            canmap.ID_REQUEST)

    # -- work -----------------------------------------------------------------------------------------------
    def observe(self, tel):
        if tel.seq == 0:
            return  # no snapshot yet
        self.dropped += self._pending  # the last snapshot's frames that never went out
        for slot in self._slots:
            slot[1](tel, slot[2], slot[3])
        self._pending = len(self._slots)
        # send the first frames now: the host makes one extension call per control step, round robin, and while the
        # converter is off the loop runs at 10 Hz, so with every extension plugged this one gets ~2 calls a second
        self._transmit()

    def tick(self, now_ms):
        self._receive()
        self._transmit()

    def _receive(self):
        listener = self.listener
        if listener is None:
            return
        if self._int is not None and self._int.value and not self._rx_more:
            return  # INT high: nothing in the RX buffers
        self._rx_more = False
        for _ in range(RX_PER_TICK):
            try:
                if not listener.in_waiting():
                    return
                msg = listener.receive()
            except (RuntimeError, OSError):
                return
            if msg is None:
                self._rx_more = True
                return
            self._handle(msg)
        self._rx_more = True

    def _handle(self, msg):
        data = getattr(msg, "data", None)  # a RemoteTransmissionRequest has none
        out = bytearray(canmap.RESPONSE_DLC)
        status = canmap.answer(msg.id, b"" if data is None else data, msg.extended, data is None, self.ctx.setting,
                               self.ctx.request_setting, out)
        if status is None:
            return
        self.requests += 1
        if status == canmap.ST_MALFORMED:
            self.malformed += 1
        if len(self._responses) >= RESPONSE_QUEUE:
            self._responses.pop(0)
            self.dropped += 1
        self._responses.append(out)

    def _transmit(self):
        budget = TX_PER_CALL
        resp = self._response_msg
        while budget > 0 and self._responses and resp is not None:
            resp.data = self._responses[0]
            if not self._send(resp):
                return
            self._responses.pop(0)
            budget -= 1
        n = len(self._slots)
        while budget > 0 and self._pending > 0:
            slot = self._slots[self._cursor]
            msg = slot[4]
            msg.data = slot[3]
            if not self._send(msg):
                return  # retried next call; dropped if still unsent at the next snapshot
            self._cursor = (self._cursor + 1) % n
            self._pending -= 1
            budget -= 1

    def _send(self, msg):
        can = self.can
        if can is None:
            return False
        try:
            if self._check_before_send and self._bus_failing():
                raise RuntimeError("bus failing")
            can.send(msg)
        except (RuntimeError, OSError):
            # MCP2515: all TX buffers still busy (the driver raises). A working bus empties them within
            # milliseconds; the error state tells a bus nobody acknowledges (error passive: an empty bus or a wrong
            # bit rate) or a bus-off controller from a merely busy one
            if self._bus_off is not None:
                self._reopen_if_bus_off()
            if not self._blocked and self._bus_failing():
                self._blocked = True
                self._dropped_at_block = self.dropped
                self.ctx.notices["can"] = "CAN: no ACK"
                self.ctx.log("ext can: frames are not going out (no other node acknowledges: an empty bus or a "
                             "wrong bit rate; or bus-off); dropping them until the bus works")
            return False
        self.sent += 1
        if self._blocked:
            self._blocked = False
            self.ctx.notices.pop("can", None)
            self.ctx.log("ext can: bus works again (%d frames dropped)" % (self.dropped - self._dropped_at_block))
        return True

    def _bus_failing(self):
        can = self.can
        try:
            return can is None or can.state in self._failing_states
        except Exception:
            return True


EXTENSION = CanExtension
