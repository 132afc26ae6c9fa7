"""The telemetry snapshot extensions see: one object per controller, refreshed in place once a second (no allocation
in steady state), read-only by convention. Units are in the attribute names; integers wherever the firmware has
them (mV, mA, mW, mWh), so a Modbus register or a CAN signal is a copy, not a conversion.
"""


class ChannelTelemetry:
    """One power stage."""

    def __init__(self, index):
        self.index = index
        self.state = "IDLE"  # IDLE / START / SCAN / TRACK / LIMIT / FAULT (Stage.mode_name())
        self.v_in_mv = 0
        self.i_in_ma = 0
        self.v_out_mv = 0
        self.i_out_ma = 0  # measured where the board senses it, else estimated from the input power
        self.p_in_mw = 0
        self.duty_permille = 0
        self.limit = "-"  # the limit regulator that binds (v_out, i_out, i_in, power) or "-"
        self.fault = None  # the active fault code of this stage, or None
        self.scans = 0


class Telemetry:
    def __init__(self, n_channels, board_name="", version="", mode="buck"):
        self.board_name = board_name
        self.version = version
        self.mode = mode
        self.seq = 0  # bumps at every refresh: an observer can tell a new snapshot from an old one
        self.t_ms = 0  # supervisor.ticks_ms() of the refresh (wraps; use ticks_diff)
        self.uptime_s = 0
        self.state = "IDLE"  # channel 0's state
        self.channels = [ChannelTelemetry(k) for k in range(n_channels)]
        self.v_bat_mv = 0
        self.i_bat_ma = 0  # into the battery, all channels
        self.p_pv_mw = 0  # all channels
        self.p_bat_mw = 0
        self.e_pv_mwh = 0  # since boot
        self.e_bat_in_mwh = 0
        self.e_bat_out_mwh = 0
        self.today_pv_mwh = 0
        self.today_peak_mw = 0
        self.lifetime_pv_mwh = 0
        self.charge_stage = "off"  # off / bulk / absorb / float / storage / equalize
        self.v_target_mv = 0
        self.i_limit_ma = 0
        self.temp_c = None  # heatsink, None when the NTC fails
        self.fan = False
        self.derate_pct = 100
        self.fault_count = 0  # faults reported since boot
        self.last_fault = None  # the most recent fault code, or None
        self.last_fault_ch = -1  # its channel (-1: the whole controller, e.g. temperature)
        self.last_fault_t_ms = 0
        self.overruns = 0
        self.history = None  # fugu.history.History: days() for 30-day charts and statistics

    def fault_active(self):
        """The first active fault code of any channel, or None."""
        for c in self.channels:
            if c.fault is not None:
                return c.fault
        return None
