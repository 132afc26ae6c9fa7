"""Stand-in for ``micropython``: const() and the code-emitter decorators as no-ops."""


def const(x):
    return x


def native(f):
    return f


def viper(f):
    return f


def opt_level(level=None):
    return 0


def mem_info(verbose=None):
    pass


def alloc_emergency_exception_buf(size):
    pass


def schedule(func, arg):
    func(arg)
