"""SD-card CSV log: one file per day in /sd/fugu (names, header and rows: extensions/csvlog.py), a row every
``log_interval_s``, flushed to the card after every row so a power cut loses at most the row being written.

The card sits on the breakout's shared SPI bus (chip select ``sd_cs``). What goes wrong with SD cards, and what
happens then (never an exception into the controller, never a long stall of its loop):

* no card at boot: the extension host probes again every HOTPLUG_MS (the module is not kept in RAM meanwhile:
  an import and one CMD0 each time; a board without an SD socket skips it with extensions_disabled = sd_log);
  a card inserted later is initialised and logged to from then on.
* card pulled out, or failing: the write raises OSError; the card is dropped (unmounted) and looked for again every
  RETRY_MS with one CMD0 (cheap: an empty socket just reads FFh). Rows wait in RAM meanwhile (MAX_PENDING_ROWS, the
  oldest kept), so a short removal leaves no gap. Found again: the full driver initialisation (one pause of the loop
  of ~0.2 s: the driver polls ACMD41 every 50 ms) and mount, in separate calls, then rows resume in the day's file.
* card full (ENOSPC): the oldest of our day files are deleted, one per call, then the row is completed; with nothing
  left to delete, rows are dropped and the card retried every FULL_RETRY_MS.
* driver: ``adafruit_sdcard`` through :class:`_GuardedSPI`, which adds what that driver lacks (see
  tests/sim/test_sdcard.py): a deadline on every card operation and a check of the card's data response, so a card
  pulled out mid-row costs the loop no more than OP_DEADLINE_MS. The core's ``sdcardio`` only when the library is
  not on CIRCUITPY: its C code waits up to 500 ms at each step, with no deadline for the whole operation, so a card
  pulled out while a row (or the rows that waited) goes out holds the loop 0.5 to 1.5 s (tests/ext/test_sd_log.py);
  its calls get SDCARDIO_BUDGET_MS, else the host would stop the log for good.
"""

import errno
import time

from extensions import csvlog
from fugu.extensions import Extension
from fugu.sensors import ticks_diff

try:
    from typing import Any  # noqa: F401 (type comments only; no typing on the device)
except ImportError:
    pass

try:
    from supervisor import ticks_ms
except ImportError:
    from fugu.sensors import ticks_ms

MOUNT_PATH = "/sd"
SD_BAUDRATE_HZ = 4000000  # after initialisation (sdcardio's default is 8 MHz; the breakout's wires are longer)
PROBE_BAUDRATE_HZ = 250000  # a card not yet initialised must be clocked at 100-400 kHz
RETRY_MS = 10000  # looking for a card that is gone
HOTPLUG_MS = 30000  # no card at boot: the extension host imports and probes us again this often (~1 ms of SPI)
FULL_RETRY_MS = 60000  # a full card with nothing of ours left to delete
MAX_PENDING_ROWS = 8  # rows kept in RAM while the card is away (~150 bytes each)
INIT_DEADLINE_MS = 400  # adafruit_sdcard's initialisation, at most (the card's own ACMD41 time is up to ~250 ms)
OP_DEADLINE_MS = 300  # any other card operation of one call (the spec's write busy limit is 250 ms)
SDCARDIO_BUDGET_MS = 400  # sdcardio: two blocks and the stop token to a card that died, 3 x 500 ms < 5 x 400 ms
GUARD_CHECK_EVERY = 16  # SPI calls between two clock reads of the guard

_CMD0 = b"\x40\x00\x00\x00\x00\x95"  # GO_IDLE_STATE with its CRC (the card checks it before SPI mode)
_IDLE_CLOCKS = b"\xff" * 10  # >= 74 clocks with CS high: the card's power-up sequence
_R1_IDLE = 0x01

# states
SEARCH = 0  # no card: a CMD0 every RETRY_MS, then the driver's initialisation
MOUNT = 1  # the driver has the card: mount its filesystem next
READY = 2  # mounted: rows are written as they come
FULL = 3  # full, nothing of ours to delete (or no usable file name): retried every FULL_RETRY_MS
STATE_NAMES = ("no card", "mounting", "logging", "full")


class _GuardedSPI:
    """The SPI bus as adafruit_sdcard sees it, plus what that driver lacks (its 3.3.30 busy-waits have no timeout,
    and it ignores the data response of a write): ``arm(ms)`` sets a deadline for the card operations that follow
    (an overrun raises OSError(ETIMEDOUT) once, out of the driver, which releases CS and the bus); a data response
    other than "accepted" after a block (512 data bytes, then the 2 CRC bytes) raises OSError(EIO)."""

    def __init__(self, spi):
        self._spi = spi
        self._armed = False
        self._deadline = 0
        self._count = 0
        self._last_len = 0
        self._expect_response = False

    def arm(self, ms):
        self._deadline = ticks_ms() + ms
        self._armed = True
        self._count = 0

    def disarm(self):
        self._armed = False

    def _tick(self):
        if self._armed:
            self._count += 1
            if self._count >= GUARD_CHECK_EVERY:
                self._count = 0
                if ticks_diff(ticks_ms(), self._deadline) > 0:
                    self._armed = False  # once: the driver's cleanup (CS high, extra clocks) must go through
                    raise OSError(errno.ETIMEDOUT, "SD card operation timed out (card busy or gone)")

    def try_lock(self):
        return self._spi.try_lock()

    def unlock(self):
        self._spi.unlock()

    def configure(self, baudrate=100000, polarity=0, phase=0, bits=8):
        self._spi.configure(baudrate=baudrate, polarity=polarity, phase=phase, bits=bits)

    def write(self, buffer, start=0, end=None):
        if end is None:
            end = len(buffer)
        self._tick()
        n = end - start
        self._expect_response = n == 2 and self._last_len == 512
        self._last_len = n
        self._spi.write(buffer, start=start, end=end)

    def readinto(self, buffer, start=0, end=None, write_value=0):
        if end is None:
            end = len(buffer)
        self._tick()
        self._spi.readinto(buffer, start=start, end=end, write_value=write_value)
        if self._expect_response and end - start == 1:
            v = buffer[start]
            if not v & 0x80:  # the data response token: xxx0sss1, sss = 010 accepted
                self._expect_response = False
                if (v & 0x1F) != 0x05:
                    raise OSError(errno.EIO, "SD card rejected a write (data response 0x%02x)" % v)

    def write_readinto(self, out_buffer, in_buffer, out_start=0, out_end=None, in_start=0, in_end=None):
        if out_end is None:
            out_end = len(out_buffer)
        if in_end is None:
            in_end = len(in_buffer)
        self._tick()
        self._spi.write_readinto(out_buffer, in_buffer, out_start=out_start, out_end=out_end, in_start=in_start,
                                 in_end=in_end)


def _err_text(e):
    return "%s: %s" % (type(e).__name__, e)


class SDLog(Extension):
    name = "sd_log"
    period_ms = 1000
    budget_ms = 120  # a row costs ~10 ms; a (re)initialisation of the card up to ~INIT_DEADLINE_MS once
    hotplug_ms = HOTPLUG_MS

    def __init__(self, ctx):
        super().__init__(ctx)
        self._spi = None  # type: Any  # busio.SPI, shared with the other breakout modules
        self._cs_pin = None  # type: Any
        self._cs = None  # type: Any  # our DigitalInOut for CS (adafruit_sdcard); sdcardio owns the pin itself
        self._guard = None
        self._use_core = False  # sdcardio (chosen by the first _new_driver: only without adafruit_sdcard)
        self._sd = None  # type: Any  # the driver (a block device)
        self._vfs = None  # type: Any  # storage.VfsFat on it
        self._mounted = False  # at MOUNT_PATH (else used through the object only)
        self._mount_warned = False
        self._file = None  # type: Any
        self._day = None  # the day name the open file is for
        self._file_name = None  # its actual name (an alternative when the day's file has other columns)
        self._logged_name = None
        self._prefix = ""  # the header (new file) or a newline (a file ending mid-line) to write before the rows
        self._done = 0  # characters of the current batch already written before the card filled up
        self._need_room = False
        self._full_logged = False
        self._state = SEARCH
        self._retry_at = 0
        self._last_error = None
        ctx.notices["sd_log"] = STATE_NAMES[SEARCH]
        self._pending = []  # (day file name, line)
        self._next_row_ms = None
        self._header = ""  # the CSV header line for this board's channels
        self.rows_written = 0
        self.rows_dropped = 0
        self.bytes_written = 0
        self.files_deleted = 0

    # -- lifecycle ------------------------------------------------------------------------------------------
    def probe(self):
        """A card answers CMD0 on the breakout's SD chip select, and the driver initialises it (CMD8 ...)."""
        self._spi = self.ctx.spi()
        self._cs_pin = self.ctx.pin("sd_cs")
        if self._spi is None or self._cs_pin is None:
            return False
        if not self._card_answers():
            return False
        try:
            self._sd = self._new_driver()
        except OSError:
            self._disarm()
            self.stop()  # the chip select pin taken for the driver: a later probe needs it
            return False
        finally:
            self._disarm()
        self._set_state(MOUNT)
        return True

    def start(self):
        self._header = csvlog.header(len(self.ctx.telemetry.channels))
        try:
            self._arm(OP_DEADLINE_MS)
            self._mount()
        finally:
            self._disarm()
        self._set_state(READY)

    def status(self):
        blocks = 0
        try:
            blocks = self._sd.count()
        except Exception:
            pass
        return "card %d MB via %s, %s%s, a row every %d s" % (
            blocks // 2048, "sdcardio" if self._use_core else "adafruit_sdcard", MOUNT_PATH, csvlog.LOG_DIR,
            self._interval_ms() // 1000)

    def observe(self, tel):
        if not self._header:
            self._header = csvlog.header(len(tel.channels))
        now = tel.t_ms
        due = self._next_row_ms
        if tel.seq > 0 and (due is None or ticks_diff(now, due) >= 0):  # seq 0: no reading yet
            interval = self._interval_ms()
            if due is None or ticks_diff(now, due) >= interval:
                self._next_row_ms = now + interval  # first row, or fell behind: restart the grid
            else:
                self._next_row_ms = due + interval
            try:
                self._queue_row(tel)
            except Exception as e:  # a snapshot the row cannot be made from: that row is missing, nothing else
                self.rows_dropped += 1
                if self._last_error != _err_text(e):
                    self._last_error = _err_text(e)
                    self.ctx.log("sd_log: row not made (%s)" % self._last_error)
        self._work()

    def tick(self, now_ms):
        self._work()

    def stop(self):
        try:
            if self._file is not None:
                self._arm(OP_DEADLINE_MS)
                self._file.close()
        except Exception:
            pass
        self._file = None
        self._drop_card()
        if self._cs is not None:
            try:
                self._cs.deinit()
            except Exception:
                pass
            self._cs = None

    # -- rows -----------------------------------------------------------------------------------------------
    def _interval_ms(self):
        try:
            return int(self.ctx.setting("log_interval_s")) * 1000
        except Exception:
            return 10000

    def _queue_row(self, tel):
        tm = time.localtime()
        hist = tel.history
        day_number = hist.day_number if hist is not None else 1
        if len(self._pending) >= MAX_PENDING_ROWS:
            self.rows_dropped += 1  # the oldest rows are kept: the gap is at the end of an absence
            return
        self._pending.append((csvlog.day_file_name(tm, day_number), csvlog.row(tel, tm)))

    # -- the work of one call -------------------------------------------------------------------------------
    def _work(self):
        """At most one step of card work; whatever the card or its driver does, nothing escapes."""
        try:
            self._step()
        except Exception as e:
            self._lost(e)
        finally:
            self._disarm()

    def _step(self):
        st = self._state
        if st == READY:
            if self._need_room:
                self._arm(OP_DEADLINE_MS)
                self._make_room()
            elif self._pending:
                self._arm(OP_DEADLINE_MS)
                self._write_pending()
            return
        now = ticks_ms()
        if st == SEARCH:
            if ticks_diff(now, self._retry_at) < 0:
                return
            self._retry_at = now + RETRY_MS
            if not self._card_answers():
                return
            self._sd = self._new_driver()
            self._set_state(MOUNT)
        elif st == MOUNT:
            self._arm(OP_DEADLINE_MS)
            self._mount()
            self._set_state(READY)
            self._last_error = None
            self.ctx.log("sd_log: card found (%d MB), logging resumes (%d rows waiting)" % (
                self._sd.count() // 2048, len(self._pending)))
        elif st == FULL:
            if ticks_diff(now, self._retry_at) >= 0:
                self._set_state(READY)  # try again: the user made room, or a new day made yesterday's file deletable
                self._need_room = False

    def _write_pending(self):
        day = self._pending[0][0]
        if self._file is None or self._day != day:
            self._open_day(day)
            if self._file is None:
                return
        n = 0
        lines = []
        for name, line in self._pending:
            if name != day:
                break
            lines.append(line)
            n += 1
        data = self._prefix + "".join(lines)
        if self._done:
            data = data[self._done:]
        f = self._file
        pos = f.tell()
        try:
            f.write(data)
        except OSError as e:
            if e.errno != errno.ENOSPC:
                raise
            self._done += f.tell() - pos  # what fitted stays (not yet flushed); the rest after making room
            self._need_room = True
            return
        f.flush()  # FatFs f_sync: the data and the file's size reach the card
        del self._pending[:n]
        self._prefix = ""
        self._done = 0
        self._full_logged = False
        self.rows_written += n
        self.bytes_written += len(data)

    def _open_day(self, day):
        """Open the day's file for appending; a new file gets the header. An existing file with other columns
        (another board, another firmware) is left alone: the rows go to the next alternative name."""
        self._close_file()
        vfs = self._vfs
        for k in range(csvlog.MAX_ALT_NAMES):
            fname = csvlog.alt_name(day, k)
            path = csvlog.LOG_DIR + "/" + fname
            size = self._size(path)
            prefix = self._header
            if size > 0:
                f = vfs.open(path, "rb")
                try:
                    first = f.readline()
                    f.seek(size - 1)
                    last = f.read(1)
                finally:
                    f.close()
                if first != self._header.encode():
                    continue
                prefix = "" if last == b"\n" else "\n"
            self._file = vfs.open(path, "a")
            self._day = day
            self._file_name = fname
            self._prefix = prefix
            self._done = 0
            if fname != self._logged_name:
                self._logged_name = fname
                self.ctx.log("sd_log: writing %s%s/%s" % (MOUNT_PATH, csvlog.LOG_DIR, fname))
            return
        self._enter_full("every name for day %s is taken by files with other columns" % day)

    def _close_file(self):
        f = self._file
        self._file = None
        self._day = None
        if f is not None:
            f.close()

    def _size(self, path):
        try:
            return self._vfs.stat(path)[6]
        except OSError as e:
            if e.errno == errno.ENOENT:
                return -1
            raise

    def _make_room(self):
        """Delete our oldest day file (never the one in use or one a waiting row belongs to)."""
        keep = [self._file_name]
        for name, _ in self._pending:
            if name not in keep:
                keep.append(name)
        names = []
        for entry in self._vfs.ilistdir(csvlog.LOG_DIR):
            if entry[0] not in keep:
                names.append(entry[0])
        victims = csvlog.oldest_first(names)
        if not victims:
            self._enter_full("card full and no older log file to delete")
            return
        self._vfs.remove(csvlog.LOG_DIR + "/" + victims[0])
        self.files_deleted += 1
        self._need_room = False
        self.ctx.log("sd_log: card full: deleted %s%s/%s" % (MOUNT_PATH, csvlog.LOG_DIR, victims[0]))

    def _enter_full(self, why):
        self._set_state(FULL)
        self._need_room = False
        self._retry_at = ticks_ms() + FULL_RETRY_MS
        if not self._full_logged:
            self._full_logged = True
            self.ctx.log("sd_log: %s; rows are dropped, retrying every %d s" % (why, FULL_RETRY_MS // 1000))

    def _set_state(self, st):
        self._state = st
        self.ctx.notices["sd_log"] = STATE_NAMES[st]  # e.g. for a display page: "logging", "no card"

    # -- the card -------------------------------------------------------------------------------------------
    def _arm(self, ms):
        if self._guard is not None:
            self._guard.arm(ms)

    def _disarm(self):
        if self._guard is not None:
            self._guard.disarm()

    def _card_answers(self):
        """Is a card in the socket? CMD0 after the power-up clocks, as every driver starts (an empty socket leaves
        MISO high: all FFh). Costs ~1 ms; the driver's own CMD0 loop would take tens of ms to give up."""
        spi = self._spi
        if not spi.try_lock():
            return False
        cs = self._cs
        temp = None
        try:
            if cs is None:  # no driver yet, or sdcardio, which takes the pin itself
                cs = temp = self.ctx.mods["digitalio"].DigitalInOut(self._cs_pin)
                cs.switch_to_output(value=True)
            spi.configure(baudrate=PROBE_BAUDRATE_HZ, polarity=0, phase=0)
            cs.value = True
            spi.write(_IDLE_CLOCKS)
            cs.value = False
            spi.write(_CMD0)
            resp = bytearray(8)
            spi.readinto(resp, write_value=0xFF)
            cs.value = True
            spi.write(_IDLE_CLOCKS, end=1)
        finally:
            spi.unlock()
            if temp is not None:
                temp.deinit()
        for b in resp:
            if b != 0xFF:
                return b == _R1_IDLE
        return False

    def _new_driver(self):
        if not self._use_core:
            try:
                import adafruit_sdcard
            except ImportError:
                try:
                    import sdcardio  # noqa: F401
                except ImportError:
                    raise ImportError("no SD card driver: circup install adafruit-circuitpython-sd")
                self._use_core = True
                self.budget_ms = SDCARDIO_BUDGET_MS
        if self._use_core:
            import sdcardio

            return sdcardio.SDCard(self._spi, self._cs_pin, baudrate=SD_BAUDRATE_HZ)
        if self._cs is None:
            self._cs = self.ctx.mods["digitalio"].DigitalInOut(self._cs_pin)
        if self._guard is None:
            self._guard = _GuardedSPI(self._spi)
        self._guard.arm(INIT_DEADLINE_MS)
        return adafruit_sdcard.SDCard(self._guard, self._cs, baudrate=SD_BAUDRATE_HZ)  # type: ignore[arg-type]

    def _mount(self):
        import storage

        vfs = storage.VfsFat(self._sd)  # FatFs mounts the volume here: the object is usable without a mount path
        try:
            storage.mount(vfs, MOUNT_PATH)
            self._mounted = True
        except Exception as e:  # no /sd folder on CIRCUITPY, or something else mounted there: log all the same
            if isinstance(e, OSError) and e.errno == errno.ENODEV:
                raise  # no FAT filesystem on the card
            self._mounted = False
            if not self._mount_warned:
                self._mount_warned = True
                self.ctx.log("sd_log: cannot mount the card at %s (%s); logging all the same (create the folder "
                             "%s on CIRCUITPY to see the files there)" % (MOUNT_PATH, _err_text(e), MOUNT_PATH))
        self._vfs = vfs
        try:
            vfs.mkdir(csvlog.LOG_DIR)
        except OSError as e:
            if e.errno != errno.EEXIST:
                raise

    def _lost(self, e):
        """The card failed (or went): drop it and look for it again every RETRY_MS. Rows wait in RAM."""
        was = self._state
        self._drop_card()
        self._set_state(SEARCH)
        self._retry_at = ticks_ms() + RETRY_MS
        text = _err_text(e)
        if was != SEARCH:
            self.ctx.log("sd_log: card lost (%s); looking for it every %d s, rows wait in RAM (up to %d)" % (
                text, RETRY_MS // 1000, MAX_PENDING_ROWS))
        elif text != self._last_error:
            self.ctx.log("sd_log: a card answers but does not start (%s)" % text)
        self._last_error = text

    def _drop_card(self):
        """Forget the file (not closed: closing would talk to a failing card), unmount, release the driver."""
        self._file = None
        self._day = None
        self._prefix = ""
        self._done = 0
        self._need_room = False
        vfs = self._vfs
        self._vfs = None
        if vfs is not None:
            try:
                import storage

                if self._mounted:
                    storage.umount(MOUNT_PATH)
                else:
                    vfs.umount()  # release the volume FatFs mounted in the constructor
            except Exception:
                pass
            self._mounted = False
        sd = self._sd
        self._sd = None
        if sd is not None and self._use_core:
            try:
                sd.deinit()
            except Exception:
                pass


EXTENSION = SDLog
