"""Turn a validated Scenario into a FuguSim: board config, PV source(s), battery, load, cost model, nvm contents."""

import copy
import importlib

from sim.simboard import CostModel
from sim.wiring import FuguSim


def load_board_config(name):
    return importlib.import_module("boardconfigs." + name).BOARD


def build_pv(pv):
    from sim.plant.pv import PVSource

    src = pv["source"]
    if src == "cec":
        return PVSource.from_cec(pv["module"], n_series=pv.get("series", 1), n_parallel=pv.get("parallel", 1),
                                 n_substrings=pv.get("substrings", 3))
    if src == "en50530":
        return PVSource.from_en50530(pv["p_mpp_w"], pv["v_mpp_v"], technology=pv.get("technology", "cSi"),
                                     n_substrings=pv.get("substrings", 3))
    if src == "iv_csv":
        return PVSource.from_iv_csv(pv["file"], n_series=pv.get("series", 1), n_parallel=pv.get("parallel", 1))
    raise ValueError("unknown PV source %r" % src)


def build_battery(bat, ambient_c):
    if not bat or not bat.get("present", True):
        return None
    from sim.plant.battery import Battery

    return Battery(bat["chemistry"], bat["cells"], bat["capacity_ah"], soc=bat.get("soc", 0.5),
                   temp_c=bat.get("temp_c", ambient_c))


def build_load(load):
    if not load or load.get("kind", "off") == "off":
        return None
    from sim.plant.loads import DCLoad

    return DCLoad(load["kind"], load["value"], port=load.get("port", "battery"), uvlo_v=load.get("uvlo_v"))


# board.current_sensor = "shunt": the hall sensors become fugu_shunt's INA240A1 + 0.5 mOhm (10 mV/A at 1.65 V)
SHUNT_SENSOR = {"kind": "shunt", "r_shunt_ohm": 0.0005, "gain": 20.0, "v_ref_v": 1.65, "v_supply_v": 3.3}


def with_shunts(config):
    """A copy of the board config with every hall current sensor replaced by SHUNT_SENSOR (same ADC input)."""
    config = copy.deepcopy(config)
    senses = [c["sense"] for c in config["channels"]] if config.get("channels") else [config["sense"]]
    for sense in senses:
        for name, s in list(sense.items()):
            if s["kind"] == "acs712":
                new = dict(SHUNT_SENSOR, ch=s["ch"])
                if "pin" in s:
                    new["pin"] = s["pin"]
                sense[name] = new
    return config


def build_pvs(scenario):
    """One PV source per power stage of the board: [pv] on channel 0, [pv2] (or a copy of [pv]) on the others."""
    n = getattr(scenario, "board_channels", 1)
    pv2 = getattr(scenario, "pv2", None) or scenario.pv
    return [build_pv(scenario.pv)] + [build_pv(pv2) for _ in range(n - 1)]


def build_sim(scenario):
    from fugu.boardid import encode_board_id

    bc = scenario.board
    config = load_board_config(bc["config"])
    if bc.get("current_sensor") == "shunt":
        config = with_shunts(config)
    pvs = build_pvs(scenario)
    pv = pvs if len(pvs) > 1 else pvs[0]
    battery = build_battery(scenario.battery, scenario.ambient_c(0.0))
    load = build_load(scenario.load)
    cost = CostModel(**bc.get("cost", {}))
    sim = FuguSim(config, scenario=scenario, pv=pv, battery=battery, load=load, seed=scenario.seed,
                  tolerances=bc.get("tolerances", True), cost=cost, end_ns=int(scenario.duration_s * 1e9),
                  adc_type=bc.get("adc"))
    sim.board.nvm[0:32] = encode_board_id(bc["config"])
    sim.settings = dict(scenario.settings)
    sim.plant.settle()
    return sim
