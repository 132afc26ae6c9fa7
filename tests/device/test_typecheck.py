"""Device code type-checks with mypy against circuitpython-stubs with a real ESP32-S3 board selected
(tools/typecheck.py, mypy-device.ini)."""

import os
import sys
import tempfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tools"))

import typecheck  # noqa: E402

# The device code is clean: a type error fails CI.
STRICT = True


@pytest.fixture(scope="module", autouse=True)
def board_selected():
    typecheck.select_board()  # first call may rewrite board-stubs; every later one must be a no-op
    assert typecheck.select_board() is False


def test_board_definitions_are_the_esp32s3_devkit():
    chosen, installed = typecheck._stub_files(typecheck.DEFAULT_BOARD)
    text = installed.read_text()
    assert "board_id: espressif_esp32s3_devkitc_1_n8r8" in text and "IO48: microcontroller.Pin" in text
    assert installed.read_bytes() == chosen.read_bytes()


MISUSE = '''
import board
import busio
import microcontroller
import pwmio
from adafruit_ads1x15 import ADS1115

pwm = pwmio.PWMOut(board.IO4, frequency=39000)
pwm.frequency = "fast"
pin = board.IO99
first = microcontroller.nvm[0]
i2c = busio.I2C(board.IO9, board.IO8, frequency=400000)
ads = ADS1115(i2c, data_rate="fast")
'''

CLEAN = '''
import board
import busio
import microcontroller
import pwmio
from adafruit_ads1x15 import ADS1115

pwm = pwmio.PWMOut(board.IO4, frequency=39000, duty_cycle=0)
pwm.duty_cycle = 1000
nvm = microcontroller.nvm
assert nvm is not None
first = nvm[0]
i2c = busio.I2C(board.IO9, board.IO8, frequency=400000)
ads = ADS1115(i2c, gain=2, data_rate=860)
'''


def _check(source):
    with tempfile.TemporaryDirectory() as d:
        with open(os.path.join(d, "snippet.py"), "w") as f:
            f.write(source)
        return typecheck.run_mypy(["snippet.py"], cwd=d)


def test_stubs_and_board_catch_api_misuse():
    status, lines = _check(MISUSE)
    errs = "\n".join(typecheck.errors(lines))
    assert status == 1
    assert 'snippet.py:9: error: Incompatible types in assignment (expression has type "str"' in errs, errs
    assert 'snippet.py:10: error: Module has no attribute "IO99"' in errs, errs
    assert "snippet.py:11: error: Value of type" in errs and "None" in errs, errs  # nvm is Optional
    assert "snippet.py:13: error: Argument \"data_rate\" to \"ADS1115\"" in errs, errs  # the driver's inline types
    status, lines = _check(CLEAN)
    assert status == 0, lines


def test_device_code_type_checks():
    targets = typecheck.device_targets()
    assert "code.py" in targets and "lib" in targets and "boardconfigs" in targets
    status, lines = typecheck.run_mypy(targets)
    assert status in (0, 1), lines  # 2 would be a crash or a configuration error
    errs = typecheck.errors(lines)
    if errs and not STRICT:
        pytest.xfail("%d type errors in device code:\n%s" % (len(errs), "\n".join(errs)))
    assert not errs, "\n".join(errs)
