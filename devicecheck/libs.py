"""What goes onto CIRCUITPY: the device code files and the Adafruit libraries named in requirements.txt.

Shared by the MicroPython check (which mounts a staged copy as the interpreter's filesystem) and
tools/build_circuitpy.py (which compiles the same files to .mpy).
"""

import os
import re
import shutil

PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEVICE_DIRS = ("lib", "boardconfigs", "extensions")
DEVICE_ROOT_FILES = ("code.py", "boot.py", "settings.toml")

# dependencies that exist only for host type checking or for Blinka on a desktop; circup does not install them
HOST_ONLY_DEPS = {"adafruit-blinka", "adafruit-circuitpython-typing", "typing-extensions", "adafruit-platformdetect",
                  "adafruit-pureio", "binho-host-adapter", "pyftdi", "sysv-ipc", "pyserial", "pyusb"}


def canonical(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_names(path=None):
    """Distribution names in requirements.txt (comments, versions and markers dropped)."""
    path = path or os.path.join(PROJECT_ROOT, "requirements.txt")
    names = []
    with open(path) as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if not line or line.startswith("-"):
                continue
            names.append(re.split(r"[\s<>=!~;\[]", line, maxsplit=1)[0])
    return names


def device_files(root=PROJECT_ROOT):
    """{relative path on CIRCUITPY: host path} for our device code (caches and editor files left out)."""
    out = {}
    for name in DEVICE_ROOT_FILES:
        p = os.path.join(root, name)
        if os.path.isfile(p):
            out[name] = p
    for d in DEVICE_DIRS:
        base = os.path.join(root, d)
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames[:] = sorted(n for n in dirnames if n != "__pycache__" and not n.startswith("."))
            for fn in sorted(filenames):
                if fn.startswith(".") or fn.endswith((".pyc", "~")):
                    continue
                full = os.path.join(dirpath, fn)
                out[os.path.relpath(full, root).replace(os.sep, "/")] = full
    return out


def device_modules(root=PROJECT_ROOT):
    """Importable module names of the device code, as the device sees them (lib/ and / on sys.path)."""
    mods = []
    for rel in device_files(root):
        if not rel.endswith(".py") or "/" not in rel:
            continue
        parts = rel[:-3].split("/")
        if parts[0] == "lib":
            parts = parts[1:]
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if parts:
            mods.append(".".join(parts))
    return sorted(set(mods), key=lambda m: (m.count("."), m))


def _dist_library_files(dist_files, locate):
    out = {}
    for f in dist_files:
        parts = f.parts if hasattr(f, "parts") else tuple(str(f).split("/"))
        if not parts[0].startswith("adafruit_") or parts[0].endswith((".dist-info", ".egg-info")):
            continue
        if "__pycache__" in parts or not str(f).endswith(".py"):
            continue
        out["lib/" + "/".join(parts)] = locate(f)
    return out


def _requires(dist):
    deps = []
    for req in dist.requires or ():
        if ";" in req and "extra" in req.split(";", 1)[1]:
            continue
        name = canonical(re.split(r"[\s<>=!~;\[(]", req, maxsplit=1)[0])
        if name.startswith("adafruit-circuitpython-") and name not in HOST_ONLY_DEPS:
            deps.append(name)
    return deps


def library_files(names=None, path=None):
    """{"lib/adafruit_x/...py": host path} for the named distributions and their device-library dependencies,
    taken from an installed environment: this interpreter's (path=None) or a ``pip install --target`` folder."""
    from importlib import metadata

    names = [canonical(n) for n in (names if names is not None else requirement_names())]
    seen = set()
    out = {}
    while names:
        name = names.pop(0)
        if name in seen:
            continue
        seen.add(name)
        if path is None:
            dist = metadata.distribution(name)
        else:
            found = [d for d in metadata.distributions(path=[path]) if canonical(d.metadata["Name"]) == name]
            if not found:
                raise metadata.PackageNotFoundError(name)
            dist = found[0]
        out.update(_dist_library_files(dist.files or (), lambda f, d=dist: str(d.locate_file(f))))
        names.extend(_requires(dist))
    return out


def stage(dest, root=PROJECT_ROOT, libraries=None):
    """Copy device code plus libraries into dest in the CIRCUITPY layout (/code.py, /lib/..., /boardconfigs/...)."""
    files = device_files(root)
    files.update(library_files() if libraries is None else libraries)
    for rel, src in files.items():
        target = os.path.join(dest, rel)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copyfile(src, target)
    return files
