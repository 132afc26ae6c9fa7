"""Stand-in for CircuitPython's ``sdcardio`` (C: shared-module/sdcardio/SDCard.c, CircuitPython 10), which the
ESP32 and ESP32-S3 builds have. A genuine SPI-mode client of whatever card is on the emulated ``busio.SPI``: the
same command sequence, polling loops and timeouts as the C code, so the card emulator cannot tell the difference.

What the C code does, and so this does:

* init at 250 kHz: 10 idle bytes with CS high, CMD0 (up to 5 tries) for the idle state, CMD8 (v2 card: ACMD41 with
  HCS every 50 ms, CMD58 for CCS; v1 card: ACMD41), CMD9 for the size (CSD v1 or v2), CMD16 512; then the
  requested baudrate. A failure raises ``OSError("no SD card")`` (message only, no errno) and frees CS.
* every command: CRC7, wait for 0xFF first (READY_TIMEOUT_MS), R1 = first byte with bit 7 clear (CMD_TIMEOUT_MS).
* reads: CMD17 for one block, CMD18 + CMD12 for several. Writes: always CMD25, left open between calls while the
  blocks follow on (``sync()`` sends the stop token); the data response is checked (rejected: EIO), then the busy
  wait. Quirks kept: a data response that never comes is not an error after its 500 ms (the busy wait then sees
  0xFF); the stop token waits for a 0x00 busy byte.
* Python-level errors: readblocks/writeblocks/sync raise OSError(errno) on failure (ETIMEDOUT when the bus lock is
  not had in 250 ms), count() raises ValueError after deinit().

Timing: each bus transfer costs what a ``busio`` call costs on the simulated clock (conservative: the C driver's
calls are cheaper than Python's); the timeouts run on that clock. Boards without sdcardio: see
``sim.breakout.without_core_modules``.
"""

import errno

from sim.simboard import active, active_or_none

if "sdcardio" in getattr(active_or_none(), "without_modules", ()):
    raise ImportError("no module named 'sdcardio'")

CMD_TIMEOUT_MS = 500
SPI_TIMEOUT_MS = 250
READY_TIMEOUT_MS = 300
INIT_BAUDRATE = 250000
R1_IDLE_STATE = 0x01
R1_ILLEGAL_COMMAND = 0x04
TOKEN_CMD25 = 0xFC
TOKEN_STOP_TRAN = 0xFD
TOKEN_DATA = 0xFE


def _crc7(data):
    crc = 0
    for d in data:
        for _ in range(8):
            crc = (crc << 1) & 0xFF
            if (d & 0x80) ^ (crc & 0x80):
                crc ^= 0x09
            d = (d << 1) & 0xFF
    return ((crc << 1) | 1) & 0xFF


def _now_ms():
    return active().clock.now_ns / 1e6


class SDCard:
    """SD card block device over SPI (``storage.VfsFat(sdcardio.SDCard(spi, board.SD_CS))``)."""

    def __init__(self, bus, cs, baudrate=8000000):
        import digitalio

        self._bus = bus
        self._own_cs = not hasattr(cs, "switch_to_output")  # a Pin: the driver owns it (validate_obj_is_free_pin)
        self._cs = digitalio.DigitalInOut(cs) if self._own_cs else cs
        self._cs.switch_to_output(value=True)
        self._cdv = 512  # byte addressing until CMD58 says the card is block addressed (SDHC/SDXC)
        self._sectors = 0
        self._in_cmd25 = False
        self._next_block = 0
        self._baudrate = INIT_BAUDRATE
        self._one = bytearray(1)
        if not self._lock_and_configure():
            self._release_cs()
            raise OSError(errno.EAGAIN, "EAGAIN")
        try:
            error = self._init_card()
        finally:
            self._extraclock_and_unlock()
        if error is not None:
            self._release_cs()
            raise OSError(error)
        self._baudrate = int(baudrate)

    # -- bus handling ----------------------------------------------------------------------------------------
    def _deinited(self):
        return self._bus is None or getattr(self._bus, "_deinited", False)

    def _check_for_deinit(self):
        if self._deinited():
            raise ValueError("Object has been deinitialized and can no longer be used. Create a new object.")

    def _release_cs(self):
        if self._own_cs:
            self._cs.deinit()

    def _lock_and_configure(self):
        if self._deinited():
            return False
        if not self._bus.try_lock():  # common_hal_busio_spi_wait_for_lock: nobody can release it meanwhile here
            active().clock.advance(SPI_TIMEOUT_MS * 1e6)
            return False
        self._bus.configure(baudrate=self._baudrate, polarity=0, phase=0, bits=8)
        self._cs.value = False
        return True

    def _clock_card(self, n):
        self._cs.value = True
        self._bus.write(b"\xff" * n)

    def _extraclock_and_unlock(self):
        self._clock_card(1)
        self._bus.unlock()

    def _read_byte(self):
        self._bus.readinto(self._one, write_value=0xFF)
        return self._one[0]

    def _wait_masked(self, mask, response, not_match, timeout_ms):
        """The next byte whose masked value is (or, not_match, is not) ``response``; -1 after the timeout."""
        deadline = _now_ms() + timeout_ms
        while _now_ms() < deadline:
            b = self._read_byte()
            if ((b & mask) == response) != not_match:
                return b
        return -1

    def _wait_for_response(self, response):
        return self._wait_masked(0xFF, response, False, CMD_TIMEOUT_MS) != -1

    def _wait_for_ready(self):
        return self._wait_masked(0xFF, 0xFF, False, READY_TIMEOUT_MS) != -1

    # -- commands --------------------------------------------------------------------------------------------
    def _exit_cmd25(self):
        if self._in_cmd25:
            self._in_cmd25 = False
            self._bus.write(bytes((TOKEN_STOP_TRAN, 0xFF)))
            if not self._wait_for_response(0):  # the card goes busy (0x00) after the stop token
                return -errno.EIO
        return 0

    def _cmd(self, cmd, arg, response_buf=None, data_block=True, wait=True):
        """R1 (>= 0) or a negative errno; ``response_buf`` gets the data that follows (a data block: after FEh)."""
        r = self._exit_cmd25()
        if r < 0:
            return r
        frame = bytearray((cmd | 0x40, (arg >> 24) & 0xFF, (arg >> 16) & 0xFF, (arg >> 8) & 0xFF, arg & 0xFF, 0))
        frame[5] = _crc7(frame[:5])
        if wait and not self._wait_for_ready():
            return -errno.ETIMEDOUT
        self._bus.write(frame)
        response = self._wait_masked(0x80, 0, False, CMD_TIMEOUT_MS)
        if response == -1:
            return -errno.EIO
        if response_buf is not None:
            if data_block and not self._wait_for_response(TOKEN_DATA):
                return -errno.EIO
            self._bus.readinto(response_buf, write_value=0xFF)
            if data_block:
                self._bus.readinto(bytearray(2), write_value=0xFF)  # the CRC, discarded
        return response

    def _block_cmd(self, cmd, block, response_buf=None):
        return self._cmd(cmd, block * self._cdv, response_buf, True, True)

    def _init_card_v1(self):
        deadline = _now_ms() + CMD_TIMEOUT_MS
        while _now_ms() < deadline:
            if self._cmd(41, 0) == 0:
                return None
        return "timeout waiting for v1 card"

    def _init_card_v2(self):
        deadline = _now_ms() + CMD_TIMEOUT_MS
        ocr = bytearray(4)
        while _now_ms() < deadline:
            active().clock.advance(50e6)  # common_hal_time_delay_ms(50)
            self._cmd(58, 0, ocr, data_block=False)
            self._cmd(55, 0)
            if self._cmd(41, 0x40000000) == 0:
                self._cmd(58, 0, ocr, data_block=False)
                if ocr[0] & 0x40:
                    self._cdv = 1
                return None
        return "timeout waiting for v2 card"

    def _init_card(self):
        self._clock_card(10)
        self._cs.value = False
        for _ in range(5):
            self._wait_for_ready()  # a card not yet in SPI mode may not answer: CMD0 without the ready wait
            if self._cmd(0, 0, wait=False) == R1_IDLE_STATE:
                break
        else:
            return "no SD card"
        rb7 = bytearray(4)
        response = self._cmd(8, 0x1AA, rb7, data_block=False)
        if response == R1_IDLE_STATE:
            error = self._init_card_v2()
        elif response == R1_IDLE_STATE | R1_ILLEGAL_COMMAND:
            error = self._init_card_v1()
        else:
            error = "couldn't determine SD card version"
        if error is not None:
            return error
        csd = bytearray(16)
        if self._cmd(9, 0, csd) != 0:
            return "no response from SD card"
        version = (csd[0] & 0xC0) >> 6
        if version >= 2:
            return "SD card CSD format not supported"
        if version == 1:
            self._sectors = ((csd[8] << 8 | csd[9]) + 1) * 1024
        else:
            block_length = 1 << (csd[5] & 0xF)
            c_size = ((csd[6] & 0x3) << 10) | (csd[7] << 2) | ((csd[8] & 0xC) >> 6)
            mult = 1 << (((csd[9] & 0x3) << 1 | (csd[10] & 0x80) >> 7) + 2)
            self._sectors = block_length // 512 * mult * (c_size + 1)
        if self._cmd(16, 512) != 0:
            return "can't set 512 block size"
        return None

    # -- block device --------------------------------------------------------------------------------------
    def count(self):
        """Number of 512-byte blocks."""
        self._check_for_deinit()
        return self._sectors

    def readblocks(self, start_block, buf):
        nblocks, rem = divmod(len(buf), 512)
        if rem:
            raise ValueError("Buffer must be a multiple of 512 bytes")
        if not self._lock_and_configure():
            raise OSError(errno.ETIMEDOUT, "ETIMEDOUT")
        view = memoryview(buf)
        if nblocks == 1:
            r = self._block_cmd(17, start_block, view)
        else:
            r = self._block_cmd(18, start_block)
            for k in range(nblocks):
                if r < 0:
                    break
                r = self._read_block_data(view[k * 512:(k + 1) * 512])
                if r != 0:
                    break
            r = self._cmd(12, 0, wait=False)
            while r != 0:  # the first status 0, or the last before the card is ready (0xff)
                b = self._read_byte()
                if b & 0x80:
                    break
                r = b
        self._extraclock_and_unlock()
        if r < 0:
            raise OSError(-r, errno.errorcode.get(-r, "EIO"))

    def _read_block_data(self, view):
        if not self._wait_for_response(TOKEN_DATA):
            return -errno.EIO
        self._bus.readinto(view, write_value=0xFF)
        self._bus.readinto(bytearray(2), write_value=0xFF)
        return 0

    def _write(self, token, block):
        if not self._wait_for_ready():
            return -errno.ETIMEDOUT
        self._bus.write(bytes((token,)))
        self._bus.write(block)
        self._bus.write(b"\xff\xff")
        deadline = _now_ms() + CMD_TIMEOUT_MS
        while _now_ms() < deadline:  # the data response xxx0sss1: sss = 010 accepted
            b = self._read_byte()
            if (b & 0x11) == 0x01:
                if (b & 0x1F) != 0x05:
                    return -errno.EIO
                break
        if self._wait_masked(0xFF, 0, True, CMD_TIMEOUT_MS) == -1:  # busy (0x00) until the block is written
            return -errno.EIO
        return 0

    def writeblocks(self, start_block, buf):
        nblocks, rem = divmod(len(buf), 512)
        if rem:
            raise ValueError("Buffer must be a multiple of 512 bytes")
        if not self._lock_and_configure():
            raise OSError(errno.ETIMEDOUT, "ETIMEDOUT")
        if not self._in_cmd25 or start_block != self._next_block:
            r = self._block_cmd(25, start_block)
            if r < 0:
                self._extraclock_and_unlock()
                raise OSError(-r, errno.errorcode.get(-r, "EIO"))
            self._in_cmd25 = True
        self._next_block = start_block
        data = memoryview(bytes(buf))
        for k in range(nblocks):
            r = self._write(TOKEN_CMD25, data[k * 512:(k + 1) * 512])
            if r < 0:
                self._in_cmd25 = False
                self._extraclock_and_unlock()
                raise OSError(-r, errno.errorcode.get(-r, "EIO"))
            self._next_block += 1
        self._extraclock_and_unlock()

    def sync(self):
        """Close an open multi-block write (the stop token), so every block is committed."""
        r = self._sync()
        if r < 0:
            raise OSError(-r, errno.errorcode.get(-r, "EIO"))

    def _sync(self):
        if not self._lock_and_configure():
            return -errno.ETIMEDOUT
        r = self._exit_cmd25()
        self._extraclock_and_unlock()
        return r

    def deinit(self):
        """Sync (errors ignored) and release the chip select."""
        if self._deinited():
            return
        self._sync()
        self._bus = None
        self._release_cs()
