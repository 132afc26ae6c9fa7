"""Build a simulated FUGU board from a board config and a scenario: the MCU's pins, the ADC emulator on I2C, the
sensing front-ends between the plant and the ADC inputs, and the gate pins wired to the power stage.

The board config holds NOMINAL values (what the firmware believes); here they become hardware with tolerances drawn
from the scenario's seed, so calibration matters as it does on a real board.
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

DIVIDER_TOL_PCT = 1.0
ACS712_OFFSET_V = 0.010  # typical zero-current offset spread after the divider
ACS712_NOISE_V = 0.0045  # ~4.5 mV rms at the ACS712-30A output with its default 80 kHz bandwidth (datasheet: 7 mV typ p-p*)


class FuguSim:
    """Everything of one simulated board: .board (SimBoard), .plant, .stage, .adc, .frontends."""

    def __init__(self, config, scenario=None, pv=None, battery=None, load=None, seed=1, tolerances=True,
                 cost=None, end_ns=None, adc_type=None):
        self.config = config
        rng = random.Random(seed)
        self.rng = rng
        tol = DIVIDER_TOL_PCT if tolerances else 0.0
        mcu = config.get("mcu", "esp32")
        pins = config["pins"]
        aliases = {"SDA": pins["sda"], "SCL": pins["scl"]}
        clock = SimClock(end_ns=end_ns)
        self.board = SimBoard(MCU_PINS[mcu], aliases=aliases, board_id=ESP_BOARD_IDS[mcu], clock=clock,
                              cost=cost or CostModel())
        self.board.default_i2c_hz = config.get("i2c_hz", 100000)
        ps = dict(config.get("power_stage", {}))
        ps.pop("f_pwm_hz", None)
        self.stage = PowerStage(PowerStageParams(**ps))
        self.stage.f_sw_hz = 0.0
        self.heatsink = Heatsink()
        self.fan = Fan()
        self.ntc = NTC(config["ntc"]["r25_ohm"], config["ntc"]["beta_k"])
        self.ntc_fault = None
        sc = scenario
        self.plant = Plant(
            self.stage, pv, battery=battery, load=load, heatsink=self.heatsink, fan=self.fan,
            irradiance=sc.irradiance_w_m2 if sc else None,
            cell_temp=sc.cell_temp_c if sc else None,
            ambient=sc.ambient_c if sc else None,
            shade=sc.shade if sc else None,
            load_fraction=sc.load_fraction if sc else None,
            next_change=sc.next_change_s if sc else None,
        )
        clock.plant = self.plant
        # -- sensing front-ends --------------------------------------------------------------------------------
        self.frontends = {}
        inputs = [lambda: 0.0] * 4
        st = self.stage
        for name, s in config["sense"].items():
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
                sig = self._current_signal(name, fe)
            elif kind == "shunt":
                fe = ShuntAmp(r_shunt_ohm=s["r_shunt_ohm"], gain=s["gain"], v_ref_v=s.get("v_ref_v", 1.65),
                              v_supply_v=s.get("v_supply_v", 3.3),
                              offset_v=rng.gauss(0.0, 0.0005) if tolerances else 0.0,
                              noise_rms_v=0.0008 if tolerances else 0.0, rng=rng)
                sig = self._current_signal(name, fe)
            else:
                raise ValueError("board config sense %s: unknown kind %r" % (name, kind))
            self.frontends[name] = fe
            inputs[s["ch"]] = sig
        self.adc_inputs = inputs
        # -- the external ADC -----------------------------------------------------------------------------------
        adc = config.get("adc")
        adc_type = adc_type or (adc["type"] if adc else "internal")
        self.adc = None
        if adc_type != "internal":
            from sim.devices import ads1x15 as emu

            cls = {"ADS1115": emu.ADS1115Emulator, "ADS1015": emu.ADS1015Emulator,
                   "TLA2024": emu.TLA2024Emulator}[adc_type]
            alert = pins.get("adc_rdy") if adc_type != "TLA2024" else None
            self.adc = cls(self.board, inputs, address=adc.get("address", 0x48), seed=seed,
                           osc_error=rng.uniform(-0.05, 0.05) if tolerances else 0.0, noise=tolerances,
                           alert_pin=alert)
            self.board.add_i2c_device((pins["scl"], pins["sda"]), adc.get("address", 0x48), self.adc)
        else:
            # the ESP32's own ADC: the sense signals go straight to the analog pins named in the config
            for name, s in config["sense"].items():
                if "pin" in s:
                    self.board.set_input(s["pin"], analog_source=inputs[s["ch"]])
        # -- NTC on the ESP32 ADC ---------------------------------------------------------------------------------
        n = config["ntc"]
        self.board.set_input(pins["ntc"], analog_source=lambda: ntc_divider_v(
            self.heatsink.temp_c, self.ntc, r_fixed_ohm=n["r_fixed_ohm"], v_ref_v=n["v_ref_v"],
            ntc_to_ground=n["to_ground"], fault=self.ntc_fault))
        # -- gate pins -> power stage -----------------------------------------------------------------------------
        self.board.listen(pins["pwm"], self._on_pwm)
        self.board.listen(pins["enable"], self._on_enable)
        self.board.listen(pins["backflow"], self._on_backflow)
        self.board.listen(pins["fan"], self._on_fan)
        for b in pins.get("buttons", ()):
            self.board.pin(b).pull = "up"  # buttons to ground with pull-ups: idle high

    def _current_signal(self, name, fe):
        st = self.stage
        if name == "i_in":
            return lambda: fe.v_out(st.i_pv)
        if name == "i_out":
            return lambda: fe.v_out(st.i_out)
        raise ValueError("board config sense %s: current sensors measure i_in or i_out" % name)

    # -- pin listeners (called with the plant already integrated up to now) ------------------------------------
    def _on_pwm(self, pin, kind, value):
        if kind == "pwm":
            duty, f = value
            self.stage.duty = duty
            self.stage.f_sw_hz = f
        else:  # released: the LEDC output stops low
            self.stage.duty = 0.0

    def _on_enable(self, pin, kind, value):
        self.stage.enabled = bool(value) if kind == "digital" else False
        self.stage.h_next = 1e-6

    def _on_backflow(self, pin, kind, value):
        self.stage.backflow_on = bool(value) if kind == "digital" else False

    def _on_fan(self, pin, kind, value):
        if kind == "digital":
            self.plant.fan_command = 1.0 if value else 0.0
        elif kind == "pwm":
            self.plant.fan_command = value[0]
        else:
            self.plant.fan_command = 0.0
