"""Daily history without a clock: solar day rollover, 30 days kept, per-day energy/peak/stage times/voltages,
lifetime totals without loss, and persistence in the simulated nvm that survives a power cut mid-write."""

import math

import pytest

from fugu import history as hist
from fugu.history import History
from fugu.nvstore import OVERHEAD, SlotStore
from sim.clock import SimReset
from sim.simboard import SimBoard

UJ_PER_MWH = 3600000
OFF, BULK, ABSORB, FLOAT = 0, 1, 2, 3
MIN_MS = 60000


@pytest.fixture
def board():
    b = SimBoard(pin_names=[]).activate()
    yield b
    b.deactivate()


@pytest.fixture
def nvm(board):
    import microcontroller

    return microcontroller.nvm


def make(nvm, **kw):
    log = []
    return History(nvm, log=log.append, **kw), log


class Day:
    """One solar day from sunrise to the next sunrise in 1-minute ticks: 12 h of sun (4 h bulk, 2 h absorb, 6 h
    float), 12 h dark (stage off, a small battery draw). Keeps the exact figures a test expects."""

    def __init__(self, peak_mw=600000, sun_min=720, v_base_mv=13000):
        self.peak_mw = peak_mw
        self.sun_min = sun_min
        self.v_base_mv = v_base_mv
        self.pv_uj = self.in_uj = self.out_uj = 0
        self.max_p = 0
        self.v_min = self.v_max = None
        self.new_day_ticks = []

    def run(self, h):
        for minute in range(1440):
            sun = minute < self.sun_min
            if sun:
                p_pv = int(self.peak_mw * math.sin(math.pi * (minute + 0.5) / self.sun_min))
                p_bat = p_pv * 95 // 100
                stage = BULK if minute < 240 else (ABSORB if minute < 360 else FLOAT)
                v = self.v_base_mv + minute
            else:
                p_pv, p_bat, stage, v = 0, -60, OFF, self.v_base_mv - 200 + (minute % 7)
            if h.tick(MIN_MS, p_pv, p_bat, v, stage, sun):
                self.new_day_ticks.append(minute)
            self.pv_uj += p_pv * MIN_MS
            if p_bat > 0:
                self.in_uj += p_bat * MIN_MS
            else:
                self.out_uj -= p_bat * MIN_MS
            self.max_p = max(self.max_p, p_pv)
            self.v_min = v if self.v_min is None else min(self.v_min, v)
            self.v_max = v if self.v_max is None else max(self.v_max, v)
        return self


def run_days(h, n, **kw):
    return [Day(**kw).run(h) for _ in range(n)]


def test_solar_days_roll_over_at_sunrise_after_two_dark_hours(nvm):
    h, _ = make(nvm)
    days = [Day(peak_mw=300000 + 100000 * i).run(h) for i in range(3)]
    assert days[0].new_day_ticks == [] and days[1].new_day_ticks == [0] and days[2].new_day_ticks == [0]
    recs = h.days()
    assert [r["day"] for r in recs] == [3, 2, 1]
    carry = 0
    for k, d in enumerate(days):
        rec = recs[2 - k]
        total = carry + d.pv_uj
        assert rec["pv_mwh"] == total // UJ_PER_MWH  # the sub-mWh rest moves to the next day
        carry = total % UJ_PER_MWH
        assert rec["v_min_mv"] == d.v_min and rec["v_max_mv"] == d.v_max
        assert sum(rec["stage_s"]) == 86400  # a closed day covers sunrise to sunrise
        assert rec["stage_s"] == (43200, 4 * 3600, 2 * 3600, 6 * 3600, 0, 0)
    assert recs[0]["peak_pv_mw"] == days[2].max_p  # today: exact
    assert recs[1]["peak_pv_mw"] == (days[1].max_p + 50) // 100 * 100  # closed: 100 mW resolution
    assert recs[2]["bat_out_mwh"] == 720 * 60 * MIN_MS // UJ_PER_MWH  # 60 mW for 12 h = 720 mWh


def test_lifetime_totals_lose_nothing_across_rollovers(nvm):
    h, _ = make(nvm)
    days = run_days(h, 4, peak_mw=123457)
    assert h.lifetime_pv_mwh == sum(d.pv_uj for d in days) // UJ_PER_MWH
    assert h.lifetime_bat_in_mwh == sum(d.in_uj for d in days) // UJ_PER_MWH
    assert h.lifetime_bat_out_mwh == sum(d.out_uj for d in days) // UJ_PER_MWH


def test_darkness_shorter_than_the_threshold_does_not_split_a_day(nvm):
    h, _ = make(nvm)
    assert not h.tick(1000, 1000, 900, 13000, BULK, True)
    for _ in range(119):  # a dark cloud / shadow of 119 minutes
        assert not h.tick(MIN_MS, 0, 0, 13000, OFF, False)
    assert not h.tick(1000, 1000, 900, 13000, BULK, True)
    assert len(h.days()) == 1
    for _ in range(120):  # two hours: the next PV is a new day
        h.tick(MIN_MS, 0, 0, 13000, OFF, False)
    assert h.tick(1000, 1000, 900, 13000, BULK, True)
    assert len(h.days()) == 2


def test_dark_threshold_is_configurable(nvm):
    h, _ = make(nvm, dark_rollover_s=1800)
    h.tick(1000, 1000, 900, 13000, BULK, True)
    for _ in range(30):
        h.tick(MIN_MS, 0, 0, 13000, OFF, False)
    assert h.tick(1000, 1000, 900, 13000, BULK, True)


def test_boot_at_night_makes_no_empty_day(nvm):
    h, _ = make(nvm)
    for _ in range(8 * 60):  # booted at night: 8 dark hours before the first sun
        h.tick(MIN_MS, 0, -50, 12900, OFF, False)
    assert not h.tick(MIN_MS, 5000, 4000, 13000, BULK, True)
    assert len(h.days()) == 1 and h.today["day"] == 1


def test_thirty_days_kept_the_oldest_dropped(nvm):
    h, _ = make(nvm)
    days = run_days(h, 35, peak_mw=250000)
    recs = h.days()
    assert len(recs) == hist.MAX_DAYS == 30
    assert [r["day"] for r in recs] == list(range(35, 5, -1))
    assert h.lifetime_pv_mwh == sum(d.pv_uj for d in days) // UJ_PER_MWH  # lifetime keeps the dropped days
    payload = h.encode()
    assert len(payload) == hist.PAYLOAD_MAX == 973
    assert len(payload) + OVERHEAD <= hist.HISTORY_SLOT_SIZE


def test_today_stage_times_peak_and_voltages_are_exact(nvm):
    h, _ = make(nvm)
    plan = [(BULK, 1500, 700000, 13100)] * 1000 + [(ABSORB, 999, 650123, 14400)] * 777 + \
           [(FLOAT, 1001, 200000, 13600)] * 333 + [(OFF, 250, 0, 13300)] * 10 + [(9, 1000, 0, 13300)] * 3
    for stage, dt, p, v in plan:
        h.tick(dt, p, p - 5000, v, stage, p > 0)
    t = h.today
    assert t["stage_s"] == ((10 * 250 + 3 * 1000) // 1000, 1500 * 1000 // 1000, 777 * 999 // 1000,
                            333 * 1001 // 1000, 0, 0)  # an unknown stage id counts as off
    assert t["peak_pv_mw"] == 700000
    assert (t["v_min_mv"], t["v_max_mv"]) == (13100, 14400)
    exact_uj = 700000 * 1500 * 1000 + 650123 * 999 * 777 + 200000 * 1001 * 333
    assert t["pv_mwh"] == exact_uj // UJ_PER_MWH


def test_missing_readings_show_as_none_and_zero_steps_count_nothing(nvm):
    h, _ = make(nvm)
    h.tick(1000, 0, 0, None, OFF, False)
    h.tick(1000, 0, 0, 0, OFF, False)
    assert h.today["v_min_mv"] is None and h.today["v_max_mv"] is None
    before = h.encode()
    assert not h.tick(0, 5000, 5000, 13000, BULK, True)
    assert h.encode() == before


def test_persistence_round_trip_and_identical_continuation(nvm, board):
    h, log = make(nvm)
    assert not h.dirty and "none stored" in log[0]
    run_days(h, 5, peak_mw=444444)
    for _ in range(123):  # part of today
        h.tick(7777, 333333, 300000, 13321, ABSORB, True)
    assert h.dirty
    writes = board.nvm_writes
    n = h.save()
    assert board.nvm_writes == writes + 1 and n == OVERHEAD + len(h.encode()) and not h.dirty
    h2, log2 = make(nvm)
    assert h2.days() == h.days()
    assert h2.encode() == h.encode()
    assert (h2.lifetime_pv_mwh, h2.lifetime_bat_in_mwh) == (h.lifetime_pv_mwh, h.lifetime_bat_in_mwh)
    assert "loaded day 6 and 5 earlier days" in log2[-1] and "slot A seq 1" in log2[-1]
    assert h2.source.startswith("nvm (") and not h2.dirty
    for x in (h, h2):
        Day(peak_mw=222222).run(x)
        Day(peak_mw=111111).run(x)
    assert h2.encode() == h.encode()


def test_dark_time_survives_a_reboot(nvm):
    h, _ = make(nvm)
    h.tick(1000, 1000, 900, 13000, BULK, True)
    for _ in range(90):
        h.tick(MIN_MS, 0, 0, 13000, OFF, False)
    h.save()
    h2, _ = make(nvm)
    for _ in range(30):
        h2.tick(MIN_MS, 0, 0, 13000, OFF, False)
    assert h2.tick(1000, 1000, 900, 13000, BULK, True)  # 90 + 30 minutes dark: a new day


def test_power_cut_during_a_history_save_keeps_the_previous_copy(nvm, board):
    h, _ = make(nvm)
    run_days(h, 8)
    h.save()
    run_days(h, 1)
    h.save()  # slot B: the copy that must survive
    previous = h.encode()
    pristine = bytearray(board.nvm)
    run_days(h, 1)
    new = h.encode()
    rec_len = OVERHEAD + len(new)
    positions = sorted(set(list(range(0, rec_len, rec_len // 40)) + [1, 8, 9, rec_len - 4, rec_len - 1, rec_len]))
    assert len(positions) > 40
    for k in positions:
        board.nvm[:] = pristine
        loader, _ = make(nvm)
        loader.decode(new)
        board.nvm_fail_after_bytes = k
        with pytest.raises(SimReset):
            loader.save()
        after, log = make(nvm)
        assert after.encode() == (new if k == rec_len else previous), k


def test_blank_corrupt_and_foreign_records_start_empty_and_say_so(nvm, board):
    h, log = make(nvm)
    assert h.days()[0]["day"] == 1 and "none stored (blank" in log[0] and h.source.startswith("empty")
    store = SlotStore(nvm, hist.HISTORY_BASE, hist.HISTORY_SLOT_SIZE, hist.HISTORY_MAGIC, hist.HISTORY_FORMAT_VERSION)
    store.write(b"\x05\x06\x00" + bytes(20))  # valid record, wrong contents
    h, log = make(nvm)
    assert "unreadable" in log[-1] and h.lifetime_pv_mwh == 0 and len(h.days()) == 1
    SlotStore(nvm, hist.HISTORY_BASE, hist.HISTORY_SLOT_SIZE, hist.HISTORY_MAGIC, 2).write(b"future format")
    h, log = make(nvm)
    assert "stored format v2 is not v1" in log[-1]


def test_saturating_values_still_encode(nvm):
    h, _ = make(nvm)
    h.tick(1000, 9000000, 9000000, 70000, BULK, True)  # 9 kW, 70 V: beyond the per-day field ranges
    for _ in range(2):
        for _ in range(130):
            h.tick(MIN_MS, 0, 0, None, OFF, False)
        h.tick(1000, 9000000, 9000000, 70000, BULK, True)
    payload = h.encode()
    h2, _ = make(nvm)
    h2.decode(payload)
    rec = h2.days()[1]
    assert rec["peak_pv_mw"] == 0xFFFF * 100 and rec["v_max_mv"] == 0xFFFF


def test_record_part_sizes_are_those_of_their_struct_formats():
    """history.py keeps the sizes as constants (no names in RAM); they must follow the formats."""
    import struct

    assert hist._HEAD_SIZE == struct.calcsize(hist._HEAD)
    assert hist._LIFE_SIZE == struct.calcsize(hist._LIFE)
    assert hist._TODAY_SIZE == struct.calcsize(hist._TODAY)
    assert hist._DAY_SIZE == struct.calcsize(hist._DAY)
    assert hist.PAYLOAD_MAX <= hist.HISTORY_SLOT_SIZE - OVERHEAD
