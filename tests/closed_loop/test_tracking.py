"""The tracker on the simulated board: steady sun, a cloud edge, partial shade (global peak), and the figures the
issue names (bootstrap violations, the firmware's energy counter)."""


def test_steady_sun_tracks_within_half_a_percent_and_counts_energy(simulate):
    r = simulate("demo", scenario__duration_s=90, shade__points=[[0, [1.0] * 6]])
    assert r.summary["bootstrap_violations"] == 0
    assert r.tracking(10) >= 0.995, r.tracking(10)
    # the firmware's own PV-side energy counter (at its last STAT line) against the plant's
    fw = r.summary["firmware_energy_wh"]
    true = r.summary["pv_energy_harvested_wh"]
    last_w = r.rows[-1]["pv_w"]
    assert abs(fw - true) <= 0.005 * true + last_w / 3600.0 * 1.1, (fw, true)
    assert r.faults == []


def test_the_start_scan_finds_the_global_peak_under_partial_shade(simulate):
    # two sub-strings of six shaded to 25 % from the start: two peaks; the global one must be found
    shade = [[0, [1.0, 1.0, 1.0, 1.0, 0.25, 0.25]]]
    r = simulate("demo", scenario__duration_s=40, shade__points=shade)
    assert any(line.startswith("SCAN") for line in r.lines)
    assert r.tracking(10) >= 0.99, r.tracking(10)


def test_shade_arriving_while_tracking_triggers_a_scan_to_the_new_global_peak(simulate):
    shade = [[0, [1.0] * 6], [30, [1.0] * 6], [31, [1.0, 1.0, 1.0, 1.0, 0.2, 0.2]]]
    r = simulate("demo", scenario__duration_s=70, shade__points=shade)
    scans = [line for line in r.lines if line.startswith("SCAN")]
    assert len(scans) >= 2, scans
    assert r.tracking(45) >= 0.99, r.tracking(45)
