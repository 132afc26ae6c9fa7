"""CRC-32 in pure Python for ports without binascii.crc32 (lib/fugu/nvstore.py uses the port's when it has one, as
CircuitPython and MicroPython do): the table in 16-bit halves so every value stays a small int."""

_crc_cache = []  # type: list  # [lo, hi] once built: the CRC-32 table (reflected 0xEDB88320) in 16-bit halves


def _crc_tables():
    if _crc_cache:
        return _crc_cache[0], _crc_cache[1]
    from array import array

    lo = array("H", bytes(512))
    hi = array("H", bytes(512))
    for n in range(256):
        c_lo = n
        c_hi = 0
        for _ in range(8):
            carry = c_lo & 1
            c_lo = (c_lo >> 1) | ((c_hi & 1) << 15)
            c_hi >>= 1
            if carry:
                c_lo ^= 0x8320
                c_hi ^= 0xEDB8
        lo[n] = c_lo
        hi[n] = c_hi
    _crc_cache.append(lo)
    _crc_cache.append(hi)
    return lo, hi


def crc32_py(data, crc=0):
    """CRC-32 as zlib/binascii compute it, in pure Python with 16-bit halves (no long ints on MicroPython)."""
    t_lo, t_hi = _crc_tables()
    lo = (crc & 0xFFFF) ^ 0xFFFF
    hi = ((crc >> 16) & 0xFFFF) ^ 0xFFFF
    for b in data:
        i = (lo ^ b) & 0xFF
        lo = ((lo >> 8) | ((hi & 0xFF) << 8)) ^ t_lo[i]
        hi = (hi >> 8) ^ t_hi[i]
    return ((hi ^ 0xFFFF) << 16) | (lo ^ 0xFFFF)
