"""Charger stages driven against the real battery model (sim/plant/battery.py), in simulated time.

The rig stands in for the power stage: an ideal regulator that delivers min(charger current limit, the current
that holds the charger's voltage set point on the battery's Thevenin model, the PV current available), never
negative (a buck can't sink). Loads draw from the battery; the charger sees the battery current (positive =
charging) and the terminal voltage of the previous step, as the firmware does.
"""

import random

import pytest

from fugu import charger as C
from sim.plant.battery import Battery, ocv_per_cell_v

CELLS = {"lifepo4": (4, 8, 16), "li_nmc": (3, 7, 13), "lead_flooded": (6, 12, 24), "lead_agm": (6, 12, 24),
         "lead_gel": (6, 12, 24)}
CUSTOM_LFP = {"v_absorb_cell_mv": 3450, "v_float_cell_mv": 3350, "v_rebulk_cell_mv": 3250, "tail_ma_per_ah": 30}


class Rig:
    def __init__(self, chem, cells, soc, capacity_ah=100, temp_c=25.0, **charger_kw):
        self.bat = Battery(chem, cells, capacity_ah, soc=soc, temp_c=temp_c)
        self.ch = C.Charger(charger_kw.pop("profile", chem), capacity_ah=capacity_ah, **charger_kw)
        self.t_s = 0
        self.v = self.bat.thevenin()[0]
        self.i_bat = 0.0
        self.log = []  # (t_s, stage, reason) at every stage change
        self.samples = []  # (t_s, stage, v, i_bat) when record=True
        self.targets = []  # (stage, v_target_mv, i_limit_ma) when record=True

    def run(self, seconds, dt=10, load_a=0.0, pv=True, i_pv_a=40.0, t_bat_c="battery", until=None, record=False,
            noise=None):
        """Advance; stops early when until(rig) is true after a step. Returns the rig.

        noise: (mV, mA, degC, rng) peak uniform noise added to what the charger is told (sensor noise)."""
        end = self.t_s + seconds
        ch = self.ch
        b = self.bat
        while self.t_s < end:
            t = b.temp_c if t_bat_c == "battery" else t_bat_c
            v_mv = int(self.v * 1000)
            i_ma = int(self.i_bat * 1000)
            if noise is not None:
                n_mv, n_ma, n_c, rng = noise
                v_mv += rng.randint(-n_mv, n_mv)
                i_ma += rng.randint(-n_ma, n_ma)
                t += rng.uniform(-n_c, n_c)
            ch.update(dt * 1000, v_mv, i_ma, t, pv)
            e, r = b.thevenin_step(dt, charging=self.i_bat >= 0.0)
            i_out = 0.0
            if pv and ch.i_limit_ma > 0 and ch.v_target_mv > 0:
                i_out = min(ch.i_limit_ma / 1000.0, (ch.v_target_mv / 1000.0 - e) / r + load_a, i_pv_a)
                i_out = max(i_out, 0.0)
            i_bat = i_out - load_a
            if (i_bat >= 0.0) != (self.i_bat >= 0.0):
                e, r = b.thevenin_step(dt, charging=i_bat >= 0.0)
            b.step(i_bat, dt)
            self.t_s += dt
            self.i_bat = i_bat
            self.v = e + i_bat * r
            if not self.log or self.log[-1][1] != ch.stage:
                self.log.append((self.t_s, ch.stage, ch.reason))
            if record:
                self.samples.append((self.t_s, ch.stage, self.v, i_bat))
                self.targets.append((ch.stage, ch.v_target_mv, ch.i_limit_ma))
            if until is not None and until(self):
                break
        return self

    def stages(self):
        out = []
        for _, st, _ in self.log:
            if not out or out[-1] != st:
                out.append(st)
        return out

    def time_in(self, stage):
        """Seconds spent in stage (first visit)."""
        for k, (t, st, _) in enumerate(self.log):
            if st == stage:
                t_end = self.log[k + 1][0] if k + 1 < len(self.log) else self.t_s
                return t_end - t
        return 0


def stage_is(stage):
    return lambda rig: rig.ch.stage == stage


# ------------------------------------------------------------------------------------------------ profiles
def test_profiles_are_ordered_with_hysteresis_and_chemistry_rules():
    for name, p in C.PROFILES.items():
        C.check_profile(p)
        assert p["v_absorb_cell_mv"] > p["v_float_cell_mv"] >= p["v_storage_cell_mv"] > p["v_rebulk_cell_mv"]
        assert p["v_storage_cell_mv"] - p["v_rebulk_cell_mv"] >= 2 * C.AT_TARGET_MV_CELL
        if p["lithium"]:
            assert p["temp_comp_uv_per_c_cell"] == 0 and p["t_charge_min_c"] == 0
            assert p["v_equalize_cell_mv"] == 0
        else:
            assert p["temp_comp_uv_per_c_cell"] < 0
        assert (p["v_equalize_cell_mv"] > 0) == (name == "lead_flooded")
    assert C.STAGE_NAMES == ("off", "bulk", "absorb", "float", "storage", "equalize")
    assert (C.STAGE_OFF, C.STAGE_BULK, C.STAGE_ABSORB, C.STAGE_FLOAT, C.STAGE_STORAGE, C.STAGE_EQUALIZE) == (
        0, 1, 2, 3, 4, 5)


# ------------------------------------------------------------------------------------------------ full stages
@pytest.mark.parametrize("profile,chem", [("lifepo4", "lifepo4"), ("li_nmc", "li_nmc"),
                                          ("lead_flooded", "lead_flooded"), ("lead_agm", "lead_agm"),
                                          ("lead_gel", "lead_gel"), ("custom", "lifepo4")])
def test_each_profile_goes_bulk_absorb_float_storage(profile, chem):
    cells = CELLS[chem][0]
    custom = CUSTOM_LFP if profile == "custom" else None
    rig = Rig(chem, cells, 0.3, profile=profile, custom=custom, i_max_ma=20000)
    ch = rig.ch
    rig.run(12 * 3600, dt=10, until=stage_is(C.STAGE_FLOAT), record=True)
    assert rig.stages() == [C.STAGE_OFF, C.STAGE_BULK, C.STAGE_ABSORB, C.STAGE_FLOAT]
    assert ch.cells == cells  # auto-detected
    p = ch.profile
    # bulk: the current limit is what charges (the set point is the absorption voltage, not yet reached)
    bulk = [(v, i) for _, st, v, i in rig.samples if st == C.STAGE_BULK]
    assert max(i for _, i in bulk) == pytest.approx(20.0)
    assert sum(1 for _, i in bulk if i > 19.99) > 0.8 * len(bulk)
    # absorption: the voltage is held at the set point and the current tapers
    absorb = [(v, i) for _, st, v, i in rig.samples if st == C.STAGE_ABSORB]
    v_abs = cells * p["v_absorb_cell_mv"]
    for v, _ in absorb:
        assert v_abs - cells * C.AT_TARGET_MV_CELL <= v * 1000 <= v_abs + cells * 2
    assert absorb[-1][0] * 1000 == pytest.approx(v_abs, abs=cells * 2)
    assert absorb[-1][1] < 10.0 and absorb[-1][1] <= max(i for _, i in absorb)
    assert rig.bat.soc > (0.9 if chem == "li_nmc" else 0.95)  # NMC: 4.10 V/cell is ~90 % by design (BU-808)
    # float, then storage after 24 h without a discharge (coarser steps: the battery is at rest)
    rig.run(30 * 3600, dt=60, until=stage_is(C.STAGE_STORAGE))
    assert rig.stages()[-2:] == [C.STAGE_FLOAT, C.STAGE_STORAGE]
    assert rig.time_in(C.STAGE_FLOAT) == pytest.approx(p["storage_after_ms"] / 1000, abs=60)
    assert ch.v_target_mv == cells * p["v_storage_cell_mv"]
    rig.run(3600, dt=60)
    assert ch.stage == C.STAGE_STORAGE and rig.bat.soc > 0.9  # no re-bulk while held


def test_custom_profile_targets_and_validation():
    ch = C.Charger("custom", cells=4, custom=CUSTOM_LFP)
    ch.update(1000, 13000, 0, 20, True)
    assert ch.stage == C.STAGE_BULK and ch.v_target_mv == 4 * 3450
    assert ch.profile["lithium"]  # a lithium voltage gets the lithium rules (cold lock-out)
    lead = C.make_custom_profile({"v_absorb_cell_mv": 2350, "v_float_cell_mv": 2250, "v_rebulk_cell_mv": 2240,
                                  "tail_ma_per_ah": 0})
    assert not lead["lithium"] and lead["tail_ma_per_ah"] == 0
    assert lead["v_rebulk_cell_mv"] == 2250 - 2 * C.AT_TARGET_MV_CELL  # kept clear of the hold voltage
    with pytest.raises(ValueError, match="absorption >= float"):
        C.make_custom_profile({"v_absorb_cell_mv": 3400, "v_float_cell_mv": 3500, "v_rebulk_cell_mv": 3200,
                               "tail_ma_per_ah": 20})
    with pytest.raises(ValueError, match="missing"):
        C.make_custom_profile({"v_absorb_cell_mv": 3400})
    with pytest.raises(ValueError, match="unknown chemistry"):
        C.Charger("nicd")


# ------------------------------------------------------------------------------------------------ absorption
def test_absorption_ends_on_tail_current_held_at_voltage():
    rig = Rig("lifepo4", 4, 0.5, i_max_ma=30000)
    rig.run(8 * 3600, dt=5, until=stage_is(C.STAGE_FLOAT), record=True)
    ch = rig.ch
    assert rig.log[-1][2] == C.R_FLOAT_TAIL
    assert ch.absorb_ms < ch.absorb_limit_ms
    tail_a = ch.profile["tail_ma_per_ah"] * 100 / 1000.0
    last_minute = [i for t, st, _, i in rig.samples if st == C.STAGE_ABSORB and t > rig.t_s - 65]
    assert last_minute and max(last_minute) <= tail_a
    assert rig.time_in(C.STAGE_ABSORB) < 3600


def test_weak_sun_in_absorption_is_not_a_tail_and_pauses_the_clock():
    rig = Rig("lead_agm", 6, 0.5, i_max_ma=20000)
    rig.run(8 * 3600, dt=10, until=stage_is(C.STAGE_ABSORB))
    rig.run(600, dt=10)
    held_ms = rig.ch.absorb_ms
    # a cloud: 1 A of PV, less than the 2 A tail current; the voltage sags below the set point
    rig.run(3600, dt=10, i_pv_a=1.0)
    assert rig.ch.stage == C.STAGE_ABSORB
    assert rig.ch.absorb_ms - held_ms < 120000  # the clock stopped once the voltage was no longer held
    rig.run(8 * 3600, dt=10, until=stage_is(C.STAGE_FLOAT))
    assert rig.ch.stage == C.STAGE_FLOAT and rig.bat.soc > 0.97


def test_absorption_time_adapts_to_depth_of_discharge():
    ch = C.Charger("lead_agm", cells=6)
    p = ch.profile
    assert ch.absorb_time_ms(12600, 0) == p["absorb_min_ms"]  # rested full: Victron's x1/6 class
    assert ch.absorb_time_ms(11900, 0) == p["absorb_max_ms"]  # 11.9 V: x1
    assert p["absorb_min_ms"] < ch.absorb_time_ms(12250, 0) < p["absorb_max_ms"]
    assert ch.absorb_time_ms(12800, 50000) == p["absorb_max_ms"]  # 50 Ah in bulk of 100 Ah: deep
    assert ch.absorb_time_ms(12800, 10000) < ch.absorb_time_ms(12800, 30000)
    # closed loop, flooded (its tail current needs hours at 2.45 V/cell): deep vs shallow discharge
    deep = Rig("lead_flooded", 6, 0.2, i_max_ma=20000).run(16 * 3600, until=stage_is(C.STAGE_FLOAT))
    shallow = Rig("lead_flooded", 6, 0.85, i_max_ma=20000).run(16 * 3600, until=stage_is(C.STAGE_FLOAT))
    assert deep.ch.absorb_limit_ms == p["absorb_max_ms"]
    assert shallow.ch.absorb_limit_ms < deep.ch.absorb_limit_ms / 2
    t_deep = deep.time_in(C.STAGE_ABSORB)
    t_shallow = shallow.time_in(C.STAGE_ABSORB)
    assert t_deep > 1.5 * t_shallow
    assert t_shallow * 1000 <= shallow.ch.absorb_limit_ms + 10000
    assert shallow.log[-1][2] == C.R_FLOAT_TIME
    assert deep.bat.soc > 0.98 and shallow.bat.soc > 0.98


# ------------------------------------------------------------------------------------------------ re-bulk
def _agm_in_float():
    rig = Rig("lead_agm", 6, 0.6, i_max_ma=20000)
    rig.run(16 * 3600, dt=10, until=stage_is(C.STAGE_FLOAT))
    rig.run(1800, dt=10)
    assert rig.ch.stage == C.STAGE_FLOAT
    return rig


def test_short_dip_under_load_does_not_rebulk():
    rig = _agm_in_float()
    rig.run(40, dt=2, load_a=60.0, i_pv_a=10.0, record=True)  # a motor start: 40 s at 60 A with 10 A of PV
    assert min(v for _, _, v, _ in rig.samples) < 12.6  # it did go below the re-bulk threshold
    rig.run(600, dt=10)
    assert rig.stages()[-1] == C.STAGE_FLOAT and C.STAGE_BULK not in rig.stages()[2:]


def test_long_discharge_under_load_rebulks_then_recharges():
    rig = _agm_in_float()
    t0 = rig.t_s
    # an hour at 40 A with 10 A of PV: the voltage stays below 12.6 V, re-bulk after the debounce
    rig.run(3600, dt=10, load_a=40.0, i_pv_a=10.0, record=True)
    t_rebulk = next(t for t, st, _ in rig.log if t > t0 and st == C.STAGE_BULK)
    t_below = next(t for t, _, v, _ in rig.samples if v < 12.6)
    assert t_rebulk - t_below >= C.REBULK_MS / 1000
    assert rig.ch.stage == C.STAGE_BULK and rig.ch.reason == C.R_REBULK  # the cause stays on the display
    assert rig.bat.soc < 0.8
    rig.run(12 * 3600, dt=10, until=stage_is(C.STAGE_FLOAT))
    assert rig.stages()[-3:] == [C.STAGE_BULK, C.STAGE_ABSORB, C.STAGE_FLOAT]
    assert rig.ch.absorb_limit_ms > 3 * 3600 * 1000  # ~25 Ah went in during bulk: a long absorption
    assert rig.bat.soc > 0.97


# ------------------------------------------------------------------------------------------------ nights
def test_short_night_keeps_progress_long_night_starts_a_new_cycle():
    rig = Rig("lead_agm", 6, 0.4, i_max_ma=20000)
    rig.run(8 * 3600, dt=10, until=stage_is(C.STAGE_ABSORB))
    rig.run(1200, dt=10)
    held = rig.ch.absorb_ms
    rig.run(3600, dt=60, pv=False)  # a one-hour dark spell: nothing resets, the absorption clock pauses
    assert rig.ch.stage == C.STAGE_ABSORB and rig.ch.reason == C.R_NO_PV and rig.ch.absorb_ms == held
    rig.run(60, dt=10)
    assert rig.ch.stage == C.STAGE_ABSORB
    rig.run(12 * 3600, dt=10, until=stage_is(C.STAGE_FLOAT))
    # a 12-hour night with a 3 A load: sunrise starts a new cycle, absorption adapted to the sunrise voltage
    rig.run(12 * 3600, dt=60, pv=False, load_a=3.0)
    assert rig.ch.stage == C.STAGE_FLOAT
    v_sunrise = rig.v
    rig.run(60, dt=10)
    assert rig.ch.stage == C.STAGE_BULK and rig.ch.cycle_start_mv == int(v_sunrise * 1000)
    rig.run(8 * 3600, dt=10, until=stage_is(C.STAGE_FLOAT))
    assert rig.ch.absorb_limit_ms == rig.ch.absorb_time_ms(int(v_sunrise * 1000), rig.ch.bulk_charge_mah)
    assert rig.ch.profile["absorb_min_ms"] < rig.ch.absorb_limit_ms < rig.ch.profile["absorb_max_ms"]


def test_unused_battery_stays_in_storage_over_nights():
    rig = Rig("lifepo4", 4, 0.9, i_max_ma=20000)
    rig.run(30 * 3600, dt=30, until=stage_is(C.STAGE_STORAGE))
    assert rig.ch.stage == C.STAGE_STORAGE
    for _ in range(3):  # three days and nights, no load
        rig.run(12 * 3600, dt=120, pv=False)
        rig.run(12 * 3600, dt=120)
        assert rig.ch.stage == C.STAGE_STORAGE
    assert C.STAGE_BULK not in rig.stages()[2:]
    # a night with a real discharge: the next sunrise charges again
    rig.run(12 * 3600, dt=60, pv=False, load_a=4.0)
    rig.run(60, dt=10)
    assert rig.ch.stage == C.STAGE_BULK


def test_lead_refresh_from_storage_after_a_week():
    rig = Rig("lead_agm", 6, 0.9, i_max_ma=20000)
    rig.run(40 * 3600, dt=60, until=stage_is(C.STAGE_STORAGE))
    rig.run(8 * 24 * 3600, dt=300, until=stage_is(C.STAGE_BULK))
    assert rig.ch.stage == C.STAGE_BULK and rig.ch.reason == C.R_REFRESH
    rig.run(12 * 3600, dt=30, until=stage_is(C.STAGE_STORAGE))
    # short refresh (rested full battery), then straight back to storage
    assert rig.stages()[-4:] == [C.STAGE_BULK, C.STAGE_ABSORB, C.STAGE_FLOAT, C.STAGE_STORAGE] or \
        rig.stages()[-3:] == [C.STAGE_BULK, C.STAGE_ABSORB, C.STAGE_STORAGE]
    assert rig.ch.absorb_limit_ms < rig.ch.profile["absorb_max_ms"] / 2


# ------------------------------------------------------------------------------------------------ temperature
def test_lead_temperature_compensation():
    cold = C.Charger("lead_agm", cells=6)
    hot = C.Charger("lead_agm", cells=6)
    cold.update(1000, 12500, 0, 0, True)
    hot.update(1000, 12500, 0, 40, True)
    coef = C.PROFILES["lead_agm"]["temp_comp_uv_per_c_cell"]
    assert cold.stage == hot.stage == C.STAGE_BULK
    assert cold.v_target_mv - hot.v_target_mv == -coef * 40 * 6 // 1000 == 1200
    assert hot.v_target_mv == 6 * (2400 + coef * 15 // 1000)
    # the settings' coefficient overrides the profile's; clamped below -10 C and above 50 C
    s = C.Charger("lead_agm", cells=6, temp_comp_uv_per_c_cell=-3000)
    s.update(1000, 12500, 0, -10, True)
    v_m10 = s.v_target_mv
    s.update(1000, 12500, 0, -30, True)
    assert s.v_target_mv == v_m10 == 6 * (2400 + 105)
    # lithium ignores it; no sensor (None) means 25 C
    li = C.Charger("lifepo4", cells=4, temp_comp_uv_per_c_cell=-3000)
    li.update(1000, 13000, 0, 10, True)
    assert li.v_target_mv == 4 * 3550
    ns = C.Charger("lead_agm", cells=6)
    ns.update(1000, 12500, 0, None, True)
    assert ns.v_target_mv == 6 * 2400


def test_lead_at_0c_and_40c_charges_to_compensated_voltages():
    held = {}
    for t in (0.0, 40.0):
        rig = Rig("lead_agm", 6, 0.5, temp_c=t, i_max_ma=20000)
        rig.run(8 * 3600, dt=10, until=stage_is(C.STAGE_ABSORB))
        rig.run(600, dt=10)
        held[t] = rig.v
        assert rig.ch.stage == C.STAGE_ABSORB
    assert held[0.0] - held[40.0] == pytest.approx(1.2, abs=0.02)


def test_lithium_cold_lockout_with_hysteresis():
    rig = Rig("lifepo4", 4, 0.5, temp_c=-5.0)
    rig.run(600, dt=1, record=True)
    ch = rig.ch
    assert ch.stage == C.STAGE_OFF and ch.i_limit_ma == 0 and ch.reason == "cold: LiFePO4 below 0 C"
    assert rig.bat.soc <= 0.5 and max(i for _, _, _, i in rig.samples) <= 0.0  # nothing went in, ever
    rig.bat.temp_c = 1.0  # warmer, but not by the hysteresis
    rig.run(600, dt=1)
    assert ch.stage == C.STAGE_OFF and ch.i_limit_ma == 0
    rig.bat.temp_c = 4.0
    rig.run(C.TEMP_MS // 1000 - 1, dt=1)
    assert ch.stage == C.STAGE_OFF  # debounced
    rig.run(3, dt=1)
    assert ch.stage == C.STAGE_BULK and ch.i_limit_ma == 30000
    rig.run(60, dt=1)
    assert rig.i_bat > 25.0
    # one sample below 0 C is not a cold battery
    rig.run(1, dt=1, t_bat_c=-1.0)
    rig.run(10, dt=1)
    assert ch.stage == C.STAGE_BULK
    rig.run(30, dt=1, t_bat_c=-1.0)
    assert ch.stage == C.STAGE_OFF and ch.reason == "cold: LiFePO4 below 0 C"
    # the stage comes back where it was once warm again
    rig.run(30, dt=1, t_bat_c=10.0)
    assert ch.stage == C.STAGE_BULK and ch.reason == C.R_BULK


def test_nmc_cold_and_hot_lockout_lead_charges_in_the_cold():
    nmc = Rig("li_nmc", 3, 0.5, temp_c=-2.0).run(60, dt=1)
    assert nmc.ch.stage == C.STAGE_OFF and nmc.ch.reason == "cold: Li-ion below 0 C" and nmc.ch.i_limit_ma == 0
    hot = Rig("lifepo4", 4, 0.5, temp_c=50.0).run(60, dt=1)
    assert hot.ch.stage == C.STAGE_OFF and hot.ch.reason.startswith("hot:")
    lead = Rig("lead_agm", 6, 0.5, temp_c=-5.0).run(60, dt=1)
    assert lead.ch.stage == C.STAGE_BULK and lead.i_bat > 10.0
    nosensor = Rig("lifepo4", 4, 0.5, temp_c=-5.0).run(60, dt=1, t_bat_c=None)  # no sensor: no lock-out
    assert nosensor.ch.stage == C.STAGE_BULK


# ------------------------------------------------------------------------------------------------ detection
def test_detection_windows_are_disjoint():
    for chem, counts in CELLS.items():
        wins = [C.detection_window_mv(chem, n) for n in counts]
        for (lo_a, hi_a), (lo_b, hi_b) in zip(wins, wins[1:]):
            assert hi_a < lo_b, (chem, wins)
        assert C.PROFILES[chem]["cells_by_system"] == counts
    # the case the windows are chosen for: a flat 24 V lead bank vs a 12 V one just charged
    assert C.detection_window_mv("lead_flooded", 6) == (10800, 15900)
    assert C.detection_window_mv("lead_flooded", 12) == (21600, 31800)
    assert C.detect_cells("lead_flooded", 15900) == 6 and C.detect_cells("lead_flooded", 21600) == 12
    for v in (0, 5000, 17000, 19000, 35000, 40000, 70000):  # gaps and out of range: the user must say
        assert C.detect_cells("lead_agm", v) == 0, v
    assert C.detect_cells("lifepo4", 16000) == 0 and C.detect_cells("li_nmc", 60000) == 0


@pytest.mark.parametrize("chem", list(CELLS))
def test_detection_of_12_24_48_v_from_the_battery_model(chem):
    for n in CELLS[chem]:
        for soc in (0.0, 0.05, 0.5, 0.9, 1.0):
            v_rest = n * ocv_per_cell_v(chem, soc) * 1000
            assert C.detect_cells(chem, int(v_rest)) == n, (chem, n, soc, v_rest)
        # near empty under a C/5 load and just charged under a C/5 charge
        b = Battery(chem, n, 100, soc=0.05)
        assert C.detect_cells(chem, int(b.terminal_v(-20.0) * 1000)) == n
        b = Battery(chem, n, 100, soc=1.0)
        assert C.detect_cells(chem, int(b.terminal_v(20.0) * 1000)) == n
        # just after an absorption hold (a restart mid-charge): the voltage with the current gone
        b = Battery(chem, n, 100, soc=0.9)
        v_abs = n * C.PROFILES[chem]["v_absorb_cell_mv"] / 1000.0
        for _ in range(360):
            e, r = b.thevenin_step(10.0)
            b.step(min(20.0, (v_abs - e) / r), 10.0)
        assert C.detect_cells(chem, int(b.terminal_v(0.0) * 1000)) == n


def test_charger_auto_detects_at_rest_only():
    ch = C.Charger("lifepo4")
    assert ch.cells == 0 and ch.stage == C.STAGE_OFF and ch.i_limit_ma == 0
    for _ in range(10):
        ch.update(1000, 26400, 15000, 20, True)  # 15 A flowing: not a rest voltage
    assert ch.cells == 0 and ch.i_limit_ma == 0 and ch.reason == C.R_DETECT
    for _ in range(C.DETECT_MS // 1000):  # the first rest sample starts the clock
        ch.update(1000, 26400, 0, 20, True)
    assert ch.cells == 0
    ch.update(1000, 26400, 0, 20, True)
    assert ch.cells == 8 and ch.stage == C.STAGE_BULK and ch.v_target_mv == 8 * 3550
    odd = C.Charger("lead_agm")
    for _ in range(20):
        odd.update(1000, 18000, 0, 20, True)
    assert odd.cells == 0 and odd.stage == C.STAGE_OFF and odd.reason == C.R_RANGE


@pytest.mark.parametrize("chem", list(CELLS))
def test_auto_detect_each_system_in_closed_loop(chem):
    for n in CELLS[chem]:
        rig = Rig(chem, n, 0.05).run(30, dt=1)
        assert rig.ch.cells == n and rig.ch.stage == C.STAGE_BULK


# ------------------------------------------------------------------------------------------------ equalize
def test_equalize_only_when_enabled_and_only_flooded():
    rig = Rig("lead_flooded", 6, 0.7, i_max_ma=20000, equalize=True)
    assert rig.ch.equalize_enabled and rig.ch.request_equalize()
    rig.run(16 * 3600, dt=10, until=stage_is(C.STAGE_EQUALIZE), record=True)
    ch = rig.ch
    assert rig.stages() == [C.STAGE_OFF, C.STAGE_BULK, C.STAGE_ABSORB, C.STAGE_EQUALIZE]
    assert ch.v_target_mv == 6 * 2580 and ch.i_limit_ma == 5000  # 5 % of C, not the 20 A maximum
    rig.run(4 * 3600, dt=10, until=stage_is(C.STAGE_FLOAT), record=True)
    assert rig.time_in(C.STAGE_EQUALIZE) == pytest.approx(2 * 3600, abs=20)
    assert rig.ch.reason == C.R_FLOAT_EQ
    assert max(i for _, st, _, i in rig.samples if st == C.STAGE_EQUALIZE) <= 5.0 + 1e-9
    # the next cycle (after a night) does not equalize again: it is periodic (28 days)
    rig.run(12 * 3600, dt=60, pv=False, load_a=3.0)
    rig.run(16 * 3600, dt=10, until=stage_is(C.STAGE_FLOAT))
    assert rig.stages()[-3:] == [C.STAGE_BULK, C.STAGE_ABSORB, C.STAGE_FLOAT]
    # enabled (e.g. at boot) without a request: none before the interval; then the periodic one comes
    boot = Rig("lead_flooded", 6, 0.7, i_max_ma=20000, equalize=True)
    boot.run(16 * 3600, until=stage_is(C.STAGE_FLOAT))
    assert C.STAGE_EQUALIZE not in boot.stages()
    boot.ch.configure("lead_flooded", 6, 100, 20000, None, True)  # settings re-applied: still not due
    for _ in range(30):  # a month of days and nights with some use (due after 28 days of uptime)
        boot.run(12 * 3600, dt=300, pv=False, load_a=2.0)
        boot.run(12 * 3600, dt=60)
    assert C.STAGE_EQUALIZE in boot.stages()
    # not enabled: no equalize, not even on request; AGM, gel and lithium never
    plain = Rig("lead_flooded", 6, 0.7, i_max_ma=20000)
    assert not plain.ch.request_equalize()
    plain.run(16 * 3600, until=stage_is(C.STAGE_FLOAT))
    assert C.STAGE_EQUALIZE not in plain.stages()
    for chem in ("lead_agm", "lead_gel", "lifepo4", "li_nmc"):
        ch = C.Charger(chem, equalize=True)
        assert not ch.equalize_enabled and not ch.request_equalize()
    agm = Rig("lead_agm", 6, 0.7, i_max_ma=20000, equalize=True)
    agm.ch.request_equalize()
    agm.run(16 * 3600, until=stage_is(C.STAGE_FLOAT))
    assert C.STAGE_EQUALIZE not in agm.stages()


# ------------------------------------------------------------------------------------------------ no chatter
@pytest.mark.parametrize("chem,cells", [("lead_agm", 6), ("lifepo4", 4)])
def test_noisy_measurements_do_not_make_stages_or_set_points_chatter(chem, cells):
    """Sensor noise (+-60 mV, +-1.5 A, +-0.8 degC every sample) through a whole charge and a day of float."""
    rng = random.Random(7)
    noise = (60, 1500, 0.8, rng)
    rig = Rig(chem, cells, 0.4, i_max_ma=20000)
    rig.run(16 * 3600, dt=5, until=stage_is(C.STAGE_FLOAT), record=True, noise=noise)
    rig.run(25 * 3600, dt=30, until=stage_is(C.STAGE_STORAGE), record=True, noise=noise)
    rig.run(3600, dt=30, record=True, noise=noise)
    assert rig.stages() == [C.STAGE_OFF, C.STAGE_BULK, C.STAGE_ABSORB, C.STAGE_FLOAT, C.STAGE_STORAGE]
    for stage in (C.STAGE_BULK, C.STAGE_ABSORB, C.STAGE_FLOAT, C.STAGE_STORAGE):
        assert len({(v, i) for st, v, i in rig.targets if st == stage}) == 1, C.STAGE_NAMES[stage]


# ------------------------------------------------------------------------------------------------ configure
def test_configure_keeps_the_stage():
    rig = Rig("lifepo4", 4, 0.6, i_max_ma=20000)
    rig.run(8 * 3600, dt=10, until=stage_is(C.STAGE_FLOAT))
    ch = rig.ch
    ch.configure("lifepo4", 0, 100, 10000, None, False, -3000)
    rig.run(60, dt=10)
    assert ch.stage == C.STAGE_FLOAT and ch.cells == 4 and ch.i_limit_ma == 10000
    ch.configure("li_nmc", 0, 100, 10000)  # a different chemistry: 4 cells is not an NMC 12/24/48 V count
    assert ch.cells == 0
    with pytest.raises(ValueError):
        ch.configure("lifepo4", cells=-1)
