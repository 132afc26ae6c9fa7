"""``storage.VfsFat`` on the host: ChaN's FatFs (the library CircuitPython's VfsFat is built on, via the fatfs-ng
wheel) running ON THE FIRMWARE'S BLOCK DEVICE, so every sector really travels through the driver
(adafruit_sdcard / sdcardio) and the emulated SPI card, costing its bus time.

The API is the device's VfsFat object (circuitpython-stubs ``storage.VfsFat`` plus ``remove``/``rename``, which the
core has and ``os`` uses): ``open(path, mode)``, ``ilistdir``, ``mkdir``, ``rmdir``, ``remove``, ``rename``, ``stat``,
``statvfs``, ``mkfs``. Paths are relative to the volume root ("/2026-01-01.csv"). On the device the same object is
reachable with ``storage.getmount("/sd")``, so firmware that writes through it runs unchanged on both (recommended:
``fs = storage.getmount("/sd"); f = fs.open("/log.csv", "a")`` rather than the builtin ``open("/sd/log.csv")``,
which on the host would be CPython's).

Errors as on the device (MicroPython's extmod/vfs_fat*.c): FatFs results map to OSError errnos (FR_NO_FILE ->
ENOENT, FR_EXIST -> EEXIST, FR_DISK_ERR -> EIO...); a write that finds no free cluster raises ENOSPC; an exception
raised by the block device (card removed: the driver raises) propagates as it is; a block device call returning
non-zero (adafruit_sdcard returns 1 when the card does not answer) is EIO.

MODEL / limits of the fatfs-ng binding, and what we do about them:
* its disk callbacks cannot report an error to FatFs, so the adapter latches the first failure of a FatFs call,
  answers the rest of that call with zeros and skips its writes, and raises after the call; the volume is then
  re-mounted lazily (FatFs's cached sectors are dropped) and files open on it are dead (further reads/writes raise
  EIO, close() just releases). On the device FatFs aborts at the first error; open files may still work.
* file times: the binding stamps files with the host clock (and drops the hour); we feed it the simulated clock with
  the hour folded back in. ``stat`` returns 0 for times (the binding exposes no date fields): name log files by date.
* ``statvfs`` counts free clusters by scanning the FAT through the block device, as FatFs's f_getfree does on
  FAT12/16 (same bus cost); ``mkfs`` makes FAT12/16 with no partition table (FM_FAT | FM_SFD), as CircuitPython's.
"""

import errno
import struct

import fatfs.wrapper as _w
from fatfs.diskio import Disk

SECTOR = 512
_SLOTS = getattr(_w, "__diskio_wrapper_disks")  # FatFs physical drive number -> disk object (FF_VOLUMES = 10)
_N_SLOTS = 10

# FRESULT -> errno, MicroPython extmod/vfs_fat_file.c fresult_to_errno_table
_FR_ERRNO = {1: errno.EIO, 2: errno.EIO, 3: errno.EBUSY, 4: errno.ENOENT, 5: errno.ENOENT, 6: errno.EINVAL,
             7: errno.EACCES, 8: errno.EEXIST, 9: errno.EINVAL, 10: errno.EROFS, 11: errno.ENODEV,
             12: errno.ENODEV, 13: errno.ENODEV, 14: errno.EIO, 15: errno.EIO, 16: errno.EIO, 17: errno.ENOMEM,
             18: errno.EMFILE, 19: errno.EINVAL}
FA_READ, FA_WRITE, FA_OPEN_EXISTING, FA_CREATE_NEW, FA_CREATE_ALWAYS, FA_OPEN_ALWAYS, FA_OPEN_APPEND = (
    1, 2, 0, 4, 8, 16, 48)
AM_DIR = 0x10


def _oserror(res):
    e = _FR_ERRNO.get(res, errno.EIO)
    return OSError(e, errno.errorcode.get(e, "EIO"))


# -- file times from the simulated clock ----------------------------------------------------------------------------
class _SimNow:
    """What the binding's get_fattime() reads: it packs year, month, day, minute and second but forgets the hour, so
    ``minute`` carries hour * 64 + minute (fattime bits 15:11 hour, 10:5 minute)."""

    @staticmethod
    def now():
        import datetime
        import time  # the simulated clock when a board is active

        t = time.localtime(time.time())
        d = datetime.datetime(t.tm_year, t.tm_mon, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec)

        class _T:
            year, month, day, second = d.year, d.month, d.day, d.second
            minute = d.hour * 64 + d.minute

        return _T


class _DatetimeShim:
    datetime = _SimNow


_w.datetime = _DatetimeShim  # the wrapper module's global, looked up at each get_fattime() call


def _ok(result):
    """A block device call succeeded: None, True or 0 (MicroPython's mp_vfs_blockdev_call_rw; 1 == True in Python,
    so compare types)."""
    return result is None or result is True or (type(result) is int and result == 0)


# -- block device adapter -----------------------------------------------------------------------------------------
class BlockDeviceDisk(Disk):
    """A CircuitPython block device (readblocks/writeblocks/count[/sync]) seen by FatFs, with an error latch (the
    binding cannot pass an error back to FatFs) and an optional offset (a partition inside an image)."""

    def __init__(self, block_device, offset_blocks=0, n_blocks=None):
        super().__init__()
        self.bdev = block_device
        self.offset = offset_blocks
        self.n_blocks = n_blocks
        self.error = None  # first failure of the current FatFs call

    def ioctl_get_sector_count(self):
        n = self.n_blocks if self.n_blocks is not None else self.bdev.count() - self.offset
        return int(n)

    def ioctl_get_sector_size(self):
        return SECTOR

    def ioctl_get_block_size(self):
        return 1

    def ioctl_sync(self):
        if self.error is None and hasattr(self.bdev, "sync"):
            try:
                self.bdev.sync()
            except BaseException as e:  # noqa: BLE001 (latched, re-raised after the FatFs call)
                self.error = e

    def read(self, sector, count):
        if self.error is not None:
            return bytes(count)
        buf = bytearray(count)
        try:
            r = self.bdev.readblocks(sector + self.offset, buf)
        except BaseException as e:  # noqa: BLE001
            self.error = e
            return bytes(count)
        if not _ok(r):
            self.error = OSError(errno.EIO, "EIO")
        return bytes(buf)

    def write(self, sector, count, buff):
        if self.error is not None:
            return
        try:
            r = self.bdev.writeblocks(sector + self.offset, bytes(buff))
        except BaseException as e:  # noqa: BLE001
            self.error = e
            return
        if not _ok(r):
            self.error = OSError(errno.EIO, "EIO")


def _take_slot(disk):
    for i in range(_N_SLOTS):
        if i not in _SLOTS:
            _SLOTS[i] = disk
            return i
    # every FatFs drive is registered: drop volumes of boards that are no longer simulated
    for vol in list(_LIVE):
        if vol._board_gone():
            vol._release_slot()
    for i in range(_N_SLOTS):
        if i not in _SLOTS:
            _SLOTS[i] = disk
            return i
    raise OSError(errno.EMFILE, "all %d FatFs volumes in use" % _N_SLOTS)


_LIVE = []


class FatVolume:
    """FatFs on one block device through one drive slot; the common core of VfsFat and the host image reader."""

    def __init__(self, disk):
        self.disk = disk
        self._fs = None
        self._slot = None
        self._board = None
        self._stale = False
        self._files = []
        try:
            from sim.simboard import active_or_none

            self._board = active_or_none()
        except ImportError:
            pass

    def _board_gone(self):
        from sim.simboard import active_or_none

        return self._board is not None and active_or_none() is not self._board

    def _release_slot(self):
        """f_mount(NULL) (through the binding's Partition.unmount, the only route to it) and free the slot. FatFs
        keeps a pointer to our FATFS object until then, so the handle must outlive the unmount."""
        if self._slot is not None:
            p = _w.Partition.__new__(_w.Partition)
            p.pname = self._drive()
            p.pdev = self._slot
            p.unmount()
            self._slot = None
            self._fs = None
            if self in _LIVE:
                _LIVE.remove(self)

    def _call(self, fn, *args):
        """Run one FatFs call with the error latch; re-raise what the block device raised."""
        d = self.disk
        d.error = None
        res = fn(*args)
        err = d.error
        if err is not None:
            d.error = None
            self._stale = True
            for f in self._files:
                f._dead = True
            raise err
        return res

    def mount(self):
        """f_mount with forced mount: reads the boot sector now. Raises OSError(ENODEV) when there is no FAT."""
        if self._slot is None:
            self._slot = _take_slot(self.disk)
            _LIVE.append(self)
        if self._fs is None:
            self._fs = _w.FATFS_Handle()  # reused on re-mount: FatFs clears the old object it points to
        res = self._call(_w.pyf_mount, self._fs, self._drive(), 1)
        self._stale = False
        if res != 0:
            raise _oserror(res)

    def unmount(self):
        self._release_slot()

    def _drive(self):
        return b"%d:" % self._slot

    def _path(self, path):
        if self._slot is None:
            raise OSError(errno.ENODEV, "ENODEV")
        if self._stale:
            self.mount()
        if not path.startswith("/"):
            path = "/" + path
        return self._drive() + path.encode("utf-8")

    # -- directory operations -------------------------------------------------------------------------------
    def ilistdir(self, path="/"):
        dh = _w.DIR_Handle()
        res = self._call(_w.pyf_opendir, dh, self._path(path))
        if res != 0:
            raise _oserror(res)
        out = []
        try:
            fi = _w.FILINFO_Handle()
            while True:
                res = self._call(_w.pyf_readdir, dh, fi)
                if res != 0:
                    raise _oserror(res)
                name = fi.get_name()
                if not name:
                    break
                if name in (".", ".."):
                    continue
                is_dir = fi.is_directory()
                out.append((name, 0x4000 if is_dir else 0x8000, 0, 0 if is_dir else fi.get_size()))
        finally:
            _w.pyf_closedir(dh)
        return iter(out)

    def stat(self, path):
        if path.strip("/") == "":
            return (0x4000, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        fi = _w.FILINFO_Handle()
        res = self._call(_w.pyf_stat, self._path(path.rstrip("/")), fi)
        if res != 0:
            raise _oserror(res)
        mode = 0x4000 if fi.is_directory() else 0x8000
        return (mode, 0, 0, 0, 0, 0, fi.get_size(), 0, 0, 0)

    def mkdir(self, path):
        res = self._call(_w.pyf_mkdir, self._path(path))
        if res != 0:
            raise _oserror(res)

    def remove(self, path):
        if self.stat(path)[0] == 0x4000:
            raise OSError(errno.EISDIR, "EISDIR")
        res = self._call(_w.pyf_unlink, self._path(path))
        if res != 0:
            raise _oserror(res)

    def rmdir(self, path):
        if self.stat(path)[0] != 0x4000:
            raise OSError(errno.ENOTDIR, "ENOTDIR")
        res = self._call(_w.pyf_unlink, self._path(path))
        if res != 0:
            raise _oserror(res)

    def rename(self, old_path, new_path):
        res = self._call(_w.pyf_rename, self._path(old_path), self._path(new_path))
        if res == 8:  # FR_EXIST: MicroPython replaces the target, as POSIX rename does
            self.remove(new_path)
            res = self._call(_w.pyf_rename, self._path(old_path), self._path(new_path))
        if res != 0:
            raise _oserror(res)

    def statvfs(self, path="/"):
        """(bsize, frsize, blocks, bfree, bavail, files, ffree, favail, flag, namemax), sizes in clusters."""
        self._path(path)
        geo = self._geometry()
        free = self._count_free(geo)
        cl = geo["cluster_bytes"]
        n = geo["n_clusters"]
        return (cl, cl, n, free, free, 0, 0, 0, 0, 255)

    # -- FAT geometry, read through the block device ---------------------------------------------------------
    def _read(self, lba, n=1):
        data = self._call(self.disk.read, lba, n * SECTOR)
        return data

    def _geometry(self):
        bs = self._read(0)
        base = 0
        if not _is_vbr(bs):
            # MBR: the first FAT partition
            for i in range(4):
                e = bs[446 + 16 * i: 462 + 16 * i]
                if e[4] in (0x01, 0x04, 0x06, 0x0B, 0x0C, 0x0E):
                    base = struct.unpack_from("<I", e, 8)[0]
                    break
            bs = self._read(base)
        bps, spc, rsvd, nfats, nroot, tot16, _, fatsz16 = struct.unpack_from("<HBHBHHBH", bs, 11)
        tot32 = struct.unpack_from("<I", bs, 32)[0]
        fatsz = fatsz16 or struct.unpack_from("<I", bs, 36)[0]
        total = tot16 or tot32
        root_secs = (nroot * 32 + bps - 1) // bps
        data_start = rsvd + nfats * fatsz + root_secs
        n_clusters = (total - data_start) // spc
        fat_type = 12 if n_clusters < 4085 else (16 if n_clusters < 65525 else 32)
        return {"base": base, "fat_lba": base + rsvd, "fat_sectors": fatsz, "n_clusters": n_clusters,
                "fat_type": fat_type, "cluster_bytes": spc * bps}

    def _count_free(self, geo):
        t = geo["fat_type"]
        n = geo["n_clusters"]
        need = (n + 2) * t // 8 + 2
        fat = bytearray()
        lba = geo["fat_lba"]
        while len(fat) < need and lba < geo["fat_lba"] + geo["fat_sectors"]:
            fat += self._read(lba)
            lba += 1
        free = 0
        for c in range(2, n + 2):
            if t == 16:
                v = fat[2 * c] | fat[2 * c + 1] << 8
            elif t == 32:
                v = struct.unpack_from("<I", fat, 4 * c)[0] & 0x0FFFFFFF
            else:
                o = c + (c >> 1)
                v = fat[o] | fat[o + 1] << 8
                v = v >> 4 if c & 1 else v & 0xFFF
            if v == 0:
                free += 1
        return free

    # -- files ----------------------------------------------------------------------------------------------
    def open(self, path, mode="r"):
        return FatFile(self, path, mode)

    def read_file(self, path):
        with self.open(path, "rb") as f:
            return f.read()


def _is_vbr(bs):
    return bs[510:512] == b"\x55\xaa" and bs[0] in (0xEB, 0xE9) and struct.unpack_from("<H", bs, 11)[0] == 512


class FatFile:
    """A file on a FatVolume, with MicroPython's stream API (text or binary)."""

    def __init__(self, vol, path, mode):
        flags = 0
        binary = "b" in mode
        kind = mode.replace("b", "").replace("t", "").replace("+", "")
        if kind == "r":
            flags = FA_READ | FA_OPEN_EXISTING
        elif kind == "w":
            flags = FA_WRITE | FA_CREATE_ALWAYS
        elif kind == "x":
            flags = FA_WRITE | FA_CREATE_NEW
        elif kind == "a":
            flags = FA_WRITE | FA_OPEN_APPEND
        else:
            raise ValueError("invalid mode %r" % mode)
        if "+" in mode:
            flags |= FA_READ | FA_WRITE
        self._vol = vol
        self._binary = binary
        self._fh = _w.FIL_Handle()
        self._dead = False
        self._closed = True
        self.name = path
        res = vol._call(_w.pyf_open, self._fh, vol._path(path), flags)
        if res != 0:
            raise _oserror(res)
        self._closed = False
        vol._files.append(self)
        self._pos = 0
        self._size = vol.stat(path)[6]
        if kind == "a":
            self._pos = self._size

    def _check(self):
        if self._closed:
            raise ValueError("I/O operation on closed file")
        if self._dead:
            raise OSError(errno.EIO, "EIO")

    def write(self, data):
        self._check()
        if isinstance(data, str):
            if self._binary:
                raise TypeError("a bytes-like object is required")
            data = data.encode("utf-8")
        elif not self._binary:
            raise TypeError("can't convert bytes to str")
        data = bytes(data)
        try:
            res, written = self._vol._call(_w.pyf_write, self._fh, data)
        except _w.FatFSException as e:  # the binding raises on a non-OK result
            raise _oserror(getattr(e, "code", 1)) from None
        self._pos += written
        self._size = max(self._size, self._pos)
        if written != len(data):
            # FatFs reports a full disk as FR_OK with fewer bytes written (MicroPython: ENOSPC)
            raise OSError(errno.ENOSPC, "ENOSPC")
        return written

    def read(self, size=-1):
        self._check()
        if size is None or size < 0:
            size = max(0, self._size - self._pos)
        res, data = self._vol._call(_w.pyf_read, self._fh, size)
        if res != 0:
            raise _oserror(res)
        self._pos += len(data)
        return bytes(data) if self._binary else data.decode("utf-8")

    def readinto(self, buf):
        data = self.read(len(buf))
        if not self._binary:
            data = data.encode("utf-8")
        buf[:len(data)] = data
        return len(data)

    def readline(self):
        self._check()
        out = bytearray()
        while True:
            res, ch = self._vol._call(_w.pyf_read, self._fh, 1)
            if res != 0:
                raise _oserror(res)
            if not ch:
                break
            self._pos += 1
            out += ch
            if ch == b"\n":
                break
        return bytes(out) if self._binary else out.decode("utf-8")

    def readlines(self):
        return list(self)

    def __iter__(self):
        return self

    def __next__(self):
        line = self.readline()
        if not line:
            raise StopIteration
        return line

    def seek(self, offset, whence=0):
        self._check()
        if whence == 1:
            offset += self._pos
        elif whence == 2:
            offset += self._size
        res = self._vol._call(_w.pyf_lseek, self._fh, offset)
        if res != 0:
            raise _oserror(res)
        self._pos = offset
        self._size = max(self._size, offset)
        return offset

    def tell(self):
        self._check()
        return self._pos

    def flush(self):
        """f_sync: the data and the directory entry reach the card (what survives a power cut)."""
        self._check()
        res = self._vol._call(_w.pyf_sync, self._fh)
        if res != 0:
            raise _oserror(res)

    def close(self):
        if self._closed:
            return
        self._closed = True
        if self in self._vol._files:
            self._vol._files.remove(self)
        if self._dead:
            return
        res = self._vol._call(_w.pyf_close, self._fh)
        if res != 0:
            raise _oserror(res)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class VfsFat:
    """storage.VfsFat(block_device): FatFs over the firmware's block device (see the module docstring)."""

    def __init__(self, block_device):
        self._bdev = block_device
        self._vol = FatVolume(BlockDeviceDisk(block_device))
        self.readonly = False
        self._no_fs = False
        # as MicroPython's fat_vfs_make_new: mount now; a missing filesystem is reported by mount(), not here
        try:
            self._vol.mount()
        except OSError as e:
            if e.errno != errno.ENODEV:
                self._vol.unmount()
                raise
            self._no_fs = True

    @staticmethod
    def mkfs(block_device):
        """Format the block device, FAT12/16 with no partition table, as CircuitPython's VfsFat.mkfs."""
        disk = BlockDeviceDisk(block_device)
        vol = FatVolume(disk)
        vol._slot = _take_slot(disk)
        try:
            res = vol._call(_w.pyf_mkfs, vol._drive())
            if res != 0:
                raise _oserror(res)
        finally:
            vol._release_slot()

    def mount(self, readonly, mkfs):
        """Called by storage.mount."""
        if self._no_fs or self._vol._slot is None:
            self._vol.mount()
            self._no_fs = False
        self.readonly = bool(readonly)

    def umount(self):
        """Called by storage.umount."""
        for f in list(self._vol._files):
            f._dead = True
            f.close()
        self._vol.unmount()

    def _writable(self):
        if self.readonly:
            raise OSError(errno.EROFS, "EROFS")

    def open(self, path, mode):
        if any(c in mode for c in "wax+"):
            self._writable()
        return self._vol.open(path, mode)

    def ilistdir(self, path):
        return self._vol.ilistdir(path)

    def mkdir(self, path):
        self._writable()
        self._vol.mkdir(path)

    def rmdir(self, path):
        self._writable()
        self._vol.rmdir(path)

    def remove(self, path):
        self._writable()
        self._vol.remove(path)

    def rename(self, old_path, new_path):
        self._writable()
        self._vol.rename(old_path, new_path)

    def stat(self, path):
        return self._vol.stat(path)

    def statvfs(self, path):
        return self._vol.statvfs(path)
