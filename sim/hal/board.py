"""Stand-in for ``board``: the pins the selected board config names (IO0... plus aliases such as SDA), board_id,
and the I2C()/SPI() singletons. Attributes resolve on the active SimBoard, so one import serves many runs."""

from sim.simboard import active

_singletons = {}


def __getattr__(name):
    b = active()
    if name == "board_id":
        return b.board_id
    from microcontroller import Pin

    try:
        wire = b.pin(name)
    except AttributeError:
        raise AttributeError("module 'board' has no attribute '%s'" % name) from None
    return Pin(wire.name)


def __dir__():
    b = active()
    return sorted(list(b.pins) + list(b.aliases) + ["board_id", "I2C", "SPI", "UART"])


def _singleton(kind, factory):
    b = active()
    key = (id(b), kind)
    obj = _singletons.get(key)
    if obj is None or getattr(obj, "_deinited", False):
        obj = factory()
        _singletons.clear() if len(_singletons) > 16 else None
        _singletons[key] = obj
    return obj


def I2C():  # noqa: N802 (CircuitPython's name)
    import busio

    b = active()
    return _singleton("i2c", lambda: busio.I2C(__getattr__("SCL"), __getattr__("SDA"), frequency=getattr(
        b, "default_i2c_hz", 100000)))


def SPI():  # noqa: N802
    import busio

    return _singleton("spi", lambda: busio.SPI(__getattr__("SCK"), __getattr__("MOSI"), __getattr__("MISO")))


def UART():  # noqa: N802
    import busio

    return _singleton("uart", lambda: busio.UART(__getattr__("TX"), __getattr__("RX")))
