# Stand-in for CircuitPython's `traceback` (MicroPython side), on MicroPython's sys.print_exception.

import io
import sys


def _exception(exc, value):
    return value if value is not None and isinstance(value, BaseException) else exc


def format_exception(exc, value=None, tb=None, limit=None, chain=True):
    buf = io.StringIO()
    sys.print_exception(_exception(exc, value), buf)
    return [buf.getvalue()]


def print_exception(exc, value=None, tb=None, limit=None, file=None, chain=True):
    sys.print_exception(_exception(exc, value), sys.stdout if file is None else file)
