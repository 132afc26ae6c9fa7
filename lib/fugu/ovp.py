"""Hardware output over-voltage comparator (boards with "ovp" in their config, e.g. fugu_s3).

A battery disconnected at full power charges the output capacitor by volts per millisecond, faster than any control
step samples it (fugu_v1: +14 % before the firmware's BAT_OV acts). The comparator stops the bridge within a
microsecond; the firmware only sets its threshold (a PWM through an RC filter, as the ESP32-S3 has no DAC) to the
BAT_OV level and reads its fault output each step to report BAT_OV and keep the stage off. Imported by hw.py only on
boards that have it (RAM)."""


class Ovp:
    def __init__(self, cfg, pwmio, digitalio, pin):
        self._k_ppm = cfg["r_bottom_ohm"] * 1000000 // (cfg["r_top_ohm"] + cfg["r_bottom_ohm"])
        self._full_mv = int(cfg["v_ref_full_v"] * 1000)
        # full scale until the first threshold: never trips on a battery (below any board's output rating)
        self._ref = pwmio.PWMOut(pin(cfg["ref_pin"]), frequency=cfg["f_ref_hz"], duty_cycle=65535)
        self.fault = digitalio.DigitalInOut(pin(cfg["fault_pin"]))
        self.fault.switch_to_input()
        self.v_trip_mv = 0

    def set_trip_mv(self, v_mv):
        """Trip the comparator above v_mv at the output (only written when it changes)."""
        if v_mv == self.v_trip_mv:
            return
        self.v_trip_mv = v_mv
        d = v_mv * self._k_ppm // 1000 * 65535 // (self._full_mv * 1000)
        self._ref.duty_cycle = d if d < 65535 else 65535

    def deinit(self):
        self._ref.deinit()
        self.fault.deinit()
