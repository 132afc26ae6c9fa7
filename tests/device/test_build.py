"""tools/build_circuitpy.py builds a CIRCUITPY folder that CircuitPython 10 can load (.mpy v6 with its 'C' magic),
that real MicroPython imports, and that fits a 4 MB-flash ESP32-S3."""

import os
import sys

import pytest

from devicecheck import libs
from devicecheck.harness import check_imports

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tools"))

import build_circuitpy  # noqa: E402


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("build") / "CIRCUITPY")
    # PyPI first (the deployable set); without network, the pinned copies CI installed from requirements-host.txt
    result = build_circuitpy.build(out, lib_source="auto", log=lambda msg: None)
    return out, result


def test_every_mpy_is_circuitpython_10_bytecode(built):
    out, result = built
    mpys = [rel for rel in result["files"] if rel.endswith(".mpy")]
    assert len(mpys) >= 10
    for rel in mpys:
        with open(os.path.join(out, rel), "rb") as f:
            assert f.read(2) == b"C\x06", rel


def test_layout_sources_stay_source_and_code_is_compiled(built):
    out, result = built
    files = set(result["files"])
    assert "code.py" in files and "boardconfigs/fugu_v1.py" in files
    for rel in libs.device_files(ROOT):
        if rel.startswith("lib/") and rel.endswith(".py"):
            assert rel[:-3] + ".mpy" in files and rel not in files, rel
    import importlib.metadata

    for name in libs.requirement_names():
        # the distribution's own top-level modules (adafruit-circuitpython-sd ships adafruit_sdcard)
        tops = {str(f).split("/")[0].split(".")[0] for f in importlib.metadata.distribution(name).files or ()
                if str(f).startswith("adafruit_")}
        assert tops, name
        assert any(rel.startswith("lib/%s/" % top) or rel.startswith("lib/%s." % top)
                   for top in tops for rel in files), name
    assert result["libs"] in ("pypi", "venv") and result["versions"]


def test_fits_a_4mb_esp32s3_circuitpy(built):
    _, result = built
    raw, on_disk = build_circuitpy.usage(result["files"])
    assert 0 < raw <= on_disk <= build_circuitpy.CAPACITY_BYTES
    table = build_circuitpy.size_table(result["files"])
    assert "total" in table and "lib/fugu/" in table and "2240 KiB" in table


def test_the_built_folder_imports_in_micropython(built):
    out, _ = built
    reports = check_imports(build_dir=out)
    assert {"fugu", "adafruit_tla202x", "boardconfigs.fugu_v1", "/code.py"} <= {name for _, name, _ in reports}
    # ours and the core's libraries must import; an extension's library may need a CircuitPython core module that
    # has no MicroPython stand-in here (displayio, _bleio, canio: placeholders), which only the device has
    core_libs = ("adafruit_tla202x", "adafruit_bus_device", "adafruit_register")
    ours = ("fugu", "extensions", "boardconfigs", "/code.py") + core_libs
    bad = ["%s:\n%s" % (n, d) for k, n, d in reports
           if k == "fail" and n.split(".")[0] in ours]
    assert not bad, "\n".join(bad)
