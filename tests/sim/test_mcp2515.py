"""The MCP2515 emulator and host CAN bus (sim/devices/mcp2515.py) driven by the REAL adafruit_mcp2515 1.1.13:
bit timing from CNF1..3, frames on the bus in simulated time, reception through masks and filters, loopback,
listen-only, a bit-rate mismatch and a bus nobody acknowledges on."""

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from sim.install import install  # noqa: E402

install()

import time  # noqa: E402  (simulated)

import pytest  # noqa: E402

from sim.devices.mcp2515 import CANBus, MCP2515Emulator, frame_bits  # noqa: E402
from sim.simboard import SimBoard  # noqa: E402

PINS = ["IO%d" % i for i in range(49)]
SPI_PINS = ("IO18", "IO23", "IO19")


class Rig:
    def __init__(self, bus_bitrate=250000, ack=True, osc_hz=16000000):
        self.board = SimBoard(PINS, aliases={"SCK": "IO18", "MOSI": "IO23", "MISO": "IO19"}).activate()
        self.bus = CANBus(self.board.clock, bitrate=bus_bitrate, ack=ack)
        self.chip = MCP2515Emulator(self.board, self.bus, osc_hz=osc_hz, int_pin="IO4").attach(SPI_PINS, "IO15")
        import board
        import busio
        import digitalio

        self.spi = busio.SPI(board.SCK, board.MOSI, board.MISO)
        self.cs = digitalio.DigitalInOut(board.IO15)
        self.int_pin = digitalio.DigitalInOut(board.IO4)

    def driver(self, **kw):
        from adafruit_mcp2515 import MCP2515

        return MCP2515(self.spi, self.cs, **kw)

    def close(self):
        self.board.deactivate()


@pytest.fixture
def rig():
    r = Rig()
    yield r
    r.close()


def test_bit_timing_from_the_drivers_cnf_registers(rig):
    rig.driver(baudrate=250000)
    c = rig.chip
    assert (c.regs[0x2A], c.regs[0x29], c.regs[0x28]) == (0x41, 0xF1, 0x85)
    assert c.bitrate() == pytest.approx(250000)
    assert c.sample_point() == pytest.approx(0.625)
    assert c.mode == 0x00  # normal
    r = Rig(bus_bitrate=500000, osc_hz=8000000)
    try:
        r.driver(baudrate=500000, crystal_freq=8000000)
        assert r.chip.bitrate() == pytest.approx(500000)
    finally:
        r.close()


def test_standard_and_extended_frames_reach_the_bus_with_their_wire_time(rig):
    from adafruit_mcp2515.canio import Message

    can = rig.driver(baudrate=250000)
    t0 = rig.board.clock.now_ns
    can.send(Message(0x351, b"\x01\x02\x03\x04\x05\x06\x07\x08"))
    can.send(Message(0x18FF50E5, b"\xaa\xbb", extended=True))
    time.sleep(0.005)
    log = rig.bus.log()
    assert [(i, e, d) for _, i, e, d in log] == [(0x351, False, bytes(range(1, 9))), (0x18FF50E5, True, b"\xaa\xbb")]
    (t1, *_), (t2, *_) = log
    bit_ns = 4000  # 250 kbit/s
    assert t1 - t0 >= frame_bits(0x351, False, bytes(range(1, 9))) * bit_ns
    assert t2 - t1 >= frame_bits(0x18FF50E5, True, b"\xaa\xbb") * bit_ns  # the bus was busy with the first
    assert 111 <= frame_bits(0x351, False, bytes(range(1, 9))) <= 135  # 108 + 3 IFS + stuff bits
    assert rig.chip.regs[0x2C] & 0x0C  # TXnIF flags of the used buffers
    assert can.transmit_error_count == 0


def test_frames_from_the_bus_pass_masks_and_filters(rig):
    from adafruit_mcp2515.canio import Match

    can = rig.driver(baudrate=250000)
    listener = can.listen(matches=[Match(0x123), Match(0x1ABCDEF0, extended=True)], timeout=0.05)
    rig.bus.send(0x123, b"hi")
    rig.bus.send(0x124, b"no")  # filtered out
    rig.bus.send(0x1ABCDEF0, b"\x01\x02\x03", extended=True)
    rig.int_pin.switch_to_input()
    time.sleep(0.002)
    assert rig.int_pin.value is False  # INT asserted: a frame waits in an RX buffer
    got = []
    for _ in range(3):
        m = listener.receive()
        if m is not None:
            got.append((m.id, m.extended, bytes(m.data)))
    assert got == [(0x123, False, b"hi"), (0x1ABCDEF0, True, b"\x01\x02\x03")]
    assert rig.int_pin.value is True  # reading the RX buffers cleared the flags


def test_extended_frames_need_an_extended_filter(rig):
    """Filters match one frame type (EXIDE); the driver's listen() without matches leaves filters for standard
    frames only here (on the chip they hold whatever was there at power-up): pass explicit Match objects."""
    can = rig.driver(baudrate=250000)
    listener = can.listen(timeout=0.02)
    rig.bus.send(0x7FF, b"\x01")
    rig.bus.send(0x1FFFFFFF, b"\x02", extended=True)
    time.sleep(0.002)
    assert [m.id for m in iter(listener.receive, None)] == [0x7FF]


def test_loopback_receives_its_own_frames_and_stays_off_the_bus(rig):
    from adafruit_mcp2515.canio import Match, Message

    can = rig.driver(baudrate=250000, loopback=True, silent=True)
    assert rig.chip.mode == 0x40
    listener = can.listen(matches=[Match(0x351), Match(0x18FF50E5, extended=True)], timeout=0.05)
    can.send(Message(0x351, b"\x10\x20"))
    can.send(Message(0x18FF50E5, b"\x30", extended=True))
    got = [(m.id, m.extended, bytes(m.data)) for m in (listener.receive(), listener.receive())]
    assert got == [(0x351, False, b"\x10\x20"), (0x18FF50E5, True, b"\x30")]
    assert rig.bus.frames == []


def test_listen_only_neither_sends_nor_acknowledges():
    r = Rig(ack=False)
    try:
        from adafruit_mcp2515.canio import Message

        can = r.driver(baudrate=250000, silent=True)
        assert r.chip.mode == 0x60
        can.send(Message(0x100, b"\x01"))
        time.sleep(0.01)
        assert r.bus.frames == []
        listener = can.listen(timeout=0.02)
        r.bus.send(0x200, b"\x05")
        time.sleep(0.002)
        assert listener.receive().id == 0x200  # listening still works
    finally:
        r.close()


def test_wrong_bit_rate_exchanges_nothing_and_counts_errors():
    r = Rig(bus_bitrate=500000)
    try:
        from adafruit_mcp2515.canio import BusState, Message

        can = r.driver(baudrate=250000)
        can.send(Message(0x100, b"\x01"))
        time.sleep(0.05)
        assert r.bus.frames == []
        assert can.transmit_error_count == 128  # +8 per unacknowledged attempt, up to error passive
        assert can.state == BusState.ERROR_PASSIVE
        r.bus.send(0x200, b"\x02")
        time.sleep(0.002)
        assert can.listen(timeout=0.01).receive() is None
        assert can.receive_error_count > 0
    finally:
        r.close()


def test_a_frame_nobody_acknowledges_goes_out_once_someone_does():
    r = Rig(ack=False)
    try:
        from adafruit_mcp2515.canio import Message

        can = r.driver(baudrate=250000)
        can.send(Message(0x100, b"\x01"))
        time.sleep(0.01)
        assert r.bus.frames == [] and can.transmit_error_count > 0
        r.bus.ack = True  # another node joins the bus
        time.sleep(0.01)
        assert [f.id for f in r.bus.frames] == [0x100]
    finally:
        r.close()


def test_receive_overflow_is_flagged_when_the_firmware_does_not_read(rig):
    can = rig.driver(baudrate=250000)
    for i in range(4):
        rig.bus.send(0x100 + i, bytes((i,)))
    time.sleep(0.005)
    # RXB0 full, rolled over into RXB1, then lost: RX1OVR (the driver's listen() would read 2 of them)
    assert rig.chip.regs[0x2D] & 0x80
    from adafruit_mcp2515.canio import Listener

    got = [m.id for m in iter(Listener(can, 0.01).receive, None)]
    assert got == [0x100, 0x101]
