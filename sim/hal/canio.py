"""Stand-in for CircuitPython's ``canio`` on the ESP32 / ESP32-S3 (ports/espressif/common-hal/canio, CircuitPython
10): the TWAI controller (sim/devices/twai.py) on the bus behind the board's transceiver, with the port's
behaviour kept, since the firmware has to live with it:

* ``send()`` never blocks and never raises for the bus: twai_transmit with a 0 timeout, its result ignored (a full
  TX queue, bus-off or a stopped driver drop the frame silently). With ``auto_restart`` it first starts the
  recovery of a bus-off controller and waits up to ~100 ms for it; ESP-IDF then leaves the driver STOPPED, which
  this port never restarts: nothing is sent until the CAN object is made anew.
* ``state``: BUS_OFF while bus-off or recovering, else by the counters (> 127 passive, > 96 warning).
* one controller, one Listener with at most one Match (the single acceptance filter; its standard/extended check
  is left open by the port, so a standard Match also passes extended frames whose top 11 id bits match);
  ``in_waiting()`` is 0 or 1 (one frame is taken from the RX queue into a holding slot); ``receive()`` waits up to
  ``timeout`` in simulated time, then gives None.
* baud rates from ESP-IDF's timing table only; loopback (no-ACK mode, own frames received) or silent (listen
  only), not both.

Which bus: the one sim/breakout/can.py registers for the TWAI pins (``board.twai_buses``); none registered means a
transceiver with no other node on its bus (nothing is acknowledged). Each call costs CALL_US of simulated time.
Boards without canio: ``sim.breakout.without_core_modules``. Signatures follow circuitpython-stubs.
"""

from sim.devices import twai
from sim.simboard import active, active_or_none

if "canio" in getattr(active_or_none(), "without_modules", ()):
    raise ImportError("no module named 'canio'")

CALL_US = 10.0  # a canio call in C: ESP-IDF queue operations (estimate)
BAUDRATES = (1000000, 800000, 500000, 250000, 125000, 100000, 50000, 25000, 20000, 16000, 12500, 10000, 5000, 1000)
RESTART_WAIT_NS = int(100 / 1024 * 1e9)  # 100 ticks of port_get_raw_ticks (1/1024 s)


def _cost():
    b = active()
    b.clock.advance(CALL_US * 1000)
    b.clock.run_events()
    return b


class _State:
    def __init__(self, name):
        self._name = name

    def __repr__(self):
        return "canio.BusState.%s" % self._name


class BusState:
    """The state of the CAN bus."""

    ERROR_ACTIVE = _State("ERROR_ACTIVE")
    ERROR_WARNING = _State("ERROR_WARNING")
    ERROR_PASSIVE = _State("ERROR_PASSIVE")
    BUS_OFF = _State("BUS_OFF")


def _check_length(n, what):
    if not 0 <= n <= 8:
        raise ValueError("%s length must be 0-8" % what)


class Message:
    def __init__(self, id, data, *, extended=False):  # noqa: A002 (CircuitPython's name)
        self.id = id
        self.data = data
        self.extended = extended

    @property
    def data(self):
        return self._data

    @data.setter
    def data(self, value):
        value = bytes(memoryview(value))
        _check_length(len(value), "data")
        self._data = value


class RemoteTransmissionRequest:
    def __init__(self, id, length, *, extended=False):  # noqa: A002
        _check_length(length, "length")
        self.id = id
        self.length = length
        self.extended = extended


class Match:
    """Messages with this id (all the bits of ``mask`` equal), standard or extended."""

    def __init__(self, id, *, mask=None, extended=False):  # noqa: A002
        bits = 0x1FFFFFFF if extended else 0x7FF
        if mask is None:
            mask = bits
        if id & ~bits:
            raise ValueError("id out of range")
        if mask & ~bits:
            raise ValueError("mask out of range")
        self.id = id
        self.mask = mask
        self.extended = extended


class CAN:
    """CAN bus protocol on the TWAI controller."""

    def __init__(self, tx, rx, *, baudrate=250000, loopback=False, silent=False, auto_restart=False):
        b = active()
        held = getattr(b, "twai_in_use", None)  # the board's one TWAI controller
        if held is not None and b.pin(held._tx).owner is not held:
            held.deinit()  # an MCU reset released its pins: the port's canio_reset uninstalled the driver
        if getattr(b, "twai_in_use", None) is not None:
            raise ValueError("All CAN peripherals are in use")
        if loopback and silent:
            raise ValueError("loopback + silent mode not supported by peripheral")
        if baudrate not in BAUDRATES:
            raise ValueError("Baudrate not supported by peripheral")
        self._tx, self._rx = b.pin(tx._name).name, b.pin(rx._name).name
        b.claim(self._tx, self)
        try:
            b.claim(self._rx, self)
        except ValueError:
            b.release(self._tx, self)
            raise
        bus = getattr(b, "twai_buses", {}).get((self._tx, self._rx))
        if bus is None:  # a transceiver, and nobody else on its bus
            from sim.devices.mcp2515 import CANBus

            bus = CANBus(b.clock, bitrate=baudrate, ack=False)
        mode = twai.NO_ACK if loopback else (twai.LISTEN_ONLY if silent else twai.NORMAL)
        self._ctrl = twai.TWAIController(b, bus, baudrate, mode)
        self._board = b
        self._baudrate = baudrate
        self._loopback = bool(loopback)
        self._silent = bool(silent)
        self._auto_restart = bool(auto_restart)
        self._listener = None
        b.twai_in_use = self

    def _check(self):
        if self._ctrl is None:
            raise ValueError("Object has been deinitialized and can no longer be used. Create a new object.")
        _cost()

    @property
    def auto_restart(self):
        self._check()
        return self._auto_restart

    @auto_restart.setter
    def auto_restart(self, value):
        self._check()
        self._auto_restart = bool(value)
        self._maybe_auto_restart()

    @property
    def baudrate(self):
        self._check()
        return self._baudrate

    @property
    def transmit_error_count(self):
        self._check()
        return self._ctrl.status()[1]

    @property
    def receive_error_count(self):
        self._check()
        return self._ctrl.status()[2]

    @property
    def state(self):
        self._check()
        st, tec, rec, _ = self._ctrl.status()
        if st in (twai.BUS_OFF, twai.RECOVERING):
            return BusState.BUS_OFF
        if tec > 127 or rec > 127:
            return BusState.ERROR_PASSIVE
        if tec > 96 or rec > 96:
            return BusState.ERROR_WARNING
        return BusState.ERROR_ACTIVE

    @property
    def loopback(self):
        self._check()
        return self._loopback

    @property
    def silent(self):
        self._check()
        return self._silent

    def _restart(self):
        ctrl = self._ctrl
        if ctrl.status()[0] != twai.BUS_OFF:
            return
        ctrl.initiate_recovery()
        clock = self._board.clock
        deadline = clock.now_ns + RESTART_WAIT_NS
        while clock.now_ns < deadline and ctrl.status()[0] in (twai.BUS_OFF, twai.RECOVERING):
            clock.advance(100_000)
            clock.run_events()

    def _maybe_auto_restart(self):
        if self._auto_restart:
            self._restart()

    def restart(self):
        """If the device is in the bus off state, restart it (only without auto_restart, as the port does)."""
        self._check()
        if not self._auto_restart:
            self._restart()

    def listen(self, matches=None, *, timeout=10):
        self._check()
        matches = list(matches or ())
        for m in matches:
            if not isinstance(m, Match):
                raise TypeError("expected Match")
        if self._listener is not None:
            raise ValueError("All RX FIFOs in use")
        if len(matches) > 1:
            raise ValueError("Filters too complex")
        self._listener = Listener(self, matches, timeout)
        return self._listener

    def send(self, message):
        self._check()
        if type(message) not in (Message, RemoteTransmissionRequest):
            raise TypeError("expected 'Message' or 'RemoteTransmissionRequest' but got '%s'"
                            % type(message).__name__)
        self._maybe_auto_restart()
        rtr = type(message) is RemoteTransmissionRequest
        self._ctrl.transmit(message.id, message.extended, b"" if rtr else message.data, rtr, self_rx=self._loopback)

    def deinit(self):
        if self._ctrl is not None:
            self._ctrl.uninstall()
            self._ctrl = None
            self._board.release(self._tx, self)
            self._board.release(self._rx, self)
            if getattr(self._board, "twai_in_use", None) is self:
                self._board.twai_in_use = None

    def __enter__(self):
        return self

    def __exit__(self, unused1, unused2, unused3):
        self.deinit()


class Listener:
    """Listens for CAN messages (made by CAN.listen)."""

    def __init__(self, can, matches, timeout):
        self._can = can
        ctrl = can._ctrl
        if not matches:
            ctrl.acr, ctrl.amr = 0, 0xFFFFFFFF
        elif matches[0].extended:
            ctrl.acr, ctrl.amr = matches[0].id << 3, ~(matches[0].mask << 3) & 0xFFFFFFFF
        else:
            ctrl.acr, ctrl.amr = matches[0].id << 21, ~(matches[0].mask << 21) & 0xFFFFFFFF
        self._pending = None
        self.timeout = timeout

    @property
    def timeout(self):
        return self._timeout_ms / 1000.0

    @timeout.setter
    def timeout(self, value):
        self._timeout_ms = int(-(-float(value) * 1000 // 1))  # ceil, as the port

    def _check(self):
        if self._can is None or self._can._ctrl is None:
            raise ValueError("Object has been deinitialized and can no longer be used. Create a new object.")

    def _take(self):
        if self._pending is None:
            self._pending = self._can._ctrl.receive()
        return self._pending is not None

    def in_waiting(self):
        self._check()
        _cost()
        return 1 if self._take() else 0

    def receive(self):
        self._check()
        b = _cost()
        if not self._take():
            deadline = b.clock.now_ns + self._timeout_ms * 1000000
            while True:
                if b.clock.now_ns > deadline:
                    return None
                b.clock.advance(1000000)  # RUN_BACKGROUND_TASKS between looks
                b.clock.run_events()
                if self._take():
                    break
        f = self._pending
        self._pending = None
        if f.rtr:
            return RemoteTransmissionRequest(f.id, len(f.data), extended=f.extended)
        return Message(f.id, f.data, extended=f.extended)

    def __iter__(self):
        return self

    def __next__(self):
        msg = self.receive()
        if msg is None:
            raise StopIteration
        return msg

    def deinit(self):
        if self._can is not None and self._can._listener is self:
            self._can._listener = None
        self._can = None

    def __enter__(self):
        return self

    def __exit__(self, unused1, unused2, unused3):
        self.deinit()
