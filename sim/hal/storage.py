"""Stand-in for ``storage``. On the host the firmware's own files are not remounted; mount() keeps a table so the
firmware can find its filesystems (``getmount("/sd")``). ``VfsFat`` is FatFs running on the firmware's block device
(sim/hal/_vfsfat.py), unless the board provides ``vfsfat_factory``. Filesystems with ``mount``/``umount`` methods
(VfsFat) are told, as the core tells them."""

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
    if isinstance(filesystem, _VfsFat):
        filesystem.mount(readonly, False)  # raises OSError(ENODEV) when there is no FAT, as the core
    _mounts()[mount_path] = {"fs": filesystem, "readonly": readonly}


def umount(mount):
    for k in list(_mounts()):
        if k == mount or _mounts()[k].get("fs") is mount:
            fs = _mounts()[k].get("fs")
            del _mounts()[k]
            if isinstance(fs, _VfsFat):
                fs.umount()
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


try:
    from _vfsfat import VfsFat as _VfsFat  # noqa: E402 (needs the fatfs-ng wheel)
except ImportError:  # pragma: no cover
    class _VfsFat:
        def __init__(self, block_device):
            raise OSError(19, "No FAT filesystem on this host (pip install fatfs-ng)")


class VfsFat(_VfsFat):
    """storage.VfsFat(block_device): FatFs on the block device (a board's ``vfsfat_factory`` replaces it)."""

    def __new__(cls, block_device):
        factory = getattr(active(), "vfsfat_factory", None)
        if factory is not None:
            return factory(block_device)
        return super().__new__(cls)
