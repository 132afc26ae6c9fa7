# Stand-in for CircuitPython's `warnings` (MicroPython side): printed by default, "ignore" and "error" as the core.

_action = ["default"]


def warn(message, category=None):
    if _action[0] == "error":
        raise RuntimeError(message)
    if _action[0] != "ignore":
        print("%s: %s" % (category.__name__ if category is not None else "Warning", message))


def simplefilter(action):
    _action[0] = action
