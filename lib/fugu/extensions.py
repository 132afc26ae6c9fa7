"""Stackable extensions: discovery at boot, lifecycle hooks, and isolation of failures.

An extension is a module ``extensions/<name>.py`` (or a package) that defines ``EXTENSION``, a subclass of
:class:`Extension`. At boot the host imports the extensions this firmware ships (KNOWN, in that order) and then any
other module dropped into ``extensions/`` (a user's own; modules without ``EXTENSION`` are support code and are
skipped; ours, SUPPORT, are not even imported), leaves out those disabled in the settings
(``extensions_disabled``), asks each whether its hardware is plugged (``probe()``: an I2C address plus an identity
check, or an SPI chip-select plus an identity command), and starts the ones that answer. What was found is printed.

Isolation: the host makes at most ONE extension call per control step (observe a new snapshot, or the periodic work
that is due), measures it, and stops an extension that raises or overruns its time budget (reported on the console
with the reason), so the control loop keeps its period. Extensions see the telemetry snapshot
(:mod:`fugu.telemetry`) and the settings only through :meth:`ExtContext.request_setting` (validated); they are never
given the gate driver or the stages.
"""

import os
import sys

from micropython import const

from fugu.sensors import ticks_diff

try:
    from supervisor import ticks_ms
except ImportError:
    from fugu.sensors import ticks_ms

# the extensions this firmware knows, in start order (display first: it shows what the others report)
KNOWN = ("oled", "sd_log", "can", "rs485", "ble_setup")
# support modules of those (no EXTENSION): discovery does not import them just to find that out, because the names
# a module brings (qstrs) stay interned in RAM after it is unloaded (~3.5 KB of heap for these three)
SUPPORT = ("canmap", "csvlog", "oled_pages")
_START_BUDGET_MS = const(3000)  # start() may mount a card or reset a chip: runs before the converter may start
_MAX_STRIKES = const(3)  # calls over budget, with fewer than _FORGIVE_CALLS good calls between them, stop
# an extension
_FORGIVE_CALLS = const(20)
_HARD_FACTOR = const(5)  # one call over _HARD_FACTOR x budget stops it at once


def drop_ins():
    """Module names in the extensions package folder(s), sorted ("" when there is none)."""
    try:
        import extensions
    except ImportError:
        return []
    paths = getattr(extensions, "__path__", "")
    if isinstance(paths, str):
        paths = [paths]
    names = []
    for path in paths:
        try:
            entries = os.listdir(path)
        except OSError:
            continue
        for fn in entries:
            if fn.startswith("_") or fn.startswith("."):
                continue
            if fn.endswith(".py"):
                fn = fn[:-3]
            elif fn.endswith(".mpy"):
                fn = fn[:-4]
            elif "." in fn:
                continue
            if fn not in names:
                names.append(fn)
    names.sort()
    return names


def _unload(name):
    """Forget an extension module that will not run, so the garbage collector can take its code back."""
    sys.modules.pop("extensions." + name, None)
    pkg = sys.modules.get("extensions")
    if pkg is not None and hasattr(pkg, name):
        try:
            delattr(pkg, name)
        except (AttributeError, TypeError):
            pass


class Extension:
    """Base class. Override the hooks you need; keep each call within ``budget_ms`` (do long work in steps)."""

    name = "extension"
    period_ms = 1000  # how often tick() is due
    budget_ms = 20  # longest acceptable call (ms); see _MAX_STRIKES / _HARD_FACTOR
    hotplug_ms = 0  # not found at boot: 0 = not looked for again; else probed again this often (a card socket)

    def __init__(self, ctx):
        self.ctx = ctx

    def probe(self):
        """True when the module is plugged (identity checked). Reads only; raising counts as absent."""
        return False

    def start(self):
        """Once, after a successful probe, before the control loop starts switching."""

    def observe(self, tel):
        """A new telemetry snapshot (about once a second). ``tel`` is refreshed in place: copy what you keep."""

    def tick(self, now_ms):
        """Periodic work, every ``period_ms``."""

    def stop(self):
        """Release the hardware (also called after a failure; must not raise)."""

    def status(self):
        """One short line for the console at start (what was found: address, card size, bit rate ...)."""
        return ""


class ExtContext:
    """What an extension may use: the board config's breakout pins, the shared buses, the telemetry snapshot, the
    validated settings API, a log, and ``notices`` (short strings extensions share, e.g. the BLE PIN for the OLED)."""

    def __init__(self, cfg, mods, settings, telemetry, i2c=None, log=print):
        self.cfg = cfg
        self.mods = mods
        self.board = mods["board"]
        self.breakout = cfg.get("breakout", {})
        self.settings = settings
        self.telemetry = telemetry
        if i2c is None and "sda" in cfg.get("pins", {}):
            # a board whose ADC is not on I2C still has the breakout's I2C pins
            try:
                i2c = mods["busio"].I2C(self.pin_named(cfg["pins"]["scl"]), self.pin_named(cfg["pins"]["sda"]),
                                        frequency=cfg.get("i2c_hz", 400000))
            except (AttributeError, ValueError, RuntimeError) as e:
                log("extensions: no I2C bus (%s)" % e)
        self.i2c = i2c
        self.log = log
        self.notices = {}
        self._spi = None

    def pin_named(self, name):
        return getattr(self.board, name)

    def pin(self, key):
        """The board pin named by breakout key ``key`` (e.g. "sd_cs"), or None when this board has none."""
        name = self.breakout.get(key)
        if name is None:
            return None
        return getattr(self.board, name, None)

    def spi(self):
        """The breakout's shared SPI bus (built on first use), or None when the board has none."""
        if self._spi is None:
            sck = self.pin("sck")
            if sck is None:
                return None
            self._spi = self.mods["busio"].SPI(sck, MOSI=self.pin("mosi"), MISO=self.pin("miso"))
        return self._spi

    def i2c_present(self, address):
        """An I2C device acknowledges ``address`` (an empty write, as i2c.scan() does)."""
        bus = self.i2c
        if bus is None:
            return False
        while not bus.try_lock():
            pass
        try:
            bus.writeto(address, b"")
            return True
        except OSError:
            return False
        finally:
            bus.unlock()

    def setting(self, key):
        return self.settings.get(key)

    def request_settings(self, mapping):
        """Change several settings all-or-nothing (every value and the cross-key rules checked first). Returns
        (True, the keys that changed) or (False, the reason); a refusal changes nothing."""
        try:
            return True, self.settings.update(mapping)
        except KeyError as e:
            return False, "unknown setting %s" % (e,)
        except ValueError as e:  # SettingsError
            return False, str(e)

    def request_setting(self, key, value):
        """Change a setting through the validated API. Returns (True, stored value) or (False, the reason); a
        refused value changes nothing. The controller applies it within a second and saves it to flash at a safe
        moment."""
        try:
            return True, self.settings.set(key, value)
        except KeyError:
            return False, "unknown setting %r" % (key,)
        except ValueError as e:  # SettingsError
            return False, str(e)


class ExtensionHost:
    def __init__(self, ctx, log=print):
        self.ctx = ctx
        self.log = log
        self.running = []  # started extensions
        self.stopped = []  # (name, reason) of those stopped after a failure
        self._due = []  # per running extension: next tick time (ms)
        self._seen = []  # per running extension: the telemetry seq it last observed
        self._strikes = []  # per running extension: calls over budget ...
        self._good = []  # ... and good calls since the last of them
        self._next = 0  # round robin position
        self.absent = []  # [name, due ms]: hot-pluggable extensions not found, looked for again when due

    # -- discovery ------------------------------------------------------------------------------------------
    def discover(self, names=None):
        """Import, probe and start every extension in ``names`` (default: KNOWN, then drop-ins) not disabled in the
        settings; print what was found. Returns the names started."""
        if names is None:
            names = list(KNOWN) + [n for n in drop_ins() if n not in KNOWN and n not in SUPPORT]
        disabled = self._disabled()
        found = []
        for name in names:
            if name in disabled:
                self.log("ext %s: disabled in settings (extensions_disabled)" % name)
                continue
            ext = self._load(name, name in KNOWN)
            if ext is None:
                _unload(name)
                continue
            every = ext.hotplug_ms
            try:
                present = ext.probe()
            except Exception as e:  # a probe that fails is an absent module, not a broken firmware
                self.log("ext %s: probe failed (%s: %s), not started" % (name, type(e).__name__, e))
                present = False
                every = 0  # a missing library or a broken probe: looking again would fail again
            if not present:
                if every:
                    self.absent.append([name, ticks_ms() + every])
                    self.log("ext %s: not there yet, looked for every %d s" % (name, every // 1000))
                else:
                    self.log("ext %s: not found" % name)
                _unload(name)  # its code and driver need not stay on the heap
                continue
            if self.add(ext):
                found.append(name)
            else:
                _unload(name)
        self.log("extensions: %s" % (", ".join(found) if found else "none"))
        return found

    def _disabled(self):
        try:
            text = self.ctx.settings.get("extensions_disabled")
        except KeyError:
            return ()
        return [n.strip() for n in text.split(",") if n.strip()]

    def _load(self, name, known):
        modname = "extensions." + name
        try:
            __import__(modname)
            mod = sys.modules[modname]
        except ImportError as e:
            self.log("ext %s: not available (%s); install its libraries: see circup.json" % (name, e))
            return None
        except Exception as e:
            self.log("ext %s: failed to load (%s: %s)" % (name, type(e).__name__, e))
            return None
        cls = getattr(mod, "EXTENSION", None)
        if cls is None:
            if known:
                self.log("ext %s: module has no EXTENSION" % name)
            return None  # a support module of another extension
        try:
            return cls(self.ctx)
        except Exception as e:
            self.log("ext %s: failed to initialise (%s: %s)" % (name, type(e).__name__, e))
            return None

    def add(self, ext):
        """Start an extension (already probed) and put it under the host's supervision. Returns True if started."""
        t0 = ticks_ms()
        try:
            ext.start()
        except Exception as e:
            self._safe_stop(ext)
            self.stopped.append((ext.name, "start raised %s: %s" % (type(e).__name__, e)))
            self.log("ext %s: start failed (%s: %s), not started" % (ext.name, type(e).__name__, e))
            return False
        dt = ticks_diff(ticks_ms(), t0)
        if dt > _START_BUDGET_MS:
            self.log("ext %s: start took %d ms (budget %d ms)" % (ext.name, dt, _START_BUDGET_MS))
        try:
            info = ext.status()
        except Exception:
            info = ""
        self.log("ext %s: started%s" % (ext.name, (" (" + info + ")") if info else ""))
        self.running.append(ext)
        self._due.append(ticks_ms())
        self._seen.append(-1)
        self._strikes.append(0)
        self._good.append(0)
        return True

    # -- running --------------------------------------------------------------------------------------------
    def service(self, now):
        """At most one extension call: the next one (round robin) with a new snapshot to observe or a tick due.
        Returns True when a call was made (the idle loop calls again while its period has time left). With nothing
        due, a hot-pluggable extension that was not there may be looked for."""
        n = len(self.running)
        seq = self.ctx.telemetry.seq
        for _ in range(n):
            k = self._next
            self._next = (k + 1) % n
            ext = self.running[k]
            if self._seen[k] != seq:
                self._seen[k] = seq
                if type(ext).observe is not Extension.observe:  # no call (no control step) for the default
                    self._call(k, ext.observe, self.ctx.telemetry)
                    return True
            if ticks_diff(now, self._due[k]) >= 0:
                self._due[k] = now + ext.period_ms
                self._call(k, ext.tick, now)
                return True
        # one absent hot-pluggable extension whose time has come: import, probe, start; or unload it again (inline:
        # each method name stays interned in RAM)
        for entry in self.absent:
            if ticks_diff(now, entry[1]) >= 0:
                name = entry[0]
                ext = self._load(name, True)
                present = False
                if ext is not None:
                    try:
                        present = ext.probe()
                    except Exception:
                        pass
                if present:
                    self.absent.remove(entry)
                    if self.add(ext):
                        return True
                else:
                    entry[1] = now + (ext.hotplug_ms if ext is not None else 60000)
                _unload(name)
                return True
        return False

    def _call(self, k, fn, arg):
        ext = self.running[k]
        t0 = ticks_ms()
        try:
            fn(arg)
        except Exception as e:
            self._fail(k, "raised %s: %s" % (type(e).__name__, e))
            return
        dt = ticks_diff(ticks_ms(), t0)
        if dt > ext.budget_ms:
            self._strikes[k] += 1
            self._good[k] = 0
            if dt > ext.budget_ms * _HARD_FACTOR or self._strikes[k] >= _MAX_STRIKES:
                self._fail(k, "overran its time budget (%d ms > %d ms)" % (dt, ext.budget_ms))
        elif self._strikes[k]:
            self._good[k] += 1
            if self._good[k] >= _FORGIVE_CALLS:
                self._strikes[k] = 0

    def _fail(self, k, why):
        ext = self.running.pop(k)
        self._due.pop(k)
        self._seen.pop(k)
        self._strikes.pop(k)
        self._good.pop(k)
        self._next = 0
        self._safe_stop(ext)
        self.stopped.append((ext.name, why))
        self.log("FAULT code=EXT ch=-1 ext=%s stopped: %s" % (ext.name, why))

    def _safe_stop(self, ext):
        try:
            ext.stop()
        except Exception as e:
            self.log("ext %s: stop raised %s: %s" % (ext.name, type(e).__name__, e))

    def stop_all(self):
        while self.running:
            ext = self.running.pop()
            self._safe_stop(ext)
        self._due = []
        self._seen = []
        self._strikes = []
        self._good = []

    def names(self):
        return [e.name for e in self.running]
