"""Per-board pinout, sensing front-ends and power-stage values. One module per board; the firmware picks one by
the board identifier stored in microcontroller.nvm (see fugu.boardid). Plain dicts: the same files are read by the
device and by the simulated board (which builds its hardware from the nominal values)."""
