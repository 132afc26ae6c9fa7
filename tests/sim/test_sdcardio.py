"""The ``sdcardio`` stand-in (sim/hal/sdcardio.py: CircuitPython 10's C driver, shared-module/sdcardio/SDCard.c)
against the SPI-mode card emulator, which cannot tell it from adafruit_sdcard: what the C driver sends and how it
fails, pinned down here because extensions/sd_log.py has to live with it (tests/ext/test_sd_log.py).

Found here (the C code as it is): every wait times out after 500 ms with no deadline for the whole call; a rejected
block is reported (OSError EIO); a card that stops answering mid-write is reported only at the next command, each
unanswered block costing 500 ms first.
"""

import errno
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

from test_sdcard import CS, Rig  # noqa: E402  (installs the stand-ins)

import pytest  # noqa: E402

from sim.devices.sdcard import FatImage  # noqa: E402


def sdcardio_card(rig, **kw):
    import board
    import sdcardio

    rig.cs.deinit()  # the C driver takes the pin itself
    return sdcardio.SDCard(rig.spi, getattr(board, CS), **kw)


@pytest.fixture
def rig(tmp_path):
    r = Rig(tmp_path)
    yield r
    r.close()


def elapsed_s(rig, t0_ns):
    return (rig.board.clock.now_ns - t0_ns) / 1e9


def test_initialisation_follows_the_c_driver(rig):
    sd = sdcardio_card(rig)
    names = [c for _, c in rig.card.commands]
    assert names[:3] == ["CMD0", "CMD8", "CMD58"]  # then CMD55/ACMD41 every 50 ms until the card is ready
    assert names[-4:] == ["ACMD41", "CMD58", "CMD9", "CMD16"]
    assert names.count("ACMD41") == 4  # 50 ms before each: the card's 120 ms run from the first one
    assert sd.count() == rig.card.n_blocks == 8 * 2048
    assert rig.board.pin(CS).owner is not None and rig.spi.try_lock()  # CS held by the driver, the bus released
    rig.spi.unlock()
    assert rig.spi.frequency == 250000  # initialisation at 250 kHz; transfers after it at the requested rate
    sd.readblocks(0, bytearray(512))
    assert rig.spi.frequency <= 8000000


@pytest.mark.parametrize("kind", ["sdhc", "sdsc"])
def test_blocks_round_trip_and_a_write_stays_open_until_sync(tmp_path, kind):
    r = Rig(tmp_path, kind=kind)
    try:
        sd = sdcardio_card(r, baudrate=4000000)
        one, three = os.urandom(512), os.urandom(3 * 512)
        sd.writeblocks(100, one)
        sd.writeblocks(101, three)  # follows on: the same CMD25
        sd.sync()  # the stop token
        names = [c for _, c in r.card.commands]
        assert names[-1] == "CMD25" and names.count("CMD25") == 1 and r.card.blocks_written == 4
        got = bytearray(4 * 512)
        sd.readblocks(100, got)  # CMD18 + CMD12
        single = bytearray(512)
        sd.readblocks(102, single)  # CMD17
        assert bytes(got) == one + three and bytes(single) == three[512:1024]
        assert [c for _, c in r.card.commands][-3:] == ["CMD18", "CMD12", "CMD17"]
        with open(r.image, "rb") as f:
            f.seek(100 * 512)
            assert f.read(4 * 512) == one + three
        if kind == "sdhc":
            assert sd.count() == r.card.n_blocks  # CSD v2
        else:  # the C code reads CSD v1's C_SIZE[1:0] as (csd[8] & 0xC) >> 6, always 0, as adafruit_sdcard does
            assert r.card.n_blocks - 3 * (4 << r.card.c_size_mult) <= sd.count() < r.card.n_blocks
        with pytest.raises(ValueError):
            sd.writeblocks(5, b"\x00" * 100)
    finally:
        r.close()


def test_files_through_vfsfat_are_read_by_a_host_fat_reader(rig):
    import storage

    sd = sdcardio_card(rig)
    storage.VfsFat.mkfs(sd)
    fs = rig.mount(sd)
    with fs.open("/log.csv", "w") as f:
        f.write("a,b\n1,2\n")
        f.flush()  # FatFs f_sync: the block device's sync() sends the stop token
    storage.umount("/sd")
    sd.deinit()
    with FatImage(rig.image) as img:
        assert img.read_text("/log.csv") == "a,b\n1,2\n"


def test_no_card_raises_oserror_after_five_cmd0_tries_and_frees_the_pin(rig):
    import sdcardio

    rig.card.remove()
    t0 = rig.board.clock.now_ns
    with pytest.raises(OSError) as e:
        sdcardio_card(rig)
    assert str(e.value) == "no SD card" and e.value.errno is None  # mp_raise_OSError_msg: a message, no errno
    assert 2.5 <= elapsed_s(rig, t0) < 2.6  # 5 x the 500 ms response timeout
    assert rig.board.pin(CS).owner is None and rig.spi.try_lock()
    rig.spi.unlock()
    assert sdcardio.SDCard is not None


def test_a_rejected_write_is_reported_and_the_card_goes_on(rig):
    sd = sdcardio_card(rig)
    rig.card.fail_write(0, "error")
    with pytest.raises(OSError) as e:
        sd.writeblocks(10, b"\xaa" * 512)
    assert e.value.errno == errno.EIO
    sd.writeblocks(10, b"\xbb" * 512)
    buf = bytearray(512)
    sd.readblocks(10, buf)
    assert bytes(buf) == b"\xbb" * 512


def test_a_card_stuck_busy_times_out_after_half_a_second(rig):
    sd = sdcardio_card(rig)
    rig.card.fail_write(0, "busy")
    t0 = rig.board.clock.now_ns
    with pytest.raises(OSError) as e:
        sd.writeblocks(11, b"\x01" * 512)
    assert e.value.errno == errno.EIO and 0.5 <= elapsed_s(rig, t0) < 0.52
    assert rig.board.pin(CS).owner is not None and rig.spi.try_lock()  # CS high again, the bus released
    rig.spi.unlock()
    sd.deinit()
    sd = sdcardio_card(rig)  # CMD0 resets the card, though its CMD25 was never stopped
    sd.writeblocks(11, b"\x02" * 512)
    sd.sync()
    buf = bytearray(512)
    sd.readblocks(11, buf)
    assert bytes(buf) == b"\x02" * 512


def test_a_card_that_stops_answering_costs_half_a_second_per_block_before_an_error(rig):
    """The data response never comes: after 500 ms the C code goes on to the busy wait, which reads FFh and calls
    the block written; only the next command (here the stop token of sync) fails, after 500 ms more."""
    sd = sdcardio_card(rig)
    rig.card.fail_write(0, "dead")
    t0 = rig.board.clock.now_ns
    sd.writeblocks(12, b"\x02" * 1024)  # two blocks, no error
    assert 1.0 <= elapsed_s(rig, t0) < 1.02
    with pytest.raises(OSError) as e:
        sd.sync()
    assert e.value.errno == errno.EIO and 1.5 <= elapsed_s(rig, t0) < 1.52


def test_deinit_releases_the_pin_and_count_then_raises(rig):
    sd = sdcardio_card(rig)
    sd.deinit()
    sd.deinit()  # twice is fine
    assert rig.board.pin(CS).owner is None
    with pytest.raises(ValueError):
        sd.count()
    with pytest.raises(OSError):
        sd.readblocks(0, bytearray(512))


def test_a_board_can_be_simulated_without_sdcardio(rig):
    import importlib

    from sim.breakout import without_core_modules
    from sim.simboard import SimBoard

    import sdcardio  # noqa: F401  (the ESP32 and ESP32-S3 builds have it)

    without_core_modules(rig.board, "sdcardio")
    with pytest.raises(ImportError):
        importlib.import_module("sdcardio")
    other = SimBoard(["IO1"]).activate()  # the next board has it again
    try:
        assert importlib.import_module("sdcardio").SDCard
    finally:
        other.deactivate()
        rig.board.activate()
