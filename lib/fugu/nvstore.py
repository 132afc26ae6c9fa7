"""Two-slot records in microcontroller.nvm, so power lost at any byte of a write keeps the previous record.

Each record: magic (2 bytes) | version (1) | seq (uint32 BE) | length (uint16 BE) | payload | crc32 (4, BE, over
everything before it). A write goes to the slot that does NOT hold the newest valid record, as one slice
assignment (one flash operation on CircuitPython), so a cut write can only damage the older copy; a read takes the
valid slot with the newer sequence number. Sequence numbers compare with serial-number arithmetic (RFC 1982), so
0xFFFFFFFF -> 0 keeps working. Reads and writes allocate: boot time and occasional saves only, never the hot loop
(on the ESP32 port one nvm write rewrites the whole 8 KiB NVS blob and blocks for tens of milliseconds).
"""

from micropython import const

try:
    from binascii import crc32 as _native_crc32  # C speed where the port has it (MicroPython, CPython)
except ImportError:
    _native_crc32 = None  # type: ignore[assignment]

_HEADER_SIZE = const(9)  # magic 2 + version 1 + seq 4 + length 2
_CRC_SIZE = const(4)
OVERHEAD = const(_HEADER_SIZE + _CRC_SIZE)
SEQ_MASK = 0xFFFFFFFF
SEQ_HALF = 0x80000000

def crc32_py(data, crc=0):
    """CRC-32 as zlib/binascii compute it, in pure Python (fugu/crc32_py.py: loaded only on a port without
    binascii.crc32, so the others keep neither its code nor its tables in RAM)."""
    from fugu.crc32_py import crc32_py as pure

    return pure(data, crc)


def crc32(data, crc=0):
    """CRC-32 (the ZIP/zlib one): the port's binascii.crc32 if it has one, else crc32_py."""
    if _native_crc32 is not None:
        return _native_crc32(data, crc) & SEQ_MASK
    return crc32_py(data, crc)


def seq_newer(a, b):
    """True when sequence number a is newer than b (serial-number arithmetic on uint32)."""
    d = (a - b) & SEQ_MASK
    return d != 0 and d < SEQ_HALF


class SlotStore:
    """Two slots of `slot_size` bytes at nvm[base:base + 2 * slot_size]; slot A at base, slot B after it.

    `version` is the caller's payload format version, written with every record; `read()` returns records of any
    version and leaves the one it found in `.read_version` (the caller decides what an old format means)."""

    def __init__(self, nvm, base, slot_size, magic, version=1):
        if len(magic) != 2:
            raise ValueError("magic must be 2 bytes")
        if slot_size <= OVERHEAD:
            raise ValueError("slot too small")
        if not 0 <= version <= 255:
            raise ValueError("version must fit one byte")
        self.nvm = nvm
        self.base = base
        self.slot_size = slot_size
        self.magic = bytes(magic)
        self.version = version
        self.max_payload = min(slot_size - OVERHEAD, 0xFFFF)
        self.read_version = 0  # the format version of the record read() found (0: none)
        self._versions = [0, 0]
        self._newest = None  # (slot index, seq) of the newest valid record, once known; None = scan again

    def _slot_base(self, slot):
        return self.base + slot * self.slot_size

    def _check_slot(self, slot):
        """(seq, payload) of a valid record in `slot`, or (None, reason)."""
        nvm = self.nvm
        a = self._slot_base(slot)
        head = nvm[a:a + _HEADER_SIZE]
        if len(head) < _HEADER_SIZE:
            return None, "outside nvm"
        if head[0] == 0xFF and head[1] == 0xFF:
            return None, "blank"
        if head[0] != self.magic[0] or head[1] != self.magic[1]:
            return None, "no record"
        n = (head[7] << 8) | head[8]
        if n > self.max_payload:
            return None, "bad length"
        rec = nvm[a:a + _HEADER_SIZE + n + _CRC_SIZE]
        stored = int.from_bytes(bytes(rec[_HEADER_SIZE + n:]), "big")
        if crc32(memoryview(rec)[:_HEADER_SIZE + n]) != stored:
            return None, "bad checksum"
        seq = int.from_bytes(bytes(head[3:7]), "big")
        self._versions[slot] = head[2]
        return seq, bytes(rec[_HEADER_SIZE:_HEADER_SIZE + n])

    def _scan(self):
        """(newest slot or None, its seq, its payload, info)."""
        self._versions[0] = self._versions[1] = 0
        seq_a, pay_a = self._check_slot(0)
        seq_b, pay_b = self._check_slot(1)
        if seq_a is None and seq_b is None:
            if pay_a == "blank" and pay_b == "blank":
                return None, None, None, "blank, never written"
            return None, None, None, "no valid record (slot A: %s, slot B: %s)" % (pay_a, pay_b)
        if seq_b is None or (seq_a is not None and not seq_newer(seq_b, seq_a)):
            slot, seq, payload = 0, seq_a, pay_a
            other = "" if seq_b is not None else "; slot B: %s" % pay_b
        else:
            slot, seq, payload = 1, seq_b, pay_b
            other = "" if seq_a is not None else "; slot A: %s" % pay_a
        info = "slot %s seq %d v%d, %d bytes%s" % ("AB"[slot], seq, self._versions[slot], len(payload), other)
        self.read_version = self._versions[slot]
        return slot, seq, payload, info

    def read(self):
        """(payload bytes or None, info str): the newest valid record, and where it came from or why none."""
        slot, seq, payload, info = self._scan()
        self._newest = None if slot is None else (slot, seq)
        if slot is None:
            self.read_version = 0
        return payload, info

    def write(self, payload):
        """Write `payload` into the slot not holding the newest valid record; returns the bytes written.
        Raises ValueError when it does not fit, OSError when the read-back differs. Blocks (flash write)."""
        n = len(payload)
        if n > self.max_payload:
            raise ValueError("payload of %d bytes does not fit (max %d)" % (n, self.max_payload))
        newest = self._newest
        if newest is None:
            slot, seq, _, _ = self._scan()
            newest = None if slot is None else (slot, seq)
        if newest is None:
            slot, seq = 0, 1
        else:
            slot, seq = 1 - newest[0], (newest[1] + 1) & SEQ_MASK
        rec = bytearray(_HEADER_SIZE + n + _CRC_SIZE)
        rec[0] = self.magic[0]
        rec[1] = self.magic[1]
        rec[2] = self.version
        rec[3:7] = seq.to_bytes(4, "big")
        rec[7] = n >> 8
        rec[8] = n & 0xFF
        rec[_HEADER_SIZE:_HEADER_SIZE + n] = payload
        rec[_HEADER_SIZE + n:] = crc32(memoryview(rec)[:_HEADER_SIZE + n]).to_bytes(4, "big")
        a = self._slot_base(slot)
        self._newest = None  # unknown until the write is confirmed
        self.nvm[a:a + len(rec)] = rec
        if bytes(self.nvm[a:a + len(rec)]) != bytes(rec):
            raise OSError("nvm read-back differs after write at %d" % a)
        self._newest = (slot, seq)
        return len(rec)
