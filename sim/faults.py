"""Faults a scenario injects at given times, applied to the simulated hardware (never to the firmware)."""

from sim.clock import SimReset


def _apply(sim, kind, value):
    plant = sim.plant
    if kind == "battery_disconnect":
        plant.set_battery_connected(False)
    elif kind == "battery_reconnect":
        plant.set_battery_connected(True)
    elif kind == "pv_disconnect":
        plant.set_pv_connected(False)
    elif kind == "pv_reconnect":
        plant.set_pv_connected(True)
    elif kind == "pv_short":
        plant.set_pv_short(True)
    elif kind == "pv_short_clear":
        plant.set_pv_short(False)
    elif kind == "adc_fail":
        sim.adc.present = False
    elif kind == "adc_recover":
        sim.adc.present = True
        sim.adc.stuck = False
    elif kind == "adc_stuck":
        sim.adc.stuck = True
    elif kind == "ntc_open":
        sim.ntc_fault = "open"
    elif kind == "ntc_short":
        sim.ntc_fault = "short"
    elif kind == "ntc_ok":
        sim.ntc_fault = None
    elif kind == "fan_fail":
        sim.fan.failed = True
    elif kind == "fan_ok":
        sim.fan.failed = False
    elif kind == "ambient_step":
        plant.ambient_override_c = float(value)
    elif kind == "mcu_reset":
        raise SimReset("injected reset")
    else:
        raise ValueError("unknown fault kind %r" % kind)


def schedule_faults(sim, faults, log=None):
    """Schedule each {t_s, kind, value?} on the simulated clock; log.injected gets (t, kind) as they happen."""
    injected = []
    if log is not None:
        log.injected = injected
    for f in faults:
        def cb(t_ns, f=f):
            injected.append({"t": round(t_ns / 1e9, 3), "kind": f["kind"]})
            _apply(sim, f["kind"], f.get("value"))

        sim.board.clock.schedule(int(f["t_s"] * 1e9), cb)
