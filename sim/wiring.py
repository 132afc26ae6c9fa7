"""Build a simulated FUGU board from a board config and a scenario: the MCU's pins, per power stage (channel) the ADC
emulator on I2C (or the MCU's own ADC pins), the sensing front-ends between the plant and the ADC inputs, and the
gate pins wired to that stage; shared: the NTC on the MCU's ADC, the fan, the heatsink, one battery.

The board config holds NOMINAL values (what the firmware believes); here they become hardware with tolerances drawn
from the scenario's seed, so calibration matters as it does on a real board.

Boards that read their sensors with the ESP32-S3's own ADC (analogio) get the chip's errors on top of the analogio
stand-in's (12 bit, 12 dB, calibrated curve with a +-15 mV bow, saturation at 3.1 V): a gain error common to the
chip (ESP_ADC_GAIN_ERR, uniform), an offset per pin (ESP_ADC_OFFSET_V, uniform) and sampling noise
(ESP_ADC_NOISE_V, rms). These are the residual errors of the eFuse calibration (+-1..3 %, tens of mV: see
CIRCUITPYTHON-FACTS); a two-point (gain, offset) calibration per channel removes all but the bow and the noise.
"""

import random

from sim.clock import SimClock
from sim.simboard import CostModel, SimBoard
from sim.plant.converter import PowerStage, PowerStageParams
from sim.plant.frontend import ACS712, Divider, ShuntAmp
from sim.plant.system import Plant
from sim.plant.thermal import NTC, Fan, Heatsink, ntc_divider_v

MCU_PINS = {
    "esp32": ["IO%d" % i for i in (0, 1, 2, 3, 4, 5, 12, 13, 14, 15, 16, 17, 18, 19, 21, 22, 23, 25, 26, 27, 32, 33,
                                   34, 35, 36, 39)],
    "esp32s3": ["IO%d" % i for i in list(range(0, 22)) + list(range(26, 49))],
}
ESP_BOARD_IDS = {"esp32": "espressif_esp32_devkitc_v4_wroom_32e", "esp32s3": "espressif_esp32s3_devkitc_1_n8r8"}
EXTERNAL_ADCS = ("ADS1115", "ADS1015", "TLA2024")
INTERNAL_ADC_NAMES = ("internal", "analogio")

DIVIDER_TOL_PCT = 1.0
ACS712_OFFSET_V = 0.010  # typical zero-current offset spread after the divider
ACS712_NOISE_V = 0.0045  # ~4.5 mV rms at the ACS712-30A output with its default 80 kHz bandwidth (datasheet: 7 mV typ p-p*)
SHUNT_AMP_OFFSET_V = 0.0005  # INA240-class: +-25 uV input offset x gain, plus the reference's spread
SHUNT_AMP_NOISE_V = 0.0008
# ESP32-S3 ADC (12 dB) after the eFuse calibration, for boards that sense with it (see the module docstring)
ESP_ADC_GAIN_ERR = 0.01  # +-1 % of reading, one draw per chip
ESP_ADC_OFFSET_V = 0.010  # +-10 mV, one draw per pin
ESP_ADC_NOISE_V = 0.0015  # rms per read (the port averages two conversions)


def _high():
    return True


class _Gate:
    """One stage's gate pins: PWM into the IR2104, its shutdown pin, the backflow MOSFET."""

    def __init__(self, stage):
        self.stage = stage

    def on_pwm(self, pin, kind, value):
        if kind == "pwm":
            duty, f = value
            self.stage.duty = duty
            self.stage.f_sw_hz = f
        else:  # released: the LEDC output stops low
            self.stage.duty = 0.0

    def on_enable(self, pin, kind, value):
        st = self.stage
        st.enable_cmd = bool(value) if kind == "digital" else False
        st.refresh_enable()
        st.h_next = 1e-6

    def on_ovp_ref(self, pin, kind, value, k_div=1.0, v_full=3.3):
        """The OVP comparator's reference: the firmware's PWM through an RC filter (its mean), against the output
        node through the comparator's divider k_div."""
        duty = value[0] if kind == "pwm" else 0.0
        self.stage.ovp_v_trip = max(duty * v_full / k_div, 1e-3)

    def on_backflow(self, pin, kind, value):
        st = self.stage
        st.backflow_cmd = bool(value) if kind == "digital" else False
        st.refresh_backflow()

    def set_backflow_shorted(self, shorted):
        """Fault backflow_short: the MOSFET failed short, it conducts whatever its gate."""
        st = self.stage
        st.backflow_shorted = shorted
        st.refresh_backflow()
        st.h_next = 1e-6


class _EspAdcPin:
    """The analog source of one ESP32-S3 ADC pin with the chip's gain and the pin's offset error and noise."""

    def __init__(self, source, gain, offset_v, noise_v, rng):
        self.source = source
        self.gain = gain
        self.offset_v = offset_v
        self.noise_v = noise_v
        self._rng = rng

    def __call__(self):
        v = self.source() * self.gain + self.offset_v
        if self.noise_v > 0.0:
            v += self._rng.gauss(0.0, self.noise_v)
        return v


class FuguSim:
    """Everything of one simulated board: .board (SimBoard), .plant, and per channel .stages, .adcs (emulator or
    None for the MCU's ADC), .frontends_ch, .adc_inputs_ch, .gates. .stage, .adc, .frontends and .adc_inputs are
    channel 0's (single-channel code keeps working).

    ``pv``: one PV source, or a list with one per channel. ``irradiance_scale`` / ``shade``: per-channel lists for
    the plant (default: from the scenario: channel 0 gets [shade], the others [pv2]'s irradiance_scale and shade)."""

    def __init__(self, config, scenario=None, pv=None, battery=None, load=None, seed=1, tolerances=True,
                 cost=None, end_ns=None, adc_type=None, irradiance_scale=None, shade=None):
        self.config = config
        rng = random.Random(seed)
        self.rng = rng
        self.tolerances = tolerances
        tol = DIVIDER_TOL_PCT if tolerances else 0.0
        mcu = config.get("mcu", "esp32")
        pins = config["pins"]
        from fugu.boardcfg import channels as board_channels  # the firmware's own view (lib/ is on sys.path)

        chans = board_channels(config)
        n = len(chans)
        self.channels = chans
        pvs = list(pv) if isinstance(pv, (list, tuple)) else [pv]
        if len(pvs) != n:
            raise ValueError("board %s has %d power stage(s): it needs one PV source per channel, got %d"
                             % (config.get("name", "?"), n, len(pvs)))
        aliases = {"SDA": pins["sda"], "SCL": pins["scl"]}
        clock = SimClock(end_ns=end_ns)
        self.board = SimBoard(MCU_PINS[mcu], aliases=aliases, board_id=ESP_BOARD_IDS[mcu], clock=clock,
                              cost=cost or CostModel())
        self.board.default_i2c_hz = config.get("i2c_hz", 100000)
        self.stages = []
        for ch in chans:
            ps = dict(ch["power_stage"])
            ps.pop("f_pwm_hz", None)
            st = PowerStage(PowerStageParams(**ps))
            st.f_sw_hz = 0.0
            self.stages.append(st)
        self.stage = self.stages[0]
        self.heatsink = Heatsink()
        self.fan = Fan()
        self.ntc = NTC(config["ntc"]["r25_ohm"], config["ntc"]["beta_k"])
        self.ntc_fault = None
        sc = scenario
        if shade is None and sc is not None:
            shade = [sc.shade] + [getattr(sc, "shade2", None) if getattr(sc, "pv2", None) else None] * (n - 1)
        if irradiance_scale is None and sc is not None and n > 1:
            pv2 = getattr(sc, "pv2", None)
            irradiance_scale = [1.0] + [pv2["irradiance_scale"] if pv2 else 1.0] * (n - 1)
        self.plant = Plant(
            self.stages if n > 1 else self.stage, pvs if n > 1 else pvs[0], battery=battery, load=load,
            heatsink=self.heatsink, fan=self.fan,
            irradiance=sc.irradiance_w_m2 if sc else None,
            cell_temp=sc.cell_temp_c if sc else None,
            ambient=sc.ambient_c if sc else None,
            shade=shade,
            load_fraction=sc.load_fraction if sc else None,
            next_change=sc.next_change_s if sc else None,
            irradiance_scale=irradiance_scale,
        )
        clock.plant = self.plant
        if sc is not None:  # the heatsink starts at the scenario's ambient (a cold morning is cold inside too)
            self.heatsink.temp_c = self.heatsink.t_amb_c = float(sc.ambient_c(0.0))
        # -- per channel: sensing front-ends, the ADC, the gate pins ---------------------------------------------
        self.frontends_ch = []
        self.adc_inputs_ch = []
        self.adcs = []
        self.gates = []
        self.esp_adc_gain = None  # drawn when the first sense pin on the MCU's ADC is wired
        self.esp_adc_pins = {}  # pin -> _EspAdcPin, for the boards that sense with the MCU's ADC
        for ch, st in zip(chans, self.stages):
            fes, inputs = self._front_ends(ch["sense"], st, rng, tol, tolerances)
            self.frontends_ch.append(fes)
            self.adc_inputs_ch.append(inputs)
            self.adcs.append(self._adc(ch, inputs, adc_type, pins, rng, seed, tolerances))
            gate = _Gate(st)
            cp = ch["pins"]
            self.board.listen(cp["pwm"], gate.on_pwm)
            self.board.listen(cp["enable"], gate.on_enable)
            self.board.listen(cp["backflow"], gate.on_backflow)
            self.gates.append(gate)
        for st in self.stages:
            st.ideal_diode = bool(config.get("backflow_ideal_diode", False))
        ovp = config.get("ovp")
        if ovp:  # the output over-voltage comparator (single-stage boards): its reference from the firmware's PWM,
            # its open-drain output on SD (in the power stage model) and on a GPIO (high = no fault, pulled up)
            k_div = ovp["r_bottom_ohm"] / (ovp["r_top_ohm"] + ovp["r_bottom_ohm"])
            gate0 = self.gates[0]
            st0 = self.stages[0]
            self.board.listen(ovp["ref_pin"], lambda pin, kind, value: gate0.on_ovp_ref(pin, kind, value, k_div))
            self.board.set_input(ovp["fault_pin"], source=lambda: not st0.ovp_tripped)
        self.frontends = self.frontends_ch[0]
        self.adc_inputs = self.adc_inputs_ch[0]
        self.adc = self.adcs[0]
        # -- NTC on the ESP32 ADC ---------------------------------------------------------------------------------
        nt = config["ntc"]
        self.board.set_input(pins["ntc"], analog_source=lambda: ntc_divider_v(
            self.heatsink.temp_c, self.ntc, r_fixed_ohm=nt["r_fixed_ohm"], v_ref_v=nt["v_ref_v"],
            ntc_to_ground=nt["to_ground"], fault=self.ntc_fault))
        self.board.listen(pins["fan"], self._on_fan)
        for b in pins.get("buttons", ()):
            self.board.pin(b).pull = "up"  # buttons to ground with pull-ups: idle high

    # -- construction helpers -------------------------------------------------------------------------------
    def _front_ends(self, sense, st, rng, tol, tolerances):
        """{name: front-end} and the 4 ADC input signals (callables returning pin volts) of one channel."""
        fes = {}
        inputs = [lambda: 0.0] * 4
        for name, s in sense.items():
            kind = s["kind"]
            if kind == "divider":
                fe = Divider(s["r_top_ohm"], s["r_bottom_ohm"], tolerance_pct=tol, rng=rng)
                node = s.get("node", "input_cap" if name == "v_in" else "output")
                if name == "v_in":
                    sig = (lambda fe=fe: fe.v_out(st.vc)) if node == "input_cap" else (lambda fe=fe: fe.v_out(
                        st.v_pv))
                else:
                    sig = lambda fe=fe: fe.v_out(st.vo)  # noqa: E731
            elif kind == "acs712":
                div = Divider(s["r_top_ohm"], s["r_bottom_ohm"], tolerance_pct=tol, rng=rng) if s.get(
                    "r_top_ohm") else None
                fe = ACS712(sensitivity_v_per_a=s["v_per_a"], vcc_v=s.get("vcc_v", 5.0), direction=s.get(
                    "direction", 1), offset_error_v=rng.gauss(0.0, ACS712_OFFSET_V) if tolerances else 0.0,
                            noise_rms_v=ACS712_NOISE_V if tolerances else 0.0, divider=div, rng=rng)
                sig = _current_signal(name, fe, st, 1)
            elif kind == "shunt":
                fe = ShuntAmp(r_shunt_ohm=s["r_shunt_ohm"], gain=s["gain"], v_ref_v=s.get("v_ref_v", 1.65),
                              v_supply_v=s.get("v_supply_v", 3.3),
                              offset_v=rng.gauss(0.0, SHUNT_AMP_OFFSET_V) if tolerances else 0.0,
                              noise_rms_v=SHUNT_AMP_NOISE_V if tolerances else 0.0, rng=rng)
                sig = _current_signal(name, fe, st, s.get("direction", 1))
            else:
                raise ValueError("board config sense %s: unknown kind %r" % (name, kind))
            fes[name] = fe
            inputs[s["ch"]] = sig
        return fes, inputs

    def _adc(self, ch, inputs, adc_type, pins, rng, seed, tolerances):
        """The channel's ADC: an emulator on the I2C bus, or (None) the sense signals on the MCU's analog pins."""
        adc = ch.get("adc")
        kind = adc_type or (adc["type"] if adc else "internal")
        if kind == "auto":  # the firmware finds out which chip is fitted; unless the scenario says, an ADS1115
            kind = "ADS1115"
        if kind in INTERNAL_ADC_NAMES:
            if self.esp_adc_gain is None:
                self.esp_adc_gain = 1.0 + (rng.uniform(-ESP_ADC_GAIN_ERR, ESP_ADC_GAIN_ERR) if tolerances else 0.0)
            for name, s in ch["sense"].items():
                if "pin" not in s:
                    raise ValueError("board config %s: sense %s has no \"pin\" for the MCU's own ADC"
                                     % (self.config.get("name", "?"), name))
                off = rng.uniform(-ESP_ADC_OFFSET_V, ESP_ADC_OFFSET_V) if tolerances else 0.0
                src = _EspAdcPin(inputs[s["ch"]], self.esp_adc_gain, off, ESP_ADC_NOISE_V if tolerances else 0.0,
                                 rng)
                self.esp_adc_pins[s["pin"]] = src
                self.board.set_input(s["pin"], analog_source=src)
            return None
        if kind not in EXTERNAL_ADCS:
            raise ValueError("board config %s: unknown ADC type %r" % (self.config.get("name", "?"), kind))
        from sim.devices import ads1x15 as emu

        cls = {"ADS1115": emu.ADS1115Emulator, "ADS1015": emu.ADS1015Emulator, "TLA2024": emu.TLA2024Emulator}[kind]
        address = (adc or {}).get("address", 0x48)
        alert = ch["pins"].get("adc_rdy") if kind != "TLA2024" else None
        if kind == "TLA2024" and ch["pins"].get("adc_rdy"):
            # the footprint's ALERT/RDY line keeps its pull-up, and a TLA2024 has no pin to pull it low
            self.board.set_input(ch["pins"]["adc_rdy"], source=_high)
        dev = cls(self.board, inputs, address=address, seed=seed + 7919 * ch["index"],
                  osc_error=rng.uniform(-0.05, 0.05) if tolerances else 0.0, noise=tolerances, alert_pin=alert)
        self.board.add_i2c_device((pins["scl"], pins["sda"]), address, dev)
        return dev

    # -- pin listeners (called with the plant already integrated up to now) ------------------------------------
    def _on_fan(self, pin, kind, value):
        if kind == "digital":
            self.plant.fan_command = 1.0 if value else 0.0
        elif kind == "pwm":
            self.plant.fan_command = value[0]
        else:
            self.plant.fan_command = 0.0


def _current_signal(name, fe, st, direction):
    """The pin voltage of a current sensor on the stage's PV input (i_in) or output (i_out)."""
    if name == "i_in":
        return (lambda: fe.v_out(st.i_pv)) if direction > 0 else (lambda: fe.v_out(-st.i_pv))
    if name == "i_out":
        return (lambda: fe.v_out(st.i_out)) if direction > 0 else (lambda: fe.v_out(-st.i_out))
    raise ValueError("board config sense %s: current sensors measure i_in or i_out" % name)
