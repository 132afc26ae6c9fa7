"""Simulated time for the whole board.

Everything the firmware can observe is a function of this clock: bus transactions, ADC conversions, sleeps and
CPU work advance it by their real durations, so the loop rate the simulator reports is an estimate for the device,
and a day of sun runs much faster than real time.

The physics (plant) is evaluated lazily: advancing the clock is just an addition; the plant is integrated up to
``now`` only when something observes it (an ADC sample, a pin read) or an input changes (PWM duty, enable pin).
Timed events (ADC conversion ends, scenario faults, the per-second recorder) sit in a heap and are run in time
order by ``run_until``, with the plant integrated up to each event first.
"""

import heapq


class SimulationEnd(BaseException):
    """Raised from inside a firmware call when simulated time is up (BaseException: firmware `except Exception`
    blocks must not swallow it, as with KeyboardInterrupt on the device)."""


class SimReset(BaseException):
    """The simulated MCU resets (microcontroller.reset(), watchdog in RESET mode): the runner restarts code.py."""

    def __init__(self, reason="reset"):
        super().__init__(reason)
        self.reason = reason


class SimClock:
    """Integer nanoseconds since power-on, plus a heap of timed callbacks."""

    def __init__(self, end_ns=None):
        self.now_ns = 0
        self.end_ns = end_ns
        self._events = []  # (t_ns, seq, callback)
        self._seq = 0
        self._processed_ns = 0
        self.plant = None  # object with advance_to(t_ns); set by SimBoard
        self.guard = None  # callable(now_ns) run after every advance (watchdog, end of run)

    # -- time ---------------------------------------------------------------------------------------------
    def advance(self, dt_ns):
        """Move time forward by dt_ns (bus time, conversion wait, CPU cost, sleep)."""
        if dt_ns > 0:
            self.now_ns += int(dt_ns)
        if self.end_ns is not None and self.now_ns >= self.end_ns:
            self.sync()
            raise SimulationEnd()
        if self.guard is not None:
            self.guard(self.now_ns)

    def sync(self):
        """Bring the plant and all due events up to now (call before observing or changing anything physical)."""
        self.run_until(self.now_ns)

    def run_events(self):
        """Run the events that are due (each with the plant integrated up to its own time), but leave the plant
        where it is otherwise: bus traffic needs the devices' state, not the physics, and integrating the plant at
        every transaction would cost a step each."""
        events = self._events
        if events and events[0][0] <= self.now_ns:
            plant = self.plant
            while events and events[0][0] <= self.now_ns:
                te, _, cb = heapq.heappop(events)
                if plant is not None and te > self._processed_ns:
                    plant.advance_to(te)
                    self._processed_ns = te
                cb(te)

    # -- events -------------------------------------------------------------------------------------------
    def schedule(self, t_ns, callback):
        """Run callback(t_ns) when the simulation reaches t_ns (with the plant integrated up to then)."""
        self._seq += 1
        heapq.heappush(self._events, (int(t_ns), self._seq, callback))
        return self._seq

    def run_until(self, t_ns):
        events = self._events
        plant = self.plant
        while events and events[0][0] <= t_ns:
            te, _, cb = heapq.heappop(events)
            if plant is not None and te > self._processed_ns:
                plant.advance_to(te)
            if te > self._processed_ns:
                self._processed_ns = te
            cb(te)
        if plant is not None and t_ns > self._processed_ns:
            plant.advance_to(t_ns)
        if t_ns > self._processed_ns:
            self._processed_ns = t_ns
