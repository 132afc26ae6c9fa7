"""FUGU MPPT firmware core (CircuitPython). Pure logic and hardware edges, composed by code.py."""

VERSION = "0.1.0"
