"""The simulated board: pins, buses, non-volatile memory and the cost model, shared by the stand-in modules.

The stand-ins for CircuitPython's core modules (``sim/hal``) are thin: each call looks up the active SimBoard and
asks it. Device emulators attach to buses (I2C address, SPI chip select, UART pins); the plant attaches to pins
(outputs it listens to, analog and digital inputs it drives). Nothing here knows about MPPT.
"""

import errno

from sim.clock import SimClock, SimReset

_ACTIVE = None


def active():
    """The SimBoard the stand-in modules talk to (raises if none: importing `board` outside a simulation)."""
    if _ACTIVE is None:
        raise RuntimeError("no simulated board is active (create sim.simboard.SimBoard(...) and call .activate())")
    return _ACTIVE


def active_or_none():
    return _ACTIVE


class CostModel:
    """How long things take on the device (simulated microseconds). Defaults are estimates for CircuitPython 10
    on an ESP32-S3 at 240 MHz: ESP-IDF's I2C driver costs ~100 us of set-up per transaction on top of the wire
    time, Python-level driver glue (I2CDevice context manager, struct packing) another ~50 us; a pin access is a few
    microseconds; analogio creates and deletes the oneshot ADC unit on every read. ``control_step_us`` is charged each
    time the firmware feeds the watchdog (once per control step by design): the Python work of one step that is not
    already charged per call. Measure on the device and override in a scenario ([board.cost])."""

    def __init__(self, **overrides):
        self.i2c_call_us = 150.0
        self.spi_call_us = 40.0
        self.uart_call_us = 20.0
        self.pin_read_us = 4.0
        self.pin_write_us = 4.0
        self.pwm_write_us = 12.0
        self.analog_read_us = 45.0
        self.time_read_us = 2.0
        self.control_step_us = 2500.0
        self.nvm_write_ms = 35.0
        for k, v in overrides.items():
            if not hasattr(self, k) or k.endswith("_ns"):
                known = sorted(n for n in vars(self) if not n.endswith("_ns"))
                raise ValueError("unknown cost model key %r (known: %s)" % (k, ", ".join(known)))
            setattr(self, k, float(v))

    def __setattr__(self, key, value):
        """Each ``x_us`` also sets ``x_ns`` (integer nanoseconds): the hot paths (pin and clock reads, hundreds of
        thousands per simulated minute) add it to the clock without a multiplication and a conversion."""
        object.__setattr__(self, key, value)
        if key.endswith("_us"):
            object.__setattr__(self, key[:-3] + "_ns", int(round(value * 1000.0)))


class PinWire:
    """One GPIO as the outside world sees it. ``source`` (callable returning bool) drives it when the MCU reads it
    as an input; ``listeners`` are told (name, kind, value) when the MCU drives it."""

    __slots__ = ("name", "owner", "source", "analog_source", "listeners", "driven", "pull", "edge_listeners")

    def __init__(self, name):
        self.name = name
        self.owner = None
        self.source = None
        self.analog_source = None
        self.listeners = []
        self.edge_listeners = []
        self.driven = None  # last value the MCU drove, None when input/high impedance
        self.pull = None


class SimBoard:
    """A board under simulation. Typical use (see sim.runner):

        b = SimBoard(pin_names=[...], aliases={"SDA": "IO21"}, board_id="...")
        b.add_i2c_device(("IO22", "IO21"), 0x48, ads_emulator)
        b.activate()
    """

    ticks_offset_ms = 0  # supervisor.ticks_ms() = now + this (set it to try the 2**29 wrap early)

    def __init__(self, pin_names, aliases=None, board_id="fugu_sim", clock=None, cost=None, nvm_size=8192):
        self.clock = clock or SimClock()
        self.cost = cost or CostModel()
        self.board_id = board_id
        self.pins = {}
        for n in pin_names:
            self.pins[n] = PinWire(n)
        self.aliases = dict(aliases or {})
        for alias, target in self.aliases.items():
            if target not in self.pins:
                raise ValueError("board alias %s names unknown pin %s" % (alias, target))
        self.i2c_devices = {}  # (scl, sda) -> {addr: device}
        self.spi_devices = {}  # (sck, mosi, miso) -> {cs_pin_name: device}
        self.uart_peers = {}  # (tx, rx) -> peer
        self.nvm = bytearray(b"\xff" * nvm_size)
        self.nvm_writes = 0
        self.nvm_fail_after_bytes = None  # power-cut injection: the next write stops after N bytes
        self.on_nvm_write = None
        self.watchdog = WatchdogState(self)
        self.cpu_temperature_c = 45.0
        self.resets = []  # (t_ns, reason)
        self.console = []  # lines the firmware printed (the runner captures stdout)
        self.guards = []  # callables(now_ns) run after every clock advance (realtime pacing, display refresh)
        self.clock.guard = self._guard
        self.clock.always_guard = self.guards  # the same list: the clock checks it is empty, cheaply
        self.clock.set_guard_due(None)  # the watchdog arms it when started

    # -- lifecycle ------------------------------------------------------------------------------------------
    def activate(self):
        global _ACTIVE
        _ACTIVE = self
        return self

    def deactivate(self):
        global _ACTIVE
        if _ACTIVE is self:
            _ACTIVE = None

    def _guard(self, now_ns):
        self.watchdog.check(now_ns)
        for g in self.guards:
            g(now_ns)

    def release_all_pins(self):
        """What a reset does to the MCU side: every pin back to input/high impedance, listeners told."""
        for p in self.pins.values():
            self.release(p.name, p.owner)

    # -- pins -----------------------------------------------------------------------------------------------
    def pin(self, name):
        name = self.aliases.get(name, name)
        try:
            return self.pins[name]
        except KeyError:
            raise AttributeError("board has no pin %s" % name) from None

    def claim(self, name, owner):
        p = self.pin(name)
        if p.owner is not None:
            raise ValueError("%s in use" % p.name)
        p.owner = owner
        return p

    def release(self, name, owner):
        p = self.pin(name)
        if p.owner is owner:
            p.owner = None
            if p.driven is not None:
                p.driven = None
                for cb in p.listeners:
                    cb(p.name, "release", None)

    def drive(self, name, kind, value):
        """The MCU drives a pin: kind 'digital' (bool), 'pwm' ((duty_fraction, frequency_hz)), 'release'."""
        p = self.pin(name)
        self.clock.sync()
        p.driven = value
        for cb in p.listeners:
            cb(p.name, kind, value)

    def read_digital(self, name):
        return self.read_wire(self.pin(name))

    def read_wire(self, p):
        """A digital read of a PinWire (digitalio holds its wire, sparing the name lookup): only the events that
        are due run (an ADC's RDY edge is the chip's own timing, not the plant's), so a polling loop costs no
        plant steps."""
        clock = self.clock
        now = clock.now_ns + self.cost.pin_read_ns  # clock.advance, inlined (the RDY poll loop's hot path)
        clock.now_ns = now
        if now >= clock.alarm_ns or clock.always_guard:
            clock._alarm()
        events = clock._events
        if events and events[0][0] <= clock.now_ns:
            clock.run_events()
        d = p.driven
        if d is not None and d.__class__ is not tuple:
            return bool(p.driven)
        if p.source is not None:
            return bool(p.source())
        if p.pull == "up":
            return True
        return False

    def read_analog_v(self, name):
        p = self.pin(name)
        self.clock.advance(self.cost.analog_read_us * 1000)
        self.clock.sync()
        if p.analog_source is None:
            return 0.0
        return float(p.analog_source())

    def listen(self, name, callback):
        self.pin(name).listeners.append(callback)

    def set_input(self, name, source=None, analog_source=None):
        p = self.pin(name)
        if source is not None:
            p.source = source
        if analog_source is not None:
            p.analog_source = analog_source

    def edge(self, name, rising):
        """An input pin changed level (sources that know their edges call this, for countio)."""
        for cb in self.pin(name).edge_listeners:
            cb(rising)

    # -- buses ----------------------------------------------------------------------------------------------
    def add_i2c_device(self, scl_sda, address, device):
        key = (self.aliases.get(scl_sda[0], scl_sda[0]), self.aliases.get(scl_sda[1], scl_sda[1]))
        self.i2c_devices.setdefault(key, {})[address] = device

    def remove_i2c_device(self, scl_sda, address):
        key = (self.aliases.get(scl_sda[0], scl_sda[0]), self.aliases.get(scl_sda[1], scl_sda[1]))
        self.i2c_devices.get(key, {}).pop(address, None)

    def i2c_bus(self, scl, sda):
        return self.i2c_devices.setdefault((self.pin(scl).name, self.pin(sda).name), {})

    def add_spi_device(self, sck_mosi_miso, cs_pin, device):
        key = tuple(self.aliases.get(n, n) for n in sck_mosi_miso)
        self.spi_devices.setdefault(key, {})[self.pin(cs_pin).name] = device

    def spi_bus(self, sck, mosi, miso):
        key = (self.pin(sck).name, self.pin(mosi).name if mosi else None, self.pin(miso).name if miso else None)
        return self.spi_devices.setdefault(key, {})

    def add_uart_peer(self, tx, rx, peer):
        self.uart_peers[(self.pin(tx).name, self.pin(rx).name)] = peer

    # -- nvm ------------------------------------------------------------------------------------------------
    def nvm_write(self, index, data):
        """microcontroller.nvm slice/item write. The ESP32 port rewrites the whole NVS blob per write (slow);
        a power cut can be injected so that only the first N bytes of this write land."""
        self.clock.advance(self.cost.nvm_write_ms * 1e6)
        self.nvm_writes += 1
        n = len(data)
        if self.nvm_fail_after_bytes is not None:
            k = self.nvm_fail_after_bytes
            self.nvm_fail_after_bytes = None
            self.nvm[index:index + min(k, n)] = data[:min(k, n)]
            raise SimReset("power cut during nvm write after %d of %d bytes" % (min(k, n), n))
        self.nvm[index:index + n] = data
        if self.on_nvm_write is not None:
            self.on_nvm_write(index, bytes(data))


class WatchdogState:
    """microcontroller.watchdog: in RESET mode a missed feed resets the MCU; in RAISE mode the firmware gets
    watchdog.WatchDogTimeout at its next call into the board. The deadline is handed to the clock (its alarm), so
    the many clock advances between feeds cost no check."""

    def __init__(self, board):
        self.board = board
        self.timeout_s = None
        self._mode = None  # None (off), "RAISE", "RESET"
        self._deadline_ns = None
        self.feeds = 0
        self.feed_times_ns = []  # recent feed times, for the loop-rate statistic
        self.on_feed = None

    @property
    def deadline_ns(self):
        return self._deadline_ns

    @deadline_ns.setter
    def deadline_ns(self, value):
        self._deadline_ns = value
        self._arm()

    @property
    def mode(self):
        return self._mode

    @mode.setter
    def mode(self, value):
        self._mode = value
        self._arm()

    def _arm(self):
        due = None
        if self._mode is not None and self._deadline_ns is not None:
            due = self._deadline_ns + 1  # check() fires when now > deadline
        self.board.clock.set_guard_due(due)

    def feed(self):
        if self.mode is None:
            raise RuntimeError("WatchDogTimer is not active")  # matches the core's error when mode is None
        self.board.clock.advance(self.board.cost.control_step_us * 1000)
        self.feeds += 1
        now = self.board.clock.now_ns
        self.deadline_ns = now + int(self.timeout_s * 1e9)
        if self.on_feed is not None:
            self.on_feed(now)

    def start(self):
        if self.timeout_s is None:
            raise ValueError("timeout must be set before mode")
        self.deadline_ns = self.board.clock.now_ns + int(self.timeout_s * 1e9)

    def stop(self):
        self.mode = None
        self.deadline_ns = None

    def check(self, now_ns):
        if self.mode is not None and self.deadline_ns is not None and now_ns > self.deadline_ns:
            mode = self.mode
            self.deadline_ns = None
            if mode == "RESET":
                self.mode = None
                raise SimReset("watchdog timeout")
            from watchdog import WatchDogTimeout  # the stand-in module

            self.mode = None
            raise WatchDogTimeout("Watchdog timer expired.")


def oserror_nodev():
    """What the ESP32 port raises for an I2C address nobody acknowledges."""
    return OSError(errno.ENODEV, "No such device")
