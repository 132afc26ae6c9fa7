# Self-test of the host link (run by tests/device): every stand-in call that returns nothing, a bool or a small int
# must leave gc.mem_alloc() unchanged, or the allocation figure of a firmware run would include the harness.
# Reports "alloc<TAB>operation<TAB>bytes per call" for each operation, then "fuel" marks for a calibration loop.

import gc

import _hostlink as _l

N = 20


def _report(name, per_call):
    _l.call("report", "alloc\t%s\t%s" % (name, per_call))


def main():
    import analogio
    import board
    import busio
    import digitalio
    import microcontroller
    import pwmio
    import supervisor
    import time

    i2c = busio.I2C(board.SCL, board.SDA, frequency=400000)
    pwm = pwmio.PWMOut(board.IO25, frequency=39000, duty_cycle=0)
    pin = digitalio.DigitalInOut(board.IO26)
    pin.switch_to_output(False)
    ntc = analogio.AnalogIn(board.IO35)
    wd = microcontroller.watchdog
    wd.timeout = 5.0
    wd.mode = "RAISE"
    out = bytearray(b"\x01")
    buf = bytearray(2)
    nvm = microcontroller.nvm
    x = 0

    def lock():
        i2c.try_lock()
        i2c.unlock()

    def write():
        i2c.writeto(0x48, out)

    def write_then_read():
        i2c.writeto_then_readfrom(0x48, out, buf, in_end=2)

    def read_into():
        i2c.readfrom_into(0x48, buf, end=2)

    def pin_set():
        pin.value = True

    def pin_get():
        return pin.value

    def duty():
        pwm.duty_cycle = 1000

    def duty_get():
        return pwm.duty_cycle

    def analog():
        return ntc.value

    def ticks():
        return supervisor.ticks_ms()

    def sleep0():
        time.sleep(0)

    def nvm_byte():
        return nvm[5]

    def feed():
        wd.feed()

    cases = (("i2c.try_lock+unlock", lock), ("i2c.writeto", write), ("i2c.writeto_then_readfrom", write_then_read),
             ("i2c.readfrom_into", read_into), ("digitalio.value=", pin_set), ("digitalio.value", pin_get),
             ("pwmio.duty_cycle=", duty), ("pwmio.duty_cycle", duty_get), ("analogio.value", analog),
             ("supervisor.ticks_ms", ticks), ("time.sleep(0)", sleep0), ("nvm[i]", nvm_byte),
             ("watchdog.feed", feed))
    for name, fn in cases:
        fn()  # first call: anything lazily created
        a = gc.mem_alloc()
        for _ in range(N):
            x = fn()
        _report(name, (gc.mem_alloc() - a) // N)
    # calibration for the instruction count: the same loop with and without a stand-in call in it
    _mark("empty")
    for _ in range(N):
        x = 0
    _mark("ticks")
    for _ in range(N):
        x = supervisor.ticks_ms()
    _mark("end")
    return x


def _mark(name):
    _l.enter()
    _l.call("report", "mark\t" + name + "\t")
    _l.leave()
