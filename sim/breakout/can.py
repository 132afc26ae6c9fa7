"""The CAN module on the simulated breakout, and the host side of the bus (a CAN adapter on a PC): a log of every
frame, and a node that sends frames (requests) and acknowledges the firmware's.

Which controller the firmware talks to follows the board config, as on the device: a board whose breakout names
``can_tx`` and ``can_rx`` has a transceiver on those pins (docs/CAN.md), so the module is the bus cable to it and
the firmware's ``canio`` drives the MCU's TWAI controller (sim/devices/twai.py; without this module that transceiver
sees an empty bus, which nobody acknowledges); otherwise an MCP2515 (sim/devices/mcp2515.py, register level) on the
breakout's SPI pins and CAN chip select, with its INT pin.

The run's output folder gets ``can.log`` (candump -l format, which python-can, SavvyCAN and can-utils' canplayer
read) and ``can_decoded.txt`` (every frame decoded with cantools and docs/fugu_can.dbc).
"""

import os

from sim.devices.mcp2515 import CANBus, MCP2515Emulator
from sim.install import PROJECT_ROOT

DBC_PATH = os.path.join(PROJECT_ROOT, "docs", "fugu_can.dbc")
DEFAULT_OSC_HZ = 16000000
CHANNEL = "can0"
DECODED_MAX_LINES = 100000  # can_decoded.txt stops here (a day at 6 frames/s is ~500k frames)


def candump_line(t_s, can_id, extended, data, rtr=False):
    """'(1750504200.123456) can0 501#0102...' as candump -l writes it (3 hex digits for standard ids, 8 for
    extended; 'R' for a remote frame)."""
    ident = ("%08X" if extended else "%03X") % can_id
    payload = "R" if rtr else bytes(data).hex().upper()
    return "(%.6f) %s %s#%s" % (t_s, CHANNEL, ident, payload)


class CanHandle:
    """``source``: how the firmware's frames are marked in ``frames()`` ("mcp2515" or "twai")."""

    name = "can"

    def __init__(self, sim, bus, chip, source="mcp2515"):
        self.sim = sim
        self.bus = bus
        self.chip = chip
        self.source = source
        self._db = None

    # -- for tests: the host node --------------------------------------------------------------------------
    def send(self, can_id, data=b"", *, extended=False, rtr=False, at_s=None):
        """A host node puts a frame on the bus now, or at simulated time ``at_s`` (seconds)."""
        if at_s is None:
            return self.bus.send(can_id, data, extended=extended, rtr=rtr)
        clock = self.sim.board.clock
        clock.schedule(int(at_s * 1e9), lambda t_ns: self.bus.send(can_id, data, extended=extended, rtr=rtr))
        return None

    def frames(self):
        """Every frame seen on the bus: Frame(t_ns, id, extended, data, rtr, source), source "mcp2515" or "twai"
        (the firmware) or "host"."""
        return list(self.bus.frames)

    def firmware_frames(self):
        return [f for f in self.bus.frames if f.source == self.source]

    def dbc(self):
        if self._db is None:
            import cantools

            self._db = cantools.database.load_file(DBC_PATH)
        return self._db

    def decoded(self, source=None):
        """[(t_s, message name, {signal: value})] of the frames the DBC knows (optionally only from ``source``)."""
        db = self.dbc()
        out = []
        for f in self.bus.frames:
            if source is not None and f.source != source:
                continue
            try:
                msg = db.get_message_by_frame_id(f.id)
            except KeyError:
                continue
            if f.extended != msg.is_extended_frame or f.rtr:
                continue
            try:
                values = msg.decode(f.data, decode_choices=True)
            except Exception:  # a frame of the wrong length (e.g. a malformed request)
                continue
            out.append((f.t_ns / 1e9, msg.name, values))
        return out

    # -- outputs -------------------------------------------------------------------------------------------
    def summary(self):
        by_id: dict = {}
        for f in self.bus.frames:
            key = ("0x%08X" if f.extended else "0x%03X") % f.id
            by_id[key] = by_id.get(key, 0) + 1
        nodes = self.bus.attached  # the MCP2515, or each TWAI controller the firmware made
        return {"bitrate": self.bus.bitrate, "controller": self.source,
                "frames": len(self.bus.frames), "from_firmware": sum(n.tx_frames for n in nodes),
                "to_firmware": sum(n.rx_frames for n in nodes), "by_id": dict(sorted(by_id.items()))}

    def write(self, out_dir):
        os.makedirs(out_dir, exist_ok=True)
        epoch = getattr(self.sim.board, "epoch_offset_s", 0) or 0
        with open(os.path.join(out_dir, "can.log"), "w") as f:
            for fr in self.bus.frames:
                f.write(candump_line(epoch + fr.t_ns / 1e9, fr.id, fr.extended, fr.data, fr.rtr) + "\n")
        db = self.dbc()
        lines = 0
        with open(os.path.join(out_dir, "can_decoded.txt"), "w") as f:
            f.write("# %s frames decoded with %s; t = simulated seconds; from = firmware (%s) or host\n"
                    % (len(self.bus.frames), os.path.relpath(DBC_PATH, PROJECT_ROOT), self.source))
            for fr in self.bus.frames:
                if lines >= DECODED_MAX_LINES:
                    f.write("# ... stopped after %d lines (can.log has every frame)\n" % DECODED_MAX_LINES)
                    break
                f.write(self._decoded_line(db, fr) + "\n")
                lines += 1

    @staticmethod
    def _decoded_line(db, fr):
        head = "%10.3f %-7s 0x%03X" % (fr.t_ns / 1e9, fr.source, fr.id)
        try:
            msg = db.get_message_by_frame_id(fr.id)
        except KeyError:
            return "%s [%s] (not in the DBC)" % (head, bytes(fr.data).hex())
        try:
            values = msg.decode(fr.data, decode_choices=True)
        except Exception as e:
            return "%s %s [%s] (does not decode: %s)" % (head, msg.name, bytes(fr.data).hex(), e)
        parts = []
        for sig in msg.signals:
            v = values.get(sig.name)
            if v is None:
                continue
            if isinstance(v, float):
                text = ("%.3f" % v).rstrip("0").rstrip(".")
            else:
                text = str(v)
            parts.append("%s=%s%s" % (sig.name, text, (" " + sig.unit) if sig.unit and not isinstance(
                v, str) and not hasattr(v, "name") else ""))
        return "%s %s %s" % (head, msg.name, " ".join(parts))


def attach(sim, pins, work_dir):
    """Plug the module: the bus at the firmware's can_bitrate setting (what the user's adapter would be set to), on
    the transceiver of the TWAI pins (can_tx, can_rx) or an MCP2515 on the breakout's SPI pins and can_cs (INT on
    can_int if the board has it)."""
    board = sim.board
    settings = getattr(sim, "settings", None) or {}
    bitrate = settings.get("can_bitrate")
    if bitrate is None:
        from fugu.settings import defaults

        bitrate = defaults()["can_bitrate"]
    bus = CANBus(board.clock, bitrate=int(bitrate), ack=True)
    if pins.get("can_tx") and pins.get("can_rx"):
        key = (board.pin(pins["can_tx"]).name, board.pin(pins["can_rx"]).name)
        if not hasattr(board, "twai_buses"):
            board.twai_buses = {}
        board.twai_buses[key] = bus  # canio.CAN on these pins joins this bus
        return CanHandle(sim, bus, None, source="twai")
    chip = MCP2515Emulator(board, bus, osc_hz=pins.get("can_osc_hz", DEFAULT_OSC_HZ), int_pin=pins.get("can_int"))
    chip.attach((pins["sck"], pins["mosi"], pins["miso"]), pins["can_cs"])
    return CanHandle(sim, bus, chip)
