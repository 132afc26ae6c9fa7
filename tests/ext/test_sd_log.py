"""The SD-card CSV log (extensions/sd_log.py, extensions/csvlog.py) on the simulated board: the unmodified code.py,
the SPI-mode card emulator with a FAT image (sim/breakout/sd.py), and each driver the extension can use: the real
adafruit_sdcard (through the extension's guard; what it uses when the library is on CIRCUITPY) and the core's
sdcardio (sim/hal/sdcardio.py, the C driver's protocol; used when the library is missing). What a user sees is
checked on the card image with a host FAT reader and pandas: the day file, its header and rows, after a power cut,
a card pulled out and put back, a full card, a card failing mid-write; and the controller keeps tracking meanwhile.

Runs are the demo scenario with only the SD module plugged and a row every INTERVAL_S (short runs; a day is not
needed for any of these behaviours).
"""

import io
import os
import sys
from decimal import Decimal

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sim.devices.sdcard import FatImage
from sim.install import PROJECT_ROOT
from sim.runner import SimRun
from sim.scenario import load_scenario

INTERVAL_S = 2
DAY_FILE = "20260621.csv"  # the demo starts 2026-06-21 11:10 UTC
OTHER_MODULES = ("oled", "can", "rs485", "ble")
TRACKING_TOL = 0.002  # the issue: a failing card must not change the tracker's efficiency (0.2 %)
WINDOW_S = (12.0, 31.0)  # tracking compared from before the card trouble to the end of the shorter runs
DRIVERS = ("adafruit_sdcard", "sdcardio")
# the longest pause of the control loop the SD card may cause (re-initialisation, timeout): the guard's deadline;
# sdcardio's C code waits 500 ms at each step of a card that stopped answering (tests/sim/test_sdcardio.py)
MAX_LOOP_GAP_S = {"adafruit_sdcard": 0.5, "sdcardio": 1.1}
WATCHDOG_S = 2.0  # lib/fugu/hw.py: a longer pause resets the controller


def scenario(duration_s, sd=True, name="demo", **overrides):
    ov = {"scenario.duration_s": duration_s, "settings.log_interval_s": INTERVAL_S, "board.modules.sd": sd}
    ov.update({"board.modules.%s" % m: False for m in OTHER_MODULES})
    ov.update(overrides)
    return load_scenario(os.path.join(PROJECT_ROOT, "scenarios", name + ".toml"), ov)


class Result:
    def __init__(self, run, summary, card, driver):
        self.run = run
        self.summary = summary
        self.card = card
        self.driver = driver
        self.lines = run.fw_lines

    def sd_lines(self):
        return [line for line in self.lines if line.startswith("sd_log:")]

    def tracking(self, t0, t1):
        w = [r for r in self.run.rows if t0 <= r[0] <= t1]
        return sum(r[5] for r in w) / sum(r[6] for r in w)  # pv_w / mpp_w of the plant

    def max_loop_gap_s(self):
        return max(self.run._feed_hist) * 1e-4  # 0.1 ms bins of the intervals between watchdog feeds

    def day_text(self, name=DAY_FILE):
        with FatImage(self.card.image) as img:  # the host FAT reader on the card image
            return img.read_text("/fugu/" + name)

    def day(self, name=DAY_FILE):
        return pd.read_csv(io.StringIO(self.day_text(name)))

    def ext_faults(self):
        return [line for line in self.lines if "code=EXT" in line]


def simulate(duration_s, sd=True, out_dir=None, setup=None, name="demo", driver="adafruit_sdcard"):
    with pytest.MonkeyPatch.context() as mp:
        if driver == "sdcardio":  # a CIRCUITPY without adafruit_sdcard: the extension uses the core's driver
            mp.setitem(sys.modules, "adafruit_sdcard", None)
        run = SimRun(scenario(duration_s, sd=sd, name=name), out_dir=out_dir, echo=False, status_every_s=0)
        card = next((m for m in run.modules if m.name == "sd"), None)
        if setup is not None:
            setup(run, card)
        return Result(run, run.run(), card, driver)


def at(run, t_s, fn):
    run.sim.board.clock.schedule(int(t_s * 1e9), lambda t_ns: fn())


def assert_complete_rows(text, n_columns):
    """Every line ends with a newline and has every column: nothing half-written."""
    assert text.endswith("\n")
    for line in text.splitlines():
        assert line.count(",") == n_columns - 1, line


@pytest.fixture(scope="module")
def baseline():
    return simulate(36, sd=False)


@pytest.fixture(scope="module", params=DRIVERS)
def logged(request, tmp_path_factory):
    out = tmp_path_factory.mktemp("sd_demo")
    return simulate(30, out_dir=str(out), driver=request.param), out


# -- the day file ---------------------------------------------------------------------------------------------------
def test_a_day_file_with_units_in_the_header_and_a_row_per_interval(logged):
    from extensions import csvlog

    res, out = logged
    with FatImage(res.card.image) as img:
        assert img.listdir("/") == ["fugu"]
        assert img.listdir("/fugu") == [DAY_FILE]
    df = res.day()
    assert list(df.columns) == list(csvlog.columns(1))
    for col in ("pv_v", "pv_a", "pv_w", "bat_v", "bat_a", "bat_w", "temp_c", "duty_pct", "e_pv_wh", "t_s"):
        assert col in df.columns  # units in the names
    # one row per interval, on time, from the first telemetry second to the end of the run
    assert (df["t_s"].diff().dropna() == INTERVAL_S).all()
    assert df["t_s"].iloc[0] == 1 and df["t_s"].iloc[-1] == 29
    clock = pd.to_datetime(df["time"]) - pd.Timestamp("2026-06-21 11:10:00")
    assert (abs(clock.dt.total_seconds() - df["t_s"]) <= 1).all()
    # the values are the controller's: PV power against the plant's, the battery at ~26 V while it charges
    plant = {round(r[0]): r[5] for r in res.run.rows}
    tracking = df[df["state"] == "TRACK"]
    assert len(tracking) >= 8
    for _, row in tracking.iterrows():
        assert row["pv_w"] == pytest.approx(plant[row["t_s"]], rel=0.03)
    assert df["bat_v"].between(25.0, 28.5).all() and (tracking["bat_a"] > 10).all()
    assert df["e_pv_wh"].is_monotonic_increasing and df["e_pv_wh"].iloc[-1] > 2.0
    assert_complete_rows(res.day_text(), len(df.columns))
    # what the run leaves for the user: the CSV copied out of the image, and where the image is
    with open(os.path.join(out, "sd", DAY_FILE)) as f:
        assert f.read() == res.day_text()
    summary = res.summary["modules"]["sd"]
    assert summary["files"] == {DAY_FILE: len(res.day_text())} and os.path.isfile(summary["image"])
    # console lines on state changes only: the card at boot, the file it writes
    assert any(line.startswith("ext sd_log: started (card 16 MB via %s" % res.driver) for line in res.lines)
    assert res.sd_lines() == ["sd_log: writing /sd/fugu/%s" % DAY_FILE]


def test_a_two_channel_board_logs_each_channel(tmp_path):
    res = simulate(14, name="dual_channel")
    df = res.day()
    for col in ("pv1_v", "pv1_a", "pv1_w", "duty1_pct", "state1", "pv2_v", "pv2_w", "state2", "pv_w", "bat_v"):
        assert col in df.columns
    assert "pv_v" not in df.columns
    running = df[df["state1"].isin(("TRACK", "LIMIT"))]  # LIMIT: together the arrays reach the charge current limit
    assert len(running) >= 1 and (running["pv1_w"] > 100).all() and (running["pv2_w"] > 100).all()


def test_logging_goes_on_when_the_mount_point_is_not_available():
    """CircuitPython mounts only onto an existing folder (/sd on CIRCUITPY), and something else may be there: the
    log is written through the card's filesystem object all the same, and the console says why /sd is empty."""

    def setup(run, card):
        run.sim.board.mounts = {"/sd": {"fs": None, "readonly": False}}  # taken before code.py runs

    res = simulate(8, setup=setup)
    first = res.sd_lines()[0]  # (CPython names the EPERM OSError PermissionError)
    assert first.startswith("sd_log: cannot mount the card at /sd (PermissionError: [Errno 1] EPERM)"), first
    assert list(res.day()["t_s"]) == [1, 3, 5, 7]


def test_a_power_cut_mid_write_loses_at_most_the_row_being_written(logged):
    res, _ = logged
    full = res.day_text().splitlines(keepends=True)
    # cut the power 0.5 ms into the SPI traffic of the first row written after 20 s
    burst = next(b for b in res.card.bursts if b[0] > 20e9)
    cut_s = (burst[0] + 500_000) / 1e9
    cut = simulate(cut_s, driver=res.driver)
    text = cut.day_text()
    lines = text.splitlines(keepends=True)
    assert_complete_rows(text, len(full[0].split(",")))
    assert lines == full[:len(lines)]  # what is on the card is the same log, up to the cut
    t_last = int(lines[-1].split(",")[1])
    t_cut_row = int(full[len(lines)].split(",")[1]) if len(full) > len(lines) else None
    # the row being written when the power went is the only one missing
    assert t_cut_row is not None and t_cut_row == t_last + INTERVAL_S
    assert t_cut_row >= cut_s - INTERVAL_S - 1.5


# -- a card pulled out and put back --------------------------------------------------------------------------------
@pytest.mark.parametrize("driver", DRIVERS)
def test_card_removal_and_reinsertion(baseline, driver):
    def setup(run, card):
        at(run, 6.0, card.remove)
        at(run, 26.0, card.insert)

    res = simulate(36, setup=setup, driver=driver)
    sd = res.sd_lines()
    assert len(sd) == 3, sd
    assert sd[1].startswith("sd_log: card lost (OSError: [Errno 5]")
    assert sd[2].startswith("sd_log: card found (16 MB), logging resumes (8 rows waiting)")
    df = res.day()
    t = list(df["t_s"])
    assert t[0] == 1 and t[-1] == 35
    # rows wait in RAM while the card is out (8 of them): the rest of the time out of the socket is the only gap
    gaps = [(a, b) for a, b in zip(t, t[1:]) if b - a != INTERVAL_S]
    assert len(gaps) == 1
    a, b = gaps[0]
    assert 6 < a + INTERVAL_S and b < 26 + 10 + INTERVAL_S  # within the removal (+ the 10 s retry)
    assert_complete_rows(res.day_text(), len(df.columns))
    # the controller did not notice
    assert not res.ext_faults() and not res.summary["resets"]
    assert abs(res.tracking(*WINDOW_S) - baseline.tracking(*WINDOW_S)) < TRACKING_TOL
    assert res.max_loop_gap_s() < MAX_LOOP_GAP_S[driver]


@pytest.mark.parametrize("driver", DRIVERS)
def test_a_card_pulled_at_any_moment_of_a_write_leaves_logging_to_resume(driver):
    """The worst moment: while the rows that waited in RAM go out (several blocks). Pulled at five moments of that
    write and put back: the log is never stopped, the controller never reset, the rows after it reach the card."""

    def first_out(run, card):
        at(run, 3.0, card.remove)  # rows wait; the card is found again ~13 s, and they go out in one write
        at(run, 8.0, card.insert)

    ref = simulate(16, setup=first_out, driver=driver)
    burst = max((b for b in ref.card.bursts if 12e9 < b[0] < 16e9), key=lambda b: b[1] - b[0])
    worst = 0.0
    for k in range(5):
        t_pull = (burst[0] + (burst[1] - burst[0]) * k / 4) / 1e9

        def setup(run, card, t_pull=t_pull):
            first_out(run, card)
            at(run, t_pull, card.remove)
            at(run, t_pull + 1.5, card.insert)

        res = simulate(40.8, setup=setup, driver=driver)  # time for the 39 s row to reach the card after a boot
        assert not res.ext_faults() and not res.summary["resets"], (t_pull, res.ext_faults())
        t = list(res.day()["t_s"])
        assert t[-1] == 39 and t[-6:] == list(range(29, 40, 2)), (t_pull, t)
        assert_complete_rows(res.day_text(), len(res.day().columns))
        worst = max(worst, res.max_loop_gap_s())
    if driver == "adafruit_sdcard":
        assert worst < MAX_LOOP_GAP_S[driver]
    else:  # up to 500 ms per block the dead card "took", and the stop token: under the watchdog, not under 0.5 s
        assert 1.0 < worst < WATCHDOG_S


def test_without_either_driver_the_console_says_what_to_install():
    from sim.breakout import without_core_modules

    def setup(run, card):
        without_core_modules(run.sim.board, "sdcardio")  # a build without sdcardio, and no library on CIRCUITPY

    res = simulate(6, setup=setup, driver="sdcardio")
    assert ("ext sd_log: probe failed (ImportError: no SD card driver: circup install adafruit-circuitpython-sd), "
            "not started") in res.lines
    assert not res.card.files() and not res.summary["resets"]
    assert not [line for line in res.lines if "looked for every" in line]  # installing a library needs a reboot


@pytest.mark.parametrize("driver", DRIVERS)
def test_a_card_inserted_after_boot_is_found_and_logged_to(driver):
    from extensions import sd_log

    def setup(run, card):
        card.remove()  # the socket is empty at power-on
        at(run, 8.0, card.insert)

    res = simulate(50, setup=setup, driver=driver)
    assert "ext sd_log: not there yet, looked for every %d s" % (sd_log.HOTPLUG_MS // 1000) in res.lines
    started = [line for line in res.lines if line.startswith("ext sd_log: started")]
    assert len(started) == 1, res.lines
    text = res.day_text()
    assert_complete_rows(text, len(res.day().columns))
    t = res.day()["t_s"]
    # found at the first look after the insertion (boot + HOTPLUG_MS), rows on the grid from then to the end
    assert t.iloc[0] <= 8.0 + sd_log.HOTPLUG_MS / 1000 + INTERVAL_S + 3
    assert t.iloc[-1] >= 50 - INTERVAL_S - 1
    assert not res.ext_faults() and not res.summary["resets"]
    assert res.max_loop_gap_s() < 0.5  # the card's initialisation is the one long pause


def test_an_empty_socket_is_looked_at_without_disturbing_the_controller(baseline):
    def setup(run, card):
        card.remove()

    res = simulate(36, setup=setup)
    assert not res.card.files() and not res.ext_faults() and not res.summary["resets"]
    assert not [line for line in res.lines if line.startswith("ext sd_log: started")]
    # the periodic probe (an import and one CMD0) costs the controller nothing it would notice
    assert res.summary["tracking_efficiency"] >= baseline.summary["tracking_efficiency"] - 0.002


# -- a full card -------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("driver", DRIVERS)
def test_a_full_card_loses_its_oldest_day_files_and_logging_goes_on(driver):
    old = []

    def setup(run, card):
        old.extend(card.fill(leave_bytes=2048))  # old days' files leave one cluster free

    res = simulate(40, setup=setup, driver=driver)
    assert len(old) >= 10
    sd = res.sd_lines()
    assert sd[1:] == ["sd_log: card full: deleted /sd/fugu/%s" % old[0]], sd
    with FatImage(res.card.image) as img:
        assert sorted(img.listdir("/fugu")) == sorted(old[1:] + [DAY_FILE])  # only the oldest went
    df = res.day()
    assert (df["t_s"].diff().dropna() == INTERVAL_S).all() and df["t_s"].iloc[-1] == 39  # no row lost
    assert_complete_rows(res.day_text(), len(df.columns))  # the row that did not fit was completed


# -- a card that fails mid-write ------------------------------------------------------------------------------------
@pytest.mark.parametrize("driver", DRIVERS)
@pytest.mark.parametrize("mode", ["error", "busy", "dead"])
def test_a_card_failing_mid_write_never_stops_the_controller(baseline, mode, driver):
    """error: the card rejects a block (adafruit_sdcard would not notice: the guard reads the data response);
    busy: the card holds MISO low (adafruit_sdcard would hang: the guard's deadline ends it); dead: no answer.
    sdcardio reports each as EIO, after its 500 ms timeouts."""

    def setup(run, card):
        at(run, 15.0, lambda: card.fail_writes(0, mode))

    res = simulate(32, setup=setup, driver=driver)
    assert not res.ext_faults() and not res.summary["resets"]
    assert not any(f["code"].startswith("CRASH") for f in res.summary["faults"])
    assert abs(res.tracking(*WINDOW_S) - baseline.tracking(*WINDOW_S)) < TRACKING_TOL
    assert res.max_loop_gap_s() < MAX_LOOP_GAP_S[driver]
    sd = res.sd_lines()
    reason = {"error": "rejected a write", "busy": "timed out", "dead": "[Errno 5] EIO"}[mode]
    if driver == "sdcardio":
        reason = "[Errno 5] EIO"
    assert reason in sd[1], sd
    df = res.day()
    assert_complete_rows(res.day_text(), len(df.columns))
    if mode == "dead":
        assert sd[2:] == [] and df["t_s"].iloc[-1] < 16  # the card is gone for good; what it had is intact
    else:
        # the card answers the next look (10 s later) and the rows waiting in RAM go on it: nothing lost
        assert sd[2].startswith("sd_log: card found")
        assert (df["t_s"].diff().dropna() == INTERVAL_S).all() and df["t_s"].iloc[-1] == 31


# -- the guard that adafruit_sdcard needs (sdcardio checks both in C, but with 500 ms per wait) ----------------------
def test_the_guard_reports_a_rejected_write_and_ends_a_stuck_busy_card(tmp_path):
    """tests/sim/test_sdcard.py pins down that adafruit_sdcard 3.3.30 ignores a rejected write and hangs on a card
    stuck busy; through the extension's _GuardedSPI the same driver raises OSError for both, releases CS and the
    shared bus, and the card works again after the driver's initialisation (CMD0)."""
    import errno

    import adafruit_sdcard
    import board
    import busio
    import digitalio

    from extensions.sd_log import _GuardedSPI
    from sim.clock import SimClock
    from sim.devices.sdcard import SDCardEmulator, make_image
    from sim.simboard import SimBoard

    image = make_image(str(tmp_path / "card.img"), 4)
    clock = SimClock(end_ns=int(10e9))  # a hang ends the test (SimulationEnd) instead of the test run
    sim_board = SimBoard(["IO%d" % i for i in range(40)], clock=clock).activate()
    try:
        card = SDCardEmulator(sim_board, image).attach(("IO14", "IO13", "IO39"), "IO5")
        spi = busio.SPI(board.IO14, board.IO13, board.IO39)
        cs = digitalio.DigitalInOut(board.IO5)
        guard = _GuardedSPI(spi)
        sd = adafruit_sdcard.SDCard(guard, cs, baudrate=4000000)
        card.fail_write(0, "error")
        with pytest.raises(OSError) as e:
            sd.writeblocks(10, b"\xaa" * 512)
        assert e.value.errno == errno.EIO and "rejected" in str(e.value)
        assert sd.writeblocks(10, b"\xbb" * 512) == 0  # the card goes on working
        buf = bytearray(512)
        sd.readblocks(10, buf)
        assert bytes(buf) == b"\xbb" * 512
        card.fail_write(0, "busy")
        guard.arm(300)
        t0 = clock.now_ns
        with pytest.raises(OSError) as e:
            sd.writeblocks(11, b"\x01" * 512)
        assert e.value.errno == errno.ETIMEDOUT
        assert 0.3 <= (clock.now_ns - t0) / 1e9 < 0.32
        assert cs.value is True and spi.try_lock()  # chip select released, the shared bus unlocked
        spi.unlock()
        guard.disarm()
        sd = adafruit_sdcard.SDCard(guard, cs, baudrate=4000000)  # CMD0 ends the busy state
        assert sd.writeblocks(11, b"\x02" * 512) == 0
    finally:
        card.close()
        sim_board.deactivate()


# -- the pure row logic, on CPython and in MicroPython ----------------------------------------------------------------
def _telemetry(n):
    from fugu.telemetry import Telemetry

    tel = Telemetry(n, "fugu_v1", "0.1.0")
    tel.seq = 3
    tel.uptime_s = 3600
    tel.state = "TRACK"
    tel.charge_stage = "absorb"
    for k, c in enumerate(tel.channels):
        c.state = "TRACK"
        c.v_in_mv = 56520 + k
        c.i_in_ma = 8925
        c.p_in_mw = 504570
        c.duty_permille = 492
    tel.channels[-1].fault = "PV_LOST"
    tel.p_pv_mw = 504570
    tel.v_bat_mv = 26413
    tel.i_bat_ma = -530
    tel.p_bat_mw = -14000
    tel.v_target_mv = 28400
    tel.temp_c = 41.3
    tel.e_pv_mwh = 123456789
    tel.today_pv_mwh = 5
    return tel


TM = (2026, 6, 21, 13, 5, 9, 6, 172, -1)
ROW_1 = ("2026-06-21 13:05:09,3600,TRACK,absorb,56.520,8.925,49.2,504.570,26.413,-0.530,-14.000,28.400,41.3,0,100,"
         "-,123456.789,0.005,PV_LOST\n")


def test_rows_are_exact_and_match_the_header():
    from extensions import csvlog

    assert csvlog.row(_telemetry(1), TM) == ROW_1
    for n in (1, 2):
        head = csvlog.header(n).rstrip("\n").split(",")
        row = csvlog.row(_telemetry(n), TM).rstrip("\n").split(",")
        assert len(head) == len(row) == len(set(head))
    two = dict(zip(csvlog.header(2).rstrip().split(","), csvlog.row(_telemetry(2), TM).rstrip().split(",")))
    assert two["pv2_v"] == "56.521" and two["pv1_w"] == "504.570" and two["faults"] == "PV_LOST"


def test_file_names_and_which_go_first_when_the_card_is_full():
    from extensions import csvlog

    assert csvlog.day_file_name(TM, 7) == "20260621.csv"
    assert csvlog.day_file_name((2000, 1, 1, 0, 5, 0, 5, 1, -1), 7) == "DAY0007.csv"  # the clock was never set
    assert csvlog.alt_name("20260621.csv", 1) == "20260621b.csv"
    names = ["20260621.csv", "notes.txt", "DAY0012.csv", "20251231.csv", "20260101b.csv", "DAY0003.csv",
             "20260101.csv", "fugu.csv", "2026010.csv"]
    assert csvlog.oldest_first(names, keep="20260621.csv") == [
        "DAY0003.csv", "DAY0012.csv", "20251231.csv", "20260101.csv", "20260101b.csv"]


@given(st.integers(min_value=-10**12, max_value=10**12))
def test_thousandths_are_written_exactly(v):
    from extensions import csvlog

    assert Decimal(csvlog.milli(v)) == Decimal(v) / 1000
    assert Decimal(csvlog.tenths(v)) == Decimal(v) / 10


def test_rows_are_the_same_in_micropython():
    from devicecheck.harness import check_imports

    src = ("from extensions import csvlog\nfrom fugu.telemetry import Telemetry\n\n"
           "tel = Telemetry(1, 'fugu_v1', '0.1.0')\n"
           "tel.seq = 3\ntel.uptime_s = 3600\ntel.state = 'TRACK'\ntel.charge_stage = 'absorb'\n"
           "c = tel.channels[0]\nc.state = 'TRACK'\nc.v_in_mv = 56520\nc.i_in_ma = 8925\nc.p_in_mw = 504570\n"
           "c.duty_permille = 492\nc.fault = 'PV_LOST'\ntel.p_pv_mw = 504570\ntel.v_bat_mv = 26413\n"
           "tel.i_bat_ma = -530\ntel.p_bat_mw = -14000\ntel.v_target_mv = 28400\ntel.temp_c = 41.3\n"
           "tel.e_pv_mwh = 123456789\ntel.today_pv_mwh = 5\n"
           "got = csvlog.row(tel, %r)\nassert got == %r, got\n"
           "assert csvlog.oldest_first(['20260101b.csv', 'DAY0003.csv', '20260101.csv', 'x.txt']) == "
           "['DAY0003.csv', '20260101.csv', '20260101b.csv']\n"
           "assert csvlog.day_file_name((2000, 1, 1, 0, 0, 0, 5, 1), 12) == 'DAY0012.csv'\n" % (TM, ROW_1))
    reports = check_imports(modules=["sdlog_mp_check"], compile_files=(),
                            extra_files={"lib/sdlog_mp_check.py": src})
    assert ("ok", "sdlog_mp_check", "") in reports, reports
