"""SPI-mode SD card emulator backed by a FAT image file, plus host tools to make and read such images.

The firmware's driver (adafruit_sdcard, or sdcardio) talks to it through the ``busio`` SPI stand-in byte by byte:
command frames, R1/R1b/R2/R3/R7 responses, data tokens, data-response tokens and busy signalling, so a log line
costs the SPI time it costs on the device. Sectors go to and come from the image file, which a host FAT reader
(``FatImage``) opens after the run.

Source: SD Specifications Part 1 Physical Layer Simplified Specification v9.10: 7.2 SPI bus protocol (7.2.1 mode
selection: CMD0 with CS low; 7.2.2 CRC: off in SPI mode except CMD0 and CMD8, CMD59 turns it on), 7.2.3 data
read (start token FEh, data error token), 7.2.4 data write (tokens FEh / FCh / stop FDh, data response xxx0sss1:
010 accepted, 101 CRC error, 110 write error, then busy = MISO low), 7.3.1.3 command format, 7.3.2 responses (R1
bits: 0 idle, 1 erase reset, 2 illegal command, 3 CRC error, 4 erase sequence, 5 address error, 6 parameter error;
R1b, R2, R3 = R1 + OCR, R7 = R1 + echo), 4.10 card status, 5.1 OCR (bit 31 power-up done, bit 30 CCS),
5.3.2 CSD v1.0 and 5.3.3 CSD v2.0 (C_SIZE: capacity = (C_SIZE + 1) * 512 KiB), 4.2.3 initialisation (ACMD41 until
the idle bit clears; up to 1 s).

Timing (simulated clock): a block read's start token comes ``read_latency_us`` after the command (the driver polls
for it), a written block keeps the card busy for ``write_busy_us``, initialisation takes ``init_ms`` from the first
ACMD41. Cards differ a lot: the defaults are typical of a good card; set the worst cases in a scenario.

Faults: ``remove()`` / ``insert()`` (a removed card leaves MISO pulled up: every byte reads FFh, no response; an
inserted card starts unpowered, in SD mode, and needs the full initialisation again); ``fail_write(...)`` makes a
later block write fail with a write-error data response, or the card die (no response) or hang busy.
"""

import os
import struct

SECTOR = 512

R1_IDLE = 0x01
R1_ILLEGAL = 0x04
R1_CRC = 0x08
R1_ADDRESS = 0x20
R1_PARAM = 0x40

DATA_ACCEPTED = 0x05
DATA_CRC_ERROR = 0x0B
DATA_WRITE_ERROR = 0x0D
TOKEN_START = 0xFE
TOKEN_MULTI_WRITE = 0xFC
TOKEN_STOP_TRAN = 0xFD
ERROR_TOKEN_OUT_OF_RANGE = 0x08


def crc7(data):
    crc = 0
    for b in data:
        for i in range(8):
            bit = ((b >> (7 - i)) & 1) ^ ((crc >> 6) & 1)
            crc = (crc << 1) & 0x7F
            if bit:
                crc ^= 0x09
    return crc


def crc16(data):
    crc = 0
    for b in data:
        crc ^= b << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
    return crc


class SDCardEmulator:
    """An SD card in SPI mode. ``image_path``: the card's contents (its size, a multiple of 512 KiB for SDHC, is the
    capacity). ``kind``: "sdhc" (CSD v2, block addressing, CCS=1; default) or "sdsc" (v2 standard capacity: CSD v1,
    byte addressing). Attach with ``attach(board, (sck, mosi, miso), cs)``; ``cd_pin`` (optional) is the socket's
    card-detect switch, closed to ground while a card is in (reads low).

    Counters: ``commands`` (list of (t_ns, "CMD17") kept to the last 10000), ``blocks_read``, ``blocks_written``.
    """

    def __init__(self, board, image_path, *, kind="sdhc", read_latency_us=250.0, write_busy_us=1500.0,
                 init_ms=120.0, cd_pin=None, cid=None):
        if kind not in ("sdhc", "sdsc"):
            raise ValueError("kind must be 'sdhc' or 'sdsc'")
        self.board = board
        self.clock = board.clock
        self.kind = kind
        self.image_path = image_path
        size = os.path.getsize(image_path)
        if size < SECTOR * 2048:
            raise ValueError("%s: an SD card image must be at least 1 MiB" % image_path)
        if kind == "sdhc":
            self.c_size = size // (512 * 1024) - 1
            self.n_blocks = (self.c_size + 1) * 1024
        else:
            self.n_blocks = size // SECTOR
            self._csd_v1_fields()
        self._fd = os.open(image_path, os.O_RDWR)
        self.read_latency_ns = int(read_latency_us * 1000)
        self.write_busy_ns = int(write_busy_us * 1000)
        self.init_ns = int(init_ms * 1e6)
        self.cid = bytes(cid) if cid else self._default_cid()
        self.present = True
        self.cd_pin = None
        self.blocks_read = 0
        self.blocks_written = 0
        self.commands = []
        self._fail = None  # (blocks left before the failure, mode)
        self._dead = False
        self.power_up()
        if cd_pin is not None:
            self.cd_pin = board.pin(cd_pin).name
            board.set_input(self.cd_pin, source=lambda: not self.present)

    def attach(self, sck_mosi_miso, cs):
        """Put the card on an SPI bus behind chip select ``cs`` (it listens to CS edges)."""
        self.board.add_spi_device(sck_mosi_miso, cs, self)
        self.board.listen(cs, self._on_cs)
        return self

    def close(self):
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    # ------------------------------------------------------------------ card state
    def power_up(self):
        """Power-on state: SD mode, idle, CRC off for SPI, no initialisation started."""
        self.spi_mode = False
        self.idle = True
        self.init_started_ns = None
        self.crc_on = False
        self.app_cmd = False
        self.block_len = SECTOR
        self._frame = bytearray()
        self._out = bytearray()  # bytes the card will clock out next
        self._phase = "cmd"  # "cmd", "read" (CMD17/18 data pending), "write" (waiting for data), "write_data"
        self._ready_ns = 0  # data start token not before this time (reads)
        self._busy_until = 0  # MISO held low until this time (after a write / R1b)
        self._read_block = 0
        self._multi = False
        self._wbuf = bytearray()
        self._write_block = 0

    def remove(self):
        """Pull the card out: it loses power (and its state); MISO floats high."""
        self.present = False
        self.power_up()

    def insert(self):
        """Put a card (this one) back in: unpowered state, needs CMD0 and the whole initialisation."""
        self.present = True
        self.power_up()
        self._dead = False

    def fail_write(self, after_blocks=0, mode="error"):
        """The block write after ``after_blocks`` more successful ones fails. ``mode``: "error" (the data response
        says write error, the block is not stored, the card goes on working), "dead" (the card stops answering:
        MISO stays high), "busy" (the card holds MISO low for ever)."""
        if mode not in ("error", "dead", "busy"):
            raise ValueError("mode must be error, dead or busy")
        self._fail = [int(after_blocks), mode]

    # ------------------------------------------------------------------ registers
    def ocr(self):
        ready = not self.idle
        v = 0x00FF8000  # 2.7-3.6 V
        if ready:
            v |= 0x80000000
            if self.kind == "sdhc":
                v |= 0x40000000
        return v

    def _csd_v1_fields(self):
        """C_SIZE / C_SIZE_MULT for a standard-capacity card, READ_BL_LEN = 9 (512-byte blocks)."""
        for mult in range(8):
            unit = 1 << (mult + 2)
            c = self.n_blocks // unit
            if c <= 4096:
                self.c_size = c - 1
                self.c_size_mult = mult
                self.n_blocks = c * unit
                return
        raise ValueError("image too large for a standard-capacity card (2 GiB max with 512-byte blocks)")

    def csd(self):
        if self.kind == "sdhc":
            c = self.c_size
            b = bytearray((0x40, 0x0E, 0x00, 0x32, 0x5B, 0x59, 0x00, (c >> 16) & 0x3F, (c >> 8) & 0xFF, c & 0xFF,
                           0x7F, 0x80, 0x0A, 0x40, 0x00, 0x00))
        else:
            c, m = self.c_size, self.c_size_mult
            b = bytearray(16)
            b[0] = 0x00  # CSD structure v1.0
            b[1] = 0x26  # TAAC
            b[2] = 0x00
            b[3] = 0x32  # 25 MHz
            b[4] = 0x5F
            b[5] = 0x50 | 9  # CCC low nibble, READ_BL_LEN = 9
            b[6] = 0x80 | ((c >> 10) & 0x03)  # READ_BL_PARTIAL = 1, C_SIZE[11:10]
            b[7] = (c >> 2) & 0xFF
            b[8] = ((c & 0x03) << 6) | 0x2D  # C_SIZE[1:0], VDD currents
            b[9] = 0xB4 | ((m >> 1) & 0x03)  # C_SIZE_MULT[2:1]
            b[10] = ((m & 1) << 7) | 0x7F  # C_SIZE_MULT[0], ERASE_BLK_EN, SECTOR_SIZE
            b[11] = 0x80
            b[12] = 0x0A
            b[13] = 0x40
            b[14] = 0x00
        b[15] = (crc7(b[:15]) << 1) | 1
        return bytes(b)

    @staticmethod
    def _default_cid():
        b = bytearray(b"\x03SDSIMCD\x10\x12\x34\x56\x78\x01\x9a\x00")  # MID, OID, PNM, PRV, PSN, MDT
        b[15] = (crc7(b[:15]) << 1) | 1
        return bytes(b)

    # ------------------------------------------------------------------ bus interface
    def _on_cs(self, pin, kind, value):
        if kind == "digital" and value:  # deselected: the command parser starts over; busy state persists
            self._frame = bytearray()
            if self._phase != "write_data":
                self._out = bytearray()

    def transfer(self, out_bytes):
        if not self.present or self._dead:
            return b"\xff" * len(out_bytes)
        now = self.clock.now_ns
        res = bytearray(len(out_bytes))
        for i, b in enumerate(out_bytes):
            res[i] = self._next_out(now)
            self._take(b, now)
        return bytes(res)

    def _next_out(self, now):
        if self._out:
            if self._phase == "read" and self._out[0] == TOKEN_START and now < self._ready_ns:
                return 0xFF  # the data is not ready yet
            v = self._out[0]
            del self._out[0]
            if self._phase == "read" and not self._out and self._multi:
                self._queue_block(now)
            return v
        if now < self._busy_until:
            return 0x00
        return 0xFF

    def _take(self, b, now):
        phase = self._phase
        if phase == "write" or phase == "write_data":
            self._take_write(b, now)
            return
        frame = self._frame
        if not frame:
            if (b & 0xC0) != 0x40:
                return
        frame.append(b)
        if len(frame) == 6:
            self._frame = bytearray()
            self._command(bytes(frame), now)

    # ------------------------------------------------------------------ commands
    def _r1(self, flags=0):
        return (R1_IDLE if self.idle else 0) | flags

    def _respond(self, data):
        """NCR = 1 byte of FFh, then the response."""
        self._out = bytearray(b"\xff") + bytearray(data)

    def _command(self, frame, now):
        cmd = frame[0] & 0x3F
        arg = struct.unpack(">I", frame[1:5])[0]
        crc_ok = (frame[5] >> 1) == crc7(frame[:5])
        app = self.app_cmd
        self.app_cmd = False
        name = ("ACMD%d" if app else "CMD%d") % cmd
        self.commands.append((now, name))
        if len(self.commands) > 10000:
            del self.commands[:5000]
        if not self.spi_mode:
            # SD mode: only CMD0 with CS low (and a valid CRC) switches to SPI mode
            if cmd == 0 and crc_ok:
                self.spi_mode = True
                self.idle = True
                self._respond((R1_IDLE,))
            return
        if (self.crc_on or cmd in (0, 8)) and not crc_ok:
            self._respond((self._r1(R1_CRC),))
            return
        if self._phase == "read" and cmd != 12:
            self._phase = "cmd"
            self._multi = False
        if app:
            self._app_command(cmd, arg, now)
            return
        if cmd == 0:
            self.power_up()
            self.spi_mode = True
            self._respond((R1_IDLE,))
        elif cmd == 8:
            self._respond((self._r1(), 0x00, 0x00, (arg >> 8) & 0x0F, arg & 0xFF))
        elif cmd == 55:
            self.app_cmd = True
            self._respond((self._r1(),))
        elif cmd == 58:
            self._respond((self._r1(),) + tuple(struct.pack(">I", self.ocr())))
        elif cmd == 59:
            self.crc_on = bool(arg & 1)
            self._respond((self._r1(),))
        elif self.idle:
            self._respond((self._r1(R1_ILLEGAL),))
        elif cmd == 9:
            self._respond_data(self.csd(), now, latency=False)
        elif cmd == 10:
            self._respond_data(self.cid, now, latency=False)
        elif cmd == 12:
            self._phase = "cmd"
            self._multi = False
            # a stuff byte, R1, then busy for a moment (R1b)
            self._out = bytearray(b"\xff\xff\x00")
            self._busy_until = now + 20_000
        elif cmd == 13:
            self._respond((self._r1(), 0x00))
        elif cmd == 16:
            if self.kind == "sdsc" and 1 <= arg <= SECTOR:
                self.block_len = arg
                self._respond((0x00,) if arg == SECTOR else (R1_PARAM,))
            else:
                self._respond((0x00,) if arg == SECTOR else (R1_PARAM,))
        elif cmd in (17, 18):
            block = self._block_of(arg)
            if block is None:
                self._respond((R1_ADDRESS,))
                return
            if block >= self.n_blocks:
                self._respond((0x00,))
                self._out += bytes((0xFF, ERROR_TOKEN_OUT_OF_RANGE))
                return
            self._respond((0x00,))
            self._phase = "read"
            self._multi = cmd == 18
            self._read_block = block
            self._queue_block(now)
        elif cmd in (24, 25):
            block = self._block_of(arg)
            if block is None:
                self._respond((R1_ADDRESS,))
                return
            if block >= self.n_blocks:
                self._respond((R1_PARAM,))
                return
            self._respond((0x00,))
            self._phase = "write"
            self._multi = cmd == 25
            self._write_block = block
        else:
            self._respond((self._r1(R1_ILLEGAL),))

    def _app_command(self, cmd, arg, now):
        if cmd == 41:
            if self.init_started_ns is None:
                self.init_started_ns = now
            if self.idle and now - self.init_started_ns >= self.init_ns:
                self.idle = False
            self._respond((self._r1(),))
        elif cmd in (23, 42):
            self._respond((self._r1(),))
        elif cmd == 13 and not self.idle:
            self._respond_data(bytes(64), now, latency=False, r1=(0x00, 0x00))
        elif cmd == 51 and not self.idle:
            self._respond_data(bytes((0x02, 0x35, 0x80, 0x00, 0, 0, 0, 0)), now, latency=False)
        else:
            self._respond((self._r1(R1_ILLEGAL),))

    def _block_of(self, arg):
        if self.kind == "sdhc":
            return arg
        if arg % SECTOR:
            return None
        return arg // SECTOR

    def _respond_data(self, payload, now, latency=True, r1=(0x00,)):
        crc = crc16(payload)
        self._respond(r1)
        self._out += bytes((0xFF, TOKEN_START)) + payload + bytes((crc >> 8, crc & 0xFF))
        self._ready_ns = now + (self.read_latency_ns if latency else 0)

    def _queue_block(self, now):
        """Queue the next block of a read: gap, start token (held back until the data is ready), data, CRC."""
        blk = self._read_block
        if blk >= self.n_blocks:
            self._out += bytes((0xFF, ERROR_TOKEN_OUT_OF_RANGE))
            self._multi = False
            return
        data = os.pread(self._fd, SECTOR, blk * SECTOR).ljust(SECTOR, b"\x00")
        crc = crc16(data) if self.crc_on else 0xFFFF
        self._out += bytes((0xFF, TOKEN_START)) + data + bytes((crc >> 8, crc & 0xFF))
        self._ready_ns = now + self.read_latency_ns
        self._read_block = blk + 1
        self.blocks_read += 1

    # ------------------------------------------------------------------ writes
    def _take_write(self, b, now):
        if self._phase == "write":
            if b == TOKEN_START and not self._multi or b == TOKEN_MULTI_WRITE and self._multi:
                self._wbuf = bytearray()
                self._phase = "write_data"
            elif b == TOKEN_STOP_TRAN and self._multi:
                self._phase = "cmd"
                self._multi = False
                self._busy_until = max(self._busy_until, now + self.write_busy_ns)
                self._out = bytearray(b"\xff")  # a byte, then busy
            elif (b & 0xC0) == 0x40 and (not self._multi or b == 0x40):
                # a new command instead of data: the write is abandoned (a multi-block write, which only the stop
                # token ends, by CMD0 alone: the reset, e.g. of a card stuck busy)
                self._phase = "cmd"
                self._multi = False
                self._take(b, now)
            return
        self._wbuf.append(b)
        if len(self._wbuf) < SECTOR + 2:
            return
        data = bytes(self._wbuf[:SECTOR])
        crc = (self._wbuf[SECTOR] << 8) | self._wbuf[SECTOR + 1]
        self._phase = "write" if self._multi else "cmd"
        if self.crc_on and crc != crc16(data):
            self._out = bytearray((DATA_CRC_ERROR,))
            return
        if self._fail is not None:
            if self._fail[0] <= 0:
                mode = self._fail[1]
                self._fail = None
                if mode == "dead":
                    self._dead = True
                    return
                if mode == "busy":
                    self._out = bytearray((DATA_ACCEPTED,))
                    self._busy_until = 1 << 62  # the data response goes out, then MISO stays low
                    return
                self._out = bytearray((DATA_WRITE_ERROR,))
                self._busy_until = now + self.write_busy_ns
                if self._multi:
                    self._phase = "cmd"
                    self._multi = False
                return
            self._fail[0] -= 1
        os.pwrite(self._fd, data, self._write_block * SECTOR)
        self.blocks_written += 1
        self._write_block += 1
        self._out = bytearray((DATA_ACCEPTED,))
        self._busy_until = now + self.write_busy_ns


# ---------------------------------------------------------------------------------------------------------------------
# host tools: make a card image, read one after a run


class FileBlockDevice:
    """An image file as a CircuitPython block device (readblocks/writeblocks/count), for host-side FAT access."""

    def __init__(self, path, writable=True):
        self.path = path
        self._fd = os.open(path, os.O_RDWR if writable else os.O_RDONLY)

    def count(self):
        return os.fstat(self._fd).st_size // SECTOR

    def readblocks(self, block, buf):
        buf[:] = os.pread(self._fd, len(buf), block * SECTOR).ljust(len(buf), b"\x00")
        return 0

    def writeblocks(self, block, buf):
        os.pwrite(self._fd, bytes(buf), block * SECTOR)
        return 0

    def close(self):
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def make_image(path, size_mib=32, *, partition_start=2048):
    """Create a card image: an MBR with one partition from ``partition_start`` (sectors; 0 = no partition table,
    a "superfloppy" as CircuitPython's mkfs makes) formatted by FatFs as CircuitPython's VfsFat.mkfs does
    (FAT12/FAT16: cards up to 2 GB ship with FAT16). The file is sparse. Returns ``path``."""
    import _vfsfat

    size = int(size_mib * 1024 * 1024)
    if size % (512 * 1024):
        raise ValueError("the image size must be a multiple of 512 KiB (an SDHC card's capacity unit)")
    with open(path, "wb") as f:
        f.truncate(size)
    bdev = FileBlockDevice(path)
    try:
        n = size // SECTOR - partition_start
        disk = _vfsfat.BlockDeviceDisk(bdev, offset_blocks=partition_start, n_blocks=n)
        vol = _vfsfat.FatVolume(disk)
        vol._board = None
        vol._slot = _vfsfat._take_slot(disk)
        try:
            res = vol._call(_vfsfat._w.pyf_mkfs, vol._drive())
        finally:
            vol._release_slot()
        if res != 0:
            raise OSError("FatFs mkfs failed (FRESULT %d)" % res)
        if partition_start:
            vbr = bytearray(SECTOR)
            bdev.readblocks(partition_start, vbr)
            struct.pack_into("<I", vbr, 28, partition_start)  # BPB_HiddSec: sectors before the volume
            bdev.writeblocks(partition_start, vbr)
            fs_type = bytes(vbr[54:62])
            ptype = 0x01 if fs_type.startswith(b"FAT12") else 0x0E  # FAT12 / FAT16 (LBA)
            mbr = bytearray(SECTOR)
            entry = struct.pack("<B3sB3sII", 0x00, b"\xfe\xff\xff", ptype, b"\xfe\xff\xff", partition_start, n)
            mbr[446:462] = entry
            mbr[510:512] = b"\x55\xaa"
            bdev.writeblocks(0, mbr)
    finally:
        bdev.close()
    return path


class FatImage:
    """Read (and write) the FAT filesystem of a card image on the host, after or between runs:

        with FatImage("card.img") as img:
            img.listdir("/")  ->  ["2026-01-01.csv", ...]
            img.read("/2026-01-01.csv")  ->  bytes
    """

    def __init__(self, path):
        import _vfsfat

        self._bdev = FileBlockDevice(path)
        self._vol = _vfsfat.FatVolume(_vfsfat.BlockDeviceDisk(self._bdev))
        self._vol._board = None
        self._vol.mount()

    def listdir(self, path="/"):
        return [e[0] for e in self._vol.ilistdir(path)]

    def sizes(self, path="/"):
        return {e[0]: e[3] for e in self._vol.ilistdir(path) if e[1] == 0x8000}

    def exists(self, path):
        try:
            self._vol.stat(path)
            return True
        except OSError:
            return False

    def read(self, path):
        return self._vol.read_file(path)

    def read_text(self, path):
        return self.read(path).decode("utf-8")

    def write(self, path, data):
        with self._vol.open(path, "wb") as f:
            f.write(bytes(data))

    def free_bytes(self):
        st = self._vol.statvfs("/")
        return st[0] * st[3]

    def close(self):
        if self._vol is not None:
            self._vol.unmount()
            self._vol = None
            self._bdev.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
