"""Type-check the device code (code.py, lib/, extensions/, boardconfigs/) with mypy against circuitpython-stubs,
with a real ESP32-S3 board selected, so missing pins and CircuitPython API misuse are caught on the host.

    python tools/typecheck.py [--board BOARD_ID] [FILES...]

``circuitpython_setboard`` copies the board's pin definitions into the installed ``board-stubs`` package (it
mutates the environment); we run it only when the installed definitions differ, so repeated runs are no-ops.
The default board is the ESP32-S3-DevKitC-1 N8R8 (8 MB flash, 8 MB PSRAM), the id the simulated board reports.
Exit status: mypy's (0 = clean).
"""

import argparse
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = os.path.join(ROOT, "mypy-device.ini")
DEFAULT_BOARD = "espressif_esp32s3_devkitc_1_n8r8"
DEVICE_DIRS = ("lib", "extensions", "boardconfigs")


def _stub_files(board):
    from importlib import resources

    chosen = resources.files("board_definitions").joinpath(board).joinpath("__init__.pyi")
    installed = resources.files("board-stubs").joinpath("__init__.pyi")
    return chosen, installed


def select_board(board=DEFAULT_BOARD):
    """Make board-stubs describe `board`; returns True if it had to change them."""
    chosen, installed = _stub_files(board)
    if not chosen.is_file():
        raise SystemExit("circuitpython-stubs has no board %r (see: circuitpython_setboard --list)" % board)
    if installed.is_file() and installed.read_bytes() == chosen.read_bytes():
        return False
    exe = os.path.join(os.path.dirname(sys.executable), "circuitpython_setboard")
    cmd = [exe, board] if os.path.exists(exe) else [sys.executable, "-c",
                                                   "import sys; from circuitpython_setboard import set_board; "
                                                   "sys.argv[1:] = [%r]; set_board()" % board]
    subprocess.run(cmd, check=True, capture_output=True)
    return True


def device_targets(root=ROOT):
    """code.py (and boot.py) plus every folder of device code that has Python files."""
    out = [f for f in ("code.py", "boot.py") if os.path.isfile(os.path.join(root, f))]
    for d in DEVICE_DIRS:
        for dirpath, _, files in os.walk(os.path.join(root, d)):
            if any(f.endswith(".py") for f in files):
                out.append(d)
                break
    return out


def run_mypy(targets, cwd=ROOT, config=CONFIG):
    """(exit status, mypy's output lines)."""
    p = subprocess.run([sys.executable, "-m", "mypy", "--config-file", config, *targets], cwd=cwd,
                       capture_output=True, text=True)
    return p.returncode, [line for line in (p.stdout + p.stderr).splitlines() if line.strip()]


def errors(lines):
    return [line for line in lines if ": error:" in line]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--board", default=DEFAULT_BOARD, help="board id in circuitpython-stubs")
    ap.add_argument("files", nargs="*", help="default: all device code")
    args = ap.parse_args(argv)
    if select_board(args.board):
        print("board-stubs: selected %s" % args.board)
    status, lines = run_mypy(args.files or device_targets())
    print("\n".join(lines))
    return status


if __name__ == "__main__":
    sys.exit(main())
