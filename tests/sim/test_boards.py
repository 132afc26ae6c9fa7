"""Every board config, built into a simulated board: the readings the firmware would get through the REAL drivers
(adafruit_ads1x15, adafruit_tla202x, analogio) give the plant's true voltages and currents within what the
board's tolerances allow; the two-channel board's stages both charge the one battery and the energy books close;
the shunt board sees reverse current; the internal-ADC board's front-ends fit the ESP32-S3 ADC's range and its
errors calibrate out."""

import importlib
import os
import time  # the simulated `time` (install() put it in sys.modules): sleep advances the simulated clock

import pytest

from fugu.boardcfg import channels
from sim import wiring
from sim.builders import build_sim
from sim.install import PROJECT_ROOT
from sim.scenario import ScenarioError, load_scenario

BOARDS = sorted(f[:-3] for f in os.listdir(os.path.join(PROJECT_ROOT, "boardconfigs"))
                if f.endswith(".py") and f != "__init__.py")
S3_ADC1 = {"IO%d" % i for i in range(1, 11)}  # ADC2 (IO11..20) is shared with Wi-Fi
S3_RESERVED = {"IO%d" % i for i in (0, 3, 45, 46, 19, 20, 43, 44, 26, 27, 28, 29, 30, 31, 32, 35, 36, 37)}
ESP32_ADC1 = {"IO%d" % i for i in (32, 33, 34, 35, 36, 39)}
ESP_ADC_BOW_V = 0.015  # the analogio stand-in's residual curve (sim/hal/analogio.py), worst at the ends
ESP_SAT_V = 3.1


def esp_bow_v(v_pin):
    """Bound of the calibrated curve's bow at a pin voltage (+-15 mV cubic, sim/hal/analogio.py) plus 1 LSB."""
    return ESP_ADC_BOW_V * abs(2.0 * v_pin / ESP_SAT_V - 1.0) ** 3 + 0.001


def config(name):
    return importlib.import_module("boardconfigs." + name).BOARD


def scenario(name="demo", **overrides):
    overrides.setdefault("scenario.duration_s", 100)
    return load_scenario(os.path.join(PROJECT_ROOT, "scenarios", name + ".toml"), overrides=overrides)


class Running:
    """A built board, active while in the with-block (the CircuitPython stand-ins talk to it)."""

    def __init__(self, sim):
        self.sim = sim

    def __enter__(self):
        self.sim.board.activate()
        return self.sim

    def __exit__(self, *exc):
        self.sim.board.deactivate()


def built(board_name, scen="demo", **overrides):
    overrides["board.config"] = board_name
    return build_sim(scenario(scen, **overrides))


# -- nominal scaling (what a board config promises), independent of the firmware's code ---------------------------
def ratio(s):
    return (s["r_top_ohm"] + s["r_bottom_ohm"]) / s["r_bottom_ohm"]


def quantity(s, v_pin):
    """Pin volts -> V (dividers) or A (current sensors) from the config's nominal values."""
    if s["kind"] == "divider":
        return v_pin * ratio(s)
    if s["kind"] == "acs712":
        div = s["r_bottom_ohm"] / (s["r_top_ohm"] + s["r_bottom_ohm"]) if s.get("r_top_ohm") else 1.0
        vcc = s.get("vcc_v", 5.0)
        return (v_pin / div - 0.5 * vcc) / (s.get("direction", 1) * s["v_per_a"] * vcc / 5.0)
    return (v_pin - s["v_ref_v"]) / (s.get("direction", 1) * s["r_shunt_ohm"] * s["gain"])


def truth(stage, name):
    return {"v_in": stage.vc, "v_out": stage.vo, "i_in": stage.i_pv, "i_out": stage.i_out}[name]


def read_pins(sim, chan, adc_kind):
    """{sense name: pin volts} of one channel, read through the real driver the way the firmware could."""
    import board
    import busio

    sense = chan["sense"]
    if adc_kind in wiring.INTERNAL_ADC_NAMES:
        import analogio

        out = {}
        for name, s in sense.items():
            with analogio.AnalogIn(getattr(board, s["pin"])) as a:
                out[name] = a.value * a.reference_voltage / 65535
        return out
    i2c = busio.I2C(board.SCL, board.SDA, frequency=400000)
    try:
        addr = chan["adc"].get("address", 0x48)
        if adc_kind == "TLA2024":
            from adafruit_tla202x import TLA2024, Range
            from adafruit_tla202x.analog_in import AnalogIn

            tla = TLA2024(i2c, address=addr)
            tla.range = Range.RANGE_2_048V
            out = {}
            for name, s in sense.items():
                AnalogIn(tla, s["ch"]).voltage  # continuous mode: switch the input, let a fresh conversion land
                time.sleep(0.005)
                out[name] = AnalogIn(tla, s["ch"]).voltage
            return out
        from adafruit_ads1x15 import ADS1015, ADS1115, AnalogIn, ads1x15

        cls, rate = (ADS1115, 860) if adc_kind == "ADS1115" else (ADS1015, 3300)
        ads = cls(i2c, gain=2, data_rate=rate, address=addr)
        pins = (ads1x15.Pin.A0, ads1x15.Pin.A1, ads1x15.Pin.A2, ads1x15.Pin.A3)
        return {name: AnalogIn(ads, pins[s["ch"]]).voltage for name, s in sense.items()}
    finally:
        i2c.deinit()


def reading_bound(s, name, value, v_pin, tolerances, internal):
    """How far a nominally scaled reading may be from the truth: divider tolerances (1 % per resistor), sensor
    offsets (4 sigma), and for the MCU's ADC its gain, offset, bow and noise (sim/wiring.py ESP_ADC_*)."""
    if s["kind"] == "divider":
        rel = (2.0 * wiring.DIVIDER_TOL_PCT / 100.0 + 0.5e-3) if tolerances else 1e-3
        pin_v = esp_bow_v(v_pin) if internal else 0.001
        if internal and tolerances:
            rel += wiring.ESP_ADC_GAIN_ERR
            pin_v += wiring.ESP_ADC_OFFSET_V + 4 * wiring.ESP_ADC_NOISE_V
        return abs(value) * rel + pin_v * ratio(s)
    if s["kind"] == "acs712":
        per_a = s["v_per_a"] * (s["r_bottom_ohm"] / (s["r_top_ohm"] + s["r_bottom_ohm"]) if s.get("r_top_ohm") else 1)
        pin_v = 4 * wiring.ACS712_OFFSET_V * per_a / s["v_per_a"] + 4 * wiring.ACS712_NOISE_V if tolerances else 0.0
    else:
        per_a = s["r_shunt_ohm"] * s["gain"]
        pin_v = 4 * (wiring.SHUNT_AMP_OFFSET_V + wiring.SHUNT_AMP_NOISE_V) if tolerances else 0.0
    if internal:
        pin_v += esp_bow_v(v_pin)
        if tolerances:
            pin_v += wiring.ESP_ADC_OFFSET_V + 4 * wiring.ESP_ADC_NOISE_V + wiring.ESP_ADC_GAIN_ERR * 1.65
    return 0.05 * abs(value) + 0.001 / per_a + pin_v / per_a


def fixed_duty(sim, duties):
    """Start every stage at a fixed duty through pwmio/digitalio, as code.py drives the gate pins (the caller
    keeps the returned objects alive)."""
    import board
    import digitalio
    import pwmio

    held = []
    for chan, d in zip(channels(sim.config), duties):
        cp = chan["pins"]
        pwm = pwmio.PWMOut(getattr(board, cp["pwm"]), frequency=chan["power_stage"]["f_pwm_hz"],
                           duty_cycle=int(d * 65535), variable_frequency=True)
        bf = digitalio.DigitalInOut(getattr(board, cp["backflow"]))
        bf.switch_to_output(value=True)
        en = digitalio.DigitalInOut(getattr(board, cp["enable"]))
        en.switch_to_output(value=True)
        held.append((pwm, bf, en))
    return held


def run_for(sim, seconds):
    clock = sim.board.clock
    clock.advance(int(seconds * 1e9))
    clock.sync()


# =================================================================================== the configs themselves

@pytest.mark.parametrize("name", BOARDS)
def test_board_config_is_complete_and_its_pins_exist(name):
    cfg = config(name)
    assert cfg["name"] == name
    mcu = cfg["mcu"]
    valid = set(wiring.MCU_PINS[mcu])
    r = cfg["ratings"]
    for k in ("v_in_max_mv", "i_in_max_ma", "v_out_max_mv", "i_out_max_ma", "p_max_mw"):
        assert isinstance(r[k], int) and r[k] > 0, k
    used = [cfg["pins"][k] for k in ("fan", "ntc", "led", "sda", "scl")] + list(cfg["pins"]["buttons"])
    chans = channels(cfg)
    addresses = set()
    for ch in chans:
        used += list(ch["pins"].values())
        sense = ch["sense"]
        assert {"v_in", "v_out", "i_in"} <= set(sense)
        assert len({s["ch"] for s in sense.values()}) == len(sense)  # one ADC input each
        assert "f_pwm_hz" in ch["power_stage"]
        kind = (ch["adc"] or {}).get("type", "analogio")
        if kind == "analogio":
            used += [s["pin"] for s in sense.values()]
            assert all(s["pin"] in S3_ADC1 for s in sense.values())
        else:
            assert kind in wiring.EXTERNAL_ADCS or kind == "auto"  # auto: one of them, found at boot
            addresses.add(ch["adc"]["address"])
    assert len(addresses) in (0, len(chans))  # each external ADC at its own address
    assert set(used) <= valid, set(used) - valid
    assert len(used) == len(set(used)), "a pin is used twice"
    if mcu == "esp32s3":
        assert cfg["pins"]["ntc"] in S3_ADC1
        assert not set(used) & S3_RESERVED, set(used) & S3_RESERVED
    else:
        assert cfg["pins"]["ntc"] in ESP32_ADC1


@pytest.mark.parametrize("name", BOARDS)
def test_breakout_pins_exist_and_are_free(name):
    """Every breakout signal (SPI, chip selects, CAN, RS485) on its own MCU pin, none taken by the power stage or
    the core's pins (the breakout button is one of the board's buttons by design)."""
    cfg = config(name)
    bo = {k: v for k, v in cfg.get("breakout", {}).items() if isinstance(v, str) and k != "button"}
    if not bo:
        pytest.skip("no breakout")
    assert cfg["breakout"].get("button", cfg["pins"]["buttons"][0]) in cfg["pins"]["buttons"]
    core = [v for k, v in cfg["pins"].items() if k not in ("buttons", "sda", "scl")]
    core += list(cfg["pins"]["buttons"])
    for ch in channels(cfg):
        core += list(ch["pins"].values()) + [s["pin"] for s in ch["sense"].values() if "pin" in s]
    assert set(bo.values()) <= set(wiring.MCU_PINS[cfg["mcu"]])
    assert len(set(bo.values())) == len(bo), bo
    assert not set(bo.values()) & set(core), set(bo.values()) & set(core)
    if cfg["mcu"] == "esp32s3":
        assert not set(bo.values()) & S3_RESERVED
    assert ("can_tx" in bo) == ("can_rx" in bo)


@pytest.mark.parametrize("name", BOARDS)
def test_board_builds_a_simulated_board(name):
    sim = built(name)
    chans = channels(config(name))
    assert len(sim.stages) == len(sim.adcs) == len(sim.plant.stages) == len(chans)
    assert sim.stage is sim.stages[0] and sim.adc is sim.adcs[0] and sim.frontends is sim.frontends_ch[0]
    bus = sim.board.i2c_bus(config(name)["pins"]["scl"], config(name)["pins"]["sda"])
    for ch, adc in zip(chans, sim.adcs):
        if adc is None:
            assert ch["adc"]["type"] == "analogio"
        else:
            assert bus[ch["adc"]["address"]] is adc
    assert sim.plant.p_mpp_w == pytest.approx(sum(sim.plant.p_mpp_ch))


# ======================================================================= readings through the real drivers

CASES = [(b, None) for b in BOARDS] + [("fugu_v1", "ADS1015"), ("fugu_v1", "TLA2024")]


@pytest.mark.parametrize("tolerances", [False, True], ids=["nominal", "toleranced"])
@pytest.mark.parametrize("name,adc", CASES, ids=["%s-%s" % c if c[1] else c[0] for c in CASES])
def test_converter_off_readings_give_the_true_voltages_and_currents(name, adc, tolerances):
    over = {"board.tolerances": tolerances}
    if adc:
        over["board.adc"] = adc
    sim = built(name, **over)
    with Running(sim):
        run_for(sim, 0.05)
        for chan, st in zip(channels(sim.config), sim.stages):
            kind = adc or chan["adc"]["type"]
            internal = kind in wiring.INTERNAL_ADC_NAMES
            pins = read_pins(sim, chan, kind)
            for sname, v_pin in pins.items():
                s = chan["sense"][sname]
                got, want = quantity(s, v_pin), truth(st, sname)
                tol = reading_bound(s, sname, want, v_pin, tolerances, internal)
                if adc == "TLA2024" or adc == "ADS1015":
                    tol += 0.001 * (ratio(s) if s["kind"] == "divider" else 1.0 / 0.0496)  # 12-bit LSB
                assert got == pytest.approx(want, abs=tol), (chan["index"], sname, v_pin)
        assert sim.stage.vc > 60.0 and sim.stage.vo > 20.0  # the PV is up, the battery is there


# ================================================================================== the two-channel board

def test_dual_board_both_stages_charge_the_one_battery():
    sim = built("fugu_dual", "dual_channel", **{"scenario.duration_s": 30})
    plant = sim.plant
    assert plant.n_channels == 2 and plant.p_mpp_ch[1] == pytest.approx(0.7 * plant.p_mpp_ch[0], rel=0.05)
    with Running(sim):
        duties = [st.vo / v for st, v in zip(sim.stages, plant.v_mpp_ch)]
        held = fixed_duty(sim, duties)
        run_for(sim, 2.0)
        e_pv0, e_bat0 = plant.e_pv_j, plant.e_bat_in_j
        run_for(sim, 1.0)
        i_out = [st.i_out for st in sim.stages]
        # each channel's output current, read through its own ADS1115 (0x48, 0x49)
        measured = [quantity(ch["sense"]["i_out"], read_pins(sim, ch, "ADS1115")["i_out"])
                    for ch in channels(sim.config)]
        del held
    for k, st in enumerate(sim.stages):
        assert st.v_pv * st.i_pv > 0.9 * plant.p_mpp_ch[k]  # near its own array's MPP
        assert i_out[k] > 8.0
        assert measured[k] == pytest.approx(i_out[k], abs=0.5)
    assert i_out[1] < 0.8 * i_out[0]  # the second array gets 70 % of the light
    i_bat = plant.battery.last_i_a
    assert i_bat == pytest.approx(i_out[0] + i_out[1], rel=0.01)  # their currents add in the one battery
    assert plant.e_bat_in_j - e_bat0 > 0.9 * (plant.e_pv_j - e_pv0)  # ~97 % efficient together
    e_in, accounted, rel = plant.energy_balance()
    assert e_in > 2000.0 and abs(rel) < 1e-4, (e_in, accounted, rel)
    assert plant.e_pv_j == pytest.approx(sum(plant.e_pv_ch), rel=1e-12)
    assert plant.e_available_j == pytest.approx(sum(plant.e_available_ch), rel=1e-12)
    assert plant.e_transfer_out_j == pytest.approx(plant.e_transfer_in_j, rel=1e-4)
    assert plant.bootstrap_violations == sum(st.bootstrap_violations for st in sim.stages)


def test_dual_board_outputs_stay_tied_when_the_battery_goes():
    """Battery disconnected while both stages switch: the two outputs are one node (through their wiring), so they
    rise together and the books still close (no firmware here: nothing stops the rise)."""
    sim = built("fugu_dual", "dual_channel", **{"scenario.duration_s": 30})
    plant = sim.plant
    with Running(sim):
        held = fixed_duty(sim, [st.vo / v for st, v in zip(sim.stages, plant.v_mpp_ch)])
        run_for(sim, 0.5)
        plant.set_battery_connected(False)
        v0 = sim.stage.vo
        for _ in range(20):
            run_for(sim, 0.001)
            vo = [st.vo for st in sim.stages]
            assert abs(vo[0] - vo[1]) < 0.5
        del held
    assert sim.stage.vo > v0 + 1.0
    assert abs(plant.energy_balance()[2]) < 1e-4


def test_single_channel_scenarios_build_one_stage_and_pv2_needs_two():
    sim = built("fugu_v1")
    assert sim.plant.n_channels == 1 and sim.plant.e_pv_ch == [0.0]
    with pytest.raises(ScenarioError, match=r"\[pv2\].*two-channel board"):
        load_scenario(os.path.join(PROJECT_ROOT, "scenarios", "dual_channel.toml"),
                      overrides={"board.config": "fugu_v1"})
    # a two-channel board without [pv2]: channel 1 gets a copy of [pv] (same light)
    sim = built("fugu_dual")
    assert sim.plant.p_mpp_ch[0] == pytest.approx(sim.plant.p_mpp_ch[1])


def test_pv2_is_validated(tmp_path):
    base = open(os.path.join(PROJECT_ROOT, "scenarios", "dual_channel.toml")).read()

    def load(extra_pv2):
        text = base.replace("[pv2]\n", "[pv2]\n" + extra_pv2 + "\n")
        p = tmp_path / "x.toml"
        p.write_text(text)
        return load_scenario(p)

    with pytest.raises(ScenarioError, match=r"\[pv2\] irradiance_scal: unknown key; did you mean 'irradiance_scale'"):
        load("irradiance_scal = 1.0")
    with pytest.raises(ScenarioError, match=r"\[pv2\] module: without source"):
        load('module = "Canadian_Solar_Inc__CS6K_300P"')
    sc = load('source = "en50530"\np_mpp_w = 400.0\nv_mpp_v = 30.0\nsubstrings = 6')  # its own array, 6 parts
    assert sc.pv2["source"] == "en50530" and sc.pv2["irradiance_scale"] == 0.7
    assert sc.shade2(320.0) == (1.0, 1.0, 0.3, 0.3, 1.0, 1.0)
    assert 300.0 in sc._changes and 450.0 in sc._changes  # the plant lands on [pv2] shade breakpoints
    text = base.replace("irradiance_scale = 0.7", "irradiance_scale = 0.7\nsubstrings = 1\nsource = \"cec\"\n"
                        "module = \"Canadian_Solar_Inc__CS6K_300P\"")
    p = tmp_path / "y.toml"
    p.write_text(text)
    with pytest.raises(ScenarioError, match=r"\[pv2\] shade\[0\]: the factor vector has 6 entries but the array "
                                            r"has 1 sub-strings"):
        load_scenario(p)


# ====================================================================================== the shunt board

def test_shunt_board_reads_reverse_current_signed():
    """The synchronous buck driven below the battery's voltage runs backwards (battery -> PV side, the original's
    "negative current"); both shunt amplifiers show it as negative current, at its true size."""
    sim = built("fugu_shunt", "shunt", **{"board.tolerances": True})
    chan = channels(sim.config)[0]
    st = sim.stage
    with Running(sim):
        held = fixed_duty(sim, [(st.vo - 3.5) / st.vc])
        run_for(sim, 0.3)
        pins = read_pins(sim, chan, "ADS1115")
        i_in, i_out = quantity(chan["sense"]["i_in"], pins["i_in"]), quantity(chan["sense"]["i_out"], pins["i_out"])
        del held
    assert st.i_pv < -2.0 and st.i_out < -5.0  # the physics: current flows backwards on both sides
    assert i_in == pytest.approx(st.i_pv, abs=0.3)
    assert i_out == pytest.approx(st.i_out, abs=0.3)


# =============================================================================== the internal-ADC board

def test_internal_adc_front_ends_fit_the_esp32s3_range_at_the_ratings():
    cfg = config("fugu_s3_internal_adc")
    r = cfg["ratings"]
    worst = (1 + wiring.ESP_ADC_GAIN_ERR) * (1 + 2 * wiring.DIVIDER_TOL_PCT / 100)
    sense = cfg["sense"]
    for name, v_max in (("v_in", r["v_in_max_mv"] / 1000), ("v_out", r["v_out_max_mv"] / 1000)):
        v_pin = v_max / ratio(sense[name]) * worst + wiring.ESP_ADC_OFFSET_V
        assert v_pin < 0.9 * ESP_SAT_V, (name, v_pin)  # headroom: an over-voltage is still a number
    for name, i_max in (("i_in", r["i_in_max_ma"] / 1000), ("i_out", r["i_out_max_ma"] / 1000)):
        s = sense[name]
        for i in (i_max, -0.5 * i_max):
            v_pin = s["v_ref_v"] + i * s["r_shunt_ohm"] * s["gain"]
            assert 0.1 < v_pin * (1 + wiring.ESP_ADC_GAIN_ERR) + wiring.ESP_ADC_OFFSET_V < ESP_SAT_V, (name, i)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_internal_adc_errors_calibrate_out_with_two_points(seed):
    """Feed known voltages to one analog pin of the built board and read them through analogio: the chip's gain
    and offset errors are what a two-point calibration removes; what remains is the curve's bow and the noise.
    Above ~3.1 V the reading saturates (the ESP32-S3 at 12 dB)."""
    import analogio
    import board

    sim = built("fugu_s3_internal_adc", **{"scenario.seed": seed})
    pin = sim.config["sense"]["v_out"]["pin"]
    src = sim.esp_adc_pins[pin]
    level = [0.0]
    src.source = lambda: level[0]
    with Running(sim), analogio.AnalogIn(getattr(board, pin)) as a:
        def read(v, n=16):
            level[0] = v
            return sum(a.value * a.reference_voltage / 65535 for _ in range(n)) / n

        lo, hi = 0.4, 2.6
        r_lo, r_hi = read(lo), read(hi)
        gain = (hi - lo) / (r_hi - r_lo)
        offset = lo - gain * r_lo
        raw_err = cal_err = 0.0
        for k in range(12):
            v = 0.2 + k * 0.25
            r = read(v)
            raw_err = max(raw_err, abs(r - v))
            cal_err = max(cal_err, abs(gain * r + offset - v))
        assert read(3.3, 1) == pytest.approx(ESP_SAT_V, abs=0.02)  # saturates, no wrap-around
        assert read(5.0, 1) == pytest.approx(ESP_SAT_V, abs=0.02)
    assert cal_err < ESP_ADC_BOW_V  # ~0.5 % of the range: the bow near the ends
    assert raw_err < wiring.ESP_ADC_GAIN_ERR * 2.95 + wiring.ESP_ADC_OFFSET_V + ESP_ADC_BOW_V + 0.003
    assert abs(sim.esp_adc_gain - 1) <= wiring.ESP_ADC_GAIN_ERR and abs(src.offset_v) <= wiring.ESP_ADC_OFFSET_V
