"""Tests run against the simulated board: the CircuitPython stand-ins go first on sys.path and the simulated
`time` into sys.modules before any driver or firmware module is imported."""

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from sim.install import install  # noqa: E402

install()
