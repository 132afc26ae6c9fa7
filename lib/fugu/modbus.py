"""Modbus RTU server (slave) logic without I/O: CRC-16, where frames end, function codes 03/04/06/16 and the
exception responses. The RS485 extension (extensions/rs485.py) reads the UART into RtuReceiver.buf, passes each
complete frame to RtuServer.handle() and sends what it returns; the register map is an object it provides.

Why frames end two ways: the standard ends a frame at 3.5 character times of silence, but the firmware polls the
UART every few tens of milliseconds (each poll sees whole bursts, not character gaps). So a frame also ends as soon
as the length its header implies holds a valid CRC (answered at once), and only otherwise at the next poll that
finds the line quiet. What the standard asks is kept: a bad CRC gets no answer, a broadcast (address 0) is
executed but never answered, a read is never broadcast, an unsupported function gets exception 01, an address
outside the map 02, a malformed request or a refused value 03.

No allocation per frame: the caller owns the request and response buffers.
"""

from array import array

FC_READ_HOLDING = 3
FC_READ_INPUT = 4
FC_WRITE_SINGLE = 6
FC_WRITE_MULTIPLE = 16

EX_ILLEGAL_FUNCTION = 1
EX_ILLEGAL_ADDRESS = 2
EX_ILLEGAL_VALUE = 3
EX_DEVICE_FAILURE = 4

BROADCAST = 0
ADU_MAX = 256  # the longest RTU frame: address + 253-byte PDU + CRC
FRAME_MIN = 4  # address, function, CRC
READ_MAX_SPEC = 125  # registers per read (the standard's limit)
WRITE_MAX_SPEC = 123  # registers per write multiple (the standard's limit)


def _crc_table():
    t = array("H", [0] * 256)
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0xA001 if c & 1 else c >> 1
        t[i] = c
    return t


_CRC_TABLE = _crc_table()


def crc16(buf, start, end):
    """The Modbus CRC-16 (polynomial 0xA001 reflected, initial 0xFFFF) of buf[start:end]; it goes on the line low
    byte first."""
    crc = 0xFFFF
    t = _CRC_TABLE
    for i in range(start, end):
        crc = (crc >> 8) ^ t[(crc ^ buf[i]) & 0xFF]
    return crc


def crc_ok(buf, n):
    """buf[0:n] ends with the CRC of what precedes it."""
    if n < FRAME_MIN:
        return False
    crc = crc16(buf, 0, n - 2)
    return buf[n - 2] == crc & 0xFF and buf[n - 1] == crc >> 8


def seal(buf, n):
    """Append the CRC to buf[0:n]; returns the frame length n + 2."""
    crc = crc16(buf, 0, n)
    buf[n] = crc & 0xFF
    buf[n + 1] = crc >> 8
    return n + 2


def request_length(buf, n):
    """The length of the request frame starting at buf[0] as its header implies: 0 when more bytes are needed to
    tell, -1 for a function whose request layout this server does not know."""
    if n < 2:
        return 0
    fc = buf[1]
    if 1 <= fc <= 6:
        return 8
    if fc == 15 or fc == 16:
        return 9 + buf[6] if n >= 7 else 0
    if fc == 7 or fc == 11 or fc == 12 or fc == 17:
        return 4
    return -1


def response_length(buf, n):
    """The length of a response frame (another server's, heard on the shared line) starting at buf[0], as
    request_length()."""
    if n < 2:
        return 0
    fc = buf[1]
    if fc & 0x80:
        return 5
    if 1 <= fc <= 4 or fc == 12 or fc == 17:
        return 5 + buf[2] if n >= 3 else 0
    if fc == 5 or fc == 6 or fc == 15 or fc == 16 or fc == 11:
        return 8
    if fc == 7:
        return 5
    return -1


class RtuReceiver:
    """Bytes from the line, accumulated across polls in a preallocated buffer, cut into frames.

    The caller reads the UART into ``view[n:]`` (``free()`` bytes at most), adds what it got to ``n``, then calls
    ``next_frame()`` until it returns 0, passing each frame ``buf[0:length]`` on and then ``consume(length)``.
    ``silent``: no byte has arrived for at least 3.5 character times (the standard's end of frame)."""

    def __init__(self, size=ADU_MAX):
        self.buf = bytearray(size)
        self.view = memoryview(self.buf)
        self.n = 0
        self.overflow = False  # more than a frame's worth without a silence: dropped until the next silence
        self.overflows = 0

    def free(self):
        return len(self.buf) - self.n

    def drop_until_silence(self):
        self.n = 0
        if not self.overflow:
            self.overflows += 1
        self.overflow = True

    def next_frame(self, address, silent):
        """The length of the frame at buf[0] that is complete now, or 0 (wait for more bytes or the silence)."""
        n = self.n
        if self.overflow:
            if silent:
                self.overflow = False
                self.n = 0
            return 0
        if n == 0:
            return 0
        b = self.buf
        ours = b[0] == address or b[0] == BROADCAST
        length = request_length(b, n)
        if 0 < length <= n and crc_ok(b, length):
            return length
        if not ours:  # another server's answer on the shared line: skip it by its own length
            length = response_length(b, n)
            if 0 < length <= n and crc_ok(b, length):
                return length
        if silent:
            return n  # the standard's rule: everything since the last silence is one frame
        return 0

    def consume(self, length):
        """Forget the first ``length`` bytes (a frame handled or skipped), keeping any that followed it."""
        n = self.n
        if length >= n:
            self.n = 0
            return
        b = self.buf
        for i in range(n - length):
            b[i] = b[length + i]
        self.n = n - length


class RtuServer:
    """Answers requests addressed to ``address`` (and executes broadcasts) through ``registers``, an object with

    - ``read(fc, start, count, out, pos)``: put ``count`` registers (big-endian words) from ``start`` into
      ``out[pos:]`` for function 3 (holding) or 4 (input); return 0 or an exception code (02 outside the map);
    - ``write(start, count, data, pos)``: write ``count`` holding registers (big-endian words in ``data[pos:]``)
      all or nothing; return 0 or an exception code (02 outside the map, 03 a refused value: nothing changed).

    ``max_read``: registers per read this server answers (03 beyond it); the response buffer must hold
    5 + 2 * max_read bytes."""

    def __init__(self, registers, address=1, max_read=READ_MAX_SPEC):
        self.registers = registers
        self.address = address
        self.max_read = max_read
        # counters (what a diagnostic page or the log shows)
        self.requests = 0  # valid frames addressed to us or broadcast
        self.replies = 0
        self.exceptions = 0
        self.crc_errors = 0  # frames whose CRC is wrong (no answer, as the standard says)
        self.foreign = 0  # valid frames for another address

    def handle(self, req, n, resp):
        """Handle the frame req[0:n]; returns the length of the answer put in ``resp`` (0: no answer)."""
        if n < FRAME_MIN or not crc_ok(req, n):
            self.crc_errors += 1
            return 0
        addr = req[0]
        if addr != self.address and addr != BROADCAST:
            self.foreign += 1
            return 0
        self.requests += 1
        fc = req[1]
        if fc == FC_READ_HOLDING or fc == FC_READ_INPUT:
            if addr == BROADCAST:
                return 0  # a read cannot be broadcast: nobody would answer
            if n != 8:
                return self._exception(resp, addr, fc, EX_ILLEGAL_VALUE)
            start = (req[2] << 8) | req[3]
            count = (req[4] << 8) | req[5]
            if count < 1 or count > self.max_read:
                return self._exception(resp, addr, fc, EX_ILLEGAL_VALUE)
            if start + count > 0x10000:
                return self._exception(resp, addr, fc, EX_ILLEGAL_ADDRESS)
            code = self.registers.read(fc, start, count, resp, 3)
            if code:
                return self._exception(resp, addr, fc, code)
            resp[0] = addr
            resp[1] = fc
            resp[2] = 2 * count
            return self._reply(resp, 3 + 2 * count)
        if fc == FC_WRITE_SINGLE:
            if n != 8:
                return self._exception(resp, addr, fc, EX_ILLEGAL_VALUE)
            code = self.registers.write((req[2] << 8) | req[3], 1, req, 4)
            return self._echo(req, resp, addr, fc, code)
        if fc == FC_WRITE_MULTIPLE:
            if n < 9:
                return self._exception(resp, addr, fc, EX_ILLEGAL_VALUE)
            start = (req[2] << 8) | req[3]
            count = (req[4] << 8) | req[5]
            nbytes = req[6]
            if count < 1 or count > WRITE_MAX_SPEC or nbytes != 2 * count or n != 9 + nbytes:
                return self._exception(resp, addr, fc, EX_ILLEGAL_VALUE)
            if start + count > 0x10000:
                return self._exception(resp, addr, fc, EX_ILLEGAL_ADDRESS)
            code = self.registers.write(start, count, req, 7)
            return self._echo(req, resp, addr, fc, code)
        return self._exception(resp, addr, fc, EX_ILLEGAL_FUNCTION)

    def _echo(self, req, resp, addr, fc, code):
        """Write answers repeat the request's address and count (06: address and value)."""
        if code:
            return self._exception(resp, addr, fc, code)
        if addr == BROADCAST:
            return 0
        for i in range(6):
            resp[i] = req[i]
        return self._reply(resp, 6)

    def _exception(self, resp, addr, fc, code):
        self.exceptions += 1
        if addr == BROADCAST:
            return 0
        resp[0] = addr
        resp[1] = (fc | 0x80) & 0xFF
        resp[2] = code
        return self._reply(resp, 3)

    def _reply(self, resp, n):
        self.replies += 1
        return seal(resp, n)


def put_u16(buf, pos, value):
    """A register (two's complement for negative values) at buf[pos:pos + 2], big-endian."""
    value &= 0xFFFF
    buf[pos] = value >> 8
    buf[pos + 1] = value & 0xFF


def get_u16(buf, pos):
    return (buf[pos] << 8) | buf[pos + 1]
