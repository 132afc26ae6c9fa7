"""The RS485 module on the simulated breakout: a MAX485-style transceiver on the breakout's UART pins and direction
pin (sim/devices/rs485.py models the half-duplex line at its baud rate), and a Modbus master on the host side of the
pair (a USB-RS485 adapter on a PC) whose requests are encoded, and answers decoded, with pymodbus.

For the demo the master reads the live input registers every POLL_PERIOD_S; tests turn that off (stop_polling())
and send their own requests with request(). One request is on the line at a time, as with a real master: a request
due while another waits for its answer goes out after it (or after RESPONSE_TIMEOUT_S).

The run's output folder gets ``modbus.log``: every request and answer in hex with its simulated time, decoded.
"""

import os

from sim.devices.rs485 import HostPort, RS485Line

LINE_BAUD = 19200  # the master's setting; docs/MODBUS.md (the firmware's extensions/rs485.py BAUD_RATE)
POLL_PERIOD_S = 5.0
POLL_START_S = 5.0  # after boot and the extensions' start
POLL_FIRST_REG = 0
POLL_COUNT = 16
RESPONSE_TIMEOUT_S = 1.0  # how long the master waits for an answer
BROADCAST_DELAY_S = 0.1  # the master's pause after a broadcast (nobody answers one)
LOG_MAX_EXCHANGES = 50000


def framer(server_side=False):
    from pymodbus.framer import FramerRTU
    from pymodbus.pdu import DecodePDU

    return FramerRTU(DecodePDU(server_side))


def read_input_request(dev_id, address, count):
    """The RTU frame of a read input registers (04) request, built by pymodbus."""
    from pymodbus.pdu.register_message import ReadInputRegistersRequest

    return framer().buildFrame(ReadInputRegistersRequest(address=address, count=count, dev_id=dev_id))


def decode_response(frame, dev_id):
    """The pymodbus PDU of an answer frame (None when it does not decode: wrong CRC, cut short ...)."""
    if not frame:
        return None
    try:
        _, pdu = framer().handleFrame(bytes(frame), dev_id, 0)
    except Exception:  # pymodbus raises on frames it cannot make sense of
        return None
    return pdu


def decode_request(frame):
    if not frame:
        return None
    try:
        _, pdu = framer(server_side=True).handleFrame(bytes(frame), 0, 0)
    except Exception:
        return None
    return pdu


class Exchange:
    """One request and what came back. Times are simulated ns; ``response`` is None without an answer."""

    def __init__(self, request, due_ns, note=""):
        self.request = bytes(request)
        self.note = note
        self.due_ns = due_ns
        self.t_sent_ns = None
        self.t_request_end_ns = None
        self.response = None
        self.t_response_start_ns = None
        self.t_response_end_ns = None
        self.broadcast = len(self.request) > 0 and self.request[0] == 0

    @property
    def timed_out(self):
        """Sent, and the master gave up waiting (a broadcast: its pause is over)."""
        return self.t_sent_ns is not None and self.response is None and self.t_response_end_ns is not None

    @property
    def turnaround_ms(self):
        """End of the request's last stop bit to the start of the answer's first start bit (the slave's latency)."""
        if self.response is None:
            return None
        return (self.t_response_start_ns - self.t_request_end_ns) / 1e6

    @property
    def latency_ms(self):
        """End of the request to the end of the answer (what a master waits for)."""
        if self.response is None:
            return None
        return (self.t_response_end_ns - self.t_request_end_ns) / 1e6

    def pdu(self):
        """The answer decoded by pymodbus (ExceptionResponse for an exception), or None."""
        return decode_response(self.response, self.request[0] if self.request else 0)


class Rs485Handle:
    name = "rs485"

    def __init__(self, sim, line, address):
        self.sim = sim
        self.line = line
        self.port = HostPort(line, on_frame=self._on_frame)
        self.address = address  # the slave address the demo poll uses
        self.exchanges = []
        self.unsolicited = []  # frames nobody asked for (late answers): (t_first_ns, t_last_ns, bytes)
        self._queue = []
        self._current = None
        self._poll_on = False
        self._poll_period_ns = int(POLL_PERIOD_S * 1e9)

    # -- for tests -----------------------------------------------------------------------------------------
    def request(self, frame, at_s, note=""):
        """Send ``frame`` (a whole RTU frame, CRC included) at simulated time ``at_s`` (or as soon as the answer
        to the request before it is in). Returns the Exchange, filled in as the run goes."""
        ex = Exchange(frame, int(at_s * 1e9), note)
        self.exchanges.append(ex)
        self.sim.board.clock.schedule(ex.due_ns, lambda t: self._due(ex, t))
        return ex

    def start_polling(self, period_s=POLL_PERIOD_S, start_s=POLL_START_S):
        self._poll_on = True
        self._poll_period_ns = int(period_s * 1e9)
        self.sim.board.clock.schedule(int(start_s * 1e9), self._poll)

    def stop_polling(self):
        self._poll_on = False

    # -- the master ----------------------------------------------------------------------------------------
    def _poll(self, t_ns):
        if not self._poll_on:
            return
        frame = read_input_request(self.address, POLL_FIRST_REG, POLL_COUNT)
        ex = Exchange(frame, t_ns, "poll")
        self.exchanges.append(ex)
        self._due(ex, t_ns)
        self.sim.board.clock.schedule(t_ns + self._poll_period_ns, self._poll)

    def _due(self, ex, t_ns):
        if self._current is None:
            self._start(ex, t_ns)
        else:
            self._queue.append(ex)

    def _start(self, ex, t_ns):
        ex.t_sent_ns = t_ns
        ex.t_request_end_ns = self.port.send(ex.request, t_ns)
        self._current = ex
        wait = BROADCAST_DELAY_S if ex.broadcast else RESPONSE_TIMEOUT_S
        self.sim.board.clock.schedule(ex.t_request_end_ns + int(wait * 1e9), lambda t: self._timeout(ex, t))

    def _on_frame(self, frame, t_first_ns, t_last_ns):
        ex = self._current
        if ex is None or ex.broadcast or t_first_ns < ex.t_request_end_ns:
            self.unsolicited.append((t_first_ns, t_last_ns, frame))
            return
        ex.response = frame
        ex.t_response_start_ns = t_first_ns
        ex.t_response_end_ns = t_last_ns
        self._next(t_last_ns + int(3.5 * self.line.char_ns) + 1)

    def _timeout(self, ex, t_ns):
        if self._current is ex and ex.response is None:
            ex.t_response_end_ns = t_ns  # gave up waiting
            self._next(t_ns)

    def _next(self, t_ns):
        self._current = None
        if self._queue:
            nxt = self._queue.pop(0)
            t = max(t_ns, self.sim.board.clock.now_ns)
            self.sim.board.clock.schedule(t, lambda tt: self._start(nxt, tt))

    # -- outputs -------------------------------------------------------------------------------------------
    def summary(self):
        sent = [e for e in self.exchanges if e.t_sent_ns is not None]
        answered = [e for e in sent if e.response is not None]
        exceptions = [e for e in answered if len(e.response) >= 2 and e.response[1] & 0x80]
        turn = sorted(e.turnaround_ms for e in answered)
        out = {
            "address": self.address,
            "requests": len(sent),
            "answered": len(answered),
            "exceptions": len(exceptions),
            "unanswered": len([e for e in sent if e.response is None and not e.broadcast and e.timed_out]),
            "pending_at_end": len([e for e in sent if e.response is None and not e.broadcast and not e.timed_out]),
            "line": self.line.summary(),
        }
        if turn:
            out["turnaround_ms"] = {"min": round(turn[0], 2), "median": round(turn[len(turn) // 2], 2),
                                    "max": round(turn[-1], 2)}
        return out

    def write(self, out_dir):
        os.makedirs(out_dir, exist_ok=True)
        names = _register_names()
        with open(os.path.join(out_dir, "modbus.log"), "w") as f:
            f.write("# Modbus RTU on the simulated RS485 line, %d baud 8N1; master = a host adapter, slave = the "
                    "firmware (docs/MODBUS.md)\n" % self.line.baudrate)
            f.write("# t = simulated seconds at the first bit; -> request, <- answer (ms: end of request to start of "
                    "answer)\n")
            for i, ex in enumerate(self.exchanges):
                if i >= LOG_MAX_EXCHANGES:
                    f.write("# ... stopped after %d exchanges\n" % LOG_MAX_EXCHANGES)
                    break
                if ex.t_sent_ns is None:
                    continue
                f.write("%12.6f -> %s | %s\n" % (ex.t_sent_ns / 1e9, ex.request.hex(" "), _describe_request(ex)))
                if ex.response is not None:
                    f.write("%12.6f <- %s | %.1f ms: %s\n" % (ex.t_response_start_ns / 1e9, ex.response.hex(" "),
                                                             ex.turnaround_ms, _describe_response(ex, names)))
                elif ex.broadcast:
                    f.write("%12s    (broadcast: no answer, as the standard says)\n" % "")
                elif ex.timed_out:
                    f.write("%12s    (no answer within %.0f ms)\n" % ("", RESPONSE_TIMEOUT_S * 1000))
                else:
                    f.write("%12s    (the run ended while waiting for the answer)\n" % "")
            for t0, _, frame in self.unsolicited:
                f.write("%12.6f <- %s | not an answer to a pending request\n" % (t0 / 1e9, frame.hex(" ")))


def _register_names():
    """{input address: (name, kind, word)} from the firmware's own map (extensions/rs485.py), for the log."""
    try:
        from extensions import rs485 as fw
    except Exception:  # the log then shows raw registers
        return {}
    out = {}
    for addr, field, kind in fw.SYSTEM_INPUTS:
        for w in range(fw.width(kind)):
            out[addr + w] = (field, kind, w)
    return out


def _describe_request(ex):
    pdu = decode_request(ex.request)
    prefix = (ex.note + ": ") if ex.note else ""
    if pdu is None:
        return prefix + "not a valid frame (the firmware must stay silent)"
    fc = pdu.function_code
    dev = "broadcast" if pdu.dev_id == 0 else "slave %d" % pdu.dev_id
    if fc in (3, 4):
        kind = "holding" if fc == 3 else "input"
        return prefix + "read %s registers %d-%d of %s" % (kind, pdu.address, pdu.address + pdu.count - 1, dev)
    if fc == 6:
        return prefix + "write holding register %d = %d on %s" % (pdu.address, pdu.registers[0], dev)
    if fc == 16:
        return prefix + "write holding registers %d-%d = %s on %s" % (pdu.address,
                                                                       pdu.address + len(pdu.registers) - 1,
                                                                       list(pdu.registers), dev)
    return prefix + "function %d on %s" % (fc, dev)


EXCEPTION_NAMES = {1: "ILLEGAL FUNCTION", 2: "ILLEGAL DATA ADDRESS", 3: "ILLEGAL DATA VALUE", 4: "DEVICE FAILURE"}


def _describe_response(ex, names):
    pdu = ex.pdu()
    if pdu is None:
        return "does not decode"
    fc = pdu.function_code
    if fc & 0x80:
        code = int(pdu.exception_code)
        return "exception %02d %s" % (code, EXCEPTION_NAMES.get(code, "?"))
    if fc in (6, 16):
        return "written"
    if fc not in (3, 4):
        return "function %d" % fc
    req = decode_request(ex.request)
    regs = list(pdu.registers)
    if fc != 4 or req is None or not names:
        return "registers %s" % regs
    parts = []
    values = {}
    for i, word in enumerate(regs):
        hit = names.get(req.address + i)
        if hit is None:
            continue
        field, kind, w = hit
        values.setdefault(field, [kind, 0, 0])[1 + w] = word
    for field, (kind, hi, lo) in values.items():
        if kind in ("u32", "i32", "wh32"):
            v = (hi << 16) | lo
            if kind == "i32" and v >= 1 << 31:
                v -= 1 << 32
        elif kind in ("i16", "temp10"):
            v = hi - 0x10000 if hi >= 0x8000 else hi
        else:
            v = hi
        parts.append("%s=%s" % (field, v))
    return " ".join(parts)


def attach(sim, pins, work_dir):
    from fugu.settings import Settings

    board = sim.board
    line = RS485Line(board, pins["uart_tx"], pins["uart_rx"], pins["rs485_de"], baudrate=LINE_BAUD)
    address = Settings(board.nvm, log=lambda *_: None).get("modbus_address")  # the master is set up to match
    handle = Rs485Handle(sim, line, address)
    handle.start_polling()
    return handle
