# Stand-in for CircuitPython's built-in __future__ module (shared-bindings/__future__): the Adafruit libraries start
# with `from __future__ import annotations`; MicroPython has no such module, CircuitPython (8+) does.
annotations = True
