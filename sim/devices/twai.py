"""The ESP32 / ESP32-S3 TWAI controller (its CAN 2.0 peripheral) with ESP-IDF's driver queues, as a node on the
host-side ``CANBus`` of sim/devices/mcp2515.py through a transceiver on the board's TWAI pins. ``canio``
(sim/hal/canio.py) drives it as CircuitPython's common-hal does (ports/espressif/common-hal/canio).

Sources: ESP32-S3 Technical Reference Manual, chapter TWAI (single acceptance filter: ACR/AMR compared with ID, RTR
and, for standard frames, the first two data bytes; a mask bit 1 = don't care; error counters, error-passive and
bus-off as CAN 2.0B); ESP-IDF TWAI driver (twai_transmit: the frame goes into the TX buffer, or the TX queue
(5 by default) while the buffer is busy, else ESP_ERR_TIMEOUT at once with a 0 timeout; the RX queue (5) drops what
does not fit; bus-off stays until twai_initiate_recovery(), which clears the TX queue and waits for 128 x 11
recessive bits; the driver is then STOPPED, and transmits nothing until twai_start()).

MODEL: frames that nobody acknowledges are retried by the hardware for ever: ACK errors raise TEC by 8 per attempt
up to error passive (128), where an ACK error no longer counts (CAN 2.0B 7.x exception), so such a node never goes
bus-off. A bit-rate mismatch while another node is active on the bus gives bit errors instead (TEC +8 per attempt
with no exception: bus-off after 32 attempts from 0), and each frame the others send garbles into a receive error
(REC +1). The counters are computed lazily from the time the errors began, as the MCP2515 emulator does.
"""

from collections import deque

from sim.devices.mcp2515 import Frame, frame_bits

RUNNING, BUS_OFF, RECOVERING, STOPPED = "running", "bus_off", "recovering", "stopped"
NORMAL, NO_ACK, LISTEN_ONLY = "normal", "no_ack", "listen_only"
OK, TIMEOUT, INVALID_STATE, NOT_SUPPORTED = "ok", "timeout", "invalid_state", "not_supported"
TX_QUEUE_LEN = 5  # TWAI_GENERAL_CONFIG_DEFAULT
RX_QUEUE_LEN = 5
ERROR_FRAME_BITS = 14  # error flag, its echo and the delimiter, roughly, before the retry
RECOVERY_BITS = 128 * 11
SOURCE = "twai"


def _accept_bits(frame):
    """The 32 bits the single acceptance filter compares (TRM: standard frame: ID[10:0], RTR, 4 unused bits, data
    bytes 1 and 2; extended frame: ID[28:0], RTR, 2 unused bits)."""
    if frame.extended:
        return (frame.id << 3) | (4 if frame.rtr else 0)
    d = frame.data or b""
    return ((frame.id << 21) | (1 << 20 if frame.rtr else 0) | ((d[0] if len(d) > 0 else 0) << 8)
            | (d[1] if len(d) > 1 else 0))


class TWAIController:
    """One TWAI peripheral with its driver installed and started (twai_driver_install + twai_start), on ``bus``.
    ``uninstall()`` takes it off the bus. Counters: ``tx_frames`` (acknowledged), ``rx_frames`` (queued for the
    application), ``rx_missed`` (RX queue full)."""

    def __init__(self, board, bus, bitrate, mode=NORMAL):
        self.board = board
        self.clock = board.clock
        self.bus = bus
        self.bitrate = int(bitrate)
        self.mode = mode
        self.state = RUNNING
        self.tec = 0
        self.rec = 0
        self.acr, self.amr = 0, 0xFFFFFFFF  # accept all
        self.tx_frames = self.rx_frames = self.rx_missed = 0
        self._txq = deque()
        self._rxq = deque()
        self._cur = None  # (frame, self_rx) in the TX buffer
        self._cur_end = None  # its end time, when it is on the wire
        self._err = None  # (since_ns, kind "ack" / "bit", TEC at the start) while the TX buffer's frame fails
        self._recovered_at = None
        bus.attach(self)
        if mode != LISTEN_ONLY:
            bus.acknowledging(self)

    def uninstall(self):
        self.bus.detach(self)
        self.state = STOPPED
        self._txq.clear()
        self._cur = self._err = None

    # -- what the driver reads ------------------------------------------------------------------------------
    def status(self):
        """(state, TEC, REC, frames waiting in the RX queue), as twai_get_status_info."""
        self._update()
        return self.state, self.tec, self.rec, len(self._rxq)

    def _bit_ns(self):
        return 1e9 / self.bitrate

    def _rate_ok(self):
        return abs(self.bitrate - self.bus.bitrate) <= 0.005 * self.bus.bitrate

    def _update(self):
        """Bring the error counters and the state up to now (the hardware retries without the CPU)."""
        now = self.clock.now_ns
        if self.state == RECOVERING and now >= self._recovered_at:
            self.state = STOPPED  # ESP-IDF: recovered means stopped
            self.tec = self.rec = 0
        if self._err is None or self.state != RUNNING:
            return
        t0, kind, tec0 = self._err
        frame = self._cur[0]
        attempt_ns = (frame_bits(frame.id, frame.extended, frame.data, frame.rtr) + ERROR_FRAME_BITS) * self._bit_ns()
        attempts = 1 + int((now - t0) // attempt_ns)
        if kind == "ack":
            if tec0 < 128:
                self.tec = min(tec0 + 8 * attempts, tec0 + 8 * -(-(128 - tec0) // 8))
        else:
            tec = tec0 + 8 * attempts
            if tec > 255:  # bus-off: the buffer's frame is given up
                self.state = BUS_OFF
                self.tec = 255
                self._cur = self._err = None
            else:
                self.tec = tec

    # -- transmit -------------------------------------------------------------------------------------------
    def transmit(self, can_id, extended, data, rtr, self_rx=False):
        """twai_transmit(msg, 0): OK, or TIMEOUT (buffer and queue full), INVALID_STATE (not running),
        NOT_SUPPORTED (listen-only)."""
        self._update()
        if self.state != RUNNING:
            return INVALID_STATE
        if self.mode == LISTEN_ONLY:
            return NOT_SUPPORTED
        item = (Frame(0, can_id, extended, bytes(data), rtr, SOURCE), self_rx)
        if self._cur is None:
            self._cur = item
            self._attempt()
        elif len(self._txq) < TX_QUEUE_LEN:
            self._txq.append(item)
        else:
            return TIMEOUT
        return OK

    def _attempt(self, now=None):
        """Put the TX buffer's frame on the bus at ``now`` (an event's own time when chained from one)."""
        frame = self._cur[0]
        if now is None:
            now = self.clock.now_ns
        others = self.bus.ack or self.bus.acknowledged_by_nodes(self)
        if self.mode == NO_ACK or (self._rate_ok() and others):
            dur = frame_bits(frame.id, frame.extended, frame.data, frame.rtr) * self._bit_ns()
            end = self.bus._slot(now, dur)
            self._cur_end = end
            self._err = None
            self.clock.schedule(end, lambda t, item=self._cur: self._tx_done(item, t), plant=False)
        elif self._err is None:
            self._err = (now, "bit" if others else "ack", self.tec)

    def _retry_tx(self):
        """Called by the bus when a node that acknowledges appears."""
        self._update()
        if self.state == RUNNING and self._err is not None:
            self._err = None
            self._attempt()

    def _tx_done(self, item, t_ns):
        if self._cur is not item or self.state != RUNNING:
            return  # given up meanwhile (bus-off, uninstalled)
        frame = item[0]._replace(t_ns=t_ns)
        self._cur = self._cur_end = None
        self.tx_frames += 1
        if self.tec:
            self.tec -= 1
        self.bus._deliver(frame, self)
        if item[1]:
            self._receive(frame)
        if self._txq:
            self._cur = self._txq.popleft()
            self._attempt(t_ns)

    # -- recovery -------------------------------------------------------------------------------------------
    def initiate_recovery(self):
        """twai_initiate_recovery: only from bus-off; the TX queue is cleared."""
        self._update()
        if self.state != BUS_OFF:
            return INVALID_STATE
        self.state = RECOVERING
        self._txq.clear()
        self._recovered_at = max(self.clock.now_ns, self.bus.busy_until_ns) + int(RECOVERY_BITS * self._bit_ns())
        return OK

    # -- receive --------------------------------------------------------------------------------------------
    def _acks(self, bus_bitrate):
        self._update()
        return self.state == RUNNING and self.mode != LISTEN_ONLY and self._rate_ok()

    def _bus_frame(self, frame):
        self._update()
        if self.state != RUNNING:
            return
        if not self._rate_ok():
            self.rec = min(128, self.rec + 1)
            return
        if self.rec:
            self.rec -= 1
        self._receive(frame)

    def _receive(self, frame):
        if (_accept_bits(frame) ^ self.acr) & ~self.amr & 0xFFFFFFFF:
            return
        if len(self._rxq) >= RX_QUEUE_LEN:
            self.rx_missed += 1
            return
        self._rxq.append(frame)
        self.rx_frames += 1

    def receive(self):
        """twai_receive(msg, 0): the oldest frame, or None."""
        return self._rxq.popleft() if self._rxq else None
