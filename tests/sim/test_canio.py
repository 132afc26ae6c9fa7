"""The ``canio`` stand-in (sim/hal/canio.py) on the TWAI controller model (sim/devices/twai.py) and the host-side
CAN bus the MCP2515 emulator also uses: frames timed by the bit rate, acknowledged only when another node is on the
bus, error counters and states as CAN and the ESP32 port give them, and the port's limits (one controller, one
listener with one match, in_waiting 0 or 1, queues of 5, and what auto_restart really does after bus-off).
"""

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from sim.install import install  # noqa: E402

install()

import pytest  # noqa: E402

from sim.devices.mcp2515 import CANBus, MCP2515Emulator, frame_bits  # noqa: E402
from sim.simboard import SimBoard  # noqa: E402

TX, RX = "IO42", "IO48"


class Rig:
    def __init__(self, bitrate=250000, ack=True, registered=True):
        self.board = SimBoard(["IO%d" % i for i in range(49)]).activate()
        self.bus = CANBus(self.board.clock, bitrate=bitrate, ack=ack)
        if registered:
            self.board.twai_buses = {(TX, RX): self.bus}

    def can(self, **kw):
        import board
        import canio

        return canio.CAN(getattr(board, TX), getattr(board, RX), **kw)

    def run(self, seconds):
        clock = self.board.clock
        clock.advance(int(seconds * 1e9))
        clock.run_events()

    def close(self):
        self.board.deactivate()


@pytest.fixture
def rig():
    r = Rig()
    yield r
    r.close()


def test_a_frame_takes_its_bits_at_the_bit_rate_and_is_logged_by_the_host(rig):
    import canio

    can = rig.can(baudrate=500000)
    rig.bus.bitrate = 500000
    t0 = rig.board.clock.now_ns
    can.send(canio.Message(0x501, b"\x01\x02\x03\x04\x05\x06\x07\x08"))
    rig.run(0.01)
    (f,) = rig.bus.frames
    assert (f.id, f.data, f.extended, f.source) == (0x501, b"\x01\x02\x03\x04\x05\x06\x07\x08", False, "twai")
    bits = frame_bits(0x501, False, f.data)
    assert 111 <= bits <= 140  # an 8-byte standard frame: 111 bits with the interframe space, + stuff bits
    assert f.t_ns - t0 == pytest.approx(bits * 2000, abs=20000)  # 2 us a bit at 500 kbit/s (+ the call)
    assert can.transmit_error_count == 0 and can.state == canio.BusState.ERROR_ACTIVE


def test_nobody_acknowledges_error_passive_at_tec_128_and_send_never_blocks():
    import canio

    r = Rig(ack=False)
    try:
        can = r.can()
        msg = canio.Message(0x500, bytes(8))
        t0 = r.board.clock.now_ns
        for _ in range(20):  # the TX buffer and a queue of 5 fill; the rest is dropped, silently
            can.send(msg)
        assert (r.board.clock.now_ns - t0) / 1e6 < 1.0
        r.run(0.002)
        assert can.state == canio.BusState.ERROR_ACTIVE and 0 < can.transmit_error_count < 96
        r.run(0.1)
        assert can.transmit_error_count == 128 and can.state == canio.BusState.ERROR_PASSIVE
        r.run(10.0)
        assert can.transmit_error_count == 128  # an ACK error no longer counts when passive: never bus-off
        assert r.bus.frames == []
        r.bus.ack = True  # a node joins: the six frames go out, each one lowers TEC
        r.run(0.1)
        assert len(r.bus.frames) == 6 and can.transmit_error_count == 122
        assert can.state == canio.BusState.ERROR_WARNING
    finally:
        r.close()


def test_without_a_bus_at_the_pins_nothing_is_acknowledged():
    import canio

    r = Rig(registered=False)  # the transceiver is there, its bus is empty
    try:
        can = r.can()
        can.send(canio.Message(0x500, b"x"))
        r.run(0.1)
        assert can.state == canio.BusState.ERROR_PASSIVE and r.bus.frames == []
    finally:
        r.close()


def test_another_controller_on_the_bus_acknowledges():
    import canio

    r = Rig(ack=False)
    try:
        chip = MCP2515Emulator(r.board, r.bus)  # configuration mode: no ACK
        can = r.can()
        can.send(canio.Message(0x500, b"x"))
        r.run(0.05)
        assert can.state == canio.BusState.ERROR_PASSIVE
        chip.regs[0x2A], chip.regs[0x29], chip.regs[0x28] = 0x01, 0xB1, 0x05  # 250 kbit/s at 16 MHz
        chip.write_reg(0x0F, 0x00)  # normal mode: it acknowledges, and the retried frame gets through
        r.run(0.01)
        assert [f.source for f in r.bus.frames] == ["twai"] and chip.rx_frames == 1  # masks 0: it takes all
    finally:
        r.close()


def test_a_wrong_bit_rate_goes_bus_off_and_auto_restart_leaves_it_stopped():
    """ESP-IDF ends bus recovery in the STOPPED state and the port never calls twai_start again: the state reads
    ERROR_ACTIVE, and nothing is sent until the CAN object is made anew."""
    import canio

    r = Rig(bitrate=500000)  # the others talk at 500 kbit/s
    try:
        can = r.can(baudrate=250000, auto_restart=True)
        msg = canio.Message(0x500, b"x")
        can.send(msg)
        r.run(0.1)
        assert can.state == canio.BusState.BUS_OFF and r.bus.frames == []
        t0 = r.board.clock.now_ns
        can.send(msg)  # recovery: 128 x 11 recessive bits, waited for inside send()
        assert 5e-3 < (r.board.clock.now_ns - t0) / 1e9 < 0.1
        assert can.state == canio.BusState.ERROR_ACTIVE and can.transmit_error_count == 0
        r.bus.bitrate = 250000  # the others fixed
        can.send(msg)
        r.run(0.1)
        assert r.bus.frames == []  # stopped: silently nothing
        can.deinit()
        can = r.can(baudrate=250000)
        can.send(msg)
        r.run(0.01)
        assert len(r.bus.frames) == 1
    finally:
        r.close()


def test_listener_one_match_in_waiting_is_0_or_1_and_the_rx_queue_holds_5():
    import canio

    r = Rig()
    try:
        can = r.can()
        with pytest.raises(ValueError):
            can.listen(matches=[canio.Match(1), canio.Match(2)])
        listener = can.listen(matches=[canio.Match(0x5F0)], timeout=0.01)
        with pytest.raises(ValueError):
            can.listen()
        for k in range(8):
            r.bus.send(0x5F0, bytes([k]))
        r.bus.send(0x5F1, b"no")  # filtered out
        r.bus.send((0x5F0 << 18) | 0x1234, b"ext", extended=True)  # the port's quirk: passes a standard match
        r.bus.send(0x5F0, b"", rtr=True)
        r.run(0.05)
        assert listener.in_waiting() == 1
        got = []
        while True:
            m = listener.receive()
            if m is None:
                break
            got.append(m)
        assert [m.data for m in got] == [bytes([k]) for k in range(5)]  # the other 3 (and later ones) missed
        r.bus.send((0x5F0 << 18) | 0x1234, b"ext", extended=True)
        r.bus.send(0x5F0, b"", rtr=True)
        r.run(0.01)
        ext, rtr = list(listener)
        assert ext.extended and ext.id == (0x5F0 << 18) | 0x1234
        assert isinstance(rtr, canio.RemoteTransmissionRequest) and rtr.id == 0x5F0
        t0 = r.board.clock.now_ns
        assert listener.receive() is None and 0.01 <= (r.board.clock.now_ns - t0) / 1e9 < 0.013
        listener.deinit()
        can.listen()  # the FIFO is free again
    finally:
        r.close()


def test_loopback_receives_its_own_frames_and_silent_never_sends():
    import canio

    r = Rig(ack=False)
    try:
        can = r.can(loopback=True)
        listener = can.listen(timeout=0.1)
        can.send(canio.Message(0x123, b"self"))
        assert listener.receive().data == b"self" and len(r.bus.frames) == 1  # no ACK needed
        can.deinit()
        can = r.can(silent=True)
        can.send(canio.Message(0x124, b"no"))
        r.run(0.01)
        assert len(r.bus.frames) == 1
    finally:
        r.close()


def test_the_port_refuses_what_it_cannot_do(rig):
    import board
    import canio

    with pytest.raises(ValueError):
        rig.can(baudrate=300000)
    with pytest.raises(ValueError):
        rig.can(loopback=True, silent=True)
    can = rig.can()
    with pytest.raises(ValueError):
        canio.CAN(board.IO1, board.IO2)  # one TWAI controller
    with pytest.raises(ValueError):
        canio.Message(1, bytes(9))
    with pytest.raises(TypeError):
        can.send(b"raw")
    assert rig.board.pin(TX).owner is can and rig.board.pin(RX).owner is can
    can.deinit()
    assert rig.board.pin(TX).owner is None
    with pytest.raises(ValueError):
        can.send(canio.Message(1, b""))
    with rig.can() as again:
        assert again.baudrate == 250000


def test_a_reset_mcu_frees_the_controller(rig):
    rig.can()
    rig.board.release_all_pins()  # what a watchdog reset does
    rig.can()  # the restarted firmware gets it (the port's canio_reset)
