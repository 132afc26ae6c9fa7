"""The stand-ins must have CircuitPython 10's signatures (parameter names, order, keyword-only markers), checked
against the circuitpython-stubs package, so firmware that runs on the simulator calls the real API."""

import ast
import importlib
import inspect
import os

import pytest

STUBS = os.path.join(os.path.dirname(os.path.dirname(inspect.getfile(pytest))), "")


def _stub_file(module):
    import site

    for d in site.getsitepackages():
        for cand in (os.path.join(d, module + "-stubs", "__init__.pyi"),):
            if os.path.exists(cand):
                return cand
    pytest.skip("circuitpython-stubs not installed")


def _stub_params(module, qualname):
    tree = ast.parse(open(_stub_file(module)).read())
    parts = qualname.split(".")
    nodes = tree.body
    node = None
    for part in parts:
        node = next((n for n in nodes if isinstance(n, (ast.ClassDef, ast.FunctionDef)) and n.name == part), None)
        assert node is not None, "%s.%s not in stubs" % (module, qualname)
        nodes = node.body
    if isinstance(node, ast.ClassDef):
        node = next(n for n in node.body if isinstance(n, ast.FunctionDef) and n.name == "__init__")
    a = node.args
    pos = [x.arg for x in a.posonlyargs + a.args]
    kwonly = [x.arg for x in a.kwonlyargs]
    return [p for p in pos if p != "self"], kwonly


def _our_params(module, qualname):
    obj = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    sig = inspect.signature(obj.__init__ if inspect.isclass(obj) else obj)
    pos = [n for n, p in sig.parameters.items() if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
           and n != "self"]
    kwonly = [n for n, p in sig.parameters.items() if p.kind == p.KEYWORD_ONLY]
    return pos, kwonly


CASES = [
    ("busio", "I2C"), ("busio", "I2C.readfrom_into"), ("busio", "I2C.writeto"),
    ("busio", "I2C.writeto_then_readfrom"), ("busio", "I2C.probe"), ("busio", "I2C.scan"),
    ("busio", "SPI"), ("busio", "SPI.configure"), ("busio", "SPI.write"), ("busio", "SPI.readinto"),
    ("busio", "SPI.write_readinto"), ("busio", "UART"), ("busio", "UART.read"), ("busio", "UART.write"),
    ("digitalio", "DigitalInOut"), ("digitalio", "DigitalInOut.switch_to_output"),
    ("digitalio", "DigitalInOut.switch_to_input"),
    ("pwmio", "PWMOut"), ("analogio", "AnalogIn"), ("countio", "Counter"),
    ("supervisor", "ticks_ms"), ("supervisor", "reload"),
    ("microcontroller", "reset"), ("microcontroller", "on_next_reset"), ("microcontroller", "delay_us"),
    ("storage", "remount"), ("storage", "mount"), ("storage", "umount"), ("storage", "getmount"),
]


@pytest.mark.parametrize("module,qualname", CASES)
def test_signature_matches_circuitpython_stubs(module, qualname):
    stub_pos, stub_kw = _stub_params(module, qualname)
    our_pos, our_kw = _our_params(module, qualname)
    # every name the stubs accept, in the same order and kind; we may accept nothing the device does not
    assert our_pos == stub_pos, (module, qualname, our_pos, stub_pos)
    assert our_kw == stub_kw, (module, qualname, our_kw, stub_kw)
