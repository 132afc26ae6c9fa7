"""The original FUGU MPPT firmware's tracker (Arduino, V1.10 by TechBuilder / Angelo Casimiro, 2021), reimplemented
as a firmware file for the simulated board, so the benchmark can run it side by side with ours. HOST ONLY: it lives
in bench/ and never goes to a device.

What is reproduced, from the original's tabs (ARDUINO_MPPT_FIRMWARE_V1.1.ino, 2_Read_Sensors, 3_Device_Protection,
4_Charging_Algorithm, 5_System_Processes), and why it matters for tracking:

* The loop: Read_Sensors -> Device_Protection -> System_Processes -> Charging_Algorithm -> telemetry, as fast as it
  goes (no fixed period). Its rate comes from the ADC: each loop takes 3 single-shot samples of the PV voltage and
  of the battery voltage (interleaved) and 4 of the PV current (avgCountVS = 3, avgCountCS = 4), averaged: 10
  conversions per loop, each through the Adafruit library's blocking readADC_SingleEnded (start, poll the OS bit,
  read the result) at the library's default data rate (ADS1015: 1600 SPS; ADS1115: 128 SPS), gain 2 (+-2.048 V), on
  an I2C bus at the Arduino Wire default of 100 kHz (the sketch never sets the clock). The firmware as shipped
  declares ``Adafruit_ADS1015 ads`` with ADS1015_Mode = 1; FUGU_ORIGINAL_ADC=ADS1115 selects the other build.
* The tracker: perturb and observe, ONE PWM count per loop (LEDC, 11 bits at 39 kHz: 2047 counts), the direction
  from the signs of dP and dV between this loop's and the last loop's averaged readings (no other filtering);
  equal P or V: step up while the battery is below its maximum. CC/CV ahead of it: output current above the
  charging current or battery voltage above its maximum -> one count down. The duty is clamped every loop to
  [PPWM, 97 %]: the "predictive PWM" floor 0.995 * V_out / V_in of full scale.
* Its measurements: output current computed from input power (assumes 100 % efficiency), the ACS712 zero point
  re-learned whenever the buck is off, the temperature averaged over 500 loops.
* Its protections, only as they affect tracking: input under-voltage (V_in < V_bat,max + 1 V) turns the buck off
  and, when it clears, restarts from PPWM after the 1.2 s "Computing For Predictive PWM" delay; battery not
  connected, over-current, output over-voltage, over-temperature turn the buck off.
* Its energy counter (Wh += P_in / (3600 * 4) every 250 ms, one sample per tick) is what this file reports as e_wh.

Not reproduced: the LCD menu (an LCD refresh once a second, ~30 ms of I2C at 100 kHz, during which the duty is
held), Wi-Fi/Blynk (on the other core), flash settings, buttons, the fan's PWM mode. The per-loop serial telemetry
(~200 characters at 500 kbaud every loop, serialTelemMode = 1) is not printed; its time is charged as CPU time
per loop by the benchmark's cost model (bench/cases.py: ORIGINAL_COST). Instead, like our firmware, it prints a
``STAT ...`` line once a second for the simulator, and feeds the watchdog once per loop (the simulator counts
control steps by feeds).

Settings (the user parameters of the original, set as a user would for the benchmark's 8s LiFePO4 bank):
voltageBatteryMax 29.2 V, voltageBatteryMin 20.0 V, currentCharging 30 A (its default).
"""

import math
import os
import time

import analogio
import board
import busio
import digitalio
import microcontroller
import pwmio
from adafruit_ads1x15 import ADS1015, ADS1115, AnalogIn, ads1x15
from watchdog import WatchDogMode

# -- the original's user and calibration parameters ----------------------------------------------------------
V_BATTERY_MAX = 29.2  # voltageBatteryMax (V): 8s LiFePO4, 3.65 V/cell
V_BATTERY_MIN = 20.0  # voltageBatteryMin (V)
I_CHARGING = 30.0  # currentCharging (A, output)
PWM_RESOLUTION_BITS = 11  # pwmResolution
PWM_FREQUENCY_HZ = 39000  # pwmFrequency
AVG_COUNT_VS = 3  # avgCountVS: voltage samples per loop
AVG_COUNT_CS = 4  # avgCountCS: current samples per loop
AVG_COUNT_TS = 500  # avgCountTS: temperature samples per average
IN_VOLTAGE_DIV_RATIO = 40.2156
OUT_VOLTAGE_DIV_RATIO = 24.5000
CURRENT_DIV_RATIO = 1.3300  # 3.3k/10k divider after the ACS712, undone in software
CURRENT_SENS_V_PER_A = 0.0660  # ACS712-30A
CURRENT_MIDPOINT_V = 2.5250  # before the first auto-calibration
NTC_RESISTANCE_OHM = 10000.0
V_DROPOUT = 1.0  # voltageDropout: backflow FET on above V_out + this
V_BATTERY_THRESH = 1.5  # voltageBatteryThresh: output over-voltage above V_bat,max + this
I_IN_ABSOLUTE = 31.0  # currentInAbsolute (A)
I_OUT_ABSOLUTE = 50.0  # currentOutAbsolute (A)
PPWM_MARGIN_PCT = 99.5  # PPWM_margin: duty floor 0.995 * V_out / V_in
PWM_MAX_DC_PCT = 97.0  # PWM_MaxDC: duty ceiling
V_IN_SYSTEM_MIN = 10.0  # vInSystemMin
TEMPERATURE_FAN_C = 60
TEMPERATURE_MAX_C = 90
ROUTINE_INTERVAL_MS = 250  # millisRoutineInterval (energy counter tick)
REC_DELAY_S = 40 * 0.030  # the "Computing For Predictive PWM ...." loading effect: 40 x delay(30)
BOOT_LCD_DELAY_S = 1.5  # "MPPT INITIALIZED" splash

ADC_CHIP = os.getenv("FUGU_ORIGINAL_ADC", "ADS1015")  # the firmware as shipped: Adafruit_ADS1015, ADS1015_Mode = 1
ARDUINO_DEFAULT_SPS = {"ADS1015": 1600, "ADS1115": 128}  # Adafruit_ADS1X15 constructors' m_dataRate
ARDUINO_WIRE_HZ = 100000  # Wire's default clock; the sketch never calls Wire.setClock

PIN_BACKFLOW = board.IO27
PIN_BUCK_IN = board.IO33
PIN_BUCK_EN = board.IO32
PIN_LED = board.IO2
PIN_FAN = board.IO16
PIN_TEMP = board.IO35

# -- setup() --------------------------------------------------------------------------------------------------
pwm_max = (1 << PWM_RESOLUTION_BITS) - 1
pwm_max_limited = int(PWM_MAX_DC_PCT * pwm_max / 100.0)
duty_shift = 16 - PWM_RESOLUTION_BITS  # 11-bit LEDC count -> CircuitPython's 16-bit duty_cycle, exactly

backflow = digitalio.DigitalInOut(PIN_BACKFLOW)
backflow.switch_to_output(False)
buck_en = digitalio.DigitalInOut(PIN_BUCK_EN)
buck_en.switch_to_output(False)
led = digitalio.DigitalInOut(PIN_LED)
led.switch_to_output(False)
fan = digitalio.DigitalInOut(PIN_FAN)
fan.switch_to_output(False)
pwm_out = pwmio.PWMOut(PIN_BUCK_IN, frequency=PWM_FREQUENCY_HZ, duty_cycle=0)
temp_in = analogio.AnalogIn(PIN_TEMP)

i2c = busio.I2C(board.IO22, board.IO21, frequency=ARDUINO_WIRE_HZ)
ads = (ADS1015 if ADC_CHIP == "ADS1015" else ADS1115)(i2c, gain=2, data_rate=ARDUINO_DEFAULT_SPS[ADC_CHIP])
adc_v_in = AnalogIn(ads, ads1x15.Pin.A3)
adc_v_out = AnalogIn(ads, ads1x15.Pin.A1)
adc_i_in = AnalogIn(ads, ads1x15.Pin.A2)

print("> Serial Initialized")
time.sleep(BOOT_LCD_DELAY_S)
print("> MPPT HAS INITIALIZED (original FUGU tracker, %s at %d SPS)" % (ADC_CHIP, ARDUINO_DEFAULT_SPS[ADC_CHIP]))

wd = microcontroller.watchdog
wd.timeout = 5.0
wd.mode = WatchDogMode.RESET

# -- state (the original's globals) ---------------------------------------------------------------------------
buck_enable = False
PWM = 0
PPWM = 0
REC = False
ERR = 0
OOV = False
FLV = False
current_midpoint = CURRENT_MIDPOINT_V
power_input_prev = 0.0
voltage_input_prev = 0.0
temperature = 0
ts_acc = 0.0
ts_samples = 0
wh = 0.0
pwm_written = -1
backflow_on = False
fan_on = False
t_routine_ms = 0
t_stat_ms = 0


def buck_disable():
    global buck_enable, PWM
    buck_enable = False
    if buck_en.value:
        buck_en.value = False
        led.value = False
    PWM = 0


def buck_enable_on():
    global buck_enable
    buck_enable = True
    if not buck_en.value:
        buck_en.value = True
        led.value = True


def predictive_pwm(v_in, v_out):
    global PPWM
    if v_in <= 0:
        PPWM = 0
    else:
        PPWM = int((PPWM_MARGIN_PCT * pwm_max * v_out) / (100.0 * v_in))
    PPWM = min(max(PPWM, 0), pwm_max_limited)


def pwm_modulation(v_in, v_out):
    global PWM, pwm_written
    predictive_pwm(v_in, v_out)
    PWM = min(max(PWM, PPWM), pwm_max_limited)
    if PWM != pwm_written:
        pwm_out.duty_cycle = PWM << duty_shift
        pwm_written = PWM
    buck_enable_on()


while True:
    # -- Read_Sensors() ----------------------------------------------------------------------------------------
    if ts_samples <= AVG_COUNT_TS:
        ts_acc += temp_in.value * 4095 // 65535  # analogRead: a 12-bit count
        ts_samples += 1
    else:
        ts = ts_acc / ts_samples
        if 0 < ts < 4095:
            ts_log = math.log(NTC_RESISTANCE_OHM * (4095.0 / ts - 1.0))
            temperature = int(1.0 / (1.009249522e-03 + 2.378405444e-04 * ts_log + 2.019202697e-07 * ts_log ** 3)
                              - 273.15)
        ts_samples = 0
        ts_acc = 0.0
    vsi = 0.0
    vso = 0.0
    csi = 0.0
    for _ in range(AVG_COUNT_VS):
        vsi += adc_v_in.voltage
        vso += adc_v_out.voltage
    v_in = (vsi / AVG_COUNT_VS) * IN_VOLTAGE_DIV_RATIO
    v_out = (vso / AVG_COUNT_VS) * OUT_VOLTAGE_DIV_RATIO
    for _ in range(AVG_COUNT_CS):
        csi += adc_i_in.voltage
    csi_converted = (csi / AVG_COUNT_CS) * CURRENT_DIV_RATIO
    i_in = -(csi_converted - current_midpoint) / CURRENT_SENS_V_PER_A
    if i_in < 0:
        i_in = 0.0
    i_out = 0.0 if v_out <= 0 else v_in * i_in / v_out
    if not buck_enable and not FLV and not OOV:
        current_midpoint = csi_converted - 0.003  # automatic ACS712 zero calibration
    power_input = v_in * i_in
    now_ms = time.monotonic_ns() // 1000000
    if now_ms - t_routine_ms >= ROUTINE_INTERVAL_MS:
        t_routine_ms = now_ms
        wh += power_input / (3600.0 * (1000.0 / ROUTINE_INTERVAL_MS))

    # -- Device_Protection() -----------------------------------------------------------------------------------
    bypass = v_in > v_out + V_DROPOUT
    if bypass != backflow_on:
        backflow.value = bypass
        backflow_on = bypass
    ERR = 0
    if temperature > TEMPERATURE_MAX_C:
        ERR += 1
    if v_out < V_IN_SYSTEM_MIN:  # BNC: battery not connected
        ERR += 1
    if i_in > I_IN_ABSOLUTE:
        ERR += 1
    if i_out > I_OUT_ABSOLUTE:
        ERR += 1
    if v_in < V_BATTERY_MAX + V_DROPOUT:  # IUV: input under-voltage, recover from PPWM later
        ERR += 1
        REC = True
    OOV = v_out > V_BATTERY_MAX + V_BATTERY_THRESH
    if OOV:
        ERR += 1
    FLV = v_in < V_IN_SYSTEM_MIN and v_out < V_IN_SYSTEM_MIN
    if FLV:
        ERR += 1

    # -- System_Processes(): the fan ----------------------------------------------------------------------------
    want_fan = temperature >= TEMPERATURE_FAN_C
    if want_fan != fan_on:
        fan.value = want_fan
        fan_on = want_fan

    # -- Charging_Algorithm() -----------------------------------------------------------------------------------
    if ERR > 0:
        buck_disable()
    elif REC:
        REC = False
        buck_disable()
        print("> Solar Panel Detected")
        time.sleep(REC_DELAY_S)  # "Computing For Predictive PWM ........"
        predictive_pwm(v_in, v_out)
        PWM = PPWM
    else:
        if i_out > I_CHARGING:
            PWM -= 1
        elif v_out > V_BATTERY_MAX:
            PWM -= 1
        else:
            if power_input > power_input_prev and v_in > voltage_input_prev:
                PWM -= 1
            elif power_input > power_input_prev and v_in < voltage_input_prev:
                PWM += 1
            elif power_input < power_input_prev and v_in > voltage_input_prev:
                PWM += 1
            elif power_input < power_input_prev and v_in < voltage_input_prev:
                PWM -= 1
            elif v_out < V_BATTERY_MAX:
                PWM += 1
            power_input_prev = power_input
            voltage_input_prev = v_in
        pwm_modulation(v_in, v_out)

    # -- telemetry (for the simulator) and the watchdog --------------------------------------------------------
    wd.feed()
    if now_ms - t_stat_ms >= 1000:
        t_stat_ms = now_ms
        print("STAT t_ms=%d state=%s vin_mv=%d vout_mv=%d iin_ma=%d duty=%.4f e_wh=%.4f pwm=%d ppwm=%d err=%d" % (
            now_ms, "RUN" if buck_enable else "IDLE", v_in * 1000, v_out * 1000, i_in * 1000,
            (pwm_written if buck_enable else 0) / (1 << PWM_RESOLUTION_BITS), wh, PWM, PPWM, ERR))
