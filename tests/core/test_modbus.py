"""The pure Modbus RTU server logic (lib/fugu/modbus.py) against pymodbus as the other side: the CRC and frame
lengths agree with pymodbus's RTU framer, answers decode with pymodbus, errors get the standard's exception codes
(or silence), frames are cut right from bursts of bytes, and the module runs the same in MicroPython."""

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pymodbus.framer import FramerRTU
from pymodbus.pdu import DecodePDU, ExceptionResponse
from pymodbus.pdu.bit_message import ReadCoilsRequest, WriteMultipleCoilsRequest
from pymodbus.pdu.register_message import (ReadHoldingRegistersRequest, ReadInputRegistersRequest,
                                           ReadInputRegistersResponse, ReadHoldingRegistersResponse,
                                           WriteMultipleRegistersRequest, WriteMultipleRegistersResponse,
                                           WriteSingleRegisterRequest, WriteSingleRegisterResponse)

from fugu import modbus

CLIENT = FramerRTU(DecodePDU(False))  # decodes answers
SERVER = FramerRTU(DecodePDU(True))  # decodes requests


class RegisterBank:
    """A plain register bank for the server under test: holding 0..9 writable (a value above 1000 is refused),
    input 100..104 read-only."""

    def __init__(self):
        self.holding = list(range(10))
        self.input = {100 + i: 0xA000 + i for i in range(5)}

    def read(self, fc, start, count, out, pos):
        for i in range(count):
            a = start + i
            if fc == 3:
                if a >= len(self.holding):
                    return modbus.EX_ILLEGAL_ADDRESS
                v = self.holding[a]
            else:
                if a not in self.input:
                    return modbus.EX_ILLEGAL_ADDRESS
                v = self.input[a]
            modbus.put_u16(out, pos + 2 * i, v)
        return 0

    def write(self, start, count, data, pos):
        if start + count > len(self.holding):
            return modbus.EX_ILLEGAL_ADDRESS
        values = [modbus.get_u16(data, pos + 2 * i) for i in range(count)]
        if any(v > 1000 for v in values):
            return modbus.EX_ILLEGAL_VALUE
        self.holding[start:start + count] = values
        return 0


def ask(server, frame):
    """The server's answer to ``frame`` (bytes), b"" for silence."""
    req = bytearray(modbus.ADU_MAX)
    req[:len(frame)] = frame
    resp = bytearray(modbus.ADU_MAX)
    n = server.handle(req, len(frame), resp)
    return bytes(resp[:n])


def answer_pdu(frame, dev_id=1):
    used, pdu = CLIENT.handleFrame(frame, dev_id, 0)
    assert used == len(frame) and pdu is not None, frame.hex()
    return pdu


def build(pdu):
    return CLIENT.buildFrame(pdu)


def sealed(raw):
    buf = bytearray(raw) + b"\0\0"
    modbus.seal(buf, len(raw))
    return bytes(buf)


@pytest.fixture
def server():
    return modbus.RtuServer(RegisterBank(), address=1, max_read=16)


# -- CRC and frame lengths ------------------------------------------------------------------------------------
@given(st.binary(min_size=0, max_size=300))
def test_crc_matches_pymodbus(data):
    crc = modbus.crc16(data, 0, len(data))
    assert bytes([crc & 0xFF, crc >> 8]) == FramerRTU.compute_CRC(data).to_bytes(2, "big")


def test_crc_known_value():
    # the reference example of the Modbus serial line guide: 01 03 00 00 00 0A -> CRC C5 CD (low byte first)
    assert sealed(bytes.fromhex("01030000000a")).hex() == "01030000000ac5cd"


@pytest.mark.parametrize("pdu", [
    ReadCoilsRequest(address=3, count=9, dev_id=7),
    ReadHoldingRegistersRequest(address=0, count=125, dev_id=1),
    ReadInputRegistersRequest(address=1000, count=16, dev_id=247),
    WriteSingleRegisterRequest(address=18, registers=[900], dev_id=1),
    WriteMultipleRegistersRequest(address=14, registers=[75, 90, 1, 2, 3], dev_id=0),
    WriteMultipleCoilsRequest(address=1, bits=[True] * 11, dev_id=3),
])
def test_request_length_and_crc_agree_with_pymodbus(pdu):
    frame = build(pdu)
    assert modbus.request_length(frame, len(frame)) == len(frame)
    assert modbus.crc_ok(frame, len(frame))
    assert not modbus.crc_ok(frame[:-1] + bytes([frame[-1] ^ 1]), len(frame))


@pytest.mark.parametrize("pdu", [
    ReadInputRegistersResponse(registers=[1, 2, 3], dev_id=2),
    ReadHoldingRegistersResponse(registers=list(range(16)), dev_id=9),
    WriteSingleRegisterResponse(address=4, registers=[5], dev_id=2),
    WriteMultipleRegistersResponse(address=4, count=2, dev_id=2),
    ExceptionResponse(4, 2, device_id=3),
])
def test_response_length_agrees_with_pymodbus(pdu):
    frame = SERVER.buildFrame(pdu)
    assert modbus.response_length(frame, len(frame)) == len(frame)


# -- the server -------------------------------------------------------------------------------------------------
def test_read_holding_and_input_registers_decode_in_pymodbus(server):
    pdu = answer_pdu(ask(server, build(ReadHoldingRegistersRequest(address=2, count=5, dev_id=1))))
    assert pdu.function_code == 3 and pdu.registers == [2, 3, 4, 5, 6]
    pdu = answer_pdu(ask(server, build(ReadInputRegistersRequest(address=100, count=5, dev_id=1))))
    assert pdu.function_code == 4 and pdu.registers == [0xA000 + i for i in range(5)]


def test_writes_echo_and_change_the_registers(server):
    pdu = answer_pdu(ask(server, build(WriteSingleRegisterRequest(address=3, registers=[777], dev_id=1))))
    assert isinstance(pdu, WriteSingleRegisterResponse) and pdu.address == 3 and pdu.registers == [777]
    pdu = answer_pdu(ask(server, build(WriteMultipleRegistersRequest(address=5, registers=[10, 20, 30], dev_id=1))))
    assert isinstance(pdu, WriteMultipleRegistersResponse) and pdu.address == 5 and pdu.count == 3
    assert server.registers.holding[3:8] == [777, 4, 10, 20, 30]


def exception_code(frame):
    pdu = answer_pdu(frame)
    assert isinstance(pdu, ExceptionResponse), pdu
    return pdu.exception_code


@pytest.mark.parametrize("pdu, code", [
    (ReadCoilsRequest(address=0, count=1, dev_id=1), 1),  # unsupported function
    (ReadHoldingRegistersRequest(address=8, count=3, dev_id=1), 2),  # runs past the map
    (ReadInputRegistersRequest(address=0, count=1, dev_id=1), 2),
    (ReadInputRegistersRequest(address=100, count=17, dev_id=1), 3),  # above max_read
    (WriteSingleRegisterRequest(address=20, registers=[1], dev_id=1), 2),
    (WriteSingleRegisterRequest(address=1, registers=[5000], dev_id=1), 3),  # refused value
    (WriteMultipleRegistersRequest(address=0, registers=[1, 2000], dev_id=1), 3),
])
def test_exceptions(server, pdu, code):
    before = list(server.registers.holding)
    assert exception_code(ask(server, build(pdu))) == code
    assert server.registers.holding == before


def test_malformed_requests_get_exception_03(server):
    # a read of 0 registers, a read with an extra byte, a write multiple whose byte count is wrong
    assert exception_code(ask(server, sealed(bytes.fromhex("010300000000")))) == 3
    assert exception_code(ask(server, sealed(bytes.fromhex("01030000000100")))) == 3
    assert exception_code(ask(server, sealed(bytes.fromhex("0110000000010300010002")))) == 3
    assert exception_code(ask(server, sealed(bytes.fromhex("01100000")))) == 3
    assert exception_code(ask(server, sealed(bytes.fromhex("0103ffff0002")))) == 2  # past address 65535


def test_bad_crc_wrong_address_and_broadcast_reads_are_silent(server):
    frame = bytearray(build(WriteSingleRegisterRequest(address=1, registers=[99], dev_id=1)))
    frame[-1] ^= 0x40
    assert ask(server, bytes(frame)) == b""
    assert ask(server, build(WriteSingleRegisterRequest(address=1, registers=[99], dev_id=2))) == b""
    assert ask(server, build(ReadHoldingRegistersRequest(address=0, count=1, dev_id=0))) == b""
    assert ask(server, b"\x01\x03") == b""
    assert server.registers.holding[1] == 1
    assert server.crc_errors == 2 and server.foreign == 1


def test_broadcast_writes_are_executed_without_an_answer(server):
    assert ask(server, build(WriteSingleRegisterRequest(address=1, registers=[99], dev_id=0))) == b""
    assert ask(server, build(WriteMultipleRegistersRequest(address=4, registers=[7, 8], dev_id=0))) == b""
    assert ask(server, build(WriteSingleRegisterRequest(address=1, registers=[5000], dev_id=0))) == b""  # refused
    assert ask(server, build(ReadCoilsRequest(address=0, count=1, dev_id=0))) == b""
    assert server.registers.holding[1] == 99 and server.registers.holding[4:6] == [7, 8]


@settings(max_examples=400, deadline=None)
@given(st.binary(min_size=0, max_size=modbus.ADU_MAX))
def test_random_frames_never_raise_and_answers_are_valid_frames(data):
    server = modbus.RtuServer(RegisterBank(), address=1, max_read=16)
    out = ask(server, data)
    if out:
        assert modbus.crc_ok(out, len(out)) and out[0] == 1
        assert CLIENT.handleFrame(out, 1, 0)[1] is not None


# -- cutting frames out of bursts -----------------------------------------------------------------------------
def feed(rx, data):
    rx.buf[rx.n:rx.n + len(data)] = data
    rx.n += len(data)


def frames_out(rx, address, silent):
    out = []
    while True:
        n = rx.next_frame(address, silent)
        if not n:
            return out
        out.append(bytes(rx.buf[:n]))
        rx.consume(n)


def test_a_request_is_complete_as_soon_as_its_crc_checks():
    rx = modbus.RtuReceiver()
    frame = build(ReadInputRegistersRequest(address=0, count=16, dev_id=1))
    feed(rx, frame[:5])
    assert frames_out(rx, 1, silent=False) == []
    feed(rx, frame[5:])
    assert frames_out(rx, 1, silent=False) == [frame]
    assert rx.n == 0


def test_back_to_back_frames_of_other_devices_are_skipped_by_their_length():
    """A poll sees whole bursts: another slave's request and answer, then ours, in one read."""
    rx = modbus.RtuReceiver()
    other_req = build(ReadHoldingRegistersRequest(address=0, count=2, dev_id=5))
    other_resp = SERVER.buildFrame(ReadHoldingRegistersResponse(registers=[1, 2], dev_id=5))
    ours = build(WriteMultipleRegistersRequest(address=0, registers=[1, 2, 3], dev_id=1))
    feed(rx, other_req + other_resp + ours)
    assert frames_out(rx, 1, silent=False) == [other_req, other_resp, ours]


def test_garbage_waits_for_the_silence_and_is_one_frame():
    rx = modbus.RtuReceiver()
    frame = bytearray(build(ReadInputRegistersRequest(address=0, count=2, dev_id=1)))
    frame[3] ^= 0xFF  # a corrupted byte: the CRC fails at the expected length
    feed(rx, frame)
    assert frames_out(rx, 1, silent=False) == []
    assert frames_out(rx, 1, silent=True) == [bytes(frame)]
    server = modbus.RtuServer(RegisterBank(), address=1)
    assert ask(server, bytes(frame)) == b""


def test_an_unknown_function_ends_at_the_silence_and_gets_exception_01():
    rx = modbus.RtuReceiver()
    frame = sealed(bytes.fromhex("012b0e0100"))  # read device identification (MEI), not supported
    feed(rx, frame)
    assert frames_out(rx, 1, silent=False) == []
    got = frames_out(rx, 1, silent=True)
    assert got == [frame]
    assert exception_code(ask(modbus.RtuServer(RegisterBank()), got[0])) == 1


def test_overflow_drops_until_the_silence():
    rx = modbus.RtuReceiver(size=32)
    feed(rx, bytes(range(32)))
    assert frames_out(rx, 1, silent=False) == []
    rx.drop_until_silence()
    feed(rx, b"\x01\x03")
    assert frames_out(rx, 1, silent=False) == []
    assert frames_out(rx, 1, silent=True) == []
    assert rx.n == 0 and not rx.overflow and rx.overflows == 1
    frame = build(ReadHoldingRegistersRequest(address=0, count=1, dev_id=1))
    feed(rx, frame)
    assert frames_out(rx, 1, silent=False) == [frame]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(min_size=0, max_size=40), max_size=12), st.integers(1, 247))
def test_the_receiver_always_makes_progress(chunks, address):
    rx = modbus.RtuReceiver(size=64)
    for chunk in chunks:
        chunk = chunk[:rx.free()]
        feed(rx, chunk)
        for n in (rx.next_frame(address, False), rx.next_frame(address, True)):
            assert 0 <= n <= rx.n
            rx.consume(n)
        if rx.free() == 0:
            rx.drop_until_silence()
    rx.next_frame(address, True)
    assert rx.n == 0 or rx.next_frame(address, True) > 0


# -- the same in MicroPython ----------------------------------------------------------------------------------
def test_the_module_gives_the_same_answers_in_micropython():
    """Golden frames computed here (CPython) are checked inside MicroPython by a module that imports fugu.modbus."""
    from devicecheck.harness import check_imports

    server = modbus.RtuServer(RegisterBank(), address=1, max_read=16)
    cases = [
        build(ReadHoldingRegistersRequest(address=2, count=5, dev_id=1)),
        build(ReadInputRegistersRequest(address=100, count=17, dev_id=1)),
        build(WriteMultipleRegistersRequest(address=5, registers=[10, 20, 30], dev_id=1)),
        build(WriteSingleRegisterRequest(address=1, registers=[5000], dev_id=1)),
        build(ReadCoilsRequest(address=0, count=1, dev_id=1)),
        build(WriteSingleRegisterRequest(address=1, registers=[99], dev_id=0)),
        sealed(bytes.fromhex("01030000000100")),
        build(ReadHoldingRegistersRequest(address=0, count=3, dev_id=1))[:-1] + b"\x00",
    ]
    golden = [(c, ask(server, c)) for c in cases]
    bank_src = __import__("inspect").getsource(RegisterBank).replace("list(range(10))", "[i for i in range(10)]")
    src = "\n".join([
        "from fugu import modbus",
        bank_src,
        "server = modbus.RtuServer(RegisterBank(), address=1, max_read=16)",
        "req = bytearray(modbus.ADU_MAX)",
        "resp = bytearray(modbus.ADU_MAX)",
        "for frame, expect in %r:" % (golden,),
        "    req[:len(frame)] = frame",
        "    n = server.handle(req, len(frame), resp)",
        "    assert bytes(resp[:n]) == expect, (frame, bytes(resp[:n]), expect)",
        "assert modbus.crc16(b'123456789', 0, 9) == 0x4B37",
        "rx = modbus.RtuReceiver()",
        "two = %r" % (golden[0][0] + golden[2][0],),
        "rx.buf[:len(two)] = two",
        "rx.n = len(two)",
        "n1 = rx.next_frame(1, False)",
        "rx.consume(n1)",
        "assert (n1, rx.next_frame(1, False)) == (%d, %d)" % (len(golden[0][0]), len(golden[2][0])),
    ])
    reports = check_imports(modules=["modbus_mpcheck"], compile_files=(),
                            extra_files={"lib/modbus_mpcheck.py": src})
    assert ("ok", "modbus_mpcheck", "") in reports, reports


def test_struct_free_register_helpers():
    buf = bytearray(4)
    modbus.put_u16(buf, 0, -2)
    modbus.put_u16(buf, 2, 0x1234)
    assert struct.unpack(">hH", buf) == (-2, 0x1234)
    assert modbus.get_u16(buf, 2) == 0x1234
