"""The extension-device stand-ins (storage.VfsFat, displayio, busdisplay, i2cdisplaybus, sdcardio, canio) have
CircuitPython 10's signatures, checked against circuitpython-stubs as tests/sim/test_hal_signatures.py does for the
core stand-ins."""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_hal_signatures import _our_params, _stub_params  # noqa: E402

CASES = [
    ("storage", "VfsFat"), ("storage", "VfsFat.mkfs"), ("storage", "VfsFat.open"), ("storage", "VfsFat.ilistdir"),
    ("storage", "VfsFat.mkdir"), ("storage", "VfsFat.rmdir"), ("storage", "VfsFat.stat"),
    ("storage", "VfsFat.statvfs"), ("storage", "VfsFat.mount"), ("storage", "VfsFat.umount"),
    ("i2cdisplaybus", "I2CDisplayBus"), ("i2cdisplaybus", "I2CDisplayBus.send"),
    ("i2cdisplaybus", "I2CDisplayBus.reset"),
    ("busdisplay", "BusDisplay"), ("busdisplay", "BusDisplay.refresh"),
    ("displayio", "release_displays"), ("displayio", "Bitmap"), ("displayio", "Bitmap.fill"),
    ("displayio", "Palette"), ("displayio", "Group"), ("displayio", "Group.append"), ("displayio", "TileGrid"),
    ("sdcardio", "SDCard"), ("sdcardio", "SDCard.count"), ("sdcardio", "SDCard.readblocks"),
    ("sdcardio", "SDCard.writeblocks"), ("sdcardio", "SDCard.sync"), ("sdcardio", "SDCard.deinit"),
    ("canio", "CAN"), ("canio", "CAN.restart"), ("canio", "CAN.listen"), ("canio", "CAN.send"),
    ("canio", "CAN.deinit"), ("canio", "CAN.__exit__"), ("canio", "Listener.receive"),
    ("canio", "Listener.in_waiting"), ("canio", "Listener.deinit"), ("canio", "Listener.__exit__"),
    ("canio", "Match"), ("canio", "Message"), ("canio", "RemoteTransmissionRequest"),
]


@pytest.mark.parametrize("module,qualname", CASES)
def test_signature_matches_circuitpython_stubs(module, qualname):
    stub_pos, stub_kw = _stub_params(module, qualname)
    our_pos, our_kw = _our_params(module, qualname)
    assert our_pos == stub_pos, (module, qualname, our_pos, stub_pos)
    assert our_kw == stub_kw, (module, qualname, our_kw, stub_kw)
