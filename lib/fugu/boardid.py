"""The board identifier stored on the chip (microcontroller.nvm), so one firmware serves every board.

Record at nvm[0:32]: b"FB" magic, 1 length byte, up to 27 ASCII bytes of name, 2-byte checksum (sum of the name
bytes mod 65536, big endian) at the end of the record. A blank (0xFF) or corrupt record reads as None.
"""

from micropython import const

_BOARD_ID_OFFSET = const(0)
_BOARD_ID_SIZE = const(32)
DEFAULT_BOARD = "fugu_v1"


def encode_board_id(name):
    raw = name.encode()
    if not 0 < len(raw) <= _BOARD_ID_SIZE - 5:
        raise ValueError("board id must be 1..27 ASCII bytes")
    rec = bytearray(b"\xff" * _BOARD_ID_SIZE)
    rec[0:2] = b"FB"
    rec[2] = len(raw)
    rec[3:3 + len(raw)] = raw
    s = sum(raw) & 0xFFFF
    rec[_BOARD_ID_SIZE - 2] = s >> 8
    rec[_BOARD_ID_SIZE - 1] = s & 0xFF
    return bytes(rec)


def decode_board_id(rec):
    if len(rec) < _BOARD_ID_SIZE or rec[0] != 0x46 or rec[1] != 0x42:
        return None
    n = rec[2]
    if not 0 < n <= _BOARD_ID_SIZE - 5:
        return None
    raw = bytes(rec[3:3 + n])
    if (sum(raw) & 0xFFFF) != (rec[_BOARD_ID_SIZE - 2] << 8 | rec[_BOARD_ID_SIZE - 1]):
        return None
    try:
        return raw.decode()
    except UnicodeError:
        return None


def read_board_id(nvm):
    if nvm is None:
        return None
    return decode_board_id(nvm[_BOARD_ID_OFFSET:_BOARD_ID_OFFSET + _BOARD_ID_SIZE])


def load_board_config(nvm, log=print):
    """The board config module's BOARD dict for the stored identifier; falls back to DEFAULT_BOARD and says so."""
    name = read_board_id(nvm)
    if name is None:
        log("board id: none stored, using default %s" % DEFAULT_BOARD)
        name = DEFAULT_BOARD
    try:
        mod = __import__("boardconfigs." + name, None, None, ["BOARD"])
    except ImportError:
        log("board id: unknown board %r, using default %s" % (name, DEFAULT_BOARD))
        name = DEFAULT_BOARD
        mod = __import__("boardconfigs." + name, None, None, ["BOARD"])
    from fugu import forget

    forget("boardconfigs." + name, "boardconfigs")  # only the dict is needed, not the module
    return mod.BOARD
