"""Simulated time for the whole board.

Everything the firmware can observe is a function of this clock: bus transactions, ADC conversions, sleeps and
CPU work advance it by their real durations, so the loop rate the simulator reports is an estimate for the device,
and a day of sun runs much faster than real time.

The physics (plant) is evaluated lazily: advancing the clock is just an addition; the plant is integrated up to
``now`` only when something observes it (an ADC sample, an analog read) or an input changes (PWM duty, enable pin).
Timed events (ADC conversion ends, scenario faults, the per-second recorder) sit in a heap and are run in time
order by ``run_until``, with the plant integrated up to each event first -- unless the event says it does not look
at the plant (``schedule(..., plant=False)``: an ADC's conversion end or RDY pulse is the chip's own timing), which
spares a plant step per such event: the plant's cost is per step, and every forced stop splits one.

Speed: ``advance`` runs for every bus transaction, pin read and clock read the firmware makes (hundreds of
thousands per simulated minute), so it is one addition and one compare in the common case; the end of the run, the
watchdog deadline and the board's guards are checked only once ``now`` reaches ``alarm_ns`` (the earliest of them;
the board keeps it current through ``set_guard_due``) or while a generic guard is installed.
"""

import heapq

_NEVER = 1 << 62


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
        self._end_ns = end_ns
        self._events = []  # (t_ns, seq, callback, needs_plant)
        self._seq = 0
        self._processed_ns = 0
        self.plant = None  # object with advance_to(t_ns); set by SimBoard
        self.guard = None  # callable(now_ns) run after an advance that reaches guard_due (watchdog, guards)
        self.always_guard = ()  # a container that is non-empty while guard must run after EVERY advance
        self._guard_due_ns = 0  # until a board says otherwise, the guard runs after every advance
        self.alarm_ns = 0
        self._rearm()

    # -- alarms -------------------------------------------------------------------------------------------
    @property
    def end_ns(self):
        return self._end_ns

    @end_ns.setter
    def end_ns(self, value):
        self._end_ns = value
        self._rearm()

    def set_guard_due(self, t_ns):
        """The earliest time the guard has something to check (None: nothing until told otherwise)."""
        self._guard_due_ns = _NEVER if t_ns is None else int(t_ns)
        self._rearm()

    def _rearm(self):
        end = _NEVER if self._end_ns is None else self._end_ns
        due = self._guard_due_ns
        self.alarm_ns = end if end < due else due

    # -- time ---------------------------------------------------------------------------------------------
    def advance(self, dt_ns):
        """Move time forward by dt_ns (bus time, conversion wait, CPU cost, sleep)."""
        if dt_ns > 0:
            self.now_ns += int(dt_ns)
        if self.now_ns >= self.alarm_ns or self.always_guard:
            self._alarm()

    def _alarm(self):
        now = self.now_ns
        if self._end_ns is not None and now >= self._end_ns:
            self.sync()
            raise SimulationEnd()
        if self.guard is not None:
            self.guard(now)

    def sync(self):
        """Bring the plant and all due events up to now (call before observing or changing anything physical)."""
        self.run_until(self.now_ns)

    def run_events(self):
        """Run the events that are due (each with the plant integrated up to its own time if it needs it), but
        leave the plant where it is otherwise: bus traffic needs the devices' state, not the physics, and
        integrating the plant at every transaction would cost a step each."""
        events = self._events
        if events and events[0][0] <= self.now_ns:
            plant = self.plant
            while events and events[0][0] <= self.now_ns:
                te, _, cb, needs_plant = heapq.heappop(events)
                if needs_plant and te > self._processed_ns:
                    if plant is not None:
                        plant.advance_to(te)
                    self._processed_ns = te
                cb(te)

    # -- events -------------------------------------------------------------------------------------------
    def schedule(self, t_ns, callback, plant=True):
        """Run callback(t_ns) when the simulation reaches t_ns, with the plant integrated up to then; plant=False:
        the callback does not look at or change the physics (the plant is left where it is)."""
        self._seq += 1
        heapq.heappush(self._events, (int(t_ns), self._seq, callback, plant))
        return self._seq

    def run_until(self, t_ns):
        events = self._events
        plant = self.plant
        while events and events[0][0] <= t_ns:
            te, _, cb, needs_plant = heapq.heappop(events)
            if needs_plant and te > self._processed_ns:
                if plant is not None:
                    plant.advance_to(te)
                self._processed_ns = te
            cb(te)
        if t_ns > self._processed_ns:
            if plant is not None:
                plant.advance_to(t_ns)
            self._processed_ns = t_ns
