# Bootstrap inside MicroPython: set up the host link, load the stand-ins for CircuitPython's core modules (they play
# the firmware's C modules, so they are loaded before any heap figure; so are the libraries CircuitPython has built
# in, BUILT_IN_LIBRARIES), then do the task the host gives, a list of
# commands separated by ";":
#   "baseline"            report the heap in use after a collection (the host then ends the run)
#   "calibrate"           price a stand-in call against a C-function call for the instruction count
#   "run PATH"            run the file as CircuitPython runs code.py (fresh __main__ globals) until the host ends it
#   "import NAME ..."     import each module (compile + module-level code); "compile PATH ..." compile files only
# Outcomes are reported to the host with the "report" call: KIND TAB NAME TAB DETAIL.
#
# The GC is off for the whole run (BOOT_CODE in devicecheck/harness.py turns it off first thing): in this
# MicroPython build a collection cannot see pointers that live in WebAssembly locals (the artifact was built
# without binaryen's --spill-pointers), and every running Python frame whose state is on the heap is such a
# pointer, so gc.collect() frees live objects. The firmware gets a `gc` whose collect() does nothing.

import sys

import _hostlink as _l

STANDINS = ("microcontroller", "board", "busio", "digitalio", "pwmio", "analogio", "countio", "watchdog",
            "supervisor", "storage")
# Built into CircuitPython on the target (ESP32-S3: the board's "Included modules" in circuitpython-stubs list
# adafruit_bus_device), a library here: its Python copy in /lib is loaded with the stand-ins, so its code and names
# count as the device's C, not as the firmware's heap (the firmware's I2CDevice objects still do).
BUILT_IN_LIBRARIES = ("adafruit_bus_device.i2c_device", "adafruit_bus_device.spi_device")
_keep = []  # what the running firmware hangs off, reachable from a module (see the GC note above)


def _report(kind, name, detail=""):
    _l.call("report", "%s\t%s\t%s" % (kind, name, detail))


def _exc_text(e):
    import io

    buf = io.StringIO()
    sys.print_exception(e, buf)
    return buf.getvalue()


def _install():
    import _simgc
    import _simos
    import _simtime

    sys.modules["time"] = _simtime
    sys.modules["os"] = _simos
    sys.modules["gc"] = _simgc
    for name in STANDINS:
        __import__(name)
    for name in BUILT_IN_LIBRARIES:
        try:
            __import__(name)
        except ImportError:  # a folder without the library: the firmware does not use it either
            pass


def _run(path):
    with open(path) as f:
        src = f.read()
    code = compile(src, path, "exec")
    del src
    g = {"__name__": "__main__", "__file__": path}
    _keep.append(code)
    _keep.append(g)
    try:
        exec(code, g)
        _report("exit", path)
    except _l.Unwound:  # the host asked for the heap with no firmware frame running (see _hostlink)
        _l.measure_unwound()
    except Exception as e:  # noqa: B902 (the firmware crashed: the traceback is the report)
        _report("crash", path, _exc_text(e))


def _calibrate():
    """Loops for the host to price a call into a stand-in against a call into a C function (see harness)."""
    import supervisor

    n = 50
    x = 0
    _cal("start")
    for _ in range(n):
        x = abs(n)
    _cal("native")
    for _ in range(n):
        x = supervisor.ticks_ms()
    _cal("standin")
    return x


def _cal(name):
    _l.enter()
    _l.call("cal", name, 50)
    _l.leave()


def _import(names):
    for name in names:
        try:
            __import__(name)
            _report("ok", name)
        except BaseException as e:  # noqa: B902 (SyntaxError, ImportError, ...: the report names the module)
            _report("fail", name, _exc_text(e))


def _compile(paths):
    for path in paths:
        try:
            with open(path) as f:
                compile(f.read(), path, "exec")
            _report("ok", path)
        except BaseException as e:  # noqa: B902
            _report("fail", path, _exc_text(e))


def main():
    _l.setup()
    task = _l.call("task")
    _install()
    for cmd in task.split(";"):
        words = cmd.split()
        args = [w for w in words[1:] if w != "-"]
        if words[0] == "baseline":
            _l.measure(_l.MEASURE_BASELINE)
        elif words[0] == "calibrate":
            _calibrate()
        elif words[0] == "run":
            _run(args[0])
        elif words[0] == "import":
            _import(args)
        elif words[0] == "compile":
            _compile(args)
        elif words[0] == "linktest":
            import _linktest

            _linktest.main()
