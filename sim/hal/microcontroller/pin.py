"""microcontroller.pin: GPIO objects by their chip names (GPIO0...), resolved on the active SimBoard."""


def __getattr__(name):
    from microcontroller import Pin
    from sim.simboard import active

    if name.startswith("GPIO"):
        board_name = "IO" + name[4:]
        active().pin(board_name)  # raises AttributeError when the chip has no such GPIO
        return Pin(board_name)
    raise AttributeError(name)
