"""FUGU MPPT firmware core (CircuitPython). Pure logic and hardware edges, composed by code.py."""

VERSION = "0.1.0"


def forget(*names):
    """Drop modules (from sys.modules and from their package) so the garbage collector can take their code back:
    for code needed only at boot or now and then. Their names (qstrs) stay interned; the next import loads them
    again."""
    import sys

    for name in names:
        sys.modules.pop(name, None)
        pkg, _, attr = name.rpartition(".")
        parent = sys.modules.get(pkg) if pkg else None
        if parent is not None and hasattr(parent, attr):
            delattr(parent, attr)
