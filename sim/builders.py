"""Turn a validated Scenario into a FuguSim: board config, PV source, battery, load, cost model, nvm contents."""

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

    return DCLoad(load["kind"], load["value"])


def build_sim(scenario):
    from fugu.boardid import encode_board_id

    bc = scenario.board
    config = load_board_config(bc["config"])
    if bc.get("current_sensor") == "shunt" and "i_in" in config["sense"] and config["sense"]["i_in"][
            "kind"] != "shunt":
        config = dict(config)
        sense = dict(config["sense"])
        sense["i_in"] = {"ch": sense["i_in"]["ch"], "kind": "shunt", "r_shunt_ohm": 0.001, "gain": 50.0,
                         "v_ref_v": 1.65}
        config["sense"] = sense
    pv = build_pv(scenario.pv)
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
