"""The SSD1306 emulator (sim/devices/ssd1306.py) driven by the REAL adafruit_displayio_ssd1306 3.0.6 through the
displayio stand-ins (blinka-displayio's engine without its thread, our core-like i2cdisplaybus): what the glass shows
after init, drawing and refresh, and what the OLED costs on the simulated I2C bus."""

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from sim.install import install  # noqa: E402

install()

import time  # noqa: E402  (simulated)

import pytest  # noqa: E402

from sim.devices.ssd1306 import SSD1306Emulator  # noqa: E402
from sim.simboard import SimBoard  # noqa: E402

PINS = ["IO%d" % i for i in range(49)]


class Rig:
    """A board with an SSD1306 module at 0x3C on SCL=IO22/SDA=IO21 and the display driver set up on it."""

    def __init__(self, height=64, present=True, i2c_hz=400000, auto_refresh=False):
        self.board = SimBoard(PINS, aliases={"SDA": "IO21", "SCL": "IO22"}).activate()
        self.oled = SSD1306Emulator(self.board, height=height)
        if present:
            self.board.add_i2c_device(("IO22", "IO21"), 0x3C, self.oled)
        import board
        import busio
        import displayio

        displayio.release_displays()
        self.i2c = busio.I2C(board.SCL, board.SDA, frequency=i2c_hz)
        self.height = height
        self.auto_refresh = auto_refresh

    def display(self):
        import adafruit_displayio_ssd1306
        import i2cdisplaybus

        bus = i2cdisplaybus.I2CDisplayBus(self.i2c, device_address=0x3C)
        return adafruit_displayio_ssd1306.SSD1306(bus, width=128, height=self.height, auto_refresh=self.auto_refresh)

    def close(self):
        import displayio

        displayio.release_displays()
        self.board.deactivate()


@pytest.fixture
def rig():
    r = Rig()
    yield r
    r.close()


def _pattern_group(points):
    import displayio

    bmp = displayio.Bitmap(128, 64, 2)
    pal = displayio.Palette(2)
    pal[0] = 0x000000
    pal[1] = 0xFFFFFF
    for x, y in points:
        bmp[x, y] = 1
    g = displayio.Group()
    g.append(displayio.TileGrid(bmp, pixel_shader=pal))
    return g


def test_driver_init_sequence_configures_the_panel(rig):
    rig.display()
    o = rig.oled
    assert o.display_on and o.charge_pump and o.lit
    assert o.mux == 63 and o.com_config == 0x12  # 64 rows, alternative COM pins
    assert o.seg_remap and o.com_remap
    assert o.addressing_mode == 0  # horizontal
    assert o.contrast == 0xFF  # the driver's brightness=1.0 after the init's 0xCF
    assert o.unknown_commands == []
    # 13 init commands with the core's 10 ms pause after each
    assert rig.board.clock.now_ns >= 130e6


def test_status_byte_identifies_an_ssd1306_and_its_power_state(rig):
    buf = bytearray(1)
    rig.i2c.try_lock()
    rig.i2c.readfrom_into(0x3C, buf)
    rig.i2c.unlock()
    assert buf[0] & 0x40 and buf[0] & 0x0F == 0x06  # off after power-up; 128x64 SSD1306
    d = rig.display()
    rig.i2c.try_lock()
    rig.i2c.readfrom_into(0x3C, buf)
    rig.i2c.unlock()
    assert not buf[0] & 0x40
    d.sleep()
    assert not rig.oled.display_on


def test_bitmap_drawn_through_displayio_appears_on_the_glass_and_in_the_png(rig, tmp_path):
    from PIL import Image

    d = rig.display()
    points = [(0, 0), (127, 0), (0, 63), (127, 63), (64, 32), (10, 5), (11, 6), (12, 7)]
    d.root_group = _pattern_group(points)
    d.refresh()
    path = rig.oled.save_png(str(tmp_path / "oled.png"))
    img = Image.open(path)
    assert img.size == (128, 64)
    lit = {(x, y) for y in range(64) for x in range(128) if img.getpixel((x, y))}
    assert lit == set(points), rig.oled.text_art()


def test_text_label_renders_where_displayio_puts_it(rig):
    import terminalio
    from adafruit_display_text import label

    d = rig.display()
    g = _pattern_group([])
    lbl = label.Label(terminalio.FONT, text="FUGU 123 W", color=0xFFFFFF, x=4, y=20)
    g.append(lbl)
    d.root_group = g
    d.refresh()
    img = rig.oled.to_image()
    xs = [x for y in range(64) for x in range(128) if img.getpixel((x, y))]
    ys = [y for y in range(64) for x in range(128) if img.getpixel((x, y))]
    bx, by, bw, bh = lbl.bounding_box
    assert len(xs) > 60  # ten glyphs of a 6x12 font
    assert min(xs) >= 4 + bx and max(xs) < 4 + bx + bw
    assert min(ys) >= 20 + by and max(ys) < 20 + by + bh


def test_128x32_module_is_upright_with_the_drivers_patched_sequence():
    r = Rig(height=32)
    try:
        d = r.display()
        assert r.oled.mux == 31 and r.oled.com_config == 0x02
        d.root_group = _pattern_group([(0, 0), (127, 31), (3, 9)])
        d.refresh()
        img = r.oled.to_image()
        assert img.size == (128, 32)
        lit = {(x, y) for y in range(32) for x in range(128) if img.getpixel((x, y))}
        assert lit == {(0, 0), (127, 31), (3, 9)}
    finally:
        r.close()


def test_display_off_inversion_and_wrong_com_config_show_as_on_real_glass(rig):
    d = rig.display()
    d.root_group = _pattern_group([(5, 5)])
    d.refresh()
    o = rig.oled
    d.sleep()
    assert o.to_image().getbbox() is None  # display off: black
    d.wake()
    d.bus.send(0xA7, b"")  # inverse display
    img = o.to_image()
    assert img.getpixel((5, 5)) == 0 and img.getpixel((6, 5)) == 255
    d.bus.send(0xA6, b"")
    d.bus.send(0xDA, b"\x02")  # sequential COM pins on a module wired for the alternative configuration
    img = o.to_image()
    lit = [(x, y) for y in range(64) for x in range(128) if img.getpixel((x, y))]
    assert lit and lit != [(5, 5)]  # the row lands elsewhere: interleaved as on a real panel
    d.bus.send(0x8D, b"\x10")  # charge pump off, no external VCC: the glass stays dark
    assert not o.lit and o.to_image().getbbox() is None


def test_refresh_costs_real_i2c_time_and_only_dirty_areas_are_resent(rig):
    d = rig.display()
    d.root_group = _pattern_group([(1, 1)])
    clock = rig.board.clock
    t0 = clock.now_ns
    d.refresh()
    full_ns = clock.now_ns - t0
    # 1024 data bytes at 400 kHz: 9 bits a byte
    assert full_ns >= 1024 * 9 / 400e3 * 1e9
    assert rig.oled.data_bytes == 1024 and rig.oled.frames == 1
    t0 = clock.now_ns
    d.refresh()  # nothing changed
    assert rig.oled.data_bytes == 1024
    d.root_group[0].bitmap[100, 50] = 1
    d.refresh()
    small = rig.oled.data_bytes - 1024
    assert 0 < small <= 16  # one 8-row page of the dirty columns
    assert rig.oled.ram_pixel(100, 50) == 1


def test_absent_display_raises_valueerror_for_autodetection():
    r = Rig(present=False)
    try:
        with pytest.raises(ValueError, match="Unable to find I2C Display at 3c"):
            r.display()
        # the bus is still usable (nothing claimed it)
        assert r.i2c.try_lock()
        r.i2c.unlock()
    finally:
        r.close()


def test_release_displays_keeps_the_shared_i2c_bus(rig):
    import displayio

    rig.display()
    displayio.release_displays()
    assert rig.i2c.probe(0x3C)  # not deinitialised: the ADC shares it on the device
    rig.display()  # and a new display can be made


def test_auto_refresh_runs_in_simulated_time_and_waits_for_the_bus_lock():
    r = Rig(auto_refresh=True)
    try:
        d = r.display()
        d.root_group = _pattern_group([(2, 2)])
        time.sleep(0.1)
        assert r.oled.ram_pixel(2, 2) == 1  # refreshed in the background, within the frame period
        frames = r.oled.frames
        d.root_group[0].bitmap[3, 3] = 1
        r.i2c.try_lock()  # another driver holds the bus: the background refresh must not touch it
        time.sleep(0.1)
        assert r.oled.frames == frames and r.oled.ram_pixel(3, 3) == 0
        r.i2c.unlock()
        time.sleep(0.05)
        assert r.oled.ram_pixel(3, 3) == 1
    finally:
        r.close()
