"""One view of a board config for the core: a list of power-stage channels plus the shared parts.

A board config may list "channels" (two power stages feeding one battery); the original single-stage boards keep
their keys at the top level, and channels() builds the one channel from them, so the core has one code path.
"""

_CHANNEL_PINS = ("pwm", "enable", "backflow", "adc_rdy")


def channels(cfg):
    """The per-power-stage dicts: {"index", "pins", "adc", "sense", "power_stage"}."""
    chans = cfg.get("channels")
    if chans:
        out = []
        for i, c in enumerate(chans):
            d = dict(c)
            d["index"] = i
            out.append(d)
        return out
    pins = cfg["pins"]
    cp = {}
    for k in _CHANNEL_PINS:
        if k in pins:
            cp[k] = pins[k]
    return [{"index": 0, "pins": cp, "adc": cfg.get("adc"), "sense": cfg["sense"],
             "power_stage": cfg["power_stage"]}]


def rating(cfg, key, default):
    return cfg.get("ratings", {}).get(key, default)
