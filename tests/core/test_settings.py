"""Settings: schema, validation a user can read, text coercion, persistence that survives a power cut at any byte,
and loading what an older or newer firmware stored."""

import pytest

from fugu import settings as st
from fugu.nvstore import OVERHEAD, SlotStore
from fugu.settings import SCHEMA, Settings, SettingsError
from sim.clock import SimReset
from sim.simboard import SimBoard


@pytest.fixture
def board():
    b = SimBoard(pin_names=[]).activate()
    yield b
    b.deactivate()


@pytest.fixture
def nvm(board):
    import microcontroller

    return microcontroller.nvm


def make(nvm):
    log = []
    return Settings(nvm, log=log.append), log


def raw_store(nvm):
    return SlotStore(nvm, st.SETTINGS_BASE, st.SETTINGS_SLOT_SIZE, st.SETTINGS_MAGIC)


def test_blank_chip_loads_defaults_and_says_so(nvm):
    s, log = make(nvm)
    assert s.items() == [(e[0], e[2]) for e in SCHEMA]
    assert "blank" in s.source
    assert any("using defaults" in line and "blank" in line for line in log)
    assert s.get("battery_chem") == "lifepo4" and s["can_bitrate"] == 250000 and s["equalize_enable"] is False


def test_required_keys_defaults_and_ranges():
    expected = {
        "battery_chem": ("choice", "lifepo4"), "battery_cells": ("int", 0, 0, 24),
        "battery_capacity_ah": ("int", 100, 1, 20000), "i_charge_max_ma": ("int", 30000, 0, 35000),
        "custom_v_absorb_cell_mv": ("int", 3550, 1000, 4300), "custom_v_float_cell_mv": ("int", 3400, 1000, 4300),
        "custom_v_rebulk_cell_mv": ("int", 3300, 1000, 4300), "custom_tail_ma_per_ah": ("int", 20, 0, 500),
        "equalize_enable": ("bool", False), "temp_comp_uv_per_c_cell": ("int", -3000, -10000, 0),
        "mode": ("choice", "buck"), "v_in_max_mv": ("int", 80000, 10000, 100000), "p_max_w": ("int", 1000, 10, 5000),
        "t_derate_start_c": ("int", 70, 40, 100), "t_shutdown_c": ("int", 85, 50, 110),
        "fan_on_c": ("int", 45, 20, 90), "silent_mode": ("bool", False), "scan_interval_s": ("int", 600, 0, 7200),
        "extensions_disabled": ("str", ""), "ble_pin": ("int", 0, 0, 999999), "log_interval_s": ("int", 10, 1, 3600),
        "modbus_address": ("int", 1, 1, 247), "can_bitrate": ("choice", 250000),
    }
    by_key = {e[0]: e for e in SCHEMA}
    for key, exp in expected.items():
        _, kind, default, spec, unit = by_key[key]
        assert (kind, default) == exp[:2], key
        if kind == "int":
            assert spec == exp[2:], key
        assert st.help_text(key), key
    assert by_key["battery_chem"][3] == ("lifepo4", "li_nmc", "lead_flooded", "lead_agm", "lead_gel", "custom")
    assert by_key["can_bitrate"][3] == (125000, 250000, 500000, 1000000)
    assert by_key["mode"][3] == ("buck", "boost")
    # no secrets in the schema: they belong to settings.toml
    assert not [k for k in by_key if "wifi" in k or "password" in k or "ssid" in k]


def test_every_default_is_valid_and_every_bound_is_enforced(nvm):
    s, _ = make(nvm)
    for key, kind, default, spec, unit in SCHEMA:
        assert st.coerce(key, default) == default
        if kind == "int":
            lo, hi = spec
            assert st.coerce(key, lo) == lo and st.coerce(key, str(hi)) == hi
            for bad in (lo - 1, hi + 1):
                with pytest.raises(SettingsError) as e:
                    s.set(key, bad)
                msg = str(e.value)
                assert key in msg and str(bad) in msg and "%d..%d" % (lo, hi) in msg and unit in msg
                assert e.value.key == key and e.value.value == bad
    assert s.generation == 1 and not s.dirty  # nothing refused changed anything


def test_refusals_read_well():
    with pytest.raises(SettingsError, match=r"battery_cells=30 refused: allowed 0\.\.24 cells"):
        st.coerce("battery_cells", 30)
    with pytest.raises(SettingsError, match="battery_chem='nimh' refused: allowed one of lifepo4, li_nmc, "
                                            "lead_flooded, lead_agm, lead_gel, custom"):
        st.coerce("battery_chem", "nimh")
    with pytest.raises(SettingsError, match="can_bitrate=100000 refused: allowed one of 125000, 250000, 500000, "
                                            "1000000 bit/s"):
        st.coerce("can_bitrate", 100000)
    with pytest.raises(SettingsError, match="i_charge_max_ma='12.5A' refused: not a number; allowed 0..35000 mA"):
        st.coerce("i_charge_max_ma", "12.5A")
    with pytest.raises(SettingsError, match="not a whole number"):
        st.coerce("p_max_w", "100.5")
    with pytest.raises(SettingsError, match="silent_mode='maybe' refused: allowed on/off"):
        st.coerce("silent_mode", "maybe")
    with pytest.raises(SettingsError, match="unknown setting 'colour'"):
        st.coerce("colour", "red")
    with pytest.raises(SettingsError, match="not a number"):
        st.coerce("fan_on_c", True)
    with pytest.raises(SettingsError, match="not a number"):
        st.coerce("fan_on_c", float("nan"))
    assert isinstance(SettingsError("x"), ValueError)


def test_text_values_are_coerced():
    assert st.coerce("battery_cells", " 8 ") == 8
    assert st.coerce("temp_comp_uv_per_c_cell", "-2500") == -2500
    assert st.coerce("p_max_w", "450.0") == 450 and st.coerce("p_max_w", 450.0) == 450
    assert st.coerce("mode", "BOOST") == "boost"
    assert st.coerce("can_bitrate", "500000") == 500000
    for text, value in (("true", True), ("ON", True), ("1", True), ("yes", True), (1, True),
                        ("false", False), ("off", False), ("0", False), ("No", False), (0, False)):
        assert st.coerce("equalize_enable", text) is value
    assert st.coerce("extensions_disabled", "OLED, can") == "oled,can"
    with pytest.raises(SettingsError, match="character '-' not allowed"):
        st.coerce("extensions_disabled", "rm -rf")
    with pytest.raises(SettingsError, match="too long"):
        st.coerce("extensions_disabled", "a" * 65)
    assert st.coerce("extensions_disabled", "a" * 64) == "a" * 64


def test_describe_is_one_line_with_unit_range_and_default(nvm):
    s, _ = make(nvm)
    for key in s.keys():
        d = s.describe(key)
        assert "\n" not in d and d.startswith(key)
    assert s.describe("i_charge_max_ma").startswith("i_charge_max_ma = 30000 (int 0..35000 mA, default 30000): ")
    assert "one of buck, boost" in s.describe("mode")
    with pytest.raises(KeyError):
        s.describe("nope")
    with pytest.raises(KeyError):
        s.get("nope")


def test_set_bumps_generation_only_on_a_change(nvm):
    s, _ = make(nvm)
    g = s.generation
    assert s.set("battery_cells", "16") == 16
    assert s.generation == g + 1 and s.dirty
    s.set("battery_cells", 16)
    assert s.generation == g + 1
    s.reset_defaults()
    assert s.generation == g + 2 and s["battery_cells"] == 0 and s.source == "defaults (reset)"


def test_cross_rule_derate_below_shutdown(nvm):
    s, _ = make(nvm)
    with pytest.raises(SettingsError, match=r"t_derate_start_c=90 refused: t_derate_start_c \(90 C\) must be below "
                                            r"t_shutdown_c \(85 C\)"):
        s.set("t_derate_start_c", 90)
    with pytest.raises(SettingsError, match="must be below t_shutdown_c"):
        s.set("t_shutdown_c", "60")
    assert s["t_derate_start_c"] == 70 and s["t_shutdown_c"] == 85
    # one step at a time cannot get there, an update checks the post-change set
    assert s.update({"t_derate_start_c": 90, "t_shutdown_c": "100"}) == ["t_derate_start_c", "t_shutdown_c"]
    assert s["t_derate_start_c"] == 90 and s["t_shutdown_c"] == 100


def test_cross_rule_custom_voltages(nvm):
    s, _ = make(nvm)
    with pytest.raises(SettingsError, match="custom_v_float_cell_mv .* must not be above custom_v_absorb_cell_mv"):
        s.set("custom_v_float_cell_mv", 3600)
    with pytest.raises(SettingsError, match="custom_v_rebulk_cell_mv .* must be below custom_v_float_cell_mv"):
        s.set("custom_v_rebulk_cell_mv", 3400)
    s.update({"custom_v_absorb_cell_mv": 2450, "custom_v_float_cell_mv": 2300, "custom_v_rebulk_cell_mv": 2200})
    assert s["custom_v_float_cell_mv"] == 2300


def test_update_is_all_or_nothing(nvm):
    s, _ = make(nvm)
    before = s.items()
    g = s.generation
    with pytest.raises(SettingsError, match="battery_capacity_ah"):
        s.update({"battery_cells": 8, "mode": "boost", "battery_capacity_ah": 0})
    with pytest.raises(SettingsError, match="must be below"):
        s.update({"battery_cells": 8, "t_derate_start_c": 99})
    with pytest.raises(SettingsError, match="unknown setting"):
        s.update({"battery_cells": 8, "wifi_ssid": "home"})
    assert s.items() == before and s.generation == g and not s.dirty
    assert s.update({"battery_cells": "8", "mode": "boost"}) == ["battery_cells", "mode"]
    assert s.generation == g + 1
    assert s.update({"battery_cells": 8}) == [] and s.generation == g + 1


def test_save_and_load_round_trip(nvm, board):
    s, _ = make(nvm)
    changes = {"battery_chem": "lead_agm", "battery_cells": 6, "equalize_enable": "true", "mode": "boost",
               "temp_comp_uv_per_c_cell": -4000, "extensions_disabled": "oled,sd_log", "can_bitrate": "1000000",
               "ble_pin": 123456, "silent_mode": True}
    s.update(changes)
    writes = board.nvm_writes
    t0 = board.clock.now_ns
    n = s.save()
    assert board.nvm_writes == writes + 1  # one flash operation
    assert board.clock.now_ns - t0 >= 10e6  # and it blocks for tens of ms (the simulated ESP32 cost)
    assert n == OVERHEAD + len(st.encode(dict(s.items())))
    assert not s.dirty
    s2, log = make(nvm)
    assert s2.items() == s.items()
    assert s2["equalize_enable"] is True and s2["can_bitrate"] == 1000000
    assert s2.source.startswith("nvm (slot A seq 1")
    assert any(line.startswith("settings: loaded from nvm") for line in log)


def test_largest_possible_record_fits_a_slot():
    worst = {}
    for key, kind, default, spec, unit in SCHEMA:
        if kind == "int":
            worst[key] = min(spec, key=lambda v: -len(str(v)))
        elif kind == "choice":
            worst[key] = max(spec, key=lambda v: len(str(v)))
        elif kind == "str":
            worst[key] = "a" * spec[0]
        else:
            worst[key] = True
    size = len(st.encode(worst))
    assert size + OVERHEAD <= st.SETTINGS_SLOT_SIZE
    assert len(st.encode(st.defaults())) <= 600  # room for future keys in the 1011-byte slot


def test_power_cut_at_every_byte_of_a_save_keeps_the_previous_settings(nvm, board):
    s, _ = make(nvm)
    s.set("battery_cells", 4)
    s.save()  # slot A
    s.update({"battery_chem": "li_nmc", "battery_cells": 7, "p_max_w": 700})
    s.save()  # slot B: "previous settings"
    previous = s.items()
    pristine = bytearray(board.nvm)
    s.update({"battery_chem": "lead_gel", "battery_cells": 12, "p_max_w": 1500, "extensions_disabled": "can"})
    new = s.items()
    rec_len = OVERHEAD + len(st.encode(dict(new)))
    for k in range(rec_len + 1):
        board.nvm[:] = pristine
        loader, _ = make(nvm)  # a booted device: knows its newest slot from the load
        loader.update(dict(new))
        board.nvm_fail_after_bytes = k
        with pytest.raises(SimReset):
            loader.save()
        after, log = make(nvm)
        assert after.items() == (new if k == rec_len else previous), k
        assert after.source.startswith("nvm (slot %s" % ("A" if k == rec_len else "B")), (k, after.source)


def test_power_cut_during_the_first_save_boots_on_defaults_and_says_so(nvm, board):
    s, _ = make(nvm)
    s.set("battery_cells", 4)
    board.nvm_fail_after_bytes = 100
    with pytest.raises(SimReset):
        s.save()
    s2, log = make(nvm)
    assert s2["battery_cells"] == 0
    assert "no valid record" in s2.source
    assert any("using defaults" in line and "bad checksum" in line for line in log)


def test_corrupted_newest_record_falls_back_to_the_older_one(nvm, board):
    s, _ = make(nvm)
    s.set("battery_cells", 4)
    s.save()
    s.set("battery_cells", 8)
    s.save()  # slot B
    for pos in (0, 5, 40, 200, 400, 460):
        board.nvm[st.SETTINGS_BASE + st.SETTINGS_SLOT_SIZE + pos] ^= 0x04
        s2, _ = make(nvm)
        assert s2["battery_cells"] == 4, pos
        board.nvm[st.SETTINGS_BASE + st.SETTINGS_SLOT_SIZE + pos] ^= 0x04
    assert make(nvm)[0]["battery_cells"] == 8


def test_stored_data_from_another_firmware_version(nvm):
    """Unknown keys are skipped (a newer firmware wrote them), missing keys get defaults (this firmware is newer),
    a stored value now out of range gets its default; each is reported."""
    text = ("battery_chem=lead_flooded\n"
            "battery_cells=40\n"  # out of range now
            "future_key=42\n"
            "garbage line\n"
            "mode=boost\n"
            "t_derate_start_c=80\n"
            "t_shutdown_c=75\n")  # cross-rule broken: both back to defaults
    raw_store(nvm).write(text.encode())
    s, log = make(nvm)
    assert s["battery_chem"] == "lead_flooded" and s["mode"] == "boost"
    assert s["battery_cells"] == 0
    assert (s["t_derate_start_c"], s["t_shutdown_c"]) == (70, 85)
    assert s["p_max_w"] == 1000
    text_log = "\n".join(log)
    assert "battery_cells='40' refused: allowed 0..24 cells, using default 0" in text_log
    assert "ignored stored key future_key" in text_log
    assert "skipped stored line 'garbage line'" in text_log
    assert "not stored, at defaults: battery_capacity_ah" in text_log
    assert "t_derate_start_c (80 C) must be below t_shutdown_c (75 C); t_derate_start_c, t_shutdown_c back to " \
           "defaults" in text_log


def test_no_nvm_runs_on_defaults(capsys):
    s = Settings(None)
    assert "no nvm" in capsys.readouterr().out
    assert s.save() == 0 and s["mode"] == "buck"


def test_env_reads_settings_toml_values(monkeypatch):
    monkeypatch.setenv("CIRCUITPY_WIFI_SSID", "solar-shed")
    monkeypatch.delenv("CIRCUITPY_WIFI_PASSWORD", raising=False)
    assert st.env("CIRCUITPY_WIFI_SSID") == "solar-shed"
    assert st.env("CIRCUITPY_WIFI_PASSWORD") is None
    assert st.env("CIRCUITPY_WIFI_PASSWORD", "") == ""


def test_every_setting_has_one_help_line_and_the_texts_are_not_kept_in_memory():
    """The help texts live in fugu/settings_help.py (RAM): loaded for an answer, then dropped again."""
    import sys

    from fugu.settings_help import HELP

    assert sorted(HELP) == sorted(st.KEYS)
    assert all(HELP[k] and "\n" not in HELP[k] for k in st.KEYS)
    assert st.help_text("mode") == HELP["mode"]
    assert "fugu.settings_help" not in sys.modules
