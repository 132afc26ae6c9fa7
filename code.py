"""FUGU MPPT: placeholder controller that proves the simulated board end to end (fixed-ratio duty, no tracking).
The control core (issue 3) replaces the body of this file with: board = load_board(); run(Controller(...))."""

import time

import board
import busio
import digitalio
import microcontroller
import pwmio
from adafruit_ads1x15 import ADS1115, AnalogIn, ads1x15
from watchdog import WatchDogMode

from fugu.boardid import load_board_config

cfg = load_board_config(microcontroller.nvm)
pins = cfg["pins"]
sense = cfg["sense"]


def pin(name):
    return getattr(board, pins[name])


i2c = busio.I2C(pin("scl"), pin("sda"), frequency=cfg["i2c_hz"])
ads = ADS1115(i2c, address=cfg["adc"]["address"], gain=2, data_rate=860)
ch = {k: AnalogIn(ads, (ads1x15.Pin.A0, ads1x15.Pin.A1, ads1x15.Pin.A2, ads1x15.Pin.A3)[s["ch"]])
      for k, s in sense.items()}
v_in_ratio = (sense["v_in"]["r_top_ohm"] + sense["v_in"]["r_bottom_ohm"]) / sense["v_in"]["r_bottom_ohm"]
v_out_ratio = (sense["v_out"]["r_top_ohm"] + sense["v_out"]["r_bottom_ohm"]) / sense["v_out"]["r_bottom_ohm"]
i_in = sense["i_in"]
i_div = i_in["r_bottom_ohm"] / (i_in["r_top_ohm"] + i_in["r_bottom_ohm"])

pwm = pwmio.PWMOut(pin("pwm"), frequency=cfg["power_stage"]["f_pwm_hz"], duty_cycle=0)
enable = digitalio.DigitalInOut(pin("enable"))
enable.switch_to_output(False)
backflow = digitalio.DigitalInOut(pin("backflow"))
backflow.switch_to_output(False)
wd = microcontroller.watchdog
wd.timeout = 2.0
wd.mode = WatchDogMode.RESET

i_zero_v = ch["i_in"].voltage  # converter off: the hall sensor's zero point
energy_mws = 0  # milliwatt-seconds, integer: no precision loss at large totals
duty = 0.0
running = False
t_last = time.monotonic_ns()
t_stat = t_last
print("placeholder controller: fixed-ratio duty (no MPPT yet)")
while True:
    v_in = ch["v_in"].voltage * v_in_ratio
    v_out = ch["v_out"].voltage * v_out_ratio
    a_in = (ch["i_in"].voltage - i_zero_v) / i_div / (i_in["v_per_a"] * i_in["direction"])
    now = time.monotonic_ns()
    dt_ms = (now - t_last) // 1000000
    t_last += dt_ms * 1000000
    if not running and v_in > v_out + 3.0 and v_out > 8.0:
        duty = v_out / v_in  # soft start from the predicted duty
        pwm.duty_cycle = int(duty * 65535)
        backflow.value = True
        enable.value = True
        running = True
        target = v_out / (0.8 * v_in)
    elif running and v_in < v_out + 0.5:
        enable.value = False
        backflow.value = False
        running = False
    if running:
        duty += max(-0.002, min(0.002, target - duty))
        duty = min(duty, 0.95)
        pwm.duty_cycle = int(duty * 65535)
        energy_mws += int(v_in * a_in * dt_ms)
    wd.feed()
    if now - t_stat >= 1000000000:
        t_stat = now
        print("STAT t_ms=%d state=%s vin_mv=%d vout_mv=%d iin_ma=%d duty=%.4f e_wh=%.4f" % (
            now // 1000000, "RUN" if running else "IDLE", v_in * 1000, v_out * 1000, a_in * 1000, duty,
            energy_mws / 3600000.0))
