"""The SD card module on the simulated breakout: sim/devices/sdcard.py's SPI-mode card, backed by a FAT image file
in the run's work folder, on the board config's breakout SPI pins (sck, mosi, miso) and chip select ``sd_cs``.

After a run, ``write(out_dir)`` copies the firmware's CSV files out of the image (read with the host FAT reader,
FatImage) into ``out_dir/sd/``; the image itself stays in the work folder (``summary()["image"]``; images are not
committed). Tests drive the card through the handle, e.g. ``clock.schedule(t_ns, lambda t: handle.remove())``:
``remove()``, ``insert()``, ``fail_writes()``; ``fill()`` (before the run) fills the card with old day files.
"""

import os
import time as _host_time

from sim.devices.sdcard import FatImage, SDCardEmulator, make_image

IMAGE_NAME = "sd.img"
IMAGE_SIZE_MIB = 16  # small and quick to make; FAT16 like a card up to 2 GB
LOG_DIR = "/fugu"  # where the firmware writes (extensions/csvlog.py LOG_DIR)
BURST_GAP_NS = 20_000_000  # card traffic further apart than this is another write (a row, a mount ...)


class SDModule:
    name = "sd"

    def __init__(self, sim, pins, work_dir, size_mib=IMAGE_SIZE_MIB):
        self.sim = sim
        self.clock = sim.board.clock
        self.image = make_image(os.path.join(work_dir, IMAGE_NAME), size_mib)
        self.size_mib = size_mib
        self.card = SDCardEmulator(sim.board, self.image)
        self.card.attach((pins["sck"], pins["mosi"], pins["miso"]), pins["sd_cs"])
        self.events = []  # (t_s, what) of what was done to the card
        self.bursts = []  # [start_ns, end_ns] of each burst of card traffic (for the SPI time per row)
        transfer = self.card.transfer

        def timed_transfer(out_bytes):  # the bus has already advanced the clock to the end of this transfer
            now = self.clock.now_ns
            if self.bursts and now - self.bursts[-1][1] < BURST_GAP_NS:
                self.bursts[-1][1] = now
            else:
                self.bursts.append([now, now])
            return transfer(out_bytes)

        self.card.transfer = timed_transfer

    # -- what a test does to the card ------------------------------------------------------------------------
    def _event(self, what):
        self.events.append((round(self.clock.now_ns / 1e9, 3), what))

    def remove(self):
        self.card.remove()
        self._event("removed")

    def insert(self):
        self.card.insert()
        self._event("inserted")

    def fail_writes(self, after_blocks=0, mode="error"):
        """The block write after ``after_blocks`` more good ones fails: "error" (rejected, the card goes on),
        "dead" (no answer until re-inserted) or "busy" (the card holds MISO low until it gets CMD0)."""
        self.card.fail_write(after_blocks, mode)
        self._event("fail_writes %s after %d blocks" % (mode, after_blocks))

    def fill(self, leave_bytes=64 * 1024, file_bytes=1024 * 1024, days_before=None):
        """Fill the card (call before the run: the firmware's filesystem cache must not see it change) with old
        day files (/fugu/YYYYMMDD.csv, dated before the scenario) until ``leave_bytes`` at most are free. Returns
        their names, oldest first."""
        start_s = getattr(self.sim.board, "epoch_offset_s", 1767225600)
        names = []
        with FatImage(self.image) as img:
            if not img.exists(LOG_DIR):
                img._vol.mkdir(LOG_DIR)
            header = b"time,t_s,state,pv_w\n"
            line = b"2000-01-01 00:00:00,0,IDLE,0.000\n"
            day = 1
            while True:
                free = img.free_bytes()
                if free <= leave_bytes:
                    break
                size = min(file_bytes, free - leave_bytes)
                t = _host_time.gmtime(start_s - day * 86400)
                name = "%04d%02d%02d.csv" % (t.tm_year, t.tm_mon, t.tm_mday)
                body = header + line * max(0, (size - len(header)) // len(line))
                img.write("%s/%s" % (LOG_DIR, name), body)
                names.append(name)
                day += 1
                if len(body) < len(header) + len(line):
                    break
        names.reverse()
        self._event("filled with %d old day files" % len(names))
        return names

    # -- reading the card on the host ------------------------------------------------------------------------
    def files(self):
        """{name: size} of the files in /fugu on the card (what reached the card: a power cut at the end)."""
        with FatImage(self.image) as img:
            if not img.exists(LOG_DIR):
                return {}
            return img.sizes(LOG_DIR)

    def read_text(self, name):
        with FatImage(self.image) as img:
            return img.read_text("%s/%s" % (LOG_DIR, name))

    def spi_ms_per_burst(self):
        """Durations (ms) of the bursts of card traffic (from the end of the first transfer to the end of the last):
        after the mount, one per row (its median is the SPI time of a row)."""
        return [(b - a) / 1e6 for a, b in self.bursts]

    def summary(self):
        try:
            files = self.files()
        except OSError as e:
            files = {"error": str(e)}
        bursts = sorted(self.spi_ms_per_burst())
        return {"image": self.image, "size_mib": self.size_mib, "files": files,
                "blocks_written": self.card.blocks_written, "blocks_read": self.card.blocks_read,
                "card_bursts": len(bursts),
                "card_burst_ms_median": round(bursts[len(bursts) // 2], 2) if bursts else None,
                "events": self.events}

    def write(self, out_dir):
        dest = os.path.join(out_dir, "sd")
        os.makedirs(dest, exist_ok=True)
        with FatImage(self.image) as img:
            if not img.exists(LOG_DIR):
                return
            for name in sorted(img.sizes(LOG_DIR)):
                with open(os.path.join(dest, name), "wb") as f:
                    f.write(img.read("%s/%s" % (LOG_DIR, name)))


def attach(sim, pins, work_dir):
    return SDModule(sim, pins, work_dir)
