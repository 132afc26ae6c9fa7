"""Faults a scenario injects at given times, applied to the simulated hardware (never to the firmware).

The tables below are the schema sim/scenario.py validates [[faults]] against:
* FAULT_KINDS: every kind;
* FAULT_VALUE_RANGE: kinds that REQUIRE a value, and its range (ambient_step: the new ambient in C; heatsink_heat:
  an external heat input into the heatsink in W, e.g. sun on the enclosure or a neighbouring heat source;
  pv_dc_source: a DC source's voltage);
* FAULT_CHANNEL_KINDS: kinds that take an OPTIONAL value, the power stage (channel) it hits on a multi-channel
  board (no value: every channel).

Kinds that model a broken part:
* backflow_short / backflow_ok: the backflow MOSFET fails short (drain to source, the usual MOSFET failure): it
  conducts both ways whatever its gate, so only the firmware's REVERSE protection stands between the battery and
  the panel when the stage pushes current back;
* heatsink_heat (value W): heat from outside the converter into the heatsink, on top of the converter's losses
  (0 ends it): heats the heatsink within a minute instead of the heatsink's 6-minute time constant;
* pv_dc_source (value V, 0 removes it): a stiff DC source (100 mOhm) appears on the PV terminals of every channel,
  e.g. a battery or another converter on a shared DC bus: it feeds current below its voltage and SINKS it above,
  so a stage that holds the input above it pushes current backwards (the reverse-current case).
"""

from sim.clock import SimReset

FAULT_KINDS = ("battery_disconnect", "battery_reconnect", "pv_disconnect", "pv_reconnect", "pv_short",
               "pv_short_clear", "adc_fail", "adc_recover", "adc_stuck", "ntc_open", "ntc_short", "ntc_ok",
               "fan_fail", "fan_ok", "mcu_reset", "ambient_step", "backflow_short", "backflow_ok", "heatsink_heat",
               "pv_dc_source")
FAULT_VALUE_RANGE = {"ambient_step": (-60.0, 100.0), "heatsink_heat": (0.0, 500.0), "pv_dc_source": (0.0, 100.0)}
FAULT_CHANNEL_KINDS = ("pv_disconnect", "pv_reconnect", "pv_short", "pv_short_clear", "adc_fail", "adc_recover",
                       "adc_stuck", "backflow_short", "backflow_ok")


def _channels(sim, value):
    """The channel indices a per-channel fault hits: value None = all of the board's channels."""
    n = len(sim.stages)
    if value is None:
        return range(n)
    ch = int(value)
    if not 0 <= ch < n:
        raise ValueError("fault on channel %d: the board has %d channel(s)" % (ch, n))
    return (ch,)


def _adcs(sim, value):
    """The ADC emulators of those channels (boards that sense with the MCU's own ADC have none to break)."""
    out = [sim.adcs[k] for k in _channels(sim, value) if sim.adcs[k] is not None]
    if not out:
        raise ValueError("adc fault: this board senses with the MCU's own ADC (no external ADC to fail)")
    return out


def _apply(sim, kind, value):
    plant = sim.plant
    ch = None if value is None or kind not in FAULT_CHANNEL_KINDS else int(value)
    if kind == "battery_disconnect":
        plant.set_battery_connected(False)
    elif kind == "battery_reconnect":
        plant.set_battery_connected(True)
    elif kind == "pv_disconnect":
        plant.set_pv_connected(False, channel=ch)
    elif kind == "pv_reconnect":
        plant.set_pv_connected(True, channel=ch)
    elif kind == "pv_short":
        plant.set_pv_short(True, channel=ch)
    elif kind == "pv_short_clear":
        plant.set_pv_short(False, channel=ch)
    elif kind == "adc_fail":
        for adc in _adcs(sim, value):
            adc.present = False
    elif kind == "adc_recover":
        for adc in _adcs(sim, value):
            adc.present = True
            adc.stuck = False
    elif kind == "adc_stuck":
        for adc in _adcs(sim, value):
            adc.stuck = True
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
    elif kind == "heatsink_heat":
        plant.heat_extra_w = float(value)
    elif kind == "pv_dc_source":
        plant.set_pv_dc_source(float(value) if value else None)
    elif kind == "backflow_short":
        for k in _channels(sim, value):
            sim.gates[k].set_backflow_shorted(True)
    elif kind == "backflow_ok":
        for k in _channels(sim, value):
            sim.gates[k].set_backflow_shorted(False)
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
