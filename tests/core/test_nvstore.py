"""Two-slot nvm records: checksum, sequence numbers, and what survives a power cut or a corrupted byte, on the
simulated microcontroller.nvm (whose writes can be cut after any byte)."""

import random
import zlib

import pytest

from fugu import nvstore
from fugu.nvstore import OVERHEAD, SlotStore, crc32, crc32_py, seq_newer
from sim.clock import SimReset
from sim.simboard import SimBoard

BASE = 4160  # the free part of the nvm map: these tests own it
SLOT = 256


@pytest.fixture
def board():
    b = SimBoard(pin_names=[]).activate()
    yield b
    b.deactivate()


@pytest.fixture
def nvm(board):
    import microcontroller

    return microcontroller.nvm


def store(nvm, **kw):
    return SlotStore(nvm, BASE, SLOT, b"FT", **kw)


def test_crc32_matches_zlib_including_the_pure_python_table():
    rng = random.Random(1)
    samples = [b"", b"123456789", bytes(range(256)), bytes(rng.getrandbits(8) for _ in range(1011))]
    for data in samples:
        assert crc32_py(data) == zlib.crc32(data)
        assert crc32(data) == zlib.crc32(data)
    assert crc32_py(b"123456789") == 0xCBF43926  # the standard check value
    # incremental, as zlib
    assert crc32_py(b"56789", crc32_py(b"1234")) == zlib.crc32(b"123456789")


def test_pure_python_crc_path_round_trips(nvm, monkeypatch):
    """Ports without binascii.crc32 use crc32_py: records written by one path read with the other."""
    s = store(nvm)
    s.write(b"written with the native crc")
    monkeypatch.setattr(nvstore, "_native_crc32", None)
    assert store(nvm).read()[0] == b"written with the native crc"
    store(nvm).write(b"written with the pure crc")
    monkeypatch.undo()
    assert store(nvm).read()[0] == b"written with the pure crc"


def test_blank_nvm_reads_none_and_says_blank(nvm):
    payload, info = store(nvm).read()
    assert payload is None
    assert "blank" in info


def test_writes_alternate_slots_one_flash_operation_each(nvm, board):
    s = store(nvm)
    for i in range(5):
        before = board.nvm_writes
        n = s.write(b"payload %d" % i)
        assert board.nvm_writes == before + 1  # a single slice assignment
        assert n == OVERHEAD + len(b"payload %d" % i)
        slot_base = BASE + (i % 2) * SLOT
        assert bytes(board.nvm[slot_base:slot_base + 2]) == b"FT"
        assert int.from_bytes(board.nvm[slot_base + 3:slot_base + 7], "big") == i + 1  # seq
        fresh = store(nvm)
        payload, info = fresh.read()
        assert payload == b"payload %d" % i
        assert "slot %s seq %d" % ("AB"[i % 2], i + 1) in info


def test_write_without_read_first_finds_the_newest_itself(nvm):
    store(nvm).write(b"one")
    store(nvm).write(b"two")  # a fresh store object scans first: "two" goes to B, "one" in A is kept
    store(nvm).write(b"three")  # to A (the older); B keeps "two"
    assert store(nvm).read()[0] == b"three"
    a = bytes(nvm[BASE:BASE + SLOT])
    b = bytes(nvm[BASE + SLOT:BASE + 2 * SLOT])
    assert b"three" in a and b"two" in b


def test_payload_too_large_is_refused_before_any_write(nvm, board):
    s = store(nvm)
    with pytest.raises(ValueError, match="does not fit"):
        s.write(bytes(SLOT - OVERHEAD + 1))
    assert board.nvm_writes == 0
    s.write(bytes(SLOT - OVERHEAD))  # exactly full is fine
    assert store(nvm).read()[0] == bytes(SLOT - OVERHEAD)


def test_version_byte_is_reported(nvm):
    store(nvm, version=7).write(b"x")
    s = store(nvm)
    assert s.read()[0] == b"x"
    assert s.read_version == 7


def test_a_corrupted_byte_anywhere_in_the_newest_record_falls_back_to_the_other_slot(nvm, board):
    s = store(nvm)
    s.write(b"older record")
    s.write(b"newer record!")
    newest = BASE + SLOT  # slot B
    rec_len = OVERHEAD + len(b"newer record!")
    pristine = bytearray(board.nvm)
    for pos in range(rec_len):
        for flip in (0x01, 0x80, 0xFF):
            board.nvm[:] = pristine
            board.nvm[newest + pos] ^= flip
            payload, info = store(nvm).read()
            assert payload == b"older record", (pos, flip)
            assert "slot A" in info
    # and the other way round: the older slot damaged, the newer one still wins
    board.nvm[:] = pristine
    board.nvm[BASE + 12] ^= 0x10
    assert store(nvm).read()[0] == b"newer record!"


def test_both_slots_corrupt_reads_none_with_the_reasons(nvm, board):
    s = store(nvm)
    s.write(b"a")
    s.write(b"b")
    board.nvm[BASE + 9] ^= 1  # payload byte of A
    board.nvm[BASE + SLOT] = 0x00  # magic of B
    payload, info = store(nvm).read()
    assert payload is None
    assert "slot A: bad checksum" in info and "slot B: no record" in info


def test_power_cut_at_every_byte_keeps_the_previous_record(nvm, board):
    s = store(nvm)
    s.write(b"first version of the record")
    s.write(b"second version, the one to keep")
    pristine = bytearray(board.nvm)
    new = b"third version, written while the power fails"
    rec_len = OVERHEAD + len(new)
    for k in range(rec_len + 1):
        board.nvm[:] = pristine
        board.nvm_fail_after_bytes = k
        with pytest.raises(SimReset):
            store(nvm).write(new)
        payload, _ = store(nvm).read()
        expected = new if k == rec_len else b"second version, the one to keep"
        assert payload == expected, k
        # after the cut the store carries on: the next write lands and reads back
        store(nvm).write(b"after the reset")
        assert store(nvm).read()[0] == b"after the reset"


def test_first_write_cut_leaves_none(nvm, board):
    board.nvm_fail_after_bytes = 5
    with pytest.raises(SimReset):
        store(nvm).write(b"never completes")
    payload, info = store(nvm).read()
    assert payload is None
    assert "no valid record" in info


def test_sequence_number_wraps_past_0xffffffff(nvm, board):
    assert seq_newer(0, 0xFFFFFFFF) and not seq_newer(0xFFFFFFFF, 0)
    assert seq_newer(5, 4) and not seq_newer(4, 4)
    s = store(nvm)
    s.write(b"x")  # slot A, seq 1: patch it to 0xFFFFFFFF with a valid crc
    rec = bytearray(nvm[BASE:BASE + OVERHEAD + 1])
    rec[3:7] = b"\xff\xff\xff\xff"
    rec[-4:] = zlib.crc32(bytes(rec[:-4])).to_bytes(4, "big")
    board.nvm[BASE:BASE + len(rec)] = rec
    s = store(nvm)
    assert "seq 4294967295" in s.read()[1]
    s.write(b"after the wrap")  # slot B, seq 0
    payload, info = store(nvm).read()
    assert payload == b"after the wrap" and "slot B seq 0" in info
    store(nvm).write(b"and again")  # slot A, seq 1
    payload, info = store(nvm).read()
    assert payload == b"and again" and "slot A seq 1" in info
