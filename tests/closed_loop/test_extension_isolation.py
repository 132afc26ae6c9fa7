"""The extension mechanism on the simulated board: drop-in discovery, the settings switch, and isolation: an
extension that raises or blocks is stopped and reported, and the tracker harvests the same energy as without it."""

import os
import sys

import pytest

HEADER = "from fugu.extensions import Extension\nimport time\n\n\n"
DROP_INS = {
    # raises on its first periodic call
    "zz_raises": HEADER + (
        "class Raises(Extension):\n"
        "    name = 'zz_raises'\n"
        "    def probe(self):\n        return True\n"
        "    def tick(self, now_ms):\n        raise ValueError('deliberately broken')\n\n\n"
        "EXTENSION = Raises\n"),
    # blocks the loop for 300 ms once a second (30x its budget)
    "zz_blocks": HEADER + (
        "class Blocks(Extension):\n"
        "    name = 'zz_blocks'\n    budget_ms = 10\n"
        "    def probe(self):\n        return True\n"
        "    def tick(self, now_ms):\n        time.sleep(0.3)\n\n\n"
        "EXTENSION = Blocks\n"),
    # a little over budget at every snapshot (15 ms of 10): stopped after three strikes
    "zz_slow": HEADER + (
        "class Slow(Extension):\n"
        "    name = 'zz_slow'\n    budget_ms = 10\n"
        "    def probe(self):\n        return True\n"
        "    def observe(self, tel):\n        time.sleep(0.015)\n\n\n"
        "EXTENSION = Slow\n"),
    # well behaved: counts the snapshots it sees (stays running)
    "zz_counts": HEADER + (
        "class Counts(Extension):\n"
        "    name = 'zz_counts'\n"
        "    def probe(self):\n        return True\n"
        "    def start(self):\n        self.n = 0\n"
        "    def observe(self, tel):\n        self.n += 1\n"
        "        if self.n % 10 == 0:\n            self.ctx.log('zz_counts saw %d snapshots, p_pv_mw=%d' % (self.n, tel.p_pv_mw))\n\n\n"
        "EXTENSION = Counts\n"),
    # support code (no EXTENSION): skipped quietly
    "zz_support": "VALUE = 1\n",
}


@pytest.fixture
def drop_ins(tmp_path):
    """The drop-in modules in a second folder of the `extensions` package (the firmware runs in this process)."""
    import extensions

    for name, src in DROP_INS.items():
        (tmp_path / (name + ".py")).write_text(src)
    extensions.__path__.append(str(tmp_path))
    try:
        yield
    finally:
        extensions.__path__.remove(str(tmp_path))
        for name in DROP_INS:
            sys.modules.pop("extensions." + name, None)


def _steady(simulate, **kw):
    return simulate("demo", scenario__duration_s=40, shade__points=[[0, [1.0] * 6]], board__modules={}, **kw)


def test_a_broken_extension_is_stopped_and_the_tracker_does_not_notice(simulate, drop_ins):
    r = _steady(simulate)
    text = "\n".join(r.lines)
    assert "ext zz_raises: started" in text and "ext zz_counts: started" in text
    assert "zz_support" not in text
    assert "ext=zz_raises stopped: raised ValueError: deliberately broken" in text
    assert "ext=zz_blocks stopped: overran its time budget" in text
    assert "ext=zz_slow stopped: overran its time budget" in text
    assert r.faults.count("EXT") == 3
    assert "zz_counts saw 30 snapshots" in text  # the good one keeps running
    assert not r.summary["resets"]  # the watchdog never fired
    base = _steady(simulate)
    assert abs(r.tracking(15) - base.tracking(15)) < 0.002, (r.tracking(15), base.tracking(15))
    assert r.tracking(15) > 0.995


def test_extensions_disabled_in_settings_are_not_started(simulate, drop_ins):
    r = simulate("demo", scenario__duration_s=3, board__modules={},
                 settings={"extensions_disabled": "zz_raises,zz_blocks"})
    text = "\n".join(r.lines)
    assert "ext zz_raises: disabled in settings" in text
    assert "ext zz_blocks: disabled in settings" in text
    assert "ext zz_slow: started" in text


HANGS = HEADER + (
    "class Hangs(Extension):\n"
    "    name = 'zz_hangs'\n"
    "    def probe(self):\n        return True\n"
    "    def tick(self, now_ms):\n        time.sleep(5.0)  # a driver waiting for ever on a dead bus\n\n\n"
    "EXTENSION = Hangs\n")


def test_an_extension_that_hangs_costs_one_watchdog_reset_and_the_core_runs_on_without_extensions(simulate,
                                                                                                   tmp_path):
    """No budget can interrupt a call that never returns: the hardware watchdog resets the board. After a watchdog
    reset the firmware starts the core only (and says so), so a hanging extension does not turn into a reset
    loop; the next power-on or reset tries the extensions again."""
    import extensions

    (tmp_path / "zz_hangs.py").write_text(HANGS)
    extensions.__path__.append(str(tmp_path))
    try:
        r = _steady(simulate)
    finally:
        extensions.__path__.remove(str(tmp_path))
        sys.modules.pop("extensions.zz_hangs", None)
    assert [x["reason"] for x in r.summary["resets"]] == ["watchdog timeout"], r.summary["resets"]
    t_reset = r.summary["resets"][0]["t"]
    text = "\n".join(r.lines)
    assert "ext zz_hangs: started" in text
    assert "extensions: not started after a watchdog reset" in text
    assert text.count("ext zz_hangs: started") == 1
    assert r.tracking(t_reset + 15) > 0.99  # the core tracks again after the reset
