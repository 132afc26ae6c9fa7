"""Stand-in for ``countio`` (ESP32 PCNT): counts edges of a pin whose source reports them to the SimBoard."""

from sim.simboard import active


class Edge:
    RISE = "RISE"
    FALL = "FALL"
    RISE_AND_FALL = "RISE_AND_FALL"


class Counter:
    def __init__(self, pin, *, edge=Edge.FALL, pull=None):
        self._board = active()
        self._name = pin._name
        self._board.claim(self._name, self)
        self._edge = edge
        self._count = 0
        self._board.pin(self._name).edge_listeners.append(self._on_edge)
        self._deinited = False

    def _on_edge(self, rising):
        if self._edge == Edge.RISE_AND_FALL or (rising and self._edge == Edge.RISE) or (
                not rising and self._edge == Edge.FALL):
            self._count += 1

    @property
    def count(self):
        self._board.clock.advance(self._board.cost.pin_read_us * 1000)
        self._board.clock.run_events()
        return self._count

    @count.setter
    def count(self, v):
        self._count = int(v)

    def reset(self):
        self._count = 0

    def deinit(self):
        if not self._deinited:
            self._board.pin(self._name).edge_listeners.remove(self._on_edge)
            self._board.release(self._name, self)
            self._deinited = True

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.deinit()
