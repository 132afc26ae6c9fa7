# Stand-in for CircuitPython's `storage` (MicroPython side). remount() is recorded by the simulated board; the
# mount table for other filesystems is kept here (their objects live in MicroPython).

import _hostlink as _l
from _hostlink import mark as _mark

_mounts = {}


def remount(mount_path, readonly=False, *, disable_concurrent_write_protection=False):
    _mark("(", "")
    _l.call("sto.remount", mount_path, 1 if readonly else 0, 1 if disable_concurrent_write_protection else 0)
    _mark(")", "")


def mount(filesystem, mount_path, *, readonly=False):
    if mount_path in _mounts:
        raise OSError(1, "EPERM")
    _mounts[mount_path] = filesystem


def umount(mount):
    for k in list(_mounts):
        if k == mount or _mounts[k] is mount:
            del _mounts[k]
            return
    raise OSError(22, "EINVAL")


def getmount(mount_path):
    try:
        return _mounts[mount_path]
    except KeyError:
        raise OSError(22, "EINVAL")


def erase_filesystem(extended=None):
    raise RuntimeError("erase_filesystem is not simulated")


def disable_usb_drive():
    pass


def enable_usb_drive():
    pass


def VfsFat(block_device):
    raise OSError(19, "No FAT filesystem emulation in the MicroPython check")
