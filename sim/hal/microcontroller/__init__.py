"""Stand-in for ``microcontroller``: Pin, cpu (temperature, frequency), nvm (8 KiB as on the ESP32 port), watchdog,
reset() and on_next_reset()."""

from sim.clock import SimReset
from sim.simboard import active
from microcontroller import pin  # noqa: F401  (the submodule, as in CircuitPython)


class Pin:
    """A GPIO. Compared by identity; the SimBoard knows it by ``_name``."""

    __slots__ = ("_name",)

    def __init__(self, name):
        self._name = name

    def __repr__(self):
        return "board.%s" % self._name

    def __hash__(self):
        return hash(self._name)

    def __eq__(self, other):
        return isinstance(other, Pin) and other._name == self._name


class RunMode:
    NORMAL = "NORMAL"
    SAFE_MODE = "SAFE_MODE"
    UF2 = "UF2"
    BOOTLOADER = "BOOTLOADER"


class ResetReason:
    POWER_ON = "POWER_ON"
    BROWNOUT = "BROWNOUT"
    SOFTWARE = "SOFTWARE"
    DEEP_SLEEP_ALARM = "DEEP_SLEEP_ALARM"
    RESET_PIN = "RESET_PIN"
    WATCHDOG = "WATCHDOG"
    UNKNOWN = "UNKNOWN"
    RESCUE_DEBUG = "RESCUE_DEBUG"


class Processor:
    @property
    def temperature(self):
        return active().cpu_temperature_c

    @property
    def frequency(self):
        return 240000000

    @property
    def voltage(self):
        return 3.3

    @property
    def reset_reason(self):
        return getattr(active(), "reset_reason", ResetReason.POWER_ON)

    @property
    def uid(self):
        return bytearray(b"\x7c\xdf\xa1\x00\x51\x1e")


class ByteArray:
    """microcontroller.nvm: reads are cheap; every write rewrites the whole NVS blob on the ESP32 port (slow),
    which the SimBoard charges, and where a power cut can be injected."""

    def __len__(self):
        return len(active().nvm)

    def __getitem__(self, index):
        data = active().nvm
        if isinstance(index, slice):
            return bytearray(data[index])
        return data[index]

    def __setitem__(self, index, value):
        b = active()
        n = len(b.nvm)
        if isinstance(index, slice):
            start, stop, step = index.indices(n)
            if step != 1:
                raise NotImplementedError("only slices with step=1 (aka None) are supported")
            value = bytes(value)
            if len(value) != stop - start:
                raise ValueError("Slice and value different lengths.")
            b.nvm_write(start, value)
        else:
            if index < 0:
                index += n
            if not 0 <= index < n:
                raise IndexError("index out of range")
            if not 0 <= value <= 255:
                raise ValueError("Bytes must be between 0 and 255.")
            b.nvm_write(index, bytes([value]))


class _WatchDogProxy:
    """microcontroller.watchdog (a WatchDogTimer); the state lives on the SimBoard so a reset clears it."""

    @property
    def timeout(self):
        return active().watchdog.timeout_s

    @timeout.setter
    def timeout(self, t):
        t = float(t)
        if t <= 0:
            raise ValueError("timeout must be > 0")
        wd = active().watchdog
        wd.timeout_s = t
        if wd.mode is not None:
            wd.start()

    @property
    def mode(self):
        from watchdog import WatchDogMode

        m = active().watchdog.mode
        return None if m is None else getattr(WatchDogMode, m)

    @mode.setter
    def mode(self, m):
        wd = active().watchdog
        if m is None:
            wd.stop()
            return
        wd.mode = str(m)
        wd.start()

    def feed(self):
        active().watchdog.feed()

    def deinit(self):
        wd = active().watchdog
        if wd.mode == "RESET":
            raise RuntimeError("WatchDogTimer cannot be deinitialized once mode is set to RESET")
        wd.stop()


cpu = Processor()
cpus = (cpu,)
nvm = ByteArray()
watchdog = _WatchDogProxy()


def reset():
    raise SimReset("microcontroller.reset()")


def on_next_reset(run_mode):
    active().next_run_mode = run_mode


def delay_us(delay):
    active().clock.advance(int(delay) * 1000)


def disable_interrupts():
    pass


def enable_interrupts():
    pass
