"""Stand-in for ``storage``. On the host the firmware's own files are not remounted; mount() keeps a table so the
firmware can find its filesystems, and VfsFat (for the SD card) is provided by the SD emulation when present."""

from sim.simboard import active


def _mounts():
    b = active()
    if not hasattr(b, "mounts"):
        b.mounts = {}
    return b.mounts


def remount(mount_path, readonly=False, *, disable_concurrent_write_protection=False):
    _mounts()["/"] = {"readonly": readonly}


def mount(filesystem, mount_path, *, readonly=False):
    if mount_path in _mounts():
        raise OSError(1, "EPERM")
    _mounts()[mount_path] = {"fs": filesystem, "readonly": readonly}


def umount(mount):
    for k in list(_mounts()):
        if k == mount or _mounts()[k].get("fs") is mount:
            del _mounts()[k]
            return
    raise OSError(22, "EINVAL")


def getmount(mount_path):
    try:
        return _mounts()[mount_path].get("fs")
    except KeyError:
        raise OSError(22, "EINVAL") from None


def erase_filesystem(extended=None):
    raise RuntimeError("erase_filesystem is not simulated")


def disable_usb_drive():
    pass


def enable_usb_drive():
    pass


def VfsFat(block_device):  # noqa: N802 (CircuitPython's name)
    factory = getattr(active(), "vfsfat_factory", None)
    if factory is None:
        raise OSError(19, "No FAT filesystem emulation on this simulated board")
    return factory(block_device)
