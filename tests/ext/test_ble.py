"""BLE setup (extensions/ble_setup.py) on the simulated board: the unmodified adafruit_ble 10.1.5 runs a Nordic UART
peripheral on the _bleio stand-in (sim/hal/_bleio), a simulated phone (sim/breakout/ble.py) scans, connects, types
lines and reads the notifications.

- the _bleio stand-in has CircuitPython 10's API (circuitpython-stubs: every class, method, parameter, default and
  attribute), and it is the simulator's _bleio that the firmware gets, not adafruit-blinka-bleio's;
- the advertisement and the scan response are each <= 31 bytes (decoded here), the name is in the scan response;
- a board without the module finds no adapter; the PIN comes from ble_pin or is random and printed on the console;
- a scripted session during a run: a wrong PIN and a locked `set` change nothing, `status` matches the telemetry
  (the STAT line of the same snapshot) and the plant, an out-of-range value is refused with a clear message, a valid
  `i_charge_max_ma` limits the battery current in the plant within seconds and is in nvm after the run (read back
  with fugu.settings.Settings), a disconnect re-advertises and locks the session again.
"""

import ast
import inspect
import os
import site

import pytest

from sim.runner import SimRun, parse_kv
from sim.scenario import load_scenario

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NUS_SERVICE = "6E400001-B5A3-F393-E0A9-E50E24DCCA9E"


# -- the stand-in's API against circuitpython-stubs ------------------------------------------------------------
def _stub_tree():
    for d in site.getsitepackages():
        p = os.path.join(d, "_bleio-stubs", "__init__.pyi")
        if os.path.exists(p):
            return ast.parse(open(p).read())
    pytest.skip("circuitpython-stubs not installed")


def _stub_members():
    """(owner, name, node) for every module-level and class-level function and annotated attribute in the stubs."""
    out = []
    for node in _stub_tree().body:
        if isinstance(node, ast.ClassDef):
            for sub in node.body:
                if isinstance(sub, ast.FunctionDef):
                    out.append((node.name, sub.name, sub))
                elif isinstance(sub, ast.AnnAssign):
                    out.append((node.name, sub.target.id, sub))
            out.append((None, node.name, node))
        elif isinstance(node, (ast.FunctionDef, ast.AnnAssign)):
            out.append((None, node.name if isinstance(node, ast.FunctionDef) else node.target.id, node))
    return out


MEMBERS = _stub_members()


def _stub_signature(fn, bleio):
    a = fn.args
    pos = [x.arg for x in a.posonlyargs + a.args if x.arg not in ("self", "cls")]
    kw = [x.arg for x in a.kwonlyargs]
    defaults = {}
    for arg, d in list(zip((a.posonlyargs + a.args)[len(a.posonlyargs + a.args) - len(a.defaults):], a.defaults)) + \
            [(x, d) for x, d in zip(a.kwonlyargs, a.kw_defaults) if d is not None]:
        if not (isinstance(d, ast.Constant) and d.value is Ellipsis):
            defaults[arg.arg] = eval(compile(ast.Expression(d), "stub", "eval"), vars(bleio))
    return pos, kw, defaults


def _our_signature(obj):
    sig = inspect.signature(obj)
    pos = [n for n, p in sig.parameters.items() if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
           and n not in ("self", "cls")]
    kw = [n for n, p in sig.parameters.items() if p.kind == p.KEYWORD_ONLY]
    defaults = {n: p.default for n, p in sig.parameters.items() if p.default is not p.empty}
    return pos, kw, defaults


@pytest.mark.parametrize("owner,name,node", MEMBERS, ids=["%s.%s" % (o or "_bleio", n) for o, n, _ in MEMBERS])
def test_bleio_stand_in_matches_circuitpython_stubs(owner, name, node):
    import _bleio

    assert _bleio.__file__.startswith(os.path.join(ROOT, "sim", "hal")), _bleio.__file__
    scope = _bleio if owner is None else getattr(_bleio, owner)
    assert hasattr(scope, name), "%s has no %s" % (owner or "_bleio", name)
    if isinstance(node, ast.FunctionDef):
        stub_pos, stub_kw, stub_def = _stub_signature(node, _bleio)
        our_pos, our_kw, our_def = _our_signature(getattr(scope, name))
        assert (our_pos, our_kw) == (stub_pos, stub_kw), (owner, name)
        assert our_def == stub_def, (owner, name)


def test_a_read_that_waits_costs_simulated_time():
    """Why the extension polls in_waiting: UARTService.read(n) waits up to its 1 s timeout for missing bytes."""
    from sim.simboard import SimBoard

    import _bleio
    from _bleio._air import Central, Radio
    from adafruit_ble.services.nordic import UARTService

    b = SimBoard(["IO1"]).activate()
    try:
        b.ble_radio = Radio(b, bytes(6))
        uart = UARTService()
        _bleio.adapter.start_advertising(b"\x02\x01\x06")
        phone = Central(b.ble_radio)
        assert phone.connect() and not _bleio.adapter.advertising and _bleio.adapter.connected
        phone.write(_bleio.UUID("6E400002-B5A3-F393-E0A9-E50E24DCCA9E"), b"abc")
        t0 = b.clock.now_ns
        assert uart.read(10) == b"abc"  # arrives at the next connection event, then the rest never comes
        assert b.clock.now_ns - t0 >= 1e9
        assert uart.in_waiting == 0
    finally:
        b.deactivate()


def test_a_name_in_the_advertisement_makes_it_extended_and_invisible_to_phones():
    """The facts behind the layout: flags + NUS UUID = 21 bytes; with a complete name "FUGU-xxxx" 32 bytes, an
    extended advertisement a legacy scanner never sees, and one that cannot have a scan response."""
    from sim.simboard import SimBoard

    import _bleio
    from _bleio._air import Central, Radio
    from adafruit_ble import BLERadio
    from adafruit_ble.advertising.standard import ProvideServicesAdvertisement
    from adafruit_ble.services.nordic import UARTService

    b = SimBoard(["IO1"]).activate()
    try:
        b.ble_radio = Radio(b, bytes(6))
        ble = BLERadio()
        adv = ProvideServicesAdvertisement(UARTService())
        assert len(bytes(adv)) == 21
        adv.complete_name = "FUGU-ABCD"
        assert len(bytes(adv)) == 32
        with pytest.raises(_bleio.BluetoothError, match="Extended advertisements with scan response"):
            ble.start_advertising(adv, scan_response=ProvideServicesAdvertisement())  # a non-empty one
        ble.start_advertising(adv)  # 32 bytes > 31: adafruit_ble sends no scan response, the stack goes extended
        assert b.ble_radio.adv["extended"]
        assert Central(b.ble_radio).scan() is None
        assert Central(b.ble_radio, extended_scan=True).scan() is not None
        with pytest.raises(_bleio.BluetoothError, match="Already advertising"):
            ble.start_advertising(adv)
    finally:
        b.deactivate()


# -- runs of the firmware -----------------------------------------------------------------------------------------
def _scenario(duration_s, modules=("ble",), **overrides):
    ov = {"scenario.duration_s": duration_s, "board.modules": {m: True for m in modules},
          "shade.points": [[0, [1.0] * 6]]}
    ov.update(overrides)
    return load_scenario(os.path.join(ROOT, "scenarios", "demo.toml"), ov)


def _ble(run):
    return next(h for h in run.modules if h.name == "ble")


def ad_structures(data):
    """[(type, payload)] of legacy advertising data: length byte, type byte, payload; nothing may be left over."""
    out = []
    i = 0
    while i < len(data):
        n = data[i]
        assert n >= 1 and i + 1 + n <= len(data), "malformed AD structure at %d: %s" % (i, data.hex())
        out.append((data[i + 1], data[i + 2:i + 1 + n]))
        i += 1 + n
    return out


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    """14 s, the demo's scripted session (it reads the PIN off the console), PIN from the ble_pin setting."""
    out = tmp_path_factory.mktemp("ble_demo")
    run = SimRun(_scenario(16, settings={"ble_pin": 135790}), out_dir=str(out), echo=False, status_every_s=0)
    # after the demo's session: a second phone pastes a burst of lines in one write
    _ble(run).session(11.0, ["\r\n".join(BURST)], gap_s=2.0)
    summary = run.run()
    return run, summary, out


BURST = ["pin 135790", "get mode", "get battery_chem", "set fan_on_c 50", "get fan_on_c", "get nonsense", "help mode",
         "lock", "get mode"]


def test_advertisement_and_scan_response_fit_legacy_advertising(demo_run):
    run, summary, _ = demo_run
    radio = _ble(run).radio
    assert radio.adv_log, run.fw_lines
    for adv in radio.adv_log:
        data, scan = adv["data"], adv["scan_response"]
        assert len(data) <= 31 and len(scan) <= 31
        ads = dict(ad_structures(data))
        scans = dict(ad_structures(scan))
        assert ads[0x01][0] & 0x06 == 0x06  # LE general discoverable, BR/EDR not supported
        uuids = ads.get(0x06, b"") + ads.get(0x07, b"")
        assert bytes.fromhex(NUS_SERVICE.replace("-", ""))[::-1] in [uuids[k:k + 16] for k in range(0, len(uuids), 16)]
        assert 0x08 not in ads and 0x09 not in ads  # no name in the advertisement itself
        name = scans[0x09].decode()
        assert name.startswith("FUGU-") and len(name) == 9
        assert name == radio.name  # also the GAP device name a connected phone reads
        assert adv["connectable"] and not adv["extended"]
    mod = summary["modules"]["ble"]
    assert mod["advertisement_bytes"] == 21 and mod["scan_response_bytes"] == 11


def test_pin_from_the_setting_is_on_the_console_and_the_demo_session_works(demo_run):
    run, summary, out = demo_run
    assert any("PIN 135790 (from the ble_pin setting)" in line for line in run.fw_lines), run.fw_lines
    assert any(line.startswith("ext ble_setup: started (FUGU-") for line in run.fw_lines)
    text = (out / "ble_session.txt").read_text()
    got = [line.split("< ", 1)[1] for line in text.splitlines() if "  < " in line]
    assert got[0] == "ERR pin: wrong PIN (2 more tries before a lock-out)", text
    assert got[1] == "OK unlocked"
    assert got[2].startswith("OK state=")
    assert got[3] == "ERR ble_pin='1234567' refused: allowed 0..999999"
    assert got[4] == "OK ble_pin=246810 (applies at the next boot, saved automatically)"
    assert got[5] == "OK ble_pin=246810"
    assert "scan response 11 bytes" in text and "complete name: 'FUGU-" in text
    mod = summary["modules"]["ble"]
    assert mod["commands"][:6] == ["pin", "pin", "status", "set", "set", "get"]
    assert mod["advertising_starts"] == 3  # re-advertised after each phone disconnected
    assert mod["connections"] == 2
    assert not [f for f in summary["faults"] if "EXT" in f["code"]]


def test_a_burst_of_lines_in_one_write_is_answered_in_order(demo_run):
    run, _, _ = demo_run
    burst = [text for t, d, text in _ble(run).central.transcript if d == "< " and t > 11.0]
    assert burst == ["OK unlocked", "OK mode=buck", "OK battery_chem=lifepo4",
                     "OK fan_on_c=50 (applies within 1 s, saved automatically)", "OK fan_on_c=50",
                     "ERR unknown setting 'nonsense'; send list for the keys",
                     "OK mode = 'buck' (choice one of buck, boost, default 'buck'): power stage direction: buck (PV "
                     "above battery) or boost (battery side stepped up to a higher voltage)",
                     "OK locked", "ERR locked: unlock first with pin and the 6-digit PIN"], burst


def test_without_the_module_there_is_no_adapter():
    run = SimRun(_scenario(3, modules=()), echo=False, status_every_s=0)
    run.run()
    assert "ext ble_setup: not found" in run.fw_lines
    assert not hasattr(run.sim.board, "ble_radio")


def test_random_pin_session_status_settings_and_saving():
    run = SimRun(_scenario(82), echo=False, status_every_s=0)
    ble = _ble(run)
    ble.demo = False
    clock = run.sim.board.clock
    stats = []
    on_line = run.on_console_line

    def record(line):
        if line.startswith("STAT "):
            stats.append((clock.now_ns / 1e9, parse_kv(line)))
        on_line(line)

    run.on_console_line = record
    ble.session(10.0, ["pin {wrong_pin}", "set i_charge_max_ma 5000", "pin {pin}", "status",
                       "set i_charge_max_ma 99999", "get i_charge_max_ma", "set i_charge_max_ma 8000",
                       "get i_charge_max_ma"])
    ble.session(25.0, ["status"])  # a second connection: advertised again, locked again
    summary = run.run()

    pins = [line for line in run.fw_lines if "PIN" in line]
    assert len(pins) == 1 and pins[0].endswith("(random, new at every boot; set ble_pin to keep one)"), pins
    assert ble.pin_seen is not None and ("PIN %s " % ble.pin_seen) in pins[0]
    rx = [(t, text) for t, d, text in ble.central.transcript if d == "< "]
    answers = [text for _, text in rx]
    assert answers[0].startswith("ERR pin: wrong PIN")
    assert answers[1] == "ERR locked: unlock first with pin and the 6-digit PIN"
    assert answers[2] == "OK unlocked"
    assert answers[4] == "ERR i_charge_max_ma='99999' refused: allowed 0..35000 mA"
    assert answers[5] == "OK i_charge_max_ma=30000"  # the wrong PIN, the locked set and the refused one changed nothing
    assert answers[6] == "OK i_charge_max_ma=8000 (applies within 1 s, saved automatically)"
    assert answers[7] == "OK i_charge_max_ma=8000"
    assert answers[8] == "ERR locked: unlock first with pin and the 6-digit PIN"
    assert len(answers) == 9
    assert summary["modules"]["ble"]["connections"] == 2

    # status = the telemetry snapshot of the last STAT line before it (both come from the same once-a-second
    # refresh), and the plant agrees
    t_status, status = rx[3]
    assert status.startswith("OK "), status
    st = parse_kv("OK " + status[3:])
    t_stat, stat = [s for s in stats if s[0] <= t_status][-1]
    assert t_status - t_stat < 1.5
    assert st["state"] == stat["state"] == "TRACK"
    assert st["stage"] == stat["stage"]
    assert abs(st["pv_v"] * 1000 - stat["vin_mv"]) <= 5
    assert abs(st["bat_v"] * 1000 - stat["vout_mv"]) <= 5
    assert abs(st["bat_a"] * 1000 - stat["iout_ma"]) <= 5
    assert abs(st["temp_c"] - stat["temp_c"]) <= 0.051
    assert abs(st["pv_w"] - stat["p_w"]) <= 0.03 * stat["p_w"]
    assert abs(st["today_wh"] - stat["e_wh"]) <= 0.05 * stat["e_wh"] + 0.02
    row = [r for r in run.rows if r[0] <= t_status][-1]
    assert abs(st["pv_v"] - row[3]) <= 0.02 * row[3] and abs(st["pv_w"] - row[5]) <= 0.05 * row[5]

    # the controller applies the new limit: the battery current in the plant drops from ~19 A to 8 A
    t_set = [t for t, text in rx if text.startswith("OK i_charge_max_ma=8000 (")][0]
    before = [r[8] for r in run.rows if 10 <= r[0] < t_set]
    after = [r[8] for r in run.rows if t_set + 5 <= r[0]]
    assert min(before) > 15.0, before
    assert after and max(after) <= 8.0 * 1.03, after
    assert max(after) >= 7.0, after  # limited, not stopped

    # ... and saves it to flash (the converter running: at the latest a minute after the change)
    assert any(line.startswith("settings: saved to flash") for line in run.fw_lines), run.fw_lines
    from fugu.settings import Settings

    stored = Settings(run.sim.board.nvm, log=lambda *a: None)
    assert stored.source.startswith("nvm")
    assert stored.get("i_charge_max_ma") == 8000
    assert stored.get("ble_pin") == 0  # nothing else changed
    assert not [f for f in summary["faults"] if "EXT" in f["code"]]


def test_the_simulators_bleio_wins_over_blinka_bleio():
    """adafruit-blinka-bleio (installed with the drivers' dependencies) ships a desktop `_bleio` whose adapter exists
    without hardware but cannot advertise. Even if it was imported first, a run with the BLE module uses ours."""
    import importlib.util
    import sys

    from sim.install import HAL_DIR

    def ours_and_blinka():
        return [k for k in sys.modules if k == "_bleio" or k.startswith(("_bleio.", "adafruit_ble"))]

    saved = {k: sys.modules.pop(k) for k in ours_and_blinka()}
    try:
        blinka_dir = next(os.path.join(d, "_bleio") for d in site.getsitepackages()
                          if os.path.exists(os.path.join(d, "_bleio", "common.py")))
        spec = importlib.util.spec_from_file_location("_bleio", os.path.join(blinka_dir, "__init__.py"),
                                                      submodule_search_locations=[blinka_dir])
        blinka = importlib.util.module_from_spec(spec)
        sys.modules["_bleio"] = blinka
        spec.loader.exec_module(blinka)
        import adafruit_ble  # noqa: F401  (bound to blinka's _bleio now)

        assert blinka.adapter is not None  # why it must not win: probe() would find a radio on any desktop
        run = SimRun(_scenario(4), echo=False, status_every_s=0)
        _ble(run).demo = False
        run.run()
        assert sys.modules["_bleio"].__file__.startswith(HAL_DIR)
        assert any(line.startswith("ext ble_setup: started (FUGU-") for line in run.fw_lines), run.fw_lines
        assert _ble(run).radio.adv is not None
    finally:
        for k in ours_and_blinka():
            del sys.modules[k]
        sys.modules.update(saved)
