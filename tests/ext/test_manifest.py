"""circup.json (which device libraries each part needs) agrees with requirements.txt (what circup installs) and with
what each extension actually imports, so `circup install $(python3 tools/circup_libs.py core oled)` is enough."""

import ast
import importlib.metadata
import json
import os
import re
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tools"))

from circup_libs import libraries  # noqa: E402

with open(os.path.join(ROOT, "circup.json")) as _f:
    MANIFEST = json.load(_f)


def _canon(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirements():
    names = []
    with open(os.path.join(ROOT, "requirements.txt")) as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if line:
                names.append(_canon(re.split(r"[\s<>=!~;\[]", line, maxsplit=1)[0]))
    return names


def _imports(path):
    """Top-level names of every module a file imports (anywhere in it)."""
    tree = ast.parse(open(path).read())
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            out.add(node.module.split(".")[0])
    return out


def _extension_files(name):
    base = os.path.join(ROOT, "extensions")
    files = [os.path.join(base, name + ".py")]
    pkg = os.path.join(base, name)
    if os.path.isdir(pkg):
        files += [os.path.join(pkg, f) for f in os.listdir(pkg) if f.endswith(".py")]
    return [f for f in files if os.path.isfile(f)]


def test_manifest_and_requirements_name_the_same_libraries():
    assert sorted(_canon(n) for n in libraries([], MANIFEST)) == sorted(set(_requirements()))


def test_manifest_names_the_extensions_the_firmware_knows():
    sys.path.insert(0, os.path.join(ROOT, "lib"))
    from fugu.extensions import KNOWN

    assert sorted(MANIFEST["extensions"]) == sorted(KNOWN)


def _device_core_files():
    out = [os.path.join(ROOT, "code.py")]
    for folder in ("lib", "boardconfigs"):
        for base, _, names in os.walk(os.path.join(ROOT, folder)):
            out += [os.path.join(base, n) for n in names if n.endswith(".py")]
    return out


def test_the_core_lists_exactly_the_libraries_it_imports_and_theirs():
    """No library on CIRCUITPY that nothing uses (flash, and a user's circup time): the core's list is what code.py,
    lib/ and boardconfigs/ import, plus the Adafruit libraries those depend on."""
    dist_of = importlib.metadata.packages_distributions()
    todo = set()
    for f in _device_core_files():
        for mod in _imports(f):
            if mod.startswith("adafruit_"):
                todo |= {_canon(d) for d in dist_of.get(mod, [])}
    needed = set()
    while todo:
        d = todo.pop()
        needed.add(d)
        for req in importlib.metadata.requires(d) or ():
            r = _canon(re.split(r"[\s<>=!~;\[]", req, maxsplit=1)[0])
            if r.startswith("adafruit-circuitpython-") and r != "adafruit-circuitpython-typing" and r not in needed:
                todo.add(r)
    assert sorted(_canon(n) for n in MANIFEST["core"]) == sorted(needed)


def test_support_modules_are_exactly_our_extension_modules_without_extension():
    """Discovery does not import fugu.extensions.SUPPORT (names a module brings stay interned in RAM): those must be
    the modules in extensions/ that define no EXTENSION, so no extension is skipped by mistake."""
    sys.path.insert(0, os.path.join(ROOT, "lib"))
    from fugu.extensions import KNOWN, SUPPORT

    folder = os.path.join(ROOT, "extensions")
    without = set()
    for fn in os.listdir(folder):
        if not fn.endswith(".py") or fn.startswith("_"):
            continue
        tree = ast.parse(open(os.path.join(folder, fn)).read())
        names = {t.id for node in tree.body if isinstance(node, ast.Assign) for t in node.targets
                 if isinstance(t, ast.Name)}
        if "EXTENSION" not in names:
            without.add(fn[:-3])
    assert set(SUPPORT) == without
    assert not set(SUPPORT) & set(KNOWN)


@pytest.mark.parametrize("name", sorted(MANIFEST["extensions"]))
def test_each_extension_needs_only_what_the_manifest_lists_for_it(name):
    files = _extension_files(name)
    if not files:
        pytest.skip("extensions/%s not written yet" % name)
    dist_of = importlib.metadata.packages_distributions()
    allowed = {_canon(n) for n in MANIFEST["core"] + MANIFEST["extensions"][name]}
    # support modules an extension imports from its own folder count as part of it
    own = set()
    for f in files:
        for mod in _imports(f):
            if mod == "extensions":
                own.update(os.path.join(ROOT, "extensions", m + ".py") for m in _from_extensions(f))
    needed = set()
    for f in set(files) | {o for o in own if os.path.isfile(o)}:
        for mod in _imports(f):
            if mod.startswith("adafruit_"):
                dists = {_canon(d) for d in dist_of.get(mod, [])}
                assert dists, "%s imports %s, which no installed distribution provides" % (f, mod)
                needed |= dists
    missing = needed - allowed - {"adafruit-blinka-displayio"}  # displayio is built into CircuitPython
    assert not missing, "%s needs %s: add them to circup.json" % (name, sorted(missing))


def _from_extensions(path):
    tree = ast.parse(open(path).read())
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "extensions":
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("extensions."):
            out.add(node.module.split(".")[1])
    return out


def test_circup_libs_tool_refuses_unknown_parts():
    with pytest.raises(ValueError, match="unknown part 'wifi'"):
        libraries(["wifi"], MANIFEST)
