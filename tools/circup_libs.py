"""Print the device libraries (PyPI names) the named parts need, from circup.json, for circup:

    circup install $(python3 tools/circup_libs.py core oled sd_log)

With no arguments: the core and every extension (the same set as requirements.txt). Standard library only, so it
runs with any Python 3 next to circup.
"""

import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def libraries(parts, manifest=None):
    """The libraries of `parts` ("core" and extension names), in manifest order without repeats. Unknown parts
    raise ValueError naming what exists."""
    if manifest is None:
        with open(os.path.join(ROOT, "circup.json")) as f:
            manifest = json.load(f)
    exts = manifest["extensions"]
    parts = list(parts) or ["core"] + list(exts)
    out = []
    for part in parts:
        if part == "core":
            libs = manifest["core"]
        elif part in exts:
            libs = exts[part]
        else:
            raise ValueError("unknown part %r: use core or one of %s" % (part, ", ".join(exts)))
        for lib in libs:
            if lib not in out:
                out.append(lib)
    return out


def main(argv):
    try:
        print(" ".join(libraries(argv)))
    except ValueError as e:
        sys.stderr.write("circup_libs: %s\n" % e)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
