"""Host side of the bridge: MicroPython's stand-ins (devicecheck/mp) call the CPython simulated board.

Each guest call names an operation (``host.call(op, payload)``); its integer arguments sit in the guest's request
buffer, byte data in the firmware's own buffers (addresses passed as arguments). The operations forward to the
simulator's CircuitPython stand-ins (``sim/hal``: the same objects, checks, error messages and costs the CPython
simulation uses), so I2C bytes reach the register-level ADC emulators, pins reach the plant, time is the simulated
clock and nvm is the simulated board's.

Accounting done here:
- instruction count: the Wasmtime fuel spent between a stand-in's ``leave`` and the next ``enter`` is the
  firmware's (drivers included: they are Python on the device too); what the stand-ins do is not counted.
- control steps: each watchdog feed; the first one triggers the heap measurement in the guest, the last one stops
  the run.
"""

import struct

from sim.clock import SimReset, SimulationEnd

from devicecheck.wasm import GuestAbort

OK, ERROR = 0, 1
# heap measurements (devicecheck/mp/_hostlink.py has the same numbers)
MEASURE_BASELINE, MEASURE_BOOT_LIVE, MEASURE_BOOT, MEASURE_CHECK, MEASURE_END, MEASURE_UNWOUND = 1, 2, 3, 4, 5, 6
CHECK_EVERY_STEPS = 100

_REQ = struct.Struct("<10id")


class Link:
    """Decodes guest calls, writes results, keeps the instruction and allocation books."""

    def __init__(self, interp):
        self.interp = interp
        self.ops = {}
        self.req = self.resp = self.fval = None
        self.in_window = False
        self.counting = False
        self.fw_fuel = 0
        self.calls = 0
        self._last_leave = None
        self._flag = 0
        interp.handlers["("] = self._enter
        interp.handlers[")"] = self._leave
        interp.handlers["link.setup"] = self._setup

    def add(self, name, fn):
        """fn(args, x, payload) -> None | bool | int | float | str (text goes back as host.call's result)."""
        self.ops[name] = fn
        self.interp.handlers[name] = lambda payload, _fn=fn: self._dispatch(_fn, payload)

    def set_flag(self, flag):
        self._flag = flag

    # -- marks --------------------------------------------------------------------------------------------
    def _setup(self, payload):
        self.req, self.resp, self.fval = (int(x) for x in payload.split())
        self._last_leave = self.interp.fuel()

    def _enter(self, payload):
        if not self.in_window:
            now = self.interp.fuel()
            if self.counting:
                self.fw_fuel += self._last_leave - now
                self.calls += 1
            self.in_window = True
        return None

    def _leave(self, payload):
        self.in_window = False
        self._last_leave = self.interp.fuel()
        return None

    def start_counting(self):
        self.counting = True
        self.fw_fuel = 0
        self.calls = 0

    # -- calls --------------------------------------------------------------------------------------------
    def _dispatch(self, fn, payload):
        self._enter(payload)
        vals = _REQ.unpack(self.interp.read(self.req, _REQ.size))
        args, x = vals[:10], vals[10]
        self._flag = 0
        status, text, value = OK, None, None
        try:
            value = fn(args, x, payload)
        except SimReset as e:  # the MCU resets: this check ends there (the runner in sim/ restarts code.py)
            raise GuestAbort("reset: %s" % e.reason) from None
        except SimulationEnd:
            raise GuestAbort("simulated time is up") from None
        except GuestAbort:
            raise
        except OSError as e:
            status = ERROR
            text = "OSError\n%s\n%s" % (e.errno if e.errno is not None else "", e.strerror or (e.args[0] if e.args
                                                                                                else ""))
        except Exception as e:  # noqa: BLE001 (the firmware gets the same exception type the simulator raised)
            status = ERROR
            text = "%s\n\n%s" % (type(e).__name__, e)
        if isinstance(value, str):
            text, value = value, None
        sign = 0
        if isinstance(value, float):
            self.interp.write(self.fval, struct.pack("<d", value))
            value = None
        ival = 0
        if value is not None:
            ival = int(value)
            if ival < 0:
                sign, ival = 1, -ival
        self.interp.write(self.resp, struct.pack("<BBB5xQ", status, self._flag, sign, ival & (2 ** 64 - 1)))
        if status != OK:  # the guest raises right away: the stand-in's window ends here
            self._leave(payload)
        return text


class BoardOps:
    """The operations, on the simulated board (``sim.simboard``) through the CPython stand-ins in sim/hal."""

    def __init__(self, link, board, on_feed=None, on_report=None, on_measure=None, task="run /code.py"):
        import analogio
        import busio
        import countio
        import digitalio
        import microcontroller
        import pwmio
        import storage
        import supervisor

        from sim import simtime

        self.link = link
        self.interp = link.interp
        self.board = board
        self.task = task
        self.on_feed = on_feed
        self.on_report = on_report or (lambda line: None)
        self.on_measure = on_measure or (lambda kind, used, free: None)
        self.objs = {}
        self._next = 1
        self._uart_pending = {}
        self.calibration = {}
        self._cal_prev = 0
        hal = {"busio": busio, "digitalio": digitalio, "pwmio": pwmio, "analogio": analogio, "countio": countio,
               "mc": microcontroller, "storage": storage, "supervisor": supervisor, "time": simtime}
        self.hal = hal
        add = link.add
        L = self.interp  # noqa: N806
        o = self.obj
        pin = microcontroller.Pin

        def none_or(p):
            return None if p in ("", "-") else p

        # harness
        add("task", lambda a, x, p: self.task)
        add("report", lambda a, x, p: self.on_report(p))
        add("m.heap", lambda a, x, p: self.on_measure(a[0], a[1], a[2]))
        add("cal", self._calibration_mark)
        # board
        add("board.pins", self._board_pins)
        add("board.i2c", lambda a, x, p: self.new(self._board_mod().I2C()))
        add("board.spi", lambda a, x, p: self.new(self._board_mod().SPI()))
        add("board.uart", lambda a, x, p: self.new(self._board_mod().UART()))
        # busio.I2C
        add("i2c.new", lambda a, x, p: self.new(busio.I2C(pin(p.split()[0]), pin(p.split()[1]), frequency=a[0],
                                                          timeout=a[1])))
        add("i2c.deinit", lambda a, x, p: o(a).deinit())
        add("i2c.lock", lambda a, x, p: o(a).try_lock())
        add("i2c.unlock", lambda a, x, p: o(a).unlock())
        add("i2c.probe", lambda a, x, p: o(a).probe(a[1]))
        add("i2c.scan", lambda a, x, p: " ".join(str(v) for v in o(a).scan()) or "")
        add("i2c.read", self._i2c_read)
        add("i2c.write", lambda a, x, p: o(a).writeto(a[1], L.read(a[2], a[3]), start=a[4], end=a[5]))
        add("i2c.write_read", self._i2c_write_read)
        # busio.SPI
        add("spi.new", lambda a, x, p: self.new(busio.SPI(*[None if n == "-" else pin(n) for n in p.split()],
                                                          half_duplex=bool(a[0]))))
        add("spi.deinit", lambda a, x, p: o(a).deinit())
        add("spi.configure", lambda a, x, p: o(a).configure(baudrate=a[1], polarity=a[2], phase=a[3], bits=a[4]))
        add("spi.lock", lambda a, x, p: o(a).try_lock())
        add("spi.unlock", lambda a, x, p: o(a).unlock())
        add("spi.frequency", lambda a, x, p: o(a).frequency)
        add("spi.write", lambda a, x, p: o(a).write(L.read(a[1], a[2]), start=a[3], end=a[4]))
        add("spi.read", self._spi_read)
        add("spi.write_read", self._spi_write_read)
        # busio.UART
        add("uart.new", self._uart_new)
        add("uart.config", self._uart_config)
        add("uart.deinit", lambda a, x, p: o(a).deinit())
        add("uart.baudrate", lambda a, x, p: o(a).baudrate)
        add("uart.timeout", lambda a, x, p: float(o(a).timeout))
        add("uart.settimeout", lambda a, x, p: setattr(self.objs[a[0]], "timeout", x))
        add("uart.in_waiting", lambda a, x, p: o(a).in_waiting)
        add("uart.read", lambda a, x, p: self._uart_stage(a, o(a).read(None if a[1] < 0 else a[1])))
        add("uart.readline", lambda a, x, p: self._uart_stage(a, o(a).readline()))
        add("uart.fetch", self._uart_fetch)
        add("uart.readinto", self._uart_readinto)
        add("uart.write", lambda a, x, p: o(a).write(L.read(a[1], a[2])))
        add("uart.reset_input_buffer", lambda a, x, p: o(a).reset_input_buffer())
        # digitalio
        add("dio.new", lambda a, x, p: self.new(digitalio.DigitalInOut(pin(p))))
        add("dio.deinit", lambda a, x, p: o(a).deinit())
        add("dio.out", lambda a, x, p: o(a).switch_to_output(value=bool(a[1]), drive_mode=p))
        add("dio.in", lambda a, x, p: o(a).switch_to_input(pull=none_or(p)))
        add("dio.dir", lambda a, x, p: 1 if o(a).direction == digitalio.Direction.OUTPUT else 0)
        add("dio.setdir", lambda a, x, p: setattr(self.objs[a[0]], "direction", p))
        add("dio.get", lambda a, x, p: bool(o(a).value))
        add("dio.set", lambda a, x, p: setattr(self.objs[a[0]], "value", bool(a[1])))
        add("dio.pull", lambda a, x, p: (None, digitalio.Pull.UP, digitalio.Pull.DOWN).index(o(a).pull))
        add("dio.setpull", lambda a, x, p: setattr(self.objs[a[0]], "pull", none_or(p)))
        add("dio.drive", lambda a, x, p: 1 if o(a).drive_mode == digitalio.DriveMode.OPEN_DRAIN else 0)
        add("dio.setdrive", lambda a, x, p: setattr(self.objs[a[0]], "drive_mode", p))
        # pwmio
        add("pwm.new", lambda a, x, p: self.new(pwmio.PWMOut(pin(p), duty_cycle=a[0], frequency=a[1],
                                                             variable_frequency=bool(a[2]))))
        add("pwm.deinit", lambda a, x, p: o(a).deinit())
        add("pwm.duty", lambda a, x, p: o(a).duty_cycle)
        add("pwm.setduty", lambda a, x, p: setattr(self.objs[a[0]], "duty_cycle", a[1]))
        add("pwm.freq", lambda a, x, p: o(a).frequency)
        add("pwm.setfreq", lambda a, x, p: setattr(self.objs[a[0]], "frequency", a[1]))
        # analogio, countio
        add("ain.new", lambda a, x, p: self.new(analogio.AnalogIn(pin(p))))
        add("ain.deinit", lambda a, x, p: o(a).deinit())
        add("ain.value", lambda a, x, p: o(a).value)
        add("cnt.new", self._counter_new)
        add("cnt.deinit", lambda a, x, p: o(a).deinit())
        add("cnt.get", lambda a, x, p: o(a).count)
        add("cnt.set", lambda a, x, p: setattr(self.objs[a[0]], "count", a[1]))
        add("cnt.reset", lambda a, x, p: o(a).reset())
        # microcontroller
        mc = microcontroller
        add("mc.temp", lambda a, x, p: float(mc.cpu.temperature))
        add("mc.reset_reason", lambda a, x, p: str(mc.cpu.reset_reason))
        add("mc.reset", lambda a, x, p: mc.reset())
        add("mc.next_reset", lambda a, x, p: mc.on_next_reset(p))
        add("mc.delay_us", lambda a, x, p: mc.delay_us(a[0]))
        add("nvm.len", lambda a, x, p: len(mc.nvm))
        add("nvm.get", lambda a, x, p: mc.nvm[a[0]])
        add("nvm.read", lambda a, x, p: L.write(a[2], bytes(mc.nvm[a[0]:a[0] + a[1]])))
        add("nvm.set", lambda a, x, p: mc.nvm.__setitem__(a[0], a[1]))
        add("nvm.write", self._nvm_write)
        add("wd.timeout", lambda a, x, p: float(mc.watchdog.timeout or 0.0))
        add("wd.settimeout", lambda a, x, p: setattr(mc.watchdog, "timeout", x))
        add("wd.mode", lambda a, x, p: "" if mc.watchdog.mode is None else str(mc.watchdog.mode))
        add("wd.setmode", lambda a, x, p: setattr(mc.watchdog, "mode", none_or(p)))
        add("wd.feed", self._feed)
        add("wd.deinit", lambda a, x, p: mc.watchdog.deinit())
        # supervisor, storage, time, os
        add("sup.ticks_ms", lambda a, x, p: supervisor.ticks_ms())
        add("sup.reload", lambda a, x, p: supervisor.reload())
        add("sup.next_code_file", lambda a, x, p: supervisor.set_next_code_file(p))
        add("sto.remount", lambda a, x, p: storage.remount(p, readonly=bool(a[0]),
                                                           disable_concurrent_write_protection=bool(a[1])))
        add("t.monotonic_ns", lambda a, x, p: simtime.monotonic_ns())
        add("t.monotonic", lambda a, x, p: float(simtime.monotonic()))
        add("t.sleep", lambda a, x, p: simtime.sleep(x))
        add("t.time", lambda a, x, p: simtime.time())
        add("t.localtime", lambda a, x, p: " ".join(str(int(v)) for v in tuple(simtime.localtime(a[0]))[:9]))
        add("t.mktime", lambda a, x, p: simtime.mktime(tuple(a[:6]) + (0, 0, 0)))
        add("os.getenv", self._getenv)

    # -- objects ------------------------------------------------------------------------------------------
    def new(self, obj):
        for h, known in self.objs.items():
            if known is obj:  # board.I2C() singletons: one handle
                return h
        h = self._next
        self._next += 1
        self.objs[h] = obj
        return h

    def obj(self, args):
        try:
            return self.objs[args[0]]
        except KeyError:
            raise ValueError("Object has been deinitialized and can no longer be used. Create a new object.") \
                from None

    @staticmethod
    def _board_mod():
        import board

        return board

    # -- operations with buffers ----------------------------------------------------------------------------
    def _board_pins(self, a, x, p):
        b = self.board
        items = ["board_id=%s" % b.board_id]
        items += ["%s=%s" % (n, n) for n in b.pins]
        items += ["%s=%s" % (alias, target) for alias, target in b.aliases.items()]
        return " ".join(items)

    def _i2c_read(self, a, x, p):
        buf = bytearray(self.interp.read(a[2], a[3]))
        self.obj(a).readfrom_into(a[1], buf, start=a[4], end=a[5])
        self.interp.write(a[2], buf)

    def _i2c_write_read(self, a, x, p):
        out = self.interp.read(a[2], a[3])
        buf = bytearray(self.interp.read(a[6], a[7]))
        self.obj(a).writeto_then_readfrom(a[1], out, buf, out_start=a[4], out_end=a[5], in_start=a[8], in_end=a[9])
        self.interp.write(a[6], buf)

    def _spi_read(self, a, x, p):
        buf = bytearray(self.interp.read(a[1], a[2]))
        self.obj(a).readinto(buf, start=a[3], end=a[4], write_value=a[5])
        self.interp.write(a[1], buf)

    def _spi_write_read(self, a, x, p):
        out = self.interp.read(a[1], a[2])
        buf = bytearray(self.interp.read(a[5], a[6]))
        self.obj(a).write_readinto(out, buf, out_start=a[3], out_end=a[4], in_start=a[7], in_end=a[8])
        self.interp.write(a[5], buf)

    def _uart_new(self, a, x, p):
        """First half of UART(): pins, parity, timeout, baudrate, bits (the rest comes with uart.config)."""
        self._uart_args = ([None if n == "-" else n for n in p.split()], x, a[0], a[1])

    def _uart_config(self, a, x, p):
        (tx, rx, rts, cts, rs485_dir, parity), timeout, baudrate, bits = self._uart_args
        pin = self.hal["mc"].Pin

        def opt(n):
            return pin(n) if n else None

        parity = None if parity is None else getattr(self.hal["busio"].UART.Parity, parity)
        return self.new(self.hal["busio"].UART(
            opt(tx), opt(rx), rts=opt(rts), cts=opt(cts), rs485_dir=opt(rs485_dir), rs485_invert=bool(a[2]),
            baudrate=baudrate, bits=bits, parity=parity, stop=a[0], timeout=timeout, receiver_buffer_size=a[1]))

    def _uart_stage(self, a, data):
        if data is None:
            return -1
        self._uart_pending[a[0]] = bytes(data)
        return len(data)

    def _uart_fetch(self, a, x, p):
        data = self._uart_pending.pop(a[0], b"")
        self.interp.write(a[1], data[:a[2]])

    def _uart_readinto(self, a, x, p):
        buf = bytearray(a[2])
        n = self.obj(a).readinto(buf)
        if n:
            self.interp.write(a[1], buf[:n])
        return -1 if n is None else n

    def _counter_new(self, a, x, p):
        pin_name, edge, pull = p.split()
        countio = self.hal["countio"]
        return self.new(countio.Counter(self.hal["mc"].Pin(pin_name), edge=getattr(countio.Edge, edge),
                                        pull=None if pull == "-" else pull))

    def _nvm_write(self, a, x, p):
        start, n, addr, n_value = a[0], a[1], a[2], a[3]
        if n_value != n:
            raise ValueError("Slice and value different lengths.")
        self.hal["mc"].nvm[start:start + n] = self.interp.read(addr, n)

    def _getenv(self, a, x, p):
        import os

        v = os.getenv(p)
        if v is None:
            return None
        self.link.set_flag(1)
        return v

    def _calibration_mark(self, a, x, p):
        """Marks around two loops of a[0] iterations: one calls abs() (a C function), one supervisor.ticks_ms()
        (a stand-in). The difference per iteration is what a stand-in call costs the firmware's count beyond a
        call into C, i.e. what the harness adds per call; harness.DeviceRun subtracts it."""
        link = self.link
        if p == "start":
            link.start_counting()
            self._cal_prev = 0
            self.calibration = {}
            return
        self.calibration[p] = (link.fw_fuel - self._cal_prev) / a[0]
        self._cal_prev = link.fw_fuel

    # -- control steps ------------------------------------------------------------------------------------
    def _feed(self, a, x, p):
        self.hal["mc"].watchdog.feed()
        if self.on_feed is not None:
            self.link.set_flag(self.on_feed())

