"""The SPI-mode SD card emulator (sim/devices/sdcard.py) driven by the REAL adafruit_sdcard 3.3.30, and the host
VfsFat (sim/hal/_vfsfat.py: FatFs on the driver's block device), checked with a host FAT reader on the image file.

Tests named ``test_driver_...`` pin down adafruit_sdcard 3.3.30 behaviour the firmware must live with (found here):
a write the card rejects is NOT reported, and a card stuck busy hangs it (no timeout).
"""

import errno
import io
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from sim.install import install  # noqa: E402

install()

import pytest  # noqa: E402

from sim.clock import SimClock, SimulationEnd  # noqa: E402
from sim.devices.sdcard import FatImage, SDCardEmulator, crc7, make_image  # noqa: E402
from sim.simboard import SimBoard  # noqa: E402

PINS = ["IO%d" % i for i in range(49)]
SPI_PINS = ("IO18", "IO23", "IO19")
CS = "IO5"


class Rig:
    def __init__(self, tmp_path, size_mib=8, kind="sdhc", end_s=None, **card_kw):
        self.image = make_image(str(tmp_path / "card.img"), size_mib)
        clock = SimClock(end_ns=int(end_s * 1e9) if end_s else None)
        self.board = SimBoard(PINS, aliases={"SCK": "IO18", "MOSI": "IO23", "MISO": "IO19"}, clock=clock).activate()
        self.card = SDCardEmulator(self.board, self.image, kind=kind, **card_kw).attach(SPI_PINS, CS)
        import board
        import busio
        import digitalio

        self.spi = busio.SPI(board.SCK, board.MOSI, board.MISO)
        self.cs = digitalio.DigitalInOut(getattr(board, CS))

    def sdcard(self):
        import adafruit_sdcard

        return adafruit_sdcard.SDCard(self.spi, self.cs)

    def mount(self, sd=None):
        import storage

        vfs = storage.VfsFat(sd or self.sdcard())
        storage.mount(vfs, "/sd")
        return storage.getmount("/sd")

    def close(self):
        import storage

        try:
            storage.umount("/sd")
        except OSError:
            pass
        self.card.close()
        self.board.deactivate()


@pytest.fixture
def rig(tmp_path):
    r = Rig(tmp_path)
    yield r
    r.close()


def test_driver_initialises_an_sdhc_card_with_the_spec_sequence(rig):
    sd = rig.sdcard()
    names = [c for _, c in rig.card.commands]
    assert names[:3] == ["CMD0", "CMD8", "CMD58"]
    assert "ACMD41" in names and "CMD9" in names and names[-1] == "CMD16"
    assert sd.count() == rig.card.n_blocks == 8 * 2048  # CSD v2: (C_SIZE + 1) * 512 KiB
    assert sd._cdv == 1  # block addressing (CCS set in the OCR)
    assert rig.board.clock.now_ns >= 120e6  # ACMD41 says idle until the card's init time is over


def test_block_read_write_roundtrip_single_and_multi(rig):
    sd = rig.sdcard()
    one = bytes(range(256)) * 2
    three = os.urandom(3 * 512)
    assert sd.writeblocks(100, one) == 0
    assert sd.writeblocks(200, three) == 0  # CMD25 with 0xFC tokens and the 0xFD stop token
    got1 = bytearray(512)
    got3 = bytearray(3 * 512)
    assert sd.readblocks(100, got1) == 0
    assert sd.readblocks(200, got3) == 0  # CMD18 then CMD12
    assert bytes(got1) == one and bytes(got3) == three
    with open(rig.image, "rb") as f:  # and the bytes are in the image file where the card keeps them
        f.seek(200 * 512)
        assert f.read(3 * 512) == three
    assert rig.card.blocks_written == 4


def test_standard_capacity_card_uses_byte_addressing(tmp_path):
    r = Rig(tmp_path, size_mib=8, kind="sdsc")
    try:
        sd = r.sdcard()
        assert sd._cdv == 512  # no CCS: the driver shifts block numbers to byte addresses
        data = os.urandom(512)
        sd.writeblocks(7, data)
        buf = bytearray(512)
        sd.readblocks(7, buf)
        assert bytes(buf) == data
        # adafruit_sdcard 3.3.30 reads C_SIZE[1:0] as (csd[8] & 0xC) >> 6 (always 0): it can under-count a
        # standard-capacity card by up to 3 C_SIZE units; never over-count
        assert sd.count() <= r.card.n_blocks
    finally:
        r.close()


def test_files_written_through_the_mount_are_read_by_a_host_fat_reader(rig):
    import pandas as pd

    fs = rig.mount()
    with fs.open("/2026-01-01.csv", "a") as f:
        f.write("t_s,p_pv_w,v_bat_mv\n")
    for i in range(50):
        with fs.open("/2026-01-01.csv", "a") as f:
            f.write("%d,%d,%d\n" % (i, 10 * i, 13000 + i))
    fs.mkdir("/old")
    with fs.open("/old/a.txt", "w") as f:
        f.write("x")
    assert sorted(e[0] for e in fs.ilistdir("/")) == ["2026-01-01.csv", "old"]
    assert rig.card.blocks_written > 50  # every close flushed data and directory entry over SPI
    import storage

    storage.umount("/sd")
    with FatImage(rig.image) as img:
        assert sorted(img.listdir("/")) == ["2026-01-01.csv", "old"]
        df = pd.read_csv(io.StringIO(img.read_text("/2026-01-01.csv")))
        assert img.read("/old/a.txt") == b"x"
    assert list(df.columns) == ["t_s", "p_pv_w", "v_bat_mv"]
    assert len(df) == 50 and df["p_pv_w"].iloc[-1] == 490


def test_flush_makes_the_rows_survive_a_power_cut(rig):
    fs = rig.mount()
    f = fs.open("/log.csv", "a")
    f.write("a,b\n1,2\n")
    f.flush()
    f.write("3,4\n")  # not flushed: lost when the power goes
    # power cut: the card keeps what reached it; nothing is closed
    with FatImage(rig.image) as img:
        assert img.read_text("/log.csv") == "a,b\n1,2\n"


def test_card_removal_and_reinsertion(rig):
    fs = rig.mount()
    with fs.open("/log.csv", "w") as f:
        f.write("before\n")
    rig.card.remove()
    with pytest.raises(OSError):
        with fs.open("/log.csv", "a") as f:
            f.write("lost\n" * 200)
            f.flush()
    import adafruit_sdcard
    import storage

    with pytest.raises(OSError):  # no card: no answer to CMD0
        adafruit_sdcard.SDCard(rig.spi, rig.cs)
    storage.umount("/sd")
    rig.card.insert()
    fs = rig.mount(rig.sdcard())  # the card needs the whole initialisation again
    with fs.open("/log.csv", "a") as f:
        f.write("after\n")
    with fs.open("/log.csv", "r") as f:
        assert f.read() == "before\nafter\n"


def test_card_detect_pin_follows_the_card(tmp_path):
    r = Rig(tmp_path, cd_pin="IO4")
    try:
        import board
        import digitalio

        cd = digitalio.DigitalInOut(board.IO4)
        cd.switch_to_input(pull=digitalio.Pull.UP)
        assert cd.value is False
        r.card.remove()
        assert cd.value is True
    finally:
        r.close()


def test_driver_does_not_report_a_write_the_card_rejects(rig):
    sd = rig.sdcard()
    rig.card.fail_write(after_blocks=0, mode="error")
    assert sd.writeblocks(10, b"\xaa" * 512) == 0  # data response 0x0D is ignored by adafruit_sdcard 3.3.30
    buf = bytearray(512)
    sd.readblocks(10, buf)
    assert bytes(buf) == bytes(512)  # the block never reached the card
    assert sd.writeblocks(10, b"\xbb" * 512) == 0  # the card goes on working
    sd.readblocks(10, buf)
    assert bytes(buf) == b"\xbb" * 512


def test_a_card_that_dies_mid_write_raises_oserror_through_the_filesystem(rig):
    fs = rig.mount()
    rig.card.fail_write(after_blocks=2, mode="dead")
    with pytest.raises(OSError) as e:
        with fs.open("/big.bin", "wb") as f:
            for _ in range(20):
                f.write(b"\x55" * 512)
    assert e.value.errno == errno.EIO  # writeblocks returned 1 (no R1): FatFs disk error
    # the card is gone until power-cycled; the volume reports errors instead of corrupting anything
    with pytest.raises(OSError):
        list(fs.ilistdir("/"))


def test_driver_hangs_on_a_card_stuck_busy(tmp_path):
    r = Rig(tmp_path, end_s=3.0)
    try:
        sd = r.sdcard()
        r.card.fail_write(after_blocks=0, mode="busy")
        with pytest.raises(SimulationEnd):  # adafruit_sdcard polls `while cmd[0] == 0` without a timeout:
            sd.writeblocks(5, b"\x01" * 512)  # on the device only the watchdog gets the controller back
    finally:
        r.close()


def test_a_full_card_raises_enospc_from_the_filesystem(tmp_path):
    r = Rig(tmp_path, size_mib=2)
    try:
        fs = r.mount()
        st = fs.statvfs("/")
        free_bytes = st[0] * st[3]
        assert 0 < free_bytes < 2 * 1024 * 1024
        chunk = b"z" * 4096
        written = 0
        with pytest.raises(OSError) as e:
            with fs.open("/fill.bin", "wb") as f:
                while True:
                    written += f.write(chunk)
        assert e.value.errno == errno.ENOSPC
        assert written <= free_bytes and fs.statvfs("/")[3] == 0
        fs.remove("/fill.bin")  # deleting the oldest file makes room again
        assert fs.statvfs("/")[3] == st[3]
    finally:
        r.close()


def test_crc_is_checked_for_cmd0_and_cmd8_only(rig):
    rig.sdcard()  # card initialised, SPI mode, CRC off
    spi = rig.spi

    def command(cmd, arg, crc):
        frame = bytes((0x40 | cmd, arg >> 24 & 255, arg >> 16 & 255, arg >> 8 & 255, arg & 255, crc))
        rig.cs.value = False
        spi.try_lock()
        spi.write(frame)
        buf = bytearray(3)
        spi.readinto(buf, write_value=0xFF)
        spi.unlock()
        rig.cs.value = True
        return next(b for b in buf if b != 0xFF)

    good8 = (crc7(bytes((0x48, 0, 0, 1, 0xAA))) << 1) | 1
    assert command(8, 0x1AA, good8) == 0x00
    assert command(8, 0x1AA, 0x01) & 0x08  # CRC error bit
    assert command(13, 0, 0x01) == 0x00  # any CRC is fine for other commands while CRC is off
    assert command(0, 0, 0x95) == 0x01  # CMD0: back to idle
