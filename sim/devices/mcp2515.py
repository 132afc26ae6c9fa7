"""Register/command-level emulator of the Microchip MCP2515 stand-alone CAN controller (SPI), and a host-side CAN bus.

The real driver (adafruit_mcp2515) talks to it through the ``busio`` SPI stand-in. Frames the firmware transmits
appear on a ``CANBus`` timestamped in simulated time (end of frame: when receivers have them), after the bit time
the CNF registers give and the frame's real length (stuff bits included); frames the host puts on the bus arrive in
the RX buffers through the acceptance masks and filters, with the interrupt flags (and an optional INT pin).

Source: MCP2515 datasheet DS20001801J (2019): 3.0 message transmission (TXBnCTRL, priority, abort), 4.0 message
reception (RXB0/RXB1, rollover BUKT, FILHIT, Figure 4-2 acceptance filter logic, standard-frame data-byte filtering),
5.0 bit timing (TQ = 2 (BRP + 1) / Fosc; SyncSeg + PropSeg + PS1 + PS2; BTLMODE), 6.0 errors (TEC/REC, EFLG),
7.0 interrupts (CANINTE/CANINTF, ICOD in CANSTAT), 10.0 modes (REQOP/OPMOD, loopback, listen-only, sleep wake-up
into listen-only), 12.0 SPI interface (Table 12-1 instructions: RESET C0h, READ 03h, READ RX BUFFER 90h-96h,
WRITE 02h, LOAD TX BUFFER 40h-45h, RTS 8xh, READ STATUS A0h, RX STATUS B0h, BIT MODIFY 05h; Figure 12-8 READ STATUS
bit map; Table 12-2 RX STATUS), register map Table 11-1 (CANSTAT/CANCTRL mirrored at xEh/xFh), bit-modifiable
registers (others: the mask is forced to FFh). CAN 2.0B frame format (bit stuffing, CRC-15).

MODEL choices: mode changes take effect at once; a frame starts when the bus is free (no arbitration with host
frames sent at the same instant: they queue); a bit-rate mismatch between node and bus means no frame is exchanged
(TX is never acknowledged, REC counts the garbled frames); a node that nobody acknowledges retries for ever, its TEC
climbing by 8 per attempt up to error passive (128) as CAN specifies for ACK errors.
"""

from collections import namedtuple

Frame = namedtuple("Frame", ["t_ns", "id", "extended", "data", "rtr", "source"])

# registers
CANSTAT, CANCTRL = 0x0E, 0x0F
TEC, REC = 0x1C, 0x1D
CNF3, CNF2, CNF1 = 0x28, 0x29, 0x2A
CANINTE, CANINTF, EFLG = 0x2B, 0x2C, 0x2D
TXBCTRL = (0x30, 0x40, 0x50)
RXBCTRL = (0x60, 0x70)
MODE_NORMAL, MODE_SLEEP, MODE_LOOPBACK, MODE_LISTEN, MODE_CONFIG = 0x00, 0x20, 0x40, 0x60, 0x80
RX0IF, RX1IF, TX0IF, TX1IF, TX2IF, ERRIF, WAKIF, MERRF = 1, 2, 4, 8, 16, 32, 64, 128
_TXIF = (TX0IF, TX1IF, TX2IF)
_BIT_MODIFIABLE = {0x0C, 0x0D, CANCTRL, CNF1, CNF2, CNF3, CANINTE, CANINTF, EFLG, 0x30, 0x40, 0x50, 0x60, 0x70}
_CONFIG_ONLY = set(range(0x00, 0x0C)) | set(range(0x10, 0x1C)) | set(range(0x20, 0x28)) | {CNF1, CNF2, CNF3, 0x0D}
_FILTERS = (0x00, 0x04, 0x08, 0x10, 0x14, 0x18)
_MASKS = (0x20, 0x24)


def _crc15(bits):
    crc = 0
    for b in bits:
        nxt = b ^ ((crc >> 14) & 1)
        crc = (crc << 1) & 0x7FFF
        if nxt:
            crc ^= 0x4599
    return crc


def frame_bits(can_id, extended, data, rtr=False, dlc=None):
    """Bits on the wire for a CAN 2.0 frame, SOF to the end of the interframe space (stuff bits included)."""
    n = len(data) if dlc is None else dlc
    bits = [0]  # SOF

    def put(v, width):
        bits.extend((v >> (width - 1 - i)) & 1 for i in range(width))

    if extended:
        put(can_id >> 18, 11)
        put(1, 1)  # SRR
        put(1, 1)  # IDE
        put(can_id & 0x3FFFF, 18)
        put(1 if rtr else 0, 1)
        put(0, 2)  # r1, r0
    else:
        put(can_id, 11)
        put(1 if rtr else 0, 1)
        put(0, 2)  # IDE, r0
    put(n & 0xF, 4)
    if not rtr:
        for b in data:
            put(b, 8)
    put(_crc15(bits), 15)
    stuff = 0
    run = 1
    last = bits[0]
    for b in bits[1:]:
        if b == last:
            run += 1
            if run == 5:
                stuff += 1
                last = 1 - b  # the stuff bit starts a new run
                run = 1
        else:
            last = b
            run = 1
    return len(bits) + stuff + 1 + 2 + 7 + 3  # CRC delimiter, ACK slot + delimiter, EOF, intermission


class CANBus:
    """The CAN bus on the host side: a log of every frame, host nodes that send and acknowledge.

    ``frames``: list of Frame(t_ns, id, extended, data, rtr, source), t_ns = end of frame. ``log()`` gives
    (t_ns, id, extended, data) tuples. ``ack``: a host node acknowledges frames (set False to model a bus with
    nobody else on it). ``on_frame(frame)`` is called for every frame.
    """

    def __init__(self, clock, bitrate=250000, ack=True):
        self.clock = clock
        self.bitrate = int(bitrate)
        self.nodes = []
        self.attached = []  # every node that was ever on the bus (for counts after one left)
        self.frames = []
        self.on_frame = None
        self._ack = bool(ack)
        self.busy_until_ns = 0

    @property
    def ack(self):
        return self._ack

    @ack.setter
    def ack(self, value):
        self._ack = bool(value)
        if value:
            for n in self.nodes:
                n._retry_tx()

    def attach(self, node):
        self.nodes.append(node)
        self.attached.append(node)

    def detach(self, node):
        if node in self.nodes:
            self.nodes.remove(node)

    def acknowledging(self, node):
        """``node`` now acknowledges (it joined, or entered normal mode): the others' unacknowledged frames go."""
        for n in list(self.nodes):
            if n is not node:
                n._retry_tx()

    def log(self):
        return [(f.t_ns, f.id, f.extended, f.data) for f in self.frames]

    def frame_ns(self, can_id, extended, data, rtr=False):
        return frame_bits(can_id, extended, data, rtr) * 1e9 / self.bitrate

    def _slot(self, t_ns, duration_ns):
        start = max(int(t_ns), self.busy_until_ns)
        end = start + int(duration_ns)
        self.busy_until_ns = end
        return end

    def send(self, can_id, data=b"", *, extended=False, rtr=False, at_ns=None, source="host"):
        """A host node transmits (now, or at ``at_ns``); the frame reaches the nodes at its end."""
        data = bytes(data)
        if len(data) > 8:
            raise ValueError("a CAN frame carries at most 8 bytes")
        if not 0 <= can_id < (1 << (29 if extended else 11)):
            raise ValueError("id out of range")
        t = self.clock.now_ns if at_ns is None else int(at_ns)
        end = self._slot(t, self.frame_ns(can_id, extended, data, rtr))
        frame = Frame(end, can_id, extended, data, rtr, source)
        self.clock.schedule(end, lambda te, f=frame: self._deliver(f, None))
        return frame

    def _deliver(self, frame, sender):
        self.frames.append(frame)
        if len(self.frames) > 200000:
            del self.frames[:100000]
        for n in self.nodes:
            if n is not sender:
                n._bus_frame(frame)
        if self.on_frame is not None:
            self.on_frame(frame)

    def acknowledged_by_nodes(self, sender):
        return any(n is not sender and n._acks(self.bitrate) for n in self.nodes)


class MCP2515Emulator:
    """One MCP2515 with its crystal (``osc_hz``, 8/10/16 MHz modules exist; 16 MHz is the common one) on ``bus``.
    Attach with ``attach((sck, mosi, miso), cs)``. ``int_pin``: the active-low INT output (optional).
    ``present = False``: MISO floats high, nothing is accepted (a missing module).
    """

    def __init__(self, board, bus, *, osc_hz=16000000, int_pin=None):
        self.board = board
        self.clock = board.clock
        self.bus = bus
        self.osc_hz = int(osc_hz)
        self.present = True
        bus.attach(self)
        self.tx_frames = 0
        self.rx_frames = 0
        self.int_pin = None
        self.reset()
        if int_pin is not None:
            self.int_pin = board.pin(int_pin).name
            board.set_input(self.int_pin, source=lambda: not self.interrupt_pending())

    def attach(self, sck_mosi_miso, cs):
        self.board.add_spi_device(sck_mosi_miso, cs, self)
        self.board.listen(cs, self._on_cs)
        return self

    # ------------------------------------------------------------------ state
    def reset(self):
        """RESET instruction / power-on: register reset values, configuration mode."""
        self.regs = bytearray(128)
        self.regs[CANSTAT] = 0x80
        self.regs[CANCTRL] = 0x87
        self._state = None  # SPI instruction state
        self._ptr = 0
        self._args = []
        self._rx_read = None  # RXnIF to clear when CS rises after READ RX BUFFER
        self._tx_pending = [None, None, None]  # scheduled end time per TX buffer
        self._tx_busy_until = 0
        self._nack_since = [None, None, None]
        self._rec_garbled = 0

    @property
    def mode(self):
        return self.regs[CANSTAT] & 0xE0

    def bit_time_ns(self):
        """From CNF1..3 (5.0): TQ = 2 (BRP + 1) / Fosc; bit = SyncSeg + PropSeg + PS1 + PS2."""
        cnf1, cnf2, cnf3 = self.regs[CNF1], self.regs[CNF2], self.regs[CNF3]
        brp = cnf1 & 0x3F
        prseg = (cnf2 & 0x07) + 1
        ps1 = ((cnf2 >> 3) & 0x07) + 1
        ps2 = (cnf3 & 0x07) + 1 if cnf2 & 0x80 else max(ps1, 2)
        tq_ns = 2e9 * (brp + 1) / self.osc_hz
        return tq_ns * (1 + prseg + ps1 + ps2)

    def bitrate(self):
        return 1e9 / self.bit_time_ns()

    def sample_point(self):
        cnf2 = self.regs[CNF2]
        prseg = (cnf2 & 0x07) + 1
        ps1 = ((cnf2 >> 3) & 0x07) + 1
        ps2 = (self.regs[CNF3] & 0x07) + 1 if cnf2 & 0x80 else max(ps1, 2)
        return (1 + prseg + ps1) / (1 + prseg + ps1 + ps2)

    def _rate_matches(self, bus_bitrate):
        return abs(self.bitrate() - bus_bitrate) <= 0.005 * bus_bitrate  # MODEL: within 0.5 %

    def _acks(self, bus_bitrate):
        return self.mode == MODE_NORMAL and self._rate_matches(bus_bitrate)

    def interrupt_pending(self):
        return bool(self.regs[CANINTE] & self.regs[CANINTF])

    def _update_icod(self):
        pend = self.regs[CANINTE] & self.regs[CANINTF]
        code = 0
        for c, bit in ((1, ERRIF), (2, WAKIF), (3, TX0IF), (4, TX1IF), (5, TX2IF), (6, RX0IF), (7, RX1IF)):
            if pend & bit:
                code = c
                break
        self.regs[CANSTAT] = (self.regs[CANSTAT] & 0xF1) | (code << 1)

    # ------------------------------------------------------------------ register access
    def _addr(self, a):
        a &= 0x7F
        if (a & 0x0F) == 0x0E:
            return CANSTAT
        if (a & 0x0F) == 0x0F:
            return CANCTRL
        return a

    def read_reg(self, a):
        a = self._addr(a)
        if a == TEC:
            self._update_tec()
        elif a == EFLG:
            self._update_tec()
        return self.regs[a]

    def write_reg(self, a, v, mask=0xFF):
        a = self._addr(a)
        old = self.regs[a]
        v = (old & ~mask | v & mask) & 0xFF
        if a == CANSTAT or a in (TEC, REC) or 0x61 <= a <= 0x6D or 0x71 <= a <= 0x7D:
            return  # read-only
        if a in _CONFIG_ONLY and self.mode != MODE_CONFIG:
            return
        if a == CANCTRL:
            self.regs[a] = v
            if v & 0x10:  # ABAT: abort all pending transmissions
                for i in range(3):
                    self._abort(i)
            self._set_mode(v & 0xE0)
            return
        if a in TXBCTRL:
            i = TXBCTRL.index(a)
            v = (old & 0x70) | (v & 0x0B)  # ABTF, MLOA, TXERR are read-only
            self.regs[a] = v
            if v & 0x08 and not old & 0x08:
                self._request_tx(i)
            elif old & 0x08 and not v & 0x08:
                self._abort(i)
            return
        if a == RXBCTRL[0]:
            v = (old & 0x0B) | (v & 0x64)
            v = (v & ~0x02) | (0x02 if v & 0x04 else 0)  # BUKT1 is a read-only copy of BUKT
        elif a == RXBCTRL[1]:
            v = (old & 0x0F) | (v & 0x60)
        elif a == EFLG:
            v = (old & 0x3F) | (v & 0xC0 & old)  # only RXnOVR can be cleared
        self.regs[a] = v
        if a in (CANINTE, CANINTF):
            self._update_icod()

    def _set_mode(self, req):
        cur = self.mode
        if req == cur:
            return
        self.regs[CANSTAT] = (self.regs[CANSTAT] & 0x1F) | req
        if req == MODE_NORMAL:
            self.bus.acknowledging(self)
        if req in (MODE_NORMAL, MODE_LOOPBACK):
            for i in range(3):
                if self.regs[TXBCTRL[i]] & 0x08 and self._tx_pending[i] is None:
                    self._request_tx(i)

    def status(self):
        """READ STATUS (Figure 12-8)."""
        f = self.regs[CANINTF]
        t = [self.regs[c] for c in TXBCTRL]
        return ((f & RX0IF) | (f & RX1IF) | (0x04 if t[0] & 0x08 else 0) | (0x08 if f & TX0IF else 0)
                | (0x10 if t[1] & 0x08 else 0) | (0x20 if f & TX1IF else 0) | (0x40 if t[2] & 0x08 else 0)
                | (0x80 if f & TX2IF else 0))

    def rx_status(self):
        """RX STATUS (Table 12-2)."""
        f = self.regs[CANINTF]
        v = (0x40 if f & RX0IF else 0) | (0x80 if f & RX1IF else 0)
        if f & RX0IF:
            base = 0x60
        elif f & RX1IF:
            base = 0x70
        else:
            return v
        ext = bool(self.regs[base + 2] & 0x08)
        rtr = bool(self.regs[base] & 0x08)
        v |= (0x10 if ext else 0) | (0x08 if rtr else 0)
        if base == 0x60:
            v |= self.regs[0x60] & 0x01
        else:
            v |= self.regs[0x70] & 0x07
        return v

    # ------------------------------------------------------------------ SPI
    def _on_cs(self, pin, kind, value):
        if kind == "digital" and not value:
            self._state = "instr"
        else:
            if self._state is not None and self._rx_read is not None:
                self.regs[CANINTF] &= ~self._rx_read & 0xFF
                self._update_icod()
            self._rx_read = None
            self._state = None

    def transfer(self, out_bytes):
        if not self.present:
            return b"\xff" * len(out_bytes)
        res = bytearray(len(out_bytes))
        for i, b in enumerate(out_bytes):
            res[i] = self._byte(b)
        return bytes(res)

    def _byte(self, b):
        st = self._state
        if st == "instr":
            return self._instruction(b)
        if st == "read_addr":
            self._ptr = b & 0x7F
            self._state = "read"
            return 0xFF
        if st in ("read", "rxbuf"):
            v = self.read_reg(self._ptr)
            self._ptr = (self._ptr + 1) & 0x7F
            return v
        if st == "write_addr":
            self._ptr = b & 0x7F
            self._state = "write"
            return 0xFF
        if st in ("write", "loadtx"):
            self.write_reg(self._ptr, b)
            self._ptr = (self._ptr + 1) & 0x7F
            return 0xFF
        if st == "bitmod":
            self._args.append(b)
            if len(self._args) == 3:
                a, mask, data = self._args
                if self._addr(a) not in _BIT_MODIFIABLE:
                    mask = 0xFF
                self.write_reg(a, data, mask)
                self._state = "done"
            return 0xFF
        if st == "status":
            return self.status()
        if st == "rxstatus":
            return self.rx_status()
        return 0xFF

    def _instruction(self, b):
        if b == 0xC0:
            self.reset()
            self._state = "done"
        elif b == 0x03:
            self._state = "read_addr"
        elif b == 0x02:
            self._state = "write_addr"
        elif b == 0x05:
            self._args = []
            self._state = "bitmod"
        elif b == 0xA0:
            self._state = "status"
        elif b == 0xB0:
            self._state = "rxstatus"
        elif 0x40 <= b <= 0x45:
            self._ptr = (0x31, 0x36, 0x41, 0x46, 0x51, 0x56)[b - 0x40]
            self._state = "loadtx"
        elif b in (0x90, 0x92, 0x94, 0x96):
            self._ptr = {0x90: 0x61, 0x92: 0x66, 0x94: 0x71, 0x96: 0x76}[b]
            self._rx_read = RX0IF if b < 0x94 else RX1IF
            self._state = "rxbuf"
        elif 0x80 <= b <= 0x87:
            for i in range(3):
                if b & (1 << i):
                    a = TXBCTRL[i]
                    self.write_reg(a, self.regs[a] | 0x08)
            self._state = "done"
        else:
            self._state = "done"
        return 0xFF

    # ------------------------------------------------------------------ transmission
    def _tx_frame(self, i):
        base = TXBCTRL[i]
        sidh, sidl, eid8, eid0, dlc = self.regs[base + 1: base + 6]
        ext = bool(sidl & 0x08)
        if ext:
            can_id = (sidh << 21) | ((sidl & 0xE0) << 13) | ((sidl & 0x03) << 16) | (eid8 << 8) | eid0
        else:
            can_id = (sidh << 3) | (sidl >> 5)
        rtr = bool(dlc & 0x40)
        n = min(8, dlc & 0x0F)
        data = b"" if rtr else bytes(self.regs[base + 6: base + 6 + n])
        return can_id, ext, data, rtr, dlc & 0x0F

    def _request_tx(self, i):
        mode = self.mode
        if mode not in (MODE_NORMAL, MODE_LOOPBACK) or self._tx_pending[i] is not None:
            return  # sent when the mode allows (config, listen-only and sleep do not transmit)
        can_id, ext, data, rtr, dlc = self._tx_frame(i)
        dur = frame_bits(can_id, ext, data, rtr, dlc) * self.bit_time_ns()
        if mode == MODE_LOOPBACK:
            start = max(self.clock.now_ns, self._tx_busy_until)
            end = int(start + dur)
            self._tx_busy_until = end
        else:
            acked = self._rate_matches(self.bus.bitrate) and (self.bus.ack or self.bus.acknowledged_by_nodes(self))
            if not acked:
                # nobody acknowledges: error frames and retries for ever (TEC climbs to error passive)
                if self._nack_since[i] is None:
                    self._nack_since[i] = self.clock.now_ns
                    self.regs[TXBCTRL[i]] |= 0x10  # TXERR
                    self.regs[CANINTF] |= ERRIF
                return
            end = self.bus._slot(self.clock.now_ns, dur)
        self._tx_pending[i] = end
        self.clock.schedule(end, lambda te, i=i, m=mode: self._tx_done(i, te, m))

    def _retry_tx(self):
        for i in range(3):
            if self._nack_since[i] is not None and self.regs[TXBCTRL[i]] & 0x08:
                self._update_tec()
                self._nack_since[i] = None
                self._request_tx(i)

    def _update_tec(self):
        """TEC for a transmitter nobody acknowledges: +8 per attempt up to 128 (error passive), computed lazily."""
        for i in range(3):
            t0 = self._nack_since[i]
            if t0 is not None:
                can_id, ext, data, rtr, dlc = self._tx_frame(i)
                attempt_ns = (frame_bits(can_id, ext, data, rtr, dlc) + 14) * self.bit_time_ns()  # + error frame
                attempts = 1 + int((self.clock.now_ns - t0) // attempt_ns)
                self.regs[TEC] = max(self.regs[TEC], min(128, 8 * attempts))
        tec, rec = self.regs[TEC], self.regs[REC]
        e = self.regs[EFLG] & 0xC0
        if tec >= 96:
            e |= 0x04 | 0x01  # TXWAR, EWARN
        if rec >= 96:
            e |= 0x02 | 0x01  # RXWAR, EWARN
        if tec >= 128:
            e |= 0x10  # TXEP
        if rec >= 128:
            e |= 0x08  # RXEP
        self.regs[EFLG] = e

    def _abort(self, i):
        if self._tx_pending[i] is not None or self._nack_since[i] is not None:
            self.regs[TXBCTRL[i]] = (self.regs[TXBCTRL[i]] & ~0x08) | 0x40  # ABTF
        else:
            self.regs[TXBCTRL[i]] &= ~0x08
        self._tx_pending[i] = None
        self._nack_since[i] = None

    def _tx_done(self, i, t_ns, mode):
        if self._tx_pending[i] != t_ns:
            return  # aborted or reset meanwhile
        self._tx_pending[i] = None
        can_id, ext, data, rtr, _ = self._tx_frame(i)
        self.regs[TXBCTRL[i]] &= ~0x58 & 0xFF  # TXREQ, TXERR, ABTF cleared
        self.regs[CANINTF] |= _TXIF[i]
        if self.regs[TEC]:
            self.regs[TEC] -= 1
        self._update_icod()
        self.tx_frames += 1
        frame = Frame(t_ns, can_id, ext, data, rtr, "mcp2515")
        if mode == MODE_LOOPBACK:
            self._receive(frame)
        else:
            self.bus._deliver(frame, self)

    # ------------------------------------------------------------------ reception
    def _bus_frame(self, frame):
        mode = self.mode
        if mode == MODE_SLEEP:
            self.regs[CANINTF] |= WAKIF
            self._set_mode(MODE_LISTEN)  # wakes up in listen-only mode (10.2)
            self._update_icod()
            return
        if mode in (MODE_CONFIG, MODE_LOOPBACK):
            return
        if not self._rate_matches(self.bus.bitrate):
            self.regs[REC] = min(128, self.regs[REC] + 1)
            self._update_tec()
            return
        self._receive(frame)

    @staticmethod
    def _id_fields(can_id, ext):
        """(SIDH, SIDL, EID8, EID0) as the MCP2515 stores an identifier."""
        if ext:
            sid = can_id >> 18
            return (sid >> 3, ((sid & 7) << 5) | 0x08 | ((can_id >> 16) & 3), (can_id >> 8) & 0xFF, can_id & 0xFF)
        return (can_id >> 3, (can_id & 7) << 5, 0, 0)

    def _filter_match(self, fnum, mnum, frame, fields):
        r = self.regs
        f = r[_FILTERS[fnum]: _FILTERS[fnum] + 4]
        m = r[_MASKS[mnum]: _MASKS[mnum] + 4]
        if bool(f[1] & 0x08) != frame.extended:  # EXIDE: the filter applies to one frame type only
            return False
        sid_ok = ((fields[0] ^ f[0]) & m[0]) == 0 and ((fields[1] ^ f[1]) & m[1] & 0xE0) == 0
        if not sid_ok:
            return False
        if frame.extended:
            return (((fields[1] ^ f[1]) & m[1] & 0x03) == 0 and ((fields[2] ^ f[2]) & m[2]) == 0
                    and ((fields[3] ^ f[3]) & m[3]) == 0)
        # standard frames: EID8/EID0 of filter and mask apply to the first two data bytes (4.5.1)
        d = frame.data or b""
        d0 = d[0] if len(d) > 0 else 0
        d1 = d[1] if len(d) > 1 else 0
        return ((d0 ^ f[2]) & m[2]) == 0 and ((d1 ^ f[3]) & m[3]) == 0

    def _accepts(self, rxb, frame, fields):
        """(accepted, filter number) for RX buffer 0 or 1."""
        if (self.regs[RXBCTRL[rxb]] >> 5) & 3 == 3:
            return True, 0 if rxb == 0 else 2  # RXM = 11: receive any message
        for fnum in ((0, 1) if rxb == 0 else (2, 3, 4, 5)):
            if self._filter_match(fnum, rxb, frame, fields):
                return True, fnum
        return False, None

    def _receive(self, frame):
        fields = self._id_fields(frame.id, frame.extended)
        r = self.regs
        ok0, f0 = self._accepts(0, frame, fields)
        if ok0:
            if not r[CANINTF] & RX0IF:
                self._store(0, frame, fields, f0)
            elif r[RXBCTRL[0]] & 0x04 and not r[CANINTF] & RX1IF:  # BUKT: roll over into RXB1
                self._store(1, frame, fields, f0)
            else:
                # MODEL: with rollover the message was bound for RXB1, so RXB1 overflows (RX1OVR)
                r[EFLG] |= 0x80 if r[RXBCTRL[0]] & 0x04 else 0x40
                r[CANINTF] |= ERRIF
        else:
            ok1, f1 = self._accepts(1, frame, fields)
            if not ok1:
                return
            if not r[CANINTF] & RX1IF:
                self._store(1, frame, fields, f1)
            else:
                r[EFLG] |= 0x80  # RX1OVR
                r[CANINTF] |= ERRIF
        self._update_icod()

    def _store(self, rxb, frame, fields, fnum):
        r = self.regs
        base = RXBCTRL[rxb]
        sidl = fields[1]
        if frame.rtr and not frame.extended:
            sidl |= 0x10  # SRR: standard frame remote request
        r[base + 1] = fields[0]
        r[base + 2] = sidl
        r[base + 3] = fields[2]
        r[base + 4] = fields[3]
        data = frame.data or b""
        r[base + 5] = (0x40 if frame.rtr and frame.extended else 0) | (len(data) & 0x0F)
        r[base + 6: base + 6 + len(data)] = data
        ctrl = r[base] & 0x64 if rxb == 0 else r[base] & 0x60
        ctrl |= 0x08 if frame.rtr else 0
        if rxb == 0:
            ctrl |= 0x02 if ctrl & 0x04 else 0
            ctrl |= fnum & 1
        else:
            ctrl |= fnum & 7  # 0/1 = rollover from RXF0/RXF1 (4.2.2)
        r[base] = ctrl
        r[CANINTF] |= RX0IF if rxb == 0 else RX1IF
        self.rx_frames += 1
