"""Stand-in for CircuitPython's ``digitalio``; pin levels go to and come from the SimBoard's wiring."""

from sim.simboard import active


class Direction:
    INPUT = "INPUT"
    OUTPUT = "OUTPUT"


_OUTPUT = Direction.OUTPUT


class Pull:
    UP = "UP"
    DOWN = "DOWN"


class DriveMode:
    PUSH_PULL = "PUSH_PULL"
    OPEN_DRAIN = "OPEN_DRAIN"


class DigitalInOut:
    def __init__(self, pin):
        self._board = active()
        self._name = pin._name
        self._wire = self._board.claim(self._name, self)
        self._direction = Direction.INPUT
        self._pull = None
        self._value = False
        self.drive_mode = DriveMode.PUSH_PULL
        self._deinited = False

    def deinit(self):
        if not self._deinited:
            self._board.release(self._name, self)
            self._deinited = True

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.deinit()

    def _check(self):
        if self._deinited:
            raise ValueError("Object has been deinitialized and can no longer be used. Create a new object.")

    def switch_to_output(self, value=False, drive_mode=DriveMode.PUSH_PULL):
        self._check()
        self._direction = Direction.OUTPUT
        self.drive_mode = drive_mode
        self._pull = None
        self._set(bool(value))

    def switch_to_input(self, pull=None):
        self._check()
        self._direction = Direction.INPUT
        self._pull = pull
        self._wire.pull = "up" if pull == Pull.UP else ("down" if pull == Pull.DOWN else None)
        self._board.drive(self._name, "release", None)

    @property
    def direction(self):
        return self._direction

    @direction.setter
    def direction(self, d):
        if d == Direction.OUTPUT:
            self.switch_to_output(False)
        else:
            self.switch_to_input()

    @property
    def pull(self):
        if self._direction == Direction.OUTPUT:
            raise AttributeError("Pull not used when direction is output.")
        return self._pull

    @pull.setter
    def pull(self, p):
        if self._direction == Direction.OUTPUT:
            raise AttributeError("Pull not used when direction is output.")
        self.switch_to_input(p)

    def _set(self, v):
        self._value = v
        b = self._board
        b.clock.advance(b.cost.pin_write_us * 1000)
        b.drive(self._name, "digital", v)

    @property
    def value(self):
        if self._deinited:  # _check(), inlined: input polling loops call this thousands of times a second
            self._check()
        if self._direction is _OUTPUT:
            return self._value
        return self._board.read_wire(self._wire)

    @value.setter
    def value(self, v):
        self._check()
        if self._direction != Direction.OUTPUT:
            raise AttributeError("Cannot set value when direction is input.")
        self._set(bool(v))
